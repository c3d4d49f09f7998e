"""`fournil eval`: the project's own quality figures on its labelled openers.

Per-category precision and recall, the AUC of strong openers scoring above weak ones,
the false-alarm rate on strong openers (any finding not in their labels) and the
language accuracy. Thresholds are the acceptance bar of the project.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.coach import Coach
from bot.core.errors import FournilError
from bot.core.models import Category

THRESHOLDS = {"auc": 0.95, "recall": 0.9, "false_alarm_rate": 0.10, "language_accuracy": 1.0}


class LabelledOpener(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    lang: str
    quality: str = Field(pattern="^(weak|strong)$")
    text: str
    expected: list[Category]


@dataclass
class CategoryFigures:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


@dataclass
class EvalReport:
    items: int
    per_category: dict[str, CategoryFigures]
    precision: float
    recall: float
    auc: float
    false_alarm_rate: float
    language_accuracy: float
    misses: list[str] = field(default_factory=list)

    def passed(self) -> dict[str, bool]:
        return {
            "auc": self.auc >= THRESHOLDS["auc"],
            "recall": self.recall >= THRESHOLDS["recall"],
            "false_alarm_rate": self.false_alarm_rate <= THRESHOLDS["false_alarm_rate"],
            "language_accuracy": self.language_accuracy >= THRESHOLDS["language_accuracy"],
        }


def load_labelled(path: Path) -> list[LabelledOpener]:
    items: list[LabelledOpener] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(LabelledOpener.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise FournilError(f"{path}:{number}: {str(exc).splitlines()[0]}") from None
    return items


def roc_auc(strong: list[int], weak: list[int]) -> float:
    """Probability that a strong opener scores above a weak one (ties count half)."""
    if not strong or not weak:
        return 0.0
    wins = sum((s > w) + 0.5 * (s == w) for s in strong for w in weak)
    return wins / (len(strong) * len(weak))


def evaluate(coach: Coach, items: list[LabelledOpener]) -> EvalReport:
    per_category: dict[str, CategoryFigures] = {c.value: CategoryFigures() for c in Category}
    strong_scores: list[int] = []
    weak_scores: list[int] = []
    false_alarms = 0
    language_right = 0
    misses: list[str] = []
    for item in items:
        card = coach.coach(item.text)
        language_right += card.language == item.lang
        got = {c.value for c in card.categories}
        expected = {c.value for c in item.expected}
        for category in got & expected:
            per_category[category].tp += 1
        for category in got - expected:
            per_category[category].fp += 1
        for category in expected - got:
            per_category[category].fn += 1
        if got != expected:
            misses.append(f"{item.id}: missing {sorted(expected - got)} extra {sorted(got - expected)}")
        if item.quality == "strong":
            strong_scores.append(card.score)
            false_alarms += bool(got - expected)
        else:
            weak_scores.append(card.score)
    totals = Counter[str]()
    for figures in per_category.values():
        totals.update({"tp": figures.tp, "fp": figures.fp, "fn": figures.fn})
    tp, fp, fn = totals["tp"], totals["fp"], totals["fn"]
    return EvalReport(
        items=len(items),
        per_category=per_category,
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=tp / (tp + fn) if tp + fn else 1.0,
        auc=roc_auc(strong_scores, weak_scores),
        false_alarm_rate=false_alarms / len(strong_scores) if strong_scores else 0.0,
        language_accuracy=language_right / len(items) if items else 0.0,
        misses=misses,
    )
