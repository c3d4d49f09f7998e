"""What Fournil says, per language (prompts/ui/<lang>.yaml): data, not code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.errors import KnowledgeError
from bot.core.lexicon import word_pattern


class UiFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lang: str
    name: str
    categories: dict[str, str]
    severity: dict[str, str]
    card: dict[str, str]
    score: dict[str, str]
    compare: dict[str, str]
    flow: dict[str, str]
    invalid: dict[str, str]
    ghostwriting: list[str] = Field(min_length=1)
    injection: list[str] = Field(default_factory=list)
    commands: dict[str, list[str]]


@dataclass(frozen=True)
class UiStrings:
    data: UiFile
    ghostwriting: re.Pattern[str]
    injection: re.Pattern[str] | None

    @property
    def lang(self) -> str:
        return self.data.lang

    def text(self, section: str, key: str, **values: Any) -> str:
        template: str = getattr(self.data, section)[key]
        return template.format(**values) if values else template

    def category(self, category: str) -> str:
        return self.data.categories.get(category, category)


def load_ui(directory: Path) -> dict[str, UiStrings]:
    strings: dict[str, UiStrings] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
            data = UiFile.model_validate(raw)
            strings[data.lang] = UiStrings(
                data=data,
                ghostwriting=word_pattern(data.ghostwriting),
                injection=word_pattern(data.injection) if data.injection else None,
            )
        except yaml.YAMLError as exc:
            raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
        except ValidationError as exc:
            raise KnowledgeError.from_validation(path, exc) from None
        except re.error as exc:
            raise KnowledgeError(path, "patterns", f"invalid regular expression: {exc}") from None
    if not strings:
        raise KnowledgeError(directory, "ui", "no <lang>.yaml found")
    return strings


def ui_key_problems(strings: dict[str, UiStrings]) -> list[str]:
    """Every language must say everything: a key present in one file is needed in all."""
    problems: list[str] = []
    sections = ("categories", "severity", "card", "score", "compare", "flow", "invalid")
    for section in sections:
        keys = {lang: set(getattr(ui.data, section)) for lang, ui in strings.items()}
        union = set().union(*keys.values())
        for lang, present in sorted(keys.items()):
            for missing in sorted(union - present):
                problems.append(f"prompts/ui/{lang}.yaml: {section}.{missing}: missing")
    return problems
