"""What the LLM adds to a coach card, and how it is laid onto the embedded card.

Kept apart from the card itself so the embedded card stays exactly what it was (its score,
its findings, its order): the LLM adds findings for categories the card lacks, a note and
tailored stems, and a channel may send the embedded card first and this after.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bot.core.coach import MAX_QUESTIONS
from bot.core.models import CoachCard, Finding, PrincipleRef
from bot.core.ports import PrincipleCatalog
from bot.llm.prompts import Part, Reason
from bot.llm.second_opinion import merge_findings


class Enrichment(BaseModel):
    """The LLM's part of a card, every piece of it past the guardrails. `skipped` names
    the parts that were not (the other part may still have been used)."""

    model_config = ConfigDict(frozen=True)
    findings: list[Finding] = Field(default_factory=list)  # source "llm"
    note: str | None = None
    questions: list[str] = Field(default_factory=list)  # stems tailored to this opener
    skipped: dict[Part, Reason] = Field(default_factory=dict)


def apply_enrichment(card: CoachCard, enrichment: Enrichment, catalog: PrincipleCatalog) -> CoachCard:
    """The card with the LLM's findings merged after its own, the tailored stems before the
    generic ones (still MAX_QUESTIONS in all), and the principles the new findings cite.
    The score is the embedded coach's: an LLM opinion must not move a number that the
    before/after comparison and the team report read."""
    findings = merge_findings(card.findings, enrichment.findings)
    questions = list(dict.fromkeys([*enrichment.questions, *card.questions]))[:MAX_QUESTIONS]
    have = {ref.id for ref in card.principles}
    added: list[PrincipleRef] = []
    for finding in findings[len(card.findings) :]:
        ref = catalog.ref(finding.principle, card.language)
        if ref is not None and ref.id not in have:
            added.append(ref)
            have.add(ref.id)
    cited = [ref for ref in card.principles if ref.id not in card.related]
    related = [ref for ref in card.principles if ref.id in card.related]
    return card.model_copy(
        update={"findings": findings, "questions": questions, "principles": cited + added + related}
    )
