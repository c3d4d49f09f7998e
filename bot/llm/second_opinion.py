"""The LLM as a second reader of the opener: findings it sees that the rules did not.

The model only names a category and quotes the opener; everything a rep reads about the
finding (its message, its principle, its severity) comes from the same data as a learned
detector's finding (knowledge/detectors/categories.yaml), so an LLM finding says nothing the
project has not written and reviewed. Only the categories of judgement are offered (those
with a card there); the counted ones (too long, no question, stacked questions, template
leftovers) are counted exactly by rules, and a model's opinion adds nothing to a count.
A finding whose quote is not the opener's own words is dropped: it would rest on nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.core.detectors import CategoryCard
from bot.core.models import SEVERITY_ORDER, Category, CoachCard, Finding
from bot.llm.guardrails import known_category, verbatim_span
from bot.llm.outcome import Discarded
from bot.llm.prompts import LlmPrompts, Part

NAME: Final[Part] = "second_opinion"
RULE = "llm-second-opinion"
MAX_FINDINGS = 3


class _RawFinding(BaseModel):
    model_config = ConfigDict(extra="ignore")
    category: str
    evidence: str


class _RawOpinion(BaseModel):
    model_config = ConfigDict(extra="ignore")
    findings: list[_RawFinding]


def schema(prompts: LlmPrompts, allowed: list[Category]) -> dict[str, Any]:
    return {
        "title": NAME,
        "description": prompts.task(NAME),
        "type": "object",
        "properties": {
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "category": {"type": "string", "enum": [str(c) for c in allowed]},
                        "evidence": {"type": "string"},
                    },
                    "required": ["category", "evidence"],
                },
            }
        },
        "required": ["findings"],
    }


def messages(prompts: LlmPrompts, opener: str, card: CoachCard, allowed: list[Category]) -> tuple[str, str]:
    """The system prompt and the user message; the (redacted) opener is a JSON string
    field of the user message, data and never instructions."""
    found = ", ".join(str(c) for c in card.categories) or "-"
    system = prompts.system(NAME, categories=", ".join(str(c) for c in allowed), already_found=found)
    user = json.dumps({"language": card.language, "opener": opener}, ensure_ascii=False)
    return system, user


def read_findings(
    data: dict[str, Any], opener: str, lang: str, cards: Mapping[Category, CategoryCard]
) -> list[Finding]:
    """The findings that pass: a category the model may use, and a quote found in the
    opener (kept as the opener's own words). Malformed data raises Discarded("malformed");
    findings given but none kept raise Discarded("nothing_kept")."""
    try:
        opinion = _RawOpinion.model_validate(data)
    except ValidationError:
        raise Discarded("malformed") from None
    kept: list[Finding] = []
    for raw in opinion.findings:
        category = known_category(raw.category, cards)
        evidence = verbatim_span(raw.evidence, opener)
        if category is None or evidence is None or category in {f.category for f in kept}:
            continue
        card = cards[category]
        kept.append(
            Finding(
                rule=RULE,
                category=category,
                severity=card.severity,
                excerpt=evidence,
                message=card.message.get(lang) or next(iter(card.message.values())),
                principle=card.principle,
                source="llm",
                evidence=evidence,
            )
        )
    if opinion.findings and not kept:
        raise Discarded("nothing_kept")
    return sorted(kept, key=lambda f: SEVERITY_ORDER[f.severity])[:MAX_FINDINGS]


def merge_findings(embedded: list[Finding], llm: list[Finding]) -> list[Finding]:
    """The card's findings, then the LLM's for categories the card does not already have.
    The embedded card is authoritative for its own findings: an LLM finding never replaces,
    reorders or duplicates one."""
    seen = {finding.category for finding in embedded}
    merged = list(embedded)
    for finding in llm:
        if finding.category not in seen:
            merged.append(finding)
            seen.add(finding.category)
    return merged
