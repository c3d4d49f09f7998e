"""Diagnosis rules as data: one YAML file per rule under knowledge/rules/.

A rule names its category (docs/contracts.md), severity, the principle it comes from, a
detector and that detector's data per language (patterns, thresholds), a message per
language, and examples that must and must not trigger it. The examples are run by the
test suite and by `fournil kb check`, so a rule cannot silently drift from its intent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.errors import KnowledgeError
from bot.core.lexicon import word_pattern
from bot.core.models import Category, Severity
from bot.core.yaml_text import load_yaml

DetectorName = Literal[
    "lexicon",
    "word_count",
    "question_count",
    "question_form",
    "no_question",
    "pronoun_balance",
]
_RULE_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class WeightedPattern(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pattern: str
    weight: float = 1.0


class RuleExample(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lang: str
    text: str = Field(min_length=1)


class RuleExamples(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    trigger: list[RuleExample] = Field(min_length=1)
    pass_: list[RuleExample] = Field(alias="pass", min_length=1)


class RuleFile(BaseModel):
    """The schema of a rule file; validation errors name the field."""

    model_config = ConfigDict(extra="forbid")
    id: str
    category: Category
    severity: Severity
    principle: str
    detector: DetectorName
    message: dict[str, str]
    patterns: dict[str, list[str | WeightedPattern]] = Field(default_factory=dict)
    unless: dict[str, list[str]] = Field(default_factory=dict)  # cancels a match
    # Raw patterns are matched case-sensitively on the original text without word
    # boundaries (merge fields such as {first_name} or [Company]).
    raw: bool = False
    scope: Literal["body", "all"] = "body"
    params: dict[str, float | int | bool | str] = Field(default_factory=dict)
    examples: RuleExamples

    @field_validator("id")
    @classmethod
    def _kebab(cls, value: str) -> str:
        if not _RULE_ID.match(value):
            raise ValueError("must be lower-case kebab-case (e.g. meeting-ask-call)")
        return value

    @field_validator("message")
    @classmethod
    def _messages_not_empty(cls, value: dict[str, str]) -> dict[str, str]:
        for lang, text in value.items():
            if not text.strip():
                raise ValueError(f"message for '{lang}' is empty")
        return value


@dataclass(frozen=True)
class Rule:
    """A validated rule with its patterns compiled."""

    id: str
    category: Category
    severity: Severity
    principle: str
    detector: DetectorName
    message: dict[str, str]
    patterns: dict[str, tuple[tuple[re.Pattern[str], float], ...]]
    unless: dict[str, re.Pattern[str]]
    raw: bool
    scope: str
    params: dict[str, float | int | bool | str]
    examples: RuleExamples
    path: Path

    def param(self, name: str, default: float) -> float:
        value = self.params.get(name, default)
        return float(value) if not isinstance(value, str) else default

    def flag(self, name: str) -> bool:
        return bool(self.params.get(name, False))


def compile_rule(data: RuleFile, path: Path, languages: set[str]) -> Rule:
    missing = sorted(languages - data.message.keys())
    if missing:
        raise KnowledgeError(path, "message", f"missing language(s): {', '.join(missing)}")
    if data.detector == "lexicon":
        missing = sorted(languages - data.patterns.keys())
        if missing:
            raise KnowledgeError(path, "patterns", f"missing language(s): {', '.join(missing)}")
    for example in [*data.examples.trigger, *data.examples.pass_]:
        if example.lang not in languages:
            raise KnowledgeError(path, "examples", f"unknown language '{example.lang}'")
    patterns: dict[str, tuple[tuple[re.Pattern[str], float], ...]] = {}
    for lang, items in data.patterns.items():
        compiled: list[tuple[re.Pattern[str], float]] = []
        for index, item in enumerate(items):
            text, weight = (item, 1.0) if isinstance(item, str) else (item.pattern, item.weight)
            text = text if data.raw else text.strip()
            try:
                regex = re.compile(text) if data.raw else word_pattern([text])
            except re.error as exc:
                raise KnowledgeError(
                    path, f"patterns.{lang}[{index}]", f"invalid regular expression: {exc}"
                ) from None
            compiled.append((regex, weight))
        patterns[lang] = tuple(compiled)
    unless: dict[str, re.Pattern[str]] = {}
    for lang, cancel in data.unless.items():
        try:
            unless[lang] = word_pattern(cancel)
        except re.error as exc:
            raise KnowledgeError(path, f"unless.{lang}", f"invalid regular expression: {exc}") from None
    return Rule(
        id=data.id,
        category=data.category,
        severity=data.severity,
        principle=data.principle,
        detector=data.detector,
        message=data.message,
        patterns=patterns,
        unless=unless,
        raw=data.raw,
        scope=data.scope,
        params=data.params,
        examples=data.examples,
        path=path,
    )


def load_rule(path: Path, languages: set[str]) -> Rule:
    try:
        raw: Any = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise KnowledgeError(path, "(file)", "a rule file must be a YAML mapping")
    try:
        data = RuleFile.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError.from_validation(path, exc) from None
    if path.stem != data.id:
        raise KnowledgeError(path, "id", f"'{data.id}' does not match the file name")
    return compile_rule(data, path, languages)


def rule_paths(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def load_rules(directory: Path, languages: set[str]) -> tuple[Rule, ...]:
    rules = tuple(load_rule(path, languages) for path in rule_paths(directory))
    if not rules:
        raise KnowledgeError(directory, "rules", "no rule file found")
    return rules
