"""The onboarding path: short lessons for a new seller, one principle and one exercise each.

Steps are markdown files with front matter in `prompts/onboarding/<NN-slug>.<lang>.md`, so
the path is edited like the principles it points to. Each step carries a check that the
rep's own coached rewrite must pass before moving on: progress is earned by rewriting,
never by reading a model answer.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.drills import check_name
from bot.core.errors import KnowledgeError
from bot.core.front_matter import read_front_matter
from bot.core.models import Category

_STEP_ID = re.compile(r"^(\d{2})-[a-z0-9]+(?:-[a-z0-9]+)*$")
SUFFIX = ".md"


class StepCheck(BaseModel):
    """What a coached rewrite must show for the step to count as done."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_score: int = Field(ge=0, le=100)
    avoid: list[Category] = Field(default_factory=list)
    require_question: bool = True


class OnboardingStep(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    step: int = Field(ge=1)
    lang: str = Field(min_length=2, max_length=5)
    title: str = Field(min_length=3)
    principle: str = Field(min_length=3)
    exercise: str = Field(min_length=10)
    opener: str = Field(min_length=10)
    check: StepCheck
    lesson: str = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _numbered_kebab(cls, value: str) -> str:
        if not _STEP_ID.match(value):
            raise ValueError("must be NN-kebab-case (e.g. 01-markets-are-conversations)")
        return value

    @field_validator("title", "principle", "exercise", "opener", "lesson")
    @classmethod
    def _stripped(cls, value: str) -> str:
        return value.strip()


def load_step(path: Path) -> OnboardingStep:
    metadata, content = read_front_matter(path)
    if "lesson" in metadata:
        raise KnowledgeError(path, "lesson", "is the markdown body after the front matter, not a key")
    try:
        step = OnboardingStep.model_validate({**metadata, "lesson": content.strip()})
    except ValidationError as exc:
        raise KnowledgeError.from_validation(path, exc) from None
    check_name(path, SUFFIX, step.id, step.lang)
    prefix = int(step.id[:2])
    if prefix != step.step:
        raise KnowledgeError(path, "step", f"{step.step} does not match the id's number ({prefix:02d})")
    return step


class OnboardingPath:
    """All steps in all languages; a step number is unique within a language."""

    def __init__(self, entries: Iterable[tuple[Path, OnboardingStep]] = ()) -> None:
        self._by_key: dict[tuple[int, str], OnboardingStep] = {}
        self._paths: dict[tuple[int, str], Path] = {}
        for path, step in entries:
            key = (step.step, step.lang)
            if key in self._by_key:
                raise KnowledgeError(
                    path, "step", f"step {step.step} in '{step.lang}' is also {self._paths[key].name}"
                )
            self._by_key[key] = step
            self._paths[key] = path

    @classmethod
    def load(cls, directory: Path) -> OnboardingPath:
        """A missing directory is an empty path: onboarding is optional for a team."""
        if not directory.is_dir():
            return cls()
        return cls((path, load_step(path)) for path in sorted(directory.glob(f"*{SUFFIX}")))

    def __len__(self) -> int:
        return len({number for number, _ in self._by_key})

    @property
    def languages(self) -> set[str]:
        return {lang for _, lang in self._by_key}

    def steps(self, lang: str) -> list[OnboardingStep]:
        return [step for (_, step_lang), step in sorted(self._by_key.items()) if step_lang == lang]

    def step(self, number: int, lang: str) -> OnboardingStep | None:
        return self._by_key.get((number, lang))

    def path(self, number: int, lang: str) -> Path | None:
        return self._paths.get((number, lang))

    def problems(self, languages: set[str], known_principles: set[str]) -> list[str]:
        """Cross-file problems: translations missing or out of step, gaps, unknown principles."""
        issues: list[str] = []
        numbers = sorted({number for number, _ in self._by_key})
        for number in numbers:
            present = sorted(lang for n, lang in self._by_key if n == number)
            reference = self._by_key[(number, present[0])]
            reference_path = self._paths[(number, present[0])]
            for lang in sorted(languages - set(present)):
                issues.append(f"{reference_path}: missing translation '{lang}'")
            for lang in present:
                step = self._by_key[(number, lang)]
                path = self._paths[(number, lang)]
                if lang not in languages:
                    issues.append(f"{path}: lang: '{lang}' is not a supported language")
                if step.id != reference.id:
                    issues.append(f"{path}: id: step {number} is '{reference.id}' in {reference_path.name}")
                if step.principle != reference.principle:
                    issues.append(f"{path}: principle: differs from {reference_path.name}")
                if step.check != reference.check:
                    issues.append(f"{path}: check: differs from {reference_path.name}")
        for lang in sorted(self.languages):
            for expected, step in enumerate(self.steps(lang), start=1):
                if step.step != expected:
                    issues.append(
                        f"{self._paths[(step.step, lang)]}: step: {step.step} should be {expected} "
                        f"(steps in '{lang}' must be consecutive from 1)"
                    )
                    break
        for (number, lang), step in sorted(self._by_key.items()):
            if step.principle not in known_principles:
                issues.append(
                    f"{self._paths[(number, lang)]}: principle: unknown principle '{step.principle}'"
                )
        return issues


def check_passed(check: StepCheck, score: int, categories: Collection[str], has_question: bool) -> list[str]:
    """The criteria a coached rewrite still misses, as short codes; empty means the step is done.

    Codes rather than sentences so the flow can phrase them in the rep's language.
    """
    unmet: list[str] = []
    if score < check.min_score:
        unmet.append("score")
    present = {str(category) for category in categories}
    unmet.extend(f"avoid:{category.value}" for category in check.avoid if category.value in present)
    if check.require_question and not has_question:
        unmet.append("question")
    return unmet
