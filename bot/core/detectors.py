"""Learned sentence detectors, as the coach uses them: when a probability is a finding.

The classifiers themselves live in `bot.knowledge.detectors` (they need the encoder); the
core only knows their port (`UnitScorer`), the thresholds `fournil kb train` derived by
cross-validation (knowledge/detectors/thresholds.yaml), and what a card says for each
category (knowledge/detectors/categories.yaml). Both files are data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.errors import KnowledgeError
from bot.core.models import Category, Finding, Severity
from bot.core.ports import UnitReading
from bot.core.units import Unit
from bot.core.yaml_text import load_yaml

# Categories that live in one sentence are learned; counting ones (too long, no question,
# stacked questions, template leftover) stay exact rules.
LEARNED_CATEGORIES: tuple[Category, ...] = (
    Category.PITCH,
    Category.SELF_FOCUS,
    Category.MEETING_ASK,
    Category.CLOSED_QUESTION,
    Category.PRESSURE,
    Category.JARGON,
    Category.UNPROVEN_CLAIM,
    Category.FAKE_PERSONALIZATION,
)
_MAX_EVIDENCE = 160


class CategoryCard(BaseModel):
    """What a card says for a category a detector found (categories.yaml)."""

    model_config = ConfigDict(extra="forbid")
    principle: str
    severity: Severity
    message: dict[str, str] = Field(min_length=1)
    # A compliment that names something concrete (a figure, a quotation, a topic), or a
    # short one right after a sentence that does ("…after the matchmaking fix. Nice work."),
    # is not generic: the detector's finding is dropped there, as the rule's is.
    skip_if_specific: bool = False


class CategoryThreshold(BaseModel):
    """One category's decision threshold and the cross-validated figures it came from."""

    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(gt=0.0, le=1.0)
    cv_precision: float | None = None
    cv_recall: float | None = None
    cv_auc: float | None = None
    positives: int | None = None
    negatives: int | None = None
    # A wording rule's finding is dropped when the detector gives the sentence it matched
    # less than this: so few true positives of the corpus score that low (out of fold)
    # that the rule's words were most likely used in another sense.
    veto_below: float | None = Field(default=None, ge=0.0, le=1.0)


class DetectorPolicy(BaseModel):
    """Thresholds and card texts together: which probabilities become findings."""

    model_config = ConfigDict(frozen=True)
    cards: dict[Category, CategoryCard]
    thresholds: dict[Category, CategoryThreshold]

    @property
    def categories(self) -> tuple[Category, ...]:
        return tuple(c for c in LEARNED_CATEGORIES if c in self.thresholds and c in self.cards)


def _yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        raw: Any = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    except OSError as exc:
        raise KnowledgeError(path, "file", exc.strerror or str(exc)) from None
    if not isinstance(raw, dict):
        raise KnowledgeError(path, "(file)", "must be a YAML mapping of category to settings")
    return raw


def _category(path: Path, name: object) -> Category:
    try:
        category = Category(str(name))
    except ValueError:
        raise KnowledgeError(path, str(name), "not a category of the fixed vocabulary") from None
    if category not in LEARNED_CATEGORIES:
        raise KnowledgeError(path, str(name), "this category is counted by a rule, not learned")
    return category


def load_detector_policy(directory: Path, languages: set[str]) -> DetectorPolicy:
    """categories.yaml and thresholds.yaml of `directory`; errors name file and field."""
    cards_path = directory / "categories.yaml"
    thresholds_path = directory / "thresholds.yaml"
    cards: dict[Category, CategoryCard] = {}
    for name, value in _yaml_mapping(cards_path).items():
        category = _category(cards_path, name)
        try:
            card = CategoryCard.model_validate(value)
        except ValidationError as exc:
            error = KnowledgeError.from_validation(cards_path, exc)
            raise KnowledgeError(cards_path, f"{name}.{error.field}", error.problem) from None
        missing = sorted(languages - card.message.keys())
        if missing:
            raise KnowledgeError(cards_path, f"{name}.message", f"missing language(s): {', '.join(missing)}")
        cards[category] = card
    thresholds: dict[Category, CategoryThreshold] = {}
    for name, value in _yaml_mapping(thresholds_path).items():
        category = _category(thresholds_path, name)
        try:
            thresholds[category] = CategoryThreshold.model_validate(value)
        except ValidationError as exc:
            error = KnowledgeError.from_validation(thresholds_path, exc)
            raise KnowledgeError(thresholds_path, f"{name}.{error.field}", error.problem) from None
        if category not in cards:
            raise KnowledgeError(cards_path, str(name), "learned category has no card text")
    return DetectorPolicy(cards=cards, thresholds=thresholds)


@dataclass(frozen=True)
class LearnedVerdict:
    """What the detectors say about one opener: their findings, and enough to tell whether
    they contradict a rule's match."""

    findings: tuple[Finding, ...]
    evidence: tuple[Unit, ...]  # the unit each finding quotes, in the same order
    units: tuple[Unit, ...]
    reading: UnitReading
    policy: DetectorPolicy

    def contradicts(self, category: Category, offset: int) -> bool:
        """The detector is confident the sentence holding `offset` does not show `category`."""
        threshold = self.policy.thresholds.get(category)
        if threshold is None or threshold.veto_below is None:
            return False
        scores = [
            probabilities.get(category, 0.0)
            for unit, probabilities in zip(self.units, self.reading.probabilities, strict=True)
            if unit.start <= offset < unit.end
        ]
        return bool(scores) and max(scores) < threshold.veto_below

    def flagged_units(self, categories: tuple[Category, ...]) -> list[Unit]:
        """Units whose probability clears the threshold of one of `categories`."""
        limits = {c: self.policy.thresholds[c].threshold for c in categories if c in self.policy.thresholds}
        return [
            unit
            for unit, probabilities in zip(self.units, self.reading.probabilities, strict=True)
            if any(probabilities.get(c, 0.0) >= limit for c, limit in limits.items())
        ]


def read_opener(
    units: tuple[Unit, ...], reading: UnitReading, policy: DetectorPolicy, lang: str
) -> LearnedVerdict:
    pairs = learned_findings(units, reading, policy, lang)
    return LearnedVerdict(
        tuple(finding for finding, _ in pairs), tuple(unit for _, unit in pairs), units, reading, policy
    )


def learned_findings(
    units: tuple[Unit, ...], reading: UnitReading, policy: DetectorPolicy, lang: str
) -> list[tuple[Finding, Unit]]:
    """One finding per category whose most confident unit clears its threshold; the
    evidence is that unit, quoted from the opener."""
    findings: list[tuple[Finding, Unit]] = []
    for category in policy.categories:
        threshold = policy.thresholds[category].threshold
        best: tuple[float, Unit] | None = None
        for unit, probabilities in zip(units, reading.probabilities, strict=True):
            probability = probabilities.get(category, 0.0)
            if probability >= threshold and (best is None or probability > best[0]):
                best = (probability, unit)
        if best is None:
            continue
        probability, unit = best
        card = policy.cards[category]
        evidence = _clip(unit.text)
        findings.append(
            (
                Finding(
                rule=f"learned-{category.value.replace('_', '-')}",
                category=category,
                severity=card.severity,
                excerpt=evidence,
                message=card.message.get(lang) or next(iter(card.message.values())),
                principle=card.principle,
                    source="model",
                    evidence=evidence,
                    confidence=round(probability, 3),
                ),
                unit,
            )
        )
    return findings


def _clip(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= _MAX_EVIDENCE:
        return text
    return text[: _MAX_EVIDENCE - 1].rstrip() + "…"
