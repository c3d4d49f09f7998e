"""What Fournil says, per language (prompts/ui/<lang>.yaml): data, not code."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.errors import KnowledgeError
from bot.core.lexicon import word_pattern
from bot.core.yaml_text import load_yaml

_SENTENCE_END = re.compile(r"(?<![.!?])[.!?]+\s")  # from a run's first mark only: linear


class ScheduleWords(BaseModel):
    """Day words for drill schedules (see bot.core.schedule)."""

    model_config = ConfigDict(extra="forbid")
    days: dict[str, list[str]]
    every_day: list[str] = Field(min_length=1)
    weekdays: list[str] = Field(min_length=1)
    day_names: dict[str, str]
    every_day_name: str
    weekdays_name: str


class UiFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lang: str
    name: str
    categories: dict[str, str]
    severity: dict[str, str]
    card: dict[str, str]
    score: dict[str, str]
    compare: dict[str, str]
    ask: dict[str, str]
    flow: dict[str, str]
    invalid: dict[str, str]
    ghostwriting: list[str] = Field(min_length=1)
    injection: list[str] = Field(default_factory=list)
    method_words: list[str] = Field(min_length=1)
    buyer_words: list[str] = Field(min_length=1)
    commands: dict[str, list[str]]
    schedule: ScheduleWords
    team: dict[str, str]
    onboarding: dict[str, str]
    # What a one-shot command (`fournil coach`, `compare`, `ask`) says instead of a line that
    # points at the conversation: "section.key" -> text, e.g. "card.more_findings".
    one_shot: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class UiStrings:
    data: UiFile
    ghostwriting: re.Pattern[str]
    injection: re.Pattern[str] | None
    method_words: re.Pattern[str]
    buyer_words: re.Pattern[str]

    @property
    def lang(self) -> str:
        return self.data.lang

    def text(self, section: str, key: str, **values: Any) -> str:
        template: str = getattr(self.data, section)[key]
        return template.format(**values) if values else template

    def is_method_question(self, text: str, max_words: int = 35) -> bool:
        """ "How do I follow up without nagging?" is for the coach; "How are you handling
        onboarding today?" is an opener addressed to a buyer. A question for the coach is
        short (one or two sentences), ends with "?", uses the words of the method and
        addresses no buyer."""
        lowered = " ".join(text.lower().replace("’", "'").split())
        if len(lowered.split()) > max_words or not lowered.rstrip().endswith("?"):
            return False
        if len(_SENTENCE_END.findall(lowered.rstrip("?!. "))) > 1:
            return False
        if not self.method_words.search(lowered):
            return False
        return not self.buyer_words.search(lowered)

    def category(self, category: str) -> str:
        return self.data.categories.get(category, category)

    def one_shot(self) -> UiStrings:
        """These strings as a one-shot command says them: no chat command to send next
        (/findings, "send it back"), but what the command line can do instead."""
        sections: dict[str, dict[str, str]] = {}
        for target, text in self.data.one_shot.items():
            section, _, key = target.partition(".")
            sections.setdefault(section, dict(getattr(self.data, section)))[key] = text
        return replace(self, data=self.data.model_copy(update=sections))


def load_ui(directory: Path) -> dict[str, UiStrings]:
    strings: dict[str, UiStrings] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw: Any = load_yaml(path.read_text(encoding="utf-8"))
            data = UiFile.model_validate(raw)
            strings[data.lang] = UiStrings(
                data=data,
                ghostwriting=word_pattern(data.ghostwriting),
                injection=word_pattern(data.injection) if data.injection else None,
                method_words=word_pattern(data.method_words),
                buyer_words=word_pattern(data.buyer_words),
            )
        except yaml.YAMLError as exc:
            raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
        except ValidationError as exc:
            raise KnowledgeError.from_validation(path, exc) from None
        except re.error as exc:
            raise KnowledgeError(path, "patterns", f"invalid regular expression: {exc}") from None
        for target in data.one_shot:
            section, _, key = target.partition(".")
            texts = getattr(data, section, None)
            if not isinstance(texts, dict) or key not in texts:
                raise KnowledgeError(path, f"one_shot.{target}", "names no text of this file (section.key)")
    if not strings:
        raise KnowledgeError(directory, "ui", "no <lang>.yaml found")
    return strings


def ui_key_problems(strings: dict[str, UiStrings]) -> list[str]:
    """Every language must say everything: a key present in one file is needed in all."""
    problems: list[str] = []
    sections = (
        "categories",
        "severity",
        "card",
        "score",
        "compare",
        "ask",
        "flow",
        "invalid",
        "commands",
        "team",
        "onboarding",
        "one_shot",
    )
    for section in sections:
        keys = {lang: set(getattr(ui.data, section)) for lang, ui in strings.items()}
        union = set().union(*keys.values())
        for lang, present in sorted(keys.items()):
            for missing in sorted(union - present):
                problems.append(f"prompts/ui/{lang}.yaml: {section}.{missing}: missing")
    return problems
