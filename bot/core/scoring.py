"""The conversation score: 0-100, with every point explained.

A coach's score must be arguable: each line says what moved it and by how much, in the
rep's language. Weights are data (knowledge/scoring.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.core.analysis import OpenerAnalysis
from bot.core.errors import KnowledgeError
from bot.core.lexicon import Lexicon
from bot.core.models import SEVERITY_ORDER, Category, Finding, ScoreLine
from bot.core.ui import UiStrings
from bot.core.yaml_text import load_yaml


class LengthWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ideal: tuple[int, int]
    ideal_points: int
    ok: tuple[int, int]
    ok_points: int


class ReadabilityWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plain_points: int
    hard_points: int


class ScoreWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base: int
    penalty: dict[str, int]
    buyer_question: int
    generic_question: int
    context_reference: int
    length: LengthWeights
    readability: ReadabilityWeights
    caps: dict[Category, int] = {}


def load_score_weights(path: Path) -> ScoreWeights:
    try:
        raw: Any = load_yaml(path.read_text(encoding="utf-8"))
        return ScoreWeights.model_validate(raw)
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    except ValidationError as exc:
        raise KnowledgeError.from_validation(path, exc) from None
    except OSError as exc:
        raise KnowledgeError(path, "file", exc.strerror or str(exc)) from None


def score_opener(
    analysis: OpenerAnalysis,
    findings: list[Finding],
    lexicon: Lexicon,
    ui: UiStrings,
    weights: ScoreWeights,
) -> tuple[int, list[ScoreLine]]:
    lines = [ScoreLine(points=weights.base, reason=ui.text("score", "base"))]
    worst: dict[Category, Finding] = {}
    for finding in findings:
        current = worst.get(finding.category)
        if current is None or SEVERITY_ORDER[finding.severity] < SEVERITY_ORDER[current.severity]:
            worst[finding.category] = finding
    for category, finding in worst.items():
        lines.append(
            ScoreLine(
                points=-weights.penalty[finding.severity],
                reason=ui.text("score", "finding", category=ui.category(category)),
            )
        )
    if analysis.buyer_questions:
        lines.append(ScoreLine(points=weights.buyer_question, reason=ui.text("score", "open_question")))
    elif analysis.open_questions:
        lines.append(ScoreLine(points=weights.generic_question, reason=ui.text("score", "generic_question")))
    has_leftover = Category.TEMPLATE_LEFTOVER in worst
    if analysis.context_anchor and not has_leftover:
        lines.append(
            ScoreLine(
                points=weights.context_reference,
                reason=ui.text("score", "context", anchor=analysis.context_anchor),
            )
        )
    words = analysis.word_count
    low, high = weights.length.ideal
    ok_low, ok_high = weights.length.ok
    if low <= words <= high:
        lines.append(
            ScoreLine(
                points=weights.length.ideal_points, reason=ui.text("score", "length_ideal", words=words)
            )
        )
    elif ok_low <= words <= ok_high:
        lines.append(
            ScoreLine(points=weights.length.ok_points, reason=ui.text("score", "length_ok", words=words))
        )
    ease = analysis.reading_ease
    if ease is not None:
        if ease >= lexicon.readability.plain_above:
            lines.append(ScoreLine(points=weights.readability.plain_points, reason=ui.text("score", "plain")))
        elif ease < lexicon.readability.hard_below:
            lines.append(ScoreLine(points=weights.readability.hard_points, reason=ui.text("score", "hard")))
    total = max(0, min(100, sum(line.points for line in lines)))
    for category, cap in weights.caps.items():
        if category in worst and total > cap:
            lines.append(
                ScoreLine(
                    points=cap - total,
                    reason=ui.text("score", "capped", category=ui.category(category), cap=cap),
                )
            )
            total = cap
    return total, lines
