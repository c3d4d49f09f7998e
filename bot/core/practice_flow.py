"""Practice in the chat channels, the same in every channel: `/practice [ID]` starts a
session with a simulated buyer in the rep's direct messages, in the rep's language; each
following message is a turn (the buyer's answer and the coaching of that message) until
the buyer ends the conversation or the rep sends `/stop`; then the debrief, and normal
coaching resumes.

`CoachingFlow` routes here: the two commands, and every message of a conversation whose
stage is `PRACTICE_STAGE` (as onboarding does, so a normal message costs no extra query).
The session lives in the store (`PracticeStore`), saved after every turn before the reply
goes out, so a restart mid-session loses nothing. Like a conversation, it keeps no whole
message of the rep: only the few words the engine noted (the buyer's topics the rep named,
the buyer's words the rep picked up), and only those that survive redaction of the
message (a name the rep quoted back is dropped).

Coaching a message is CPU work (language, rules, learned detectors): each turn runs in a
worker thread, never on the event loop. A message that gets no card (too short, another
language, a request to write it for the rep) gets the usual reply and the buyer never
sees it. In a group, practice is declined with a pointer to the direct messages.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from bot.core.buyers import BuyerLibrary, BuyerSheet
from bot.core.models import CoachCard, IncomingMessage, Reply, ReplyKind
from bot.core.ports import ConversationState, ConversationStore, PracticeRecord, PracticeStore
from bot.core.practice import BuyerTurn, PracticeSession, TurnRecord, start_session
from bot.core.practice_debrief import build_debrief, coaching_notes, render_debrief
from bot.core.practice_strings import PracticeStrings
from bot.core.practice_turn import practice_turn
from bot.core.practice_words import words
from bot.core.redact import redact
from bot.core.ui import UiStrings

if TYPE_CHECKING:
    from bot.core.flow import CoachingFlow

PRACTICE_STAGE = "practice"
# The flow's canonical commands handled here (their aliases: prompts/ui `commands`).
PRACTICE_COMMANDS = frozenset({"practice", "stop"})


class PracticeStorePort(ConversationStore, PracticeStore, Protocol):
    """What practice needs from the store: the conversation's stage and the sessions."""


def practice_ids(buyers: BuyerLibrary, lang: str) -> list[str]:
    """The drill ids and buyer ids `/practice ID` accepts in a language."""
    sheets = buyers.for_language(lang)
    return sorted({sheet.drill for sheet in sheets if sheet.drill} | {sheet.id for sheet in sheets})


def scrubbed(session: PracticeSession, clean: str) -> PracticeSession:
    """The session with its last turn keeping only the words still in `clean` (the rep's
    message after redaction): what the store may hold."""
    if not session.turns:
        return session
    present = set(words(clean))

    def kept(found: list[str]) -> list[str]:
        return [word for word in found if set(words(word)) <= present]

    last: TurnRecord = session.turns[-1]
    last = last.model_copy(update={"reused": kept(last.reused), "topics": kept(last.topics)})
    return session.model_copy(update={"turns": [*session.turns[:-1], last]})


