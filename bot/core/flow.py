"""The conversation, the same in every channel: one entry point, `CoachingFlow.handle`.

An opener gets a coach card; the next message in the same conversation is read as the
rep's rewrite and gets a comparison; commands (/help, /new, /lang, /forget, /coach,
/findings) steer. State lives in the store and is saved before the reply is returned,
so a restart between an opener and its rewrite loses nothing.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from functools import cached_property

from bot.core.ask import MAX_PRINCIPLES, AskAnswer, compose_answer
from bot.core.coach import Coach, InvalidOpener
from bot.core.input_check import clean_text
from bot.core.models import CoachCard, ConversationKey, IncomingMessage, Reply, ReplyKind
from bot.core.ports import CardRecord, ConversationState, ConversationStore, DrillRun
from bot.core.redact import redact
from bot.core.render import render_card, render_comparison
from bot.core.team import ONBOARDING_STAGE, TeamCoach
from bot.core.ui import UiStrings

_COMMAND = re.compile(r"^\s*/(\w+)(?:@\w+)?\b\s*(.*)$", re.DOTALL)
GHOSTWRITING_MAX_WORDS = 25


@dataclass(frozen=True)
class CoachingFlow:
    coach: Coach
    store: ConversationStore
    team: TeamCoach | None = None  # drills, onboarding, reports; absent in one-shot commands

    async def handle(self, message: IncomingMessage) -> Reply:
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
        return self._card_reply(card, self.coach.strings(card.language), text)

    def ask(self, question: str, lang: str | None = None) -> tuple[Reply, AskAnswer | None]:
        """A question about the method, answered from the principles (DESIGN.md §3 `ask`)."""
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
            return Reply(kind=ReplyKind.NOTICE, language=ui.lang, text=ui.text("ask", "unavailable")), None
        hits = self.coach.search.search(question, ui.lang, limit=MAX_PRINCIPLES)
        answer = compose_answer(hits, ui.lang, self.coach.principles, ui)
        return Reply(kind=ReplyKind.ANSWER, language=ui.lang, text=answer.answer), answer

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
            return (await asyncio.to_thread(self.ask, text, preference or lang))[0]
        key = state.key
        if self.team is not None and state.stage.startswith(ONBOARDING_STAGE):
            return await self.team.onboarding_answer(state, text, lang)
        clean = await asyncio.to_thread(redact, text)
        if state.stage == "awaiting_rewrite" and state.versions:
            comparison = await asyncio.to_thread(self.coach.compare, state.versions[-1], text, lang)
            card = comparison.after
            await self.store.save_conversation(
                state.model_copy(
                    update={"versions": [*state.versions, clean][-20:], "language": card.language}
                )
            )
            await self._record(key, card, is_rewrite=True)
            ui = self.coach.strings(card.language)
            return Reply(
                kind=ReplyKind.COMPARISON,
                language=card.language,
                text=self._with_notes(render_comparison(comparison, ui), ui, text),
                comparison=comparison,
                card=card,
            )
        card = await asyncio.to_thread(self.coach.coach, text, lang)
        await self.store.save_conversation(
            ConversationState(key=key, stage="awaiting_rewrite", versions=[clean], language=card.language)
        )
        await self._record(key, card, is_rewrite=False)
        return self._card_reply(card, self.coach.strings(card.language), text)

    async def _record(self, key: ConversationKey, card: CoachCard, is_rewrite: bool) -> None:
        await self.store.record_card(CardRecord.from_card(key, card, is_rewrite))

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
        ui = self.coach.strings(lang)
        words = len(text.split())
        if words <= GHOSTWRITING_MAX_WORDS and any(
            strings.ghostwriting.search(text.lower()) for strings in self.coach.ui.values()
        ):
            return Reply(kind=ReplyKind.REFUSAL, language=ui.lang, text=ui.text("flow", "refusal"))
        return lang

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
            return (await asyncio.to_thread(self.ask, args, preference))[0]
        if command == "rewrite":
            return notice(ReplyKind.NOTICE, "flow", "rewrite_prompt")
        if command == "explain":
            return self.explain(args.strip().split(" ")[0] if args.strip() else "", ui.lang)
        if self.team is not None and command is not None:
            team_reply = await self.team.command(message, command, args, ui)
            if team_reply is not None:
                return team_reply
        return notice(ReplyKind.NOTICE, "flow", "unknown_command")


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
