"""The conversation, the same in every channel: one entry point, `CoachingFlow.handle`.

An opener gets a coach card; the next message in the same conversation is read as the
rep's rewrite and gets a comparison; commands (/help, /new, /lang, /forget, /coach,
/findings) steer; /practice hands the conversation to a simulated buyer until /stop
(bot.core.practice_flow). State lives in the store and is saved before the reply is
returned, so a restart between an opener and its rewrite, or mid-practice, loses nothing.

When the store is unavailable (its database server went away), the flow serves what needs
no state: an opener still gets its card, saying it is not kept (so a rewrite cannot be
compared with it), questions are answered, /help and /explain work; anything else gets
one line saying the team's data store is unavailable for a moment.

With an LLM (the `LlmAssist` port; FOURNIL_LLM), a card or an answer comes back as the
embedded coach made it, with a `follow_up` that lays the LLM's part on it: channels send the
first and edit it into the second, the command line waits for the second (`complete`).
The store and the comparisons only ever see embedded cards.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from bot.core.ask import MAX_PRINCIPLES, AskAnswer, compose_answer, decline_writing, refuse
from bot.core.coach import Coach, InvalidOpener, compare_cards
from bot.core.errors import IndexUnavailable, StoreUnavailable
from bot.core.input_check import clean_text
from bot.core.models import (
    Category,
    CoachCard,
    ConversationKey,
    IncomingMessage,
    LlmStatus,
    Reply,
    ReplyKind,
)
from bot.core.ports import (
    CardRecord,
    ConversationState,
    ConversationStore,
    DrillRun,
    LlmAssist,
    LlmText,
    QuestionIntent,
    QuestionReading,
)
from bot.core.render import render_card, render_comparison
from bot.core.ui import UiStrings

if TYPE_CHECKING:  # the team (drills, schedules) and redaction load where used: not for a one-shot card
    from bot.core.practice_flow import PracticeCoach
    from bot.core.team import TeamCoach

log = logging.getLogger(__name__)
_COMMAND = re.compile(r"^\s*/(\w+)(?:@\w+)?\b\s*(.*)$", re.DOTALL)
GHOSTWRITING_MAX_WORDS = 25
# How many of a rep's latest cards are searched for the one a conversation last showed.
SEEN_LOOKBACK = 50
_CATEGORIES = {category.value for category in Category}


@dataclass(frozen=True)
class CoachingFlow:
    coach: Coach
    store: ConversationStore
    team: TeamCoach | None = None  # drills, onboarding, reports; absent in one-shot commands
    practice: PracticeCoach | None = None  # /practice with a simulated buyer (bot.core.practice_flow)
    # An LLM beside the embedded coach (FOURNIL_LLM): cards and answers get a `follow_up`.
    llm: LlmAssist | None = None

    async def handle(self, message: IncomingMessage) -> Reply:
        try:
            return await self._handle(message)
        except StoreUnavailable:  # logged once per outage by the store
            return await self.without_store(message)

    async def without_store(self, message: IncomingMessage) -> Reply:
        """The reply when the store cannot be used: what needs no stored state still works."""
        command = _COMMAND.match(message.text or "")
        if command is not None:
            name, args = command.group(1).lower(), command.group(2)
            canonical, alias_language = self._canonical_command(name)
            lang = alias_language or _locale_language(message.locale, self.coach.languages)
            ui = self.coach.strings(lang or self.coach.default_language)
            if canonical == "help":
                return Reply(kind=ReplyKind.HELP, language=ui.lang, text=ui.text("flow", "help"))
            if canonical == "ask":
                return await self.ask_reply(args, None)
            if canonical == "explain":
                return self.explain(args.strip().split(" ")[0] if args.strip() else "", ui.lang)
            if canonical == "coach":
                return await self._card_not_kept(args, message.locale)
            if canonical is None:
                return Reply(kind=ReplyKind.NOTICE, language=ui.lang, text=ui.text("flow", "unknown_command"))
            return self._store_unavailable(ui)
        if message.reply_to is not None and message.in_group:
            # Maybe an answer to a drill, which is never coached in front of the team.
            lang = _locale_language(message.locale, self.coach.languages) or self.coach.default_language
            return self._store_unavailable(self.coach.strings(lang)).model_copy(update={"private": True})
        return await self._card_not_kept(message.text, message.locale)

    async def _card_not_kept(self, text: str, locale: str | None) -> Reply:
        early = await asyncio.to_thread(self._refusal_or_invalid, text, None, locale)
        if isinstance(early, Reply):
            return early
        lang = early
        greeting = self.coach.lexicons[lang].greeting.match(text)
        if not greeting and self.coach.strings(lang).is_method_question(text):
            return await self.ask_reply(text, lang)
        card = await asyncio.to_thread(self.coach.coach, text, lang)
        ui = self.coach.strings(card.language)
        body = self._with_notes(render_card(card, ui), ui, text)
        reply = Reply(
            kind=ReplyKind.NOTICE,  # a card with a notice: shown as text, without the rewrite button
            language=card.language,
            text=f"{ui.text('flow', 'card_not_kept')}\n\n{body}",
            card=card,
        )
        return self._with_llm(reply, text)

    @staticmethod
    def _store_unavailable(ui: UiStrings) -> Reply:
        return Reply(kind=ReplyKind.NOTICE, language=ui.lang, text=ui.text("flow", "store_unavailable"))

    async def _handle(self, message: IncomingMessage) -> Reply:
        key = message.key
        preference = await self.store.language_preference(key.channel, key.user_id)
        command = _COMMAND.match(message.text or "")
        if command:
            return await self._command(message, command.group(1).lower(), command.group(2), preference)
        if self.team is not None and message.reply_to is not None:
            run = await self.team.open_run_for(message)
            if run is not None:
                return await self._drill_answer(message, run, preference)
        state = await self.store.load_conversation(key) or ConversationState(key=key)
        if self.practice is not None and self.practice.active(state):
            turn = await self.practice.turn(self, message)
            if turn is not None:
                return turn
            state = ConversationState(key=key)  # the session is gone: coached as usual
        return await self._opener_or_rewrite(message.text, state, preference, message.locale)

    async def _drill_answer(self, message: IncomingMessage, run: DrillRun, preference: str | None) -> Reply:
        assert self.team is not None
        early = await asyncio.to_thread(self._refusal_or_invalid, message.text, preference, message.locale)
        if isinstance(early, Reply):
            return early.model_copy(update={"private": True})
        return await self.team.answer(run, message, early)

    def coach_text(self, text: str, lang: str | None = None) -> Reply:
        """A stateless card (CLI, one-off slash commands): refusal, invalid input or card."""
        text = clean_text(text)
        early = self._refusal_or_invalid(text, lang, None)
        if isinstance(early, Reply):
            return early
        card = self.coach.coach(text, early)
        return self._with_llm(self._card_reply(card, self.coach.strings(card.language), text), text)

    def ask(self, question: str, lang: str | None = None) -> tuple[Reply, AskAnswer | None]:
        """A question about the method, answered from the principles (docs/contracts.md `ask`)."""
        question = clean_text(question)
        try:
            lang = self.coach.resolve_language(question, lang)
        except InvalidOpener as invalid:
            ui = self.coach.strings(invalid.language)
            usage = invalid.problem.code in {"empty", "too_short"}
            text = ui.text("ask", "usage") if usage else str(invalid)
            return Reply(kind=ReplyKind.INVALID, language=ui.lang, text=text), None
        ui = self.coach.strings(lang)
        if self.coach.search is None:
            if self._asks_to_write(question):  # said even without the index
                return self._declined(None, ui)
            return Reply(kind=ReplyKind.NOTICE, language=ui.lang, text=ui.text("ask", "unavailable")), None
        reading = self.coach.search.read_question(question, ui.lang, limit=MAX_PRINCIPLES)
        if reading.intent == QuestionIntent.WRITE_REQUEST:
            return self._declined(reading, ui)
        if reading.intent == QuestionIntent.OFFTOPIC:
            answer = refuse(ui)
        else:
            answer = compose_answer(reading.hits, ui.lang, self.coach.principles, ui)
        return Reply(kind=ReplyKind.ANSWER, language=ui.lang, text=answer.answer), answer

    def _asks_to_write(self, text: str) -> bool:
        """A short message matching a ghost-writing pattern of any language
        (prompts/ui/<lang>.yaml `ghostwriting`): "write it for me", « rédige-le à ma place »."""
        return len(text.split()) <= GHOSTWRITING_MAX_WORDS and any(
            strings.ghostwriting.search(text.lower()) for strings in self.coach.ui.values()
        )

    def _write_request(self, text: str, lang: str) -> Reply | None:
        """The no-writing explanation when a message asks Fournil to write it. The patterns
        propose, the learned question reader decides when the index is there ("how do I fix
        it?" matches "fix it" but asks for advice); without the index the patterns decide."""
        if not self._asks_to_write(text):
            return None
        ui = self.coach.strings(lang)
        if self.coach.search is None:
            return self._declined(None, ui)[0]
        try:
            reading = self.coach.search.read_question(text, ui.lang, limit=MAX_PRINCIPLES)
        except IndexUnavailable:
            return self._declined(None, ui)[0]
        if reading.intent != QuestionIntent.WRITE_REQUEST:
            return None
        return self._declined(reading, ui)[0]

    def _declined(self, reading: QuestionReading | None, ui: UiStrings) -> tuple[Reply, AskAnswer]:
        """Why Fournil will not write the message, with the principle behind it: the one the
        request's topic calls for, or the refusal's own (knowledge/ask/policy.yaml); the
        explanation alone without the index."""
        principle = reading.writing if reading is not None else None
        score = reading.hits[0].score if reading is not None and reading.hits else 1.0
        answer = decline_writing(principle, self.coach.principles, ui, score)
        return Reply(kind=ReplyKind.REFUSAL, language=ui.lang, text=answer.answer), answer

    def explain(self, principle_id: str, lang: str) -> Reply:
        """A principle in full: title, key idea, body, sources (the card's "why?" button)."""
        ui = self.coach.strings(lang)
        text = self.coach.principles.describe(principle_id, ui.lang)
        if text is None:
            return Reply(kind=ReplyKind.NOTICE, language=ui.lang, text=ui.text("flow", "principle_unknown"))
        sources = "\n".join(f"- {source}" for source in text.sources)
        body = f"**{text.title}**\n\n_{text.summary}_\n\n{text.body}\n\n{sources}"
        return Reply(kind=ReplyKind.PRINCIPLE, language=ui.lang, text=body)

    async def _opener_or_rewrite(
        self, text: str, state: ConversationState, preference: str | None, locale: str | None
    ) -> Reply:
        # Language detection and the refusal patterns read the whole text: off the event loop.
        early = await asyncio.to_thread(self._refusal_or_invalid, text, preference, locale)
        if isinstance(early, Reply):
            return early
        lang = early
        greeting = self.coach.lexicons[lang].greeting.match(text)
        if not greeting and self.coach.strings(lang).is_method_question(text):
            return await self.ask_reply(text, preference or lang)
        key = state.key
        if self.team is not None:
            from bot.core.team import ONBOARDING_STAGE

            if state.stage.startswith(ONBOARDING_STAGE):
                return await self.team.onboarding_answer(state, text, lang)
        from bot.core.redact import redact

        clean = await asyncio.to_thread(redact, text)
        if state.stage == "awaiting_rewrite" and state.versions:
            before = await asyncio.to_thread(self.coach.coach, state.versions[-1], lang)
            card = await asyncio.to_thread(self.coach.coach, text, lang)
            comparison = compare_cards(before, card, await self._seen(key, lang))
            await self.store.save_conversation(
                state.model_copy(
                    update={"versions": [*state.versions, clean][-20:], "language": card.language}
                )
            )
            await self._record(key, card, is_rewrite=True)
            ui = self.coach.strings(card.language)
            reply = Reply(
                kind=ReplyKind.COMPARISON,
                language=card.language,
                text=self._with_notes(render_comparison(comparison, ui), ui, text),
                comparison=comparison,
                card=card,
            )
            return self._with_llm(reply, text)
        card = await asyncio.to_thread(self.coach.coach, text, lang)
        await self.store.save_conversation(
            ConversationState(key=key, stage="awaiting_rewrite", versions=[clean], language=card.language)
        )
        await self._record(key, card, is_rewrite=False)
        return self._with_llm(self._card_reply(card, self.coach.strings(card.language), text), text)

    async def _record(self, key: ConversationKey, card: CoachCard, is_rewrite: bool) -> None:
        await self.store.record_card(CardRecord.from_card(key, card, is_rewrite))

    async def _seen(self, key: ConversationKey, lang: str) -> tuple[int, list[Category]] | None:
        """The score and categories of the last card this conversation showed the rep. Only
        a redacted copy of that version is stored, and it can score a few points apart
        (a name becomes "[name]"): the comparison starts from the score the rep saw."""
        for record in await self.store.recent_cards(key.channel, key.user_id, SEEN_LOOKBACK):
            if record.key.conversation_id == key.conversation_id:
                if record.language != lang:
                    return None  # read in another language: its score is not comparable
                return record.score, [Category(c) for c in record.categories if c in _CATEGORIES]
        return None

    def _refusal_or_invalid(self, text: str, forced: str | None, locale: str | None) -> Reply | str:
        """Returns the language to coach in, or the reply that replaces the card."""
        try:
            lang = self.coach.resolve_language(text, forced)
        except InvalidOpener as invalid:
            reply_lang = forced or _locale_language(locale, self.coach.languages)
            reply_lang = reply_lang or invalid.language
            return Reply(
                kind=ReplyKind.INVALID,
                language=reply_lang,
                text=self.coach.invalid_message(invalid.problem, reply_lang),
            )
        return self._write_request(text, lang) or lang

    # --- the LLM's part (FOURNIL_LLM): after the embedded result, never instead of it -----

    def _with_llm(self, reply: Reply, opener: str) -> Reply:
        """The reply with the embedded card (what the store records, what a comparison is
        computed from: an LLM's output is not deterministic) and, with an LLM, a follow-up
        that lays the LLM's part onto its card (a comparison's new version): findings for
        categories the card lacks, a note, tailored stems; the score and the comparison's
        figures stay the embedded coach's."""
        llm, card = self.llm, reply.card
        if llm is None or card is None:
            return reply

        async def follow_up() -> Reply:
            try:
                enriched = await llm.enrich(card, opener)
            except Exception:  # the port never raises; a bug must not cost the rep the card
                log.exception("LLM enrichment failed")
                status = LlmStatus(status="fallback", model=llm.model, reason="error")
                enriched = card.model_copy(update={"llm": status})
            return self._with_card(reply, enriched)

        return reply.model_copy(update={"follow_up": follow_up})

    def _with_card(self, reply: Reply, card: CoachCard) -> Reply:
        """`reply` showing `card` instead of its own (the same framing around it)."""
        assert reply.card is not None
        ui = self.coach.strings(card.language)
        update: dict[str, object] = {"card": card, "llm": card.llm, "follow_up": None}
        if reply.comparison is not None:
            comparison = reply.comparison.model_copy(update={"after": card})
            before, after = render_comparison(reply.comparison, ui), render_comparison(comparison, ui)
            update["comparison"] = comparison
        else:
            before = render_card(reply.card, ui, reply.all_findings)
            after = render_card(card, ui, reply.all_findings)
        frame = reply.text[: -len(before)] if reply.text.endswith(before) else ""
        update["text"] = frame + after
        return reply.model_copy(update=update)

    async def ask_reply(self, question: str, lang: str | None = None) -> Reply:
        """`ask` in a conversation: the composed answer, off the event loop, and with an LLM
        a follow-up that gives the LLM's answer instead (`answer_with_llm`)."""
        reply, answer = await asyncio.to_thread(self.ask, question, lang)
        if self.llm is None or answer is None or answer.kind != QuestionIntent.ANSWER:
            return reply

        async def follow_up() -> Reply:
            return (await self.answer_with_llm(question, reply, answer))[0]

        return reply.model_copy(update={"follow_up": follow_up})

    async def answer_with_llm(
        self, question: str, reply: Reply, answer: AskAnswer | None
    ) -> tuple[Reply, AskAnswer | None]:
        """With an LLM, a question the principles answer (the off-topic and write-request
        gate ran before, without any call) is answered by the LLM from the principles the
        search retrieved, citing only them; when it is skipped the composed answer stands,
        with a line saying so."""
        llm = self.llm
        if llm is None or answer is None or answer.kind != QuestionIntent.ANSWER or not answer.principles:
            return reply, answer
        catalog = self.coach.principles
        found = [catalog.describe(p.id, answer.language) for p in answer.principles]
        try:
            result = await llm.answer_question(question, [t for t in found if t], answer.language)
        except Exception:  # the port never raises; a bug must not cost the rep the answer
            log.exception("LLM answer failed")
            result = LlmText(text=None, status=LlmStatus(status="fallback", model=llm.model, reason="error"))
        done: dict[str, object] = {"llm": result.status, "follow_up": None}
        if result.text is None:
            notice = f"\n\n_({result.notice})_" if result.notice else ""
            return reply.model_copy(update={**done, "text": reply.text + notice}), answer
        cited = [p for p in answer.principles if p.id in result.cited]
        ui = self.coach.strings(answer.language)
        sources = "\n".join(f"- **{p.title}** ({p.id})" for p in cited)
        text = f"{result.text}\n\n**{ui.text('ask', 'related')}**\n{sources}"
        answered = answer.model_copy(update={"answer": result.text, "principles": cited})
        return reply.model_copy(update={**done, "text": text}), answered

    def _card_reply(self, card: CoachCard, ui: UiStrings, original: str) -> Reply:
        return Reply(
            kind=ReplyKind.CARD,
            language=card.language,
            text=self._with_notes(render_card(card, ui), ui, original),
            card=card,
        )

    @staticmethod
    def _with_notes(text: str, ui: UiStrings, original: str) -> str:
        if ui.injection is not None and ui.injection.search(original.lower()):
            return f"{ui.text('flow', 'injection_note')}\n\n{text}"
        return text

    @cached_property
    def _commands(self) -> dict[str, tuple[str, str | None]]:
        return _command_table(self.coach)

    def _canonical_command(self, alias: str) -> tuple[str | None, str | None]:
        return self._commands.get(alias, (None, None))

    async def _command(self, message: IncomingMessage, name: str, args: str, preference: str | None) -> Reply:
        key = message.key
        command, alias_language = self._canonical_command(name)
        lang = preference or alias_language or _locale_language(message.locale, self.coach.languages)
        lang = lang or self.coach.default_language
        ui = self.coach.strings(lang)

        def notice(kind: ReplyKind, section: str, entry: str, **values: object) -> Reply:
            return Reply(kind=kind, language=ui.lang, text=ui.text(section, entry, **values))

        if command == "help":
            return notice(ReplyKind.HELP, "flow", "help")
        if command == "new":
            await self.store.save_conversation(ConversationState(key=key))
            return notice(ReplyKind.NOTICE, "flow", "new")
        if command == "forget":
            count = await self.store.forget_user(key.channel, key.user_id)
            return notice(ReplyKind.NOTICE, "flow", "forgotten", count=count)
        if command == "lang":
            choice = args.strip().lower()[:4]
            if choice == "auto":
                await self.store.set_language_preference(key.channel, key.user_id, None)
                return notice(ReplyKind.NOTICE, "flow", "language_auto")
            if choice in self.coach.lexicons:
                await self.store.set_language_preference(key.channel, key.user_id, choice)
                return Reply(
                    kind=ReplyKind.NOTICE,
                    language=choice,
                    text=self.coach.strings(choice).text("flow", "language_set"),
                )
            return notice(ReplyKind.NOTICE, "flow", "language_unknown")
        if command == "coach":
            await self.store.save_conversation(ConversationState(key=key))
            return await self._opener_or_rewrite(args, ConversationState(key=key), preference, message.locale)
        if command == "findings":
            state = await self.store.load_conversation(key)
            if state is None or not state.versions:
                return notice(ReplyKind.NOTICE, "flow", "findings_none")
            card = self.coach.coach(state.versions[-1], preference or state.language)
            card_ui = self.coach.strings(card.language)
            return Reply(
                kind=ReplyKind.CARD,
                language=card.language,
                text=render_card(card, card_ui, all_findings=True),
                card=card,
                all_findings=True,
            )
        if command == "ask":
            return await self.ask_reply(args, preference)
        if command == "rewrite":
            return notice(ReplyKind.NOTICE, "flow", "rewrite_prompt")
        if command == "explain":
            return self.explain(args.strip().split(" ")[0] if args.strip() else "", ui.lang)
        if self.practice is not None and command in {"practice", "stop"}:
            return await self.practice.command(self, message, command, args, ui)
        if self.team is not None and command is not None:
            team_reply = await self.team.command(message, command, args, ui)
            if team_reply is not None:
                return team_reply
        return notice(ReplyKind.NOTICE, "flow", "unknown_command")


async def complete(reply: Reply) -> Reply:
    """The reply with its LLM part, when it has one to wait for (what the command line
    prints: one result)."""
    return await reply.follow_up() if reply.follow_up is not None else reply


def _command_table(coach: Coach) -> dict[str, tuple[str, str | None]]:
    """Every alias of every language -> (command, the alias's language if only one uses it):
    `/aide` works for an English speaker too, and answers in French when nothing else says
    which language to use."""
    owners: dict[str, set[str]] = {}
    canonical: dict[str, str] = {}
    for lang, ui in coach.ui.items():
        for command, aliases in ui.data.commands.items():
            for alias in aliases:
                canonical.setdefault(alias, command)
                owners.setdefault(alias, set()).add(lang)
    return {
        alias: (command, next(iter(owners[alias])) if len(owners[alias]) == 1 else None)
        for alias, command in canonical.items()
    }


def _locale_language(locale: str | None, languages: list[str]) -> str | None:
    """A platform locale such as "fr-FR" or "en_GB" as one of our languages."""
    if not locale:
        return None
    code = locale.replace("_", "-").split("-")[0].lower()
    return code if code in languages else None