@dataclass
class PracticeCoach:
    store: PracticeStorePort
    buyers: BuyerLibrary
    strings: Mapping[str, PracticeStrings]
    default_language: str = "en"
    rng: random.Random = field(default_factory=random.Random)

    def strings_for(self, lang: str) -> PracticeStrings:
        return (
            self.strings.get(lang)
            or self.strings.get(self.default_language)
            or next(iter(self.strings.values()))
        )

    @staticmethod
    def active(state: ConversationState) -> bool:
        """Whether this conversation is a practice in progress (its messages are turns)."""
        return state.stage == PRACTICE_STAGE

    async def command(
        self, flow: CoachingFlow, message: IncomingMessage, name: str, args: str, ui: UiStrings
    ) -> Reply:
        """`/practice [ID]` or `/stop` (canonical names)."""
        if name == "stop":
            return await self.stop(flow, message, ui)
        return await self.start(message, args, ui)

    # ---- start ------------------------------------------------------------------------

    async def start(self, message: IncomingMessage, args: str, ui: UiStrings) -> Reply:
        strings = self.strings_for(ui.lang)
        if message.in_group:
            return _notice(ui.lang, strings.text("chat", "private"))
        key = message.key
        current = await self.store.open_practice(key)
        if current is not None:
            state = await self.store.load_conversation(key)
            sheet = self.buyers.get(current.session.buyer, current.session.lang)
            if state is not None and self.active(state) and sheet is not None:
                running = self.strings_for(sheet.lang)
                text = running.text("chat", "already", role=sheet.role, company=sheet.company)
                return _notice(sheet.lang, text)
            # Left behind when the conversation moved on (/new, /coach): it ends here.
            await self.store.save_practice(current.model_copy(update={"ended_at": _now()}))
        name = args.split()[0].lower() if args.split() else None
        sheet = self.buyers.find(name, ui.lang) if name else self.buyers.choose(ui.lang, self.rng)
        if sheet is None:
            if name:
                ids = ", ".join(practice_ids(self.buyers, ui.lang))
                return _notice(ui.lang, strings.text("chat", "unknown", ids=ids))
            return _notice(ui.lang, strings.text("cli", "no_buyer", lang=ui.lang))
        session = start_session(sheet, uuid.uuid4().hex)
        await self.store.save_practice(PracticeRecord(key=key, session=session))
        await self.store.save_conversation(
            ConversationState(key=key, stage=PRACTICE_STAGE, language=sheet.lang)
        )
        return Reply(kind=ReplyKind.PRACTICE, language=sheet.lang, text=self._intro(sheet))

    def _intro(self, sheet: BuyerSheet) -> str:
        strings = self.strings_for(sheet.lang)
        channel = strings.text("channels", sheet.channel)
        return "\n".join(
            [
                f"**{strings.text('cli', 'title', role=sheet.role, company=sheet.company)}**",
                strings.text("cli", "channel", channel=channel),
                strings.text("cli", "situation", situation=sheet.situation),
                strings.text("cli", "cares", cares="; ".join(sheet.cares_about)),
                "",
                f"_{strings.text('chat', 'how')}_",
            ]
        )

    # ---- turns ------------------------------------------------------------------------

    async def turn(self, flow: CoachingFlow, message: IncomingMessage) -> Reply | None:
        """The buyer's answer to one message, coached; None when the session is gone
        (forgotten elsewhere, purged, its buyer removed): the conversation is set back to
        normal coaching and the caller coaches the message as usual."""
        key = message.key
        record = await self.store.open_practice(key)
        sheet = self.buyers.get(record.session.buyer, record.session.lang) if record else None
        if record is None or sheet is None or record.session.over:
            if record is not None:
                await self.store.save_practice(record.model_copy(update={"ended_at": _now()}))
            await self.store.save_conversation(ConversationState(key=key))
            return None
        strings = self.strings_for(record.session.lang)
        reply, turn, clean = await asyncio.to_thread(
            _play, flow, record.session, sheet, message.text, strings
        )
        if turn is None or reply.card is None:
            return reply  # no card: the buyer never sees it, the session does not move
        session = scrubbed(turn.session, clean)
        ended_at = _now() if turn.ended else None
        await self.store.save_practice(record.model_copy(update={"session": session, "ended_at": ended_at}))
        lines = self._turn_lines(flow, turn, reply.card, strings)
        if turn.ended:
            await self.store.save_conversation(ConversationState(key=key))
            outcome = "next_step" if session.status == "next_step" else "left"
            lines += ["", f"**{strings.text('cli', outcome)}**", "", *self._closing(flow, session, sheet)]
        return Reply(kind=ReplyKind.PRACTICE, language=session.lang, text="\n".join(lines), card=reply.card)

    def _turn_lines(
        self, flow: CoachingFlow, turn: BuyerTurn, card: CoachCard, strings: PracticeStrings
    ) -> list[str]:
        reaction = strings.text("reactions", turn.reaction)
        ui = flow.coach.strings(card.language)
        if card.categories:
            names = ", ".join(ui.category(category) for category in card.categories)
            scored = strings.text("cli", "findings", score=card.score, categories=names)
        else:
            scored = strings.text("cli", "no_findings", score=card.score)
        notes = coaching_notes(turn.signals, card.open_questions, strings)
        return [
            strings.text("chat", "turn", buyer=strings.text("cli", "buyer"), reaction=reaction),
            f"> {turn.buyer}",
            "",
            f"_{scored}_",
            *(f"- {note}" for note in notes),
        ]

    def _closing(self, flow: CoachingFlow, session: PracticeSession, sheet: BuyerSheet) -> list[str]:
        """The debrief, then the way back to normal coaching."""
        strings = self.strings_for(session.lang)
        labels = flow.coach.strings(session.lang).data.categories
        debrief = render_debrief(build_debrief(session, sheet, strings, labels), strings)
        title, _, rest = debrief.partition("\n")
        return [f"**{title}**", rest.strip("\n"), "", strings.text("chat", "after")]

    # ---- stop -------------------------------------------------------------------------

    async def stop(self, flow: CoachingFlow, message: IncomingMessage, ui: UiStrings) -> Reply:
        """Ends the practice in progress with its debrief; says so when there is none."""
        key = message.key
        record = await self.store.open_practice(key)
        state = await self.store.load_conversation(key)
        if state is not None and self.active(state):
            await self.store.save_conversation(ConversationState(key=key))
        sheet = self.buyers.get(record.session.buyer, record.session.lang) if record else None
        if record is None or sheet is None:
            if record is not None:
                await self.store.save_practice(record.model_copy(update={"ended_at": _now()}))
            return _notice(ui.lang, self.strings_for(ui.lang).text("chat", "none"))
        await self.store.save_practice(record.model_copy(update={"ended_at": _now()}))
        session = record.session
        return Reply(
            kind=ReplyKind.PRACTICE,
            language=session.lang,
            text="\n".join(self._closing(flow, session, sheet)),
        )


def _play(
    flow: CoachingFlow, session: PracticeSession, sheet: BuyerSheet, text: str, strings: PracticeStrings
) -> tuple[Reply, BuyerTurn | None, str]:
    """One turn and the redacted message, in a worker thread (both are CPU work)."""
    reply, turn = practice_turn(flow, session, sheet, text, strings.common)
    return reply, turn, redact(text) if turn is not None else ""


def _notice(lang: str, text: str) -> Reply:
    return Reply(kind=ReplyKind.NOTICE, language=lang, text=text)


def _now() -> datetime:
    return datetime.now(UTC)
