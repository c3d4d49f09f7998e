"""What the practice says around the buyer, per language (`prompts/practice/<lang>.yaml`):
the terminal's words, the after-the-opener coaching notes, the debrief and its questions
to think about, and the common words a rep's reuse of the buyer's words ignores.

Data, not code, so a wording or a language is a file change; every key the code reads is
listed here, so a missing one is reported by `fournil kb check` instead of failing in
the middle of a session.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.errors import KnowledgeError
from bot.core.models import Category
from bot.core.yaml_text import load_yaml

# Beyond the finding categories, what a debrief may suggest thinking about.
TRY_NEXT_EXTRA = ("pitched_after_objection", "vague", "not_listening", "deeper")
REQUIRED: dict[str, tuple[str, ...]] = {
    "channels": ("email", "linkedin", "phone", "telegram", "event"),
    "reactions": ("engaged", "neutral", "objection", "closed"),
    "cli": (
        "title",
        "channel",
        "situation",
        "cares",
        "how",
        "prompt",
        "buyer",
        "findings",
        "no_findings",
        "left",
        "next_step",
        "no_buyer",
        "unknown_buyer",
    ),
    "chat": ("how", "turn", "already", "none", "private", "unknown", "after"),
    "coaching": (
        "listened",
        "not_listened",
        "one_question",
        "no_open_question",
        "several_questions",
        "stopped_pitching",
        "kept_pitching",
    ),
    "debrief": (
        "title",
        "turns",
        "turn",
        "facts",
        "next_step",
        "left",
        "open",
        "opened",
        "opened_listening",
        "never_opened",
        "never_opened_vague",
        "no_turns",
        "try_next",
    ),
    "try_next": (*(category.value for category in Category), *TRY_NEXT_EXTRA),
}
_PLACEHOLDER = re.compile(r"\{[^}]*\}")
MIN_WORDS_FOR_LANGUAGE = 5  # "Buyer", « neutre »: too short for any detector to judge


class PracticeFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lang: str = Field(min_length=2, max_length=5)
    # Words that never show listening when the rep repeats them ("because", « toujours »).
    common_words: list[str] = Field(min_length=20)
    channels: dict[str, str]
    reactions: dict[str, str]
    cli: dict[str, str]
    # What the chat channels say around a session (bot/core/practice_flow.py).
    chat: dict[str, str]
    coaching: dict[str, str]
    debrief: dict[str, str]
    try_next: dict[str, str]


@dataclass(frozen=True)
class PracticeStrings:
    data: PracticeFile
    common: frozenset[str]

    @property
    def lang(self) -> str:
        return self.data.lang

    def text(self, section: str, key: str, **values: Any) -> str:
        template: str = getattr(self.data, section)[key]
        return template.format(**values) if values else template


def _load_file(path: Path) -> PracticeStrings:
    from bot.core.practice_words import fold

    try:
        raw: Any = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(path, "file", str(exc)) from None
    try:
        data = PracticeFile.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError.from_validation(path, exc) from None
    if data.lang != path.stem:
        raise KnowledgeError(path, "lang", f"'{data.lang}' does not match the file name")
    for section, keys in REQUIRED.items():
        present = getattr(data, section)
        for key in keys:
            if key not in present:
                raise KnowledgeError(path, f"{section}.{key}", "missing")
    return PracticeStrings(data=data, common=frozenset(fold(word) for word in data.common_words))


def load_practice_strings(directory: Path) -> dict[str, PracticeStrings]:
    """Every `<lang>.yaml` of the directory; the first broken file raises, naming itself."""
    strings = {path.stem: _load_file(path) for path in sorted(directory.glob("*.yaml"))}
    if not strings:
        raise KnowledgeError(directory, "practice", "no <lang>.yaml found")
    return strings


def practice_string_problems(directory: Path, languages: Collection[str]) -> list[str]:
    """Each language file loads and says everything the others say, in its own language;
    the questions to think about are questions."""
    from bot.core.language import LanguageDetector

    problems: list[str] = []
    loaded: dict[str, PracticeStrings] = {}
    for lang in sorted(languages):
        path = directory / f"{lang}.yaml"
        if not path.is_file():
            problems.append(f"{path}: missing (practice strings for '{lang}')")
            continue
        try:
            loaded[lang] = _load_file(path)
        except KnowledgeError as exc:
            problems.append(str(exc))
    detector = LanguageDetector()
    for lang, strings in loaded.items():
        path = directory / f"{lang}.yaml"
        for section in REQUIRED:
            ours = set(getattr(strings.data, section))
            for other, theirs in loaded.items():
                for key in sorted(set(getattr(theirs.data, section)) - ours):
                    problems.append(f"{path}: {section}.{key}: missing (present in {other}.yaml)")
            for key, value in sorted(getattr(strings.data, section).items()):
                text = _PLACEHOLDER.sub(" ", value)
                if len(text.split()) >= MIN_WORDS_FOR_LANGUAGE and detector.detect(text).lang != lang:
                    problems.append(f"{path}: {section}.{key}: does not read as {lang}: {value[:60]!r}")
        for key, question in sorted(strings.data.try_next.items()):
            if not question.rstrip().endswith("?"):
                problems.append(f"{path}: try_next.{key}: must be a question to think about (end with ?)")
    return problems
