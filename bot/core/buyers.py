"""Simulated buyers as data: one character sheet per buyer and language,
`prompts/buyers/<id>.<lang>.yaml`.

A sheet is everything the practice buyer may say: who they are, what they care about, the
facts they reveal one at a time to good open questions (in order, each deeper), their
objections, and their reaction to each finding category of the diagnosis (a pitch gets a
brochure request, a meeting grab silence, pressure a polite no…), each case in several
wordings so two sessions do not read alike. The engine (`bot.core.practice`) only picks
lines from here; adding a buyer is a file change, and `check_buyer_sheets` tells an
editor every problem at once, naming the file and the field.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.core.drills import DrillLibrary, check_name, load_yaml_model
from bot.core.errors import KnowledgeError
from bot.core.models import Category

SUFFIX = ".yaml"
_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SENTENCE_END = re.compile(r"[.!?…»)\"”]$")
MAX_LINE = 400
MIN_WORDINGS = 3

Reaction = Literal["engaged", "neutral", "objection", "closed"]
# A finding never earns `engaged`: the buyer opens up only to a real question.
BlockedReaction = Literal["neutral", "objection", "closed"]
Channel = Literal["email", "linkedin", "phone", "telegram", "event"]
# The lists of lines a sheet holds besides its category reactions, in the order the
# engine's line keys use them (`facts.2`, `farewell.0`…).
LINE_LISTS = ("facts", "objections", "open_question", "vague_question", "next_step", "farewell")


def _clean_lines(value: list[str]) -> list[str]:
    cleaned = [" ".join(line.split()) for line in value]
    if any(not line for line in cleaned):
        raise ValueError("lines must not be blank")
    too_long = [line for line in cleaned if len(line) > MAX_LINE]
    if too_long:
        raise ValueError(f"a line is over {MAX_LINE} characters: {too_long[0][:40]!r}…")
    return cleaned


class CategoryReaction(BaseModel):
    """How the buyer answers a message whose main problem is one finding category."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reaction: BlockedReaction
    lines: list[str] = Field(min_length=MIN_WORDINGS)

    @field_validator("lines")
    @classmethod
    def _lines(cls, value: list[str]) -> list[str]:
        return _clean_lines(value)


