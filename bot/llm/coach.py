"""`LlmCoach`: the one object the flow, the command line and the channels talk to.

It redacts before every call, runs the calls of a card side by side (the second opinion and
the coaching note), passes every output through the guardrails, counts what happened, and
always returns: the embedded card is never held hostage by a model, a network or a bill.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from bot.core.coach import Coach
from bot.core.detectors import CategoryCard, load_detector_policy
from bot.core.language import LanguageDetector
from bot.core.lexicon import Lexicon
from bot.core.models import Category, CoachCard, Finding
from bot.core.ports import LlmText, PrincipleCatalog, PrincipleText
from bot.core.redact import redact
from bot.llm import ask_answer, coaching_note, second_opinion
from bot.llm.ask_answer import LlmAnswer
from bot.llm.client import LlmCallError, LlmClient
from bot.llm.coaching_note import CoachingNote
from bot.llm.enrichment import Enrichment, apply_enrichment
from bot.llm.guardrails import MessageShape
from bot.llm.metrics import LlmMetrics
from bot.llm.outcome import Discarded, LlmOutcome, LlmStatus
from bot.llm.prompts import LlmPrompts, Part, Reason, load_llm_prompts
from bot.llm.second_opinion import merge_findings
from bot.settings import Settings

log = logging.getLogger("fournil.llm")
T = TypeVar("T")


class LlmCoach:
    def __init__(
        self,
        client: LlmClient,
        prompts: Mapping[str, LlmPrompts],
        lexicons: Mapping[str, Lexicon],
        detector: LanguageDetector,
        cards: Mapping[Category, CategoryCard],
        catalog: PrincipleCatalog,
        metrics: LlmMetrics | None = None,
    ) -> None:
        self.client = client
        self.prompts = prompts
        self.lexicons = lexicons
        self.detector = detector
        self.cards = cards
        self.catalog = catalog
        self.metrics = metrics or LlmMetrics()
        self.shape = MessageShape.from_lexicons(lexicons)

    @classmethod
    def from_settings(
        cls, settings: Settings, coach: Coach, metrics: LlmMetrics | None = None
    ) -> LlmCoach | None:
        """None when FOURNIL_LLM is unset; LlmSetupError (one line, naming the setting or
        the extra to install) when it is set but cannot work. The embedded coach lends its
        lexicons, language detector and principle catalog: one reading of the world."""
        client = LlmClient.from_settings(settings)
        if client is None:
            return None
        languages = set(coach.lexicons)
        return cls(
            client=client,
            prompts=load_llm_prompts(settings.prompts_dir / "llm"),
            lexicons=coach.lexicons,
            detector=coach.detector,
            cards=load_detector_policy(settings.knowledge_dir / "detectors", languages).cards,
            catalog=coach.principles,
            metrics=metrics,
        )

    @property
    def model(self) -> str:
        return self.client.config.label

    def _prompts(self, lang: str) -> LlmPrompts:
        return self.prompts.get(lang) or next(iter(self.prompts.values()))

    async def enrich_card(self, card: CoachCard, opener: str) -> LlmOutcome[Enrichment]:
        """The LLM's part of `card` (use `apply_enrichment` to lay it on), or None with
        the reason. `opener` is the text the card was made from; it is redacted here,
        whatever the caller did."""
        prompts = self._prompts(card.language)
        text = redact(opener)
        allowed = [category for category in Category if category in self.cards]
        system, user = second_opinion.messages(prompts, text, card, allowed)
        opinion = self._run(
            "second_opinion",
            second_opinion.schema(prompts, allowed),
            system,
            user,
            lambda data: self._kept(second_opinion.read_findings(data, text, card.language, self.cards)),
        )
        system, user = coaching_note.messages(prompts, text, card)
        note = self._run(
            "coaching_note",
            coaching_note.schema(prompts),
            system,
            user,
            lambda data: self._note(data, card.language),
        )
        (findings, opinion_reason), (coaching, note_reason) = await asyncio.gather(opinion, note)
        skipped: dict[Part, Reason] = {}
        if opinion_reason is not None:
            skipped["second_opinion"] = opinion_reason
        if note_reason is not None:
            skipped["coaching_note"] = note_reason
        if findings is None and coaching is None:
            reason = opinion_reason or note_reason or "error"
            return self._fallback(prompts, reason)
        enrichment = Enrichment(
            # Only what the card lacks: a channel may show this part after the card.
            findings=merge_findings(card.findings, findings or [])[len(card.findings) :],
            note=coaching.note if coaching else None,
            questions=coaching.questions if coaching else [],
            skipped=skipped,
        )
        return self._used(prompts, enrichment, skipped)

    async def answer(
        self, question: str, principles: Sequence[PrincipleText], lang: str
    ) -> LlmOutcome[LlmAnswer]:
        """A short answer to `question` from `principles` (those the search retrieved, best
        first), citing only them; None with the reason otherwise. With no principle there is
        nothing to ground an answer on: no call, and the embedded refusal stands."""
        prompts = self._prompts(lang)
        if not principles:
            return LlmOutcome(None, LlmStatus(status="fallback", model=self.model))
        ids = [p.id for p in principles]
        system, user = ask_answer.messages(prompts, redact(question), principles)
        answer, reason = await self._run(
            "ask",
            ask_answer.schema(prompts, ids),
            system,
            user,
            lambda data: ask_answer.read_answer(data, lang, ids, self.shape, self.detector, self.lexicons),
        )
        if answer is None:
            return self._fallback(prompts, reason or "error")
        return self._used(prompts, answer, {})

    # --- the core's port (bot.core.ports.LlmAssist): what the conversation flow calls ---

    async def enrich(self, card: CoachCard, opener: str) -> CoachCard:
        """`enrich_card` then `apply_enrichment`: the card the rep sees, with `llm`, `note`
        and `notice` set (the embedded card itself, with the reason, on fallback)."""
        outcome = await self.enrich_card(card, opener)
        update: dict[str, Any] = {"llm": outcome.status, "notice": outcome.notice}
        if outcome.value is None:
            return card.model_copy(update=update)
        enriched = apply_enrichment(card, outcome.value, self.catalog)
        return enriched.model_copy(update={**update, "note": outcome.value.note})

    async def answer_question(self, question: str, principles: Sequence[PrincipleText], lang: str) -> LlmText:
        outcome = await self.answer(question, principles, lang)
        value = outcome.value
        return LlmText(
            text=value.text if value else None,
            cited=value.cited if value else [],
            status=outcome.status,
            notice=outcome.notice,
        )

    def _note(self, data: dict[str, Any], lang: str) -> CoachingNote:
        return coaching_note.read_note(data, lang, self.shape, self.detector, self.lexicons)

    def _kept(self, findings: list[Finding]) -> list[Finding]:
        """Findings citing the kept principle id (categories.yaml may name an alias)."""
        kept = []
        for finding in findings:
            resolved = self.catalog.resolve(finding.principle)
            kept.append(
                finding
                if resolved in {None, finding.principle}
                else finding.model_copy(update={"principle": resolved})
            )
        return kept

    async def _run(
        self, part: Part, schema: dict[str, Any], system: str, user: str, read: Callable[[dict[str, Any]], T]
    ) -> tuple[T | None, Reason | None]:
        """One call and its guardrails: the value, or None and why. Never raises (but
        cancellation, which belongs to the caller)."""
        try:
            result = await self.client.structured(schema, system, user)
        except LlmCallError as exc:
            self.metrics.record(part, exc.reason, exc.seconds, *exc.tokens)
            log.warning("LLM %s skipped: %s %s", part, exc.reason, exc.detail)
            return None, exc.reason
        except Exception as exc:  # a bug of ours must not cost the rep the embedded card
            self.metrics.record(part, "error", 0.0)
            log.exception("LLM %s failed: %s", part, type(exc).__name__)
            return None, "error"
        tokens = (result.input_tokens, result.output_tokens)
        try:
            value = read(result.data)
        except Discarded as exc:
            self.metrics.record(part, exc.reason, result.seconds, *tokens)
            log.info("LLM %s discarded by the guardrails: %s", part, exc.reason)
            return None, exc.reason
        except Exception as exc:
            self.metrics.record(part, "error", result.seconds, *tokens)
            log.exception("LLM %s output could not be read: %s", part, type(exc).__name__)
            return None, "error"
        self.metrics.record(part, "used", result.seconds, *tokens)
        return value, None

    def _fallback(self, prompts: LlmPrompts, reason: Reason) -> LlmOutcome[Any]:
        return LlmOutcome(
            None,
            LlmStatus(status="fallback", model=self.model, reason=reason),
            prompts.notice(reason, self.client.config.timeout),
        )

    def _used(self, prompts: LlmPrompts, value: T, skipped: Mapping[Part, Reason]) -> LlmOutcome[T]:
        first = next(iter(skipped.items()), None)
        notice = prompts.notice(first[1], self.client.config.timeout, first[0]) if first else None
        return LlmOutcome(
            value, LlmStatus(status="used", model=self.model, reason=first[1] if first else None), notice
        )


__all__ = ["CoachingNote", "Enrichment", "LlmAnswer", "LlmCoach"]
