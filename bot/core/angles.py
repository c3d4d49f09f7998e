"""Question angles: directions to explore, as open question stems the rep completes.

Stems end in "…" on purpose: Fournil points to a direction and leaves the words, the
facts about the buyer and the sending to the rep. Angles live in prompts/angles/, the
topic words their stems are tied to in prompts/angles/topics/<lang>.yaml.

The choice is a pure function of the card: the opener's findings pick the angles (each
angle names the categories it `addresses`; the most serious finding is served first, then
the next one), its topic picks the stem inside each angle (a stem tied to a topic the
opener talks about, else the angle's general stem). No randomness and no hash of the
text: the same opener gets the same angles on its card, in /findings and in every channel,
even when it is coached again from a stored, redacted copy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.errors import KnowledgeError
from bot.core.lexicon import word_pattern
from bot.core.models import Category, Finding
from bot.core.yaml_text import load_yaml

TOPICS_DIR = "topics"
_TOPIC_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class StemEntry(BaseModel):
    """A stem tied to topics: chosen when the opener talks about one of them."""

    model_config = ConfigDict(extra="forbid")
    text: str
    topics: list[str] = Field(min_length=1)


class AngleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    kind: str
    principle: str
    # The categories this angle answers, the one it answers best first.
    addresses: list[Category] = Field(default_factory=list)
    when: Literal["any", "has_anchor", "no_anchor"] = "any"
    stems: dict[str, list[str | StemEntry]]


class TopicFile(BaseModel):
    """One language's topic words: topic id -> word patterns (whole words, any case)."""

    model_config = ConfigDict(extra="forbid")
    lang: str
    topics: dict[str, list[str]] = Field(min_length=1)

    @field_validator("topics")
    @classmethod
    def _ids(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for topic, words in value.items():
            if not _TOPIC_ID.match(topic):
                raise ValueError(f"topic id '{topic}' must be lower-case snake_case")
            if not words:
                raise ValueError(f"topic '{topic}' has no words")
        return value


@dataclass(frozen=True)
class Stem:
    text: str
    topics: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Angle:
    id: str
    kind: str
    principle: str
    addresses: tuple[Category, ...]
    when: str
    stems: dict[str, tuple[Stem, ...]]
    order: int

    def rank_for(self, category: Category) -> int:
        """How well this angle answers `category` (0 best); only for a category it addresses."""
        return self.addresses.index(category)

    def stem(self, lang: str, topics: tuple[str, ...]) -> Stem | None:
        """The stem of the opener's strongest topic this angle has words for, else its
        general stem (the first without topics)."""
        stems = self.stems.get(lang) or self.stems.get("en") or ()
        for topic in topics:
            for stem in stems:
                if topic in stem.topics:
                    return stem
        return next((stem for stem in stems if not stem.topics), stems[0] if stems else None)

    def on_topic(self, lang: str, topics: tuple[str, ...]) -> bool:
        stems = self.stems.get(lang) or ()
        return any(topic in stem.topics for stem in stems for topic in topics)


@dataclass(frozen=True)
class Angles:
    """Every angle, and the topic words of each language its stems are tied to."""

    angles: tuple[Angle, ...]
    topics: dict[str, dict[str, re.Pattern[str]]]

    def __iter__(self) -> Iterator[Angle]:
        return iter(self.angles)

    def __len__(self) -> int:
        return len(self.angles)

    def opener_topics(self, text: str, lang: str) -> tuple[str, ...]:
        """The topics `text` talks about, the most mentioned first (then the earliest)."""
        found: list[tuple[int, int, str]] = []
        for topic, pattern in self.topics.get(lang, {}).items():
            hits = list(pattern.finditer(text))
            if hits:
                found.append((-len(hits), hits[0].start(), topic))
        return tuple(topic for _, _, topic in sorted(found))


def load_topics(directory: Path, languages: set[str]) -> dict[str, dict[str, re.Pattern[str]]]:
    topics: dict[str, dict[str, re.Pattern[str]]] = {}
    for lang in sorted(languages):
        path = directory / f"{lang}.yaml"
        try:
            raw: Any = load_yaml(path.read_text(encoding="utf-8"))
            data = TopicFile.model_validate(raw)
        except OSError as exc:
            raise KnowledgeError(path, "file", exc.strerror or str(exc)) from None
        except yaml.YAMLError as exc:
            raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
        except ValidationError as exc:
            raise KnowledgeError.from_validation(path, exc) from None
        if data.lang != lang:
            raise KnowledgeError(path, "lang", f"'{data.lang}' does not match the file name")
        compiled: dict[str, re.Pattern[str]] = {}
        for topic, words in data.topics.items():
            try:
                compiled[topic] = word_pattern(words)
            except re.error as exc:
                raise KnowledgeError(path, f"topics.{topic}", f"invalid regular expression: {exc}") from None
        topics[lang] = compiled
    names = {lang: set(items) for lang, items in topics.items()}
    for lang, items in names.items():
        for other, other_items in names.items():
            missing = sorted(other_items - items)
            if missing:
                raise KnowledgeError(
                    directory / f"{lang}.yaml", "topics", f"missing {', '.join(missing)} (in {other}.yaml)"
                )
    return topics


def load_angles(directory: Path, languages: set[str]) -> Angles:
    topics = load_topics(directory / TOPICS_DIR, languages)
    angles: list[Angle] = []
    for order, path in enumerate(sorted(directory.glob("*.yaml"))):
        try:
            raw: Any = load_yaml(path.read_text(encoding="utf-8"))
            data = AngleFile.model_validate(raw)
        except yaml.YAMLError as exc:
            raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
        except ValidationError as exc:
            raise KnowledgeError.from_validation(path, exc) from None
        if len(set(data.addresses)) != len(data.addresses):
            raise KnowledgeError(path, "addresses", "a category is listed twice")
        stems: dict[str, tuple[Stem, ...]] = {}
        for lang in sorted(languages):
            entries = data.stems.get(lang)
            if not entries:
                raise KnowledgeError(path, f"stems.{lang}", "missing")
            stems[lang] = tuple(_stem(path, lang, entry, topics[lang]) for entry in entries)
            if all(stem.topics for stem in stems[lang]):
                raise KnowledgeError(path, f"stems.{lang}", "needs one general stem (without topics)")
        angles.append(
            Angle(
                id=data.id,
                kind=data.kind,
                principle=data.principle,
                addresses=tuple(data.addresses),
                when=data.when,
                stems=stems,
                order=order,
            )
        )
    if not angles:
        raise KnowledgeError(directory, "angles", "no angle file found")
    return Angles(angles=tuple(angles), topics=topics)


def _stem(path: Path, lang: str, entry: str | StemEntry, topics: dict[str, re.Pattern[str]]) -> Stem:
    text, tied = (entry, []) if isinstance(entry, str) else (entry.text, entry.topics)
    if "…" not in text or not text.rstrip().endswith("?"):
        raise KnowledgeError(path, f"stems.{lang}", f"'{text}' must be a question stem with …")
    unknown = sorted(set(tied) - set(topics))
    if unknown:
        raise KnowledgeError(path, f"stems.{lang}", f"'{text}': unknown topic(s) {', '.join(unknown)}")
    return Stem(text=text, topics=frozenset(tied))


@dataclass(frozen=True)
class AngleChoice:
    angle: Angle
    stem: str
    serves: Category | None  # the finding category it was chosen for (None: a filler)


def choose_angles(
    text: str,
    lang: str,
    findings: list[Finding],
    has_anchor: bool,
    angles: Angles,
    count: int = 3,
) -> list[AngleChoice]:
    """Up to `count` angles of different kinds: for each finding category in turn (most
    serious first), the angle that answers it best; then, if room is left, the angles the
    opener's topic and context fit best. Ties go to the angle with a stem on the opener's
    topic, then to the one that fits whether the opener names a context, then to file order."""
    topics = angles.opener_topics(text, lang)
    categories = list(dict.fromkeys(finding.category for finding in findings))

    def fit(angle: Angle) -> tuple[bool, bool, int]:
        anchored = angle.when == ("has_anchor" if has_anchor else "no_anchor")
        return (not angle.on_topic(lang, topics), not anchored, angle.order)

    chosen: list[AngleChoice] = []
    kinds: set[str] = set()

    def take(angle: Angle, serves: Category | None) -> None:
        stem = angle.stem(lang, topics)
        if stem is not None and angle.kind not in kinds:
            chosen.append(AngleChoice(angle=angle, stem=stem.text, serves=serves))
            kinds.add(angle.kind)

    for category in categories:
        if len(chosen) == count:
            break
        candidates = [a for a in angles if category in a.addresses and a.kind not in kinds]
        if candidates:
            take(min(candidates, key=lambda a: (a.rank_for(category), *fit(a))), category)
    rest = sorted(
        (a for a in angles if a.kind not in kinds),
        key=lambda a: (-len(set(a.addresses) & set(categories)), *fit(a)),
    )
    for angle in rest:
        if len(chosen) == count:
            break
        take(angle, None)
    return chosen


def suggest_angles(
    text: str,
    lang: str,
    findings: list[Finding],
    has_anchor: bool,
    angles: Angles,
    count: int = 3,
) -> list[str]:
    """The stems of `choose_angles`, in the card's language."""
    return [choice.stem for choice in choose_angles(text, lang, findings, has_anchor, angles, count)]