class BuyerSheet(BaseModel):
    """One buyer in one language; the id is shared by its translations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    lang: str = Field(min_length=2, max_length=5)
    # The drill this buyer plays (`prompts/drills/<drill>.<lang>.yaml`), when one fits.
    drill: str | None = None
    role: str = Field(min_length=3)
    company: str = Field(min_length=3)
    channel: Channel
    situation: str = Field(min_length=20)
    cares_about: list[str] = Field(min_length=2)
    # Blocked turns the buyer takes before leaving the conversation.
    patience: int = Field(default=4, ge=2, le=6)
    # Word starts that show a question is about this buyer's world.
    topics: list[str] = Field(min_length=5)
    facts: list[str] = Field(min_length=3)
    objections: list[str] = Field(min_length=2)
    reactions: dict[Category, CategoryReaction]
    open_question: list[str] = Field(min_length=MIN_WORDINGS)
    vague_question: list[str] = Field(min_length=MIN_WORDINGS)
    next_step: list[str] = Field(min_length=MIN_WORDINGS)
    farewell: list[str] = Field(min_length=MIN_WORDINGS)

    @field_validator("id", "drill")
    @classmethod
    def _kebab(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError("must be lower-case kebab-case (e.g. fitness-hr-director)")
        return value

    @field_validator("role", "company", "situation")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return " ".join(value.split())

    @field_validator(
        "cares_about", "facts", "objections", "open_question", "vague_question", "next_step", "farewell"
    )
    @classmethod
    def _lines(cls, value: list[str]) -> list[str]:
        return _clean_lines(value)

    @field_validator("open_question")
    @classmethod
    def _whole_sentences(cls, value: list[str]) -> list[str]:
        # A lead-in is said before a fact: it must end as a sentence, not run into it.
        for line in value:
            if not _SENTENCE_END.search(line):
                raise ValueError(f"must end a sentence (., !, ? or …): {line!r}")
        return value

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: list[str]) -> list[str]:
        cleaned = [" ".join(topic.lower().split()) for topic in value]
        short = [topic for topic in cleaned if len(topic) < 3]
        if short:
            raise ValueError(f"topics need at least 3 letters (too short: {short[0]!r})")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("topics must not repeat")
        return cleaned

    @field_validator("reactions")
    @classmethod
    def _every_category(cls, value: dict[Category, CategoryReaction]) -> dict[Category, CategoryReaction]:
        missing = [category.value for category in Category if category not in value]
        if missing:
            raise ValueError(f"missing categories: {', '.join(missing)}")
        return value

    @model_validator(mode="after")
    def _no_repeats(self) -> BuyerSheet:
        seen: dict[str, str] = {}
        for key, line in self.lines():
            if line in seen:
                raise ValueError(f"{key} repeats {seen[line]} word for word: {line[:50]!r}")
            seen[line] = key
        return self

    def lines(self) -> Iterator[tuple[str, str]]:
        """Every line the buyer may say, with its key (`reactions.pitch.1`, `facts.0`…)."""
        for category in Category:
            case = self.reactions.get(category)
            if case is not None:
                for index, line in enumerate(case.lines):
                    yield f"reactions.{category.value}.{index}", line
        for name in LINE_LISTS:
            for index, line in enumerate(getattr(self, name)):
                yield f"{name}.{index}", line

    def line(self, key: str) -> str:
        """The line a key names; KeyError for a key this sheet does not have."""
        parts = key.split(".")
        try:
            if parts[0] == "reactions" and len(parts) == 3:
                return self.reactions[Category(parts[1])].lines[int(parts[2])]
            if parts[0] in LINE_LISTS and len(parts) == 2:
                values: list[str] = getattr(self, parts[0])
                return values[int(parts[1])]
        except (ValueError, IndexError):
            pass
        raise KeyError(key)

    def shape(self) -> dict[str, object]:
        """What two translations of a sheet must share: links, reaction kinds, and how many
        lines each case holds (topics excepted: word starts differ between languages)."""
        return {
            "drill": self.drill,
            "channel": self.channel,
            "patience": self.patience,
            "cares_about": len(self.cares_about),
            **{name: len(getattr(self, name)) for name in LINE_LISTS},
            **{
                f"reactions.{category.value}": (case.reaction, len(case.lines))
                for category, case in sorted(self.reactions.items())
            },
        }


def load_buyer(path: Path) -> BuyerSheet:
    sheet = load_yaml_model(path, BuyerSheet, "a buyer sheet")
    check_name(path, SUFFIX, sheet.id, sheet.lang)
    return sheet


class BuyerLibrary:
    """Every buyer sheet, by id and language, with the file each came from."""

    def __init__(self, entries: Iterable[tuple[Path, BuyerSheet]] = ()) -> None:
        self._by_key: dict[tuple[str, str], BuyerSheet] = {}
        self._paths: dict[tuple[str, str], Path] = {}
        for path, sheet in entries:
            key = (sheet.id, sheet.lang)
            if key in self._by_key:
                raise KnowledgeError(
                    path, "id", f"duplicate buyer '{sheet.id}' in '{sheet.lang}' (also {self._paths[key]})"
                )
            self._by_key[key] = sheet
            self._paths[key] = path

    @classmethod
    def load(cls, directory: Path) -> BuyerLibrary:
        """A missing directory is an empty library (practice is then unavailable)."""
        if not directory.is_dir():
            return cls()
        return cls((path, load_buyer(path)) for path in sorted(directory.glob(f"*{SUFFIX}")))

    def __len__(self) -> int:
        return len(self._by_key)

    def ids(self) -> list[str]:
        return sorted({buyer_id for buyer_id, _ in self._by_key})

    def get(self, buyer_id: str, lang: str) -> BuyerSheet | None:
        return self._by_key.get((buyer_id, lang))

    def path(self, buyer_id: str, lang: str) -> Path | None:
        return self._paths.get((buyer_id, lang))

    def for_language(self, lang: str) -> list[BuyerSheet]:
        return [sheet for (_, sheet_lang), sheet in sorted(self._by_key.items()) if sheet_lang == lang]

    def find(self, name: str, lang: str) -> BuyerSheet | None:
        """The buyer a drill id or a buyer id names (`--drill fifteen-minute-demo`)."""
        direct = self.get(name, lang)
        if direct is not None:
            return direct
        return next((sheet for sheet in self.for_language(lang) if sheet.drill == name), None)

    def choose(self, lang: str, rng: random.Random) -> BuyerSheet | None:
        """A buyer drawn with `rng` (sorted first, so a seeded draw is reproducible)."""
        sheets = self.for_language(lang)
        return rng.choice(sheets) if sheets else None

    def problems(self, languages: Collection[str], drills: DrillLibrary) -> list[str]:
        """Cross-file problems: missing translations, translations that differ in shape,
        links to drills that do not exist."""
        issues: list[str] = []
        for buyer_id in self.ids():
            present = sorted(lang for bid, lang in self._by_key if bid == buyer_id)
            reference = self._by_key[(buyer_id, present[0])]
            reference_path = self._paths[(buyer_id, present[0])]
            for lang in sorted(set(languages) - set(present)):
                issues.append(f"{reference_path}: missing translation '{lang}'")
            for lang in present:
                path = self._paths[(buyer_id, lang)]
                sheet = self._by_key[(buyer_id, lang)]
                if lang not in languages:
                    issues.append(f"{path}: lang: '{lang}' is not a supported language")
                theirs, ours = reference.shape(), sheet.shape()
                for field in sorted(key for key in ours if ours[key] != theirs.get(key)):
                    issues.append(f"{path}: {field}: differs from {reference_path.name}")
                if sheet.drill is not None and drills.get(sheet.drill, lang) is None:
                    issues.append(f"{path}: drill: no drill '{sheet.drill}' in '{lang}'")
        return issues

    def language_problems(self) -> list[str]:
        """Every line must read as the sheet's language to the project's own detector: a
        buyer who answers a French rep in English breaks the practice."""
        from bot.core.language import LanguageDetector

        detector = LanguageDetector()
        issues: list[str] = []
        for (buyer_id, lang), sheet in sorted(self._by_key.items()):
            path = self._paths[(buyer_id, lang)]
            texts = [("situation", sheet.situation), *sheet.lines()]
            texts += [(f"cares_about.{index}", line) for index, line in enumerate(sheet.cares_about)]
            for key, line in texts:
                guess = detector.detect(line)
                if guess.lang != lang:
                    said = guess.lang or (guess.other or {}).get("en", "unknown")
                    issues.append(f"{path}: {key}: reads as {said}, not {lang}: {line[:60]!r}")
        return issues


def check_buyer_sheets(root: Path, languages: Collection[str] = ("en", "fr")) -> list[str]:
    """Every problem of the buyer sheets and the practice strings under `root` (the prompts
    directory: `root/buyers/`, `root/practice/`, drills read from `root/drills/`), each
    naming its file and field; empty when all is well. Called by `fournil kb check`."""
    from bot.core.practice_strings import practice_string_problems

    problems: list[str] = []
    entries: list[tuple[Path, BuyerSheet]] = []
    directory = root / "buyers"
    if not directory.is_dir():
        return [f"{directory}: missing (the practice buyers live there)"]
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        try:
            entries.append((path, load_buyer(path)))
        except KnowledgeError as exc:
            problems.append(str(exc))
    try:
        drills = DrillLibrary.load(root / "drills")
    except KnowledgeError as exc:
        problems.append(str(exc))
        drills = DrillLibrary()
    try:
        library = BuyerLibrary(entries)
        problems += library.problems(languages, drills)
        problems += library.language_problems()
    except KnowledgeError as exc:
        problems.append(str(exc))
    problems += practice_string_problems(root / "practice", languages)
    return problems
