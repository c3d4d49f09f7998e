"""One practice turn from the rep's raw text: the coach card as every channel computes it
(refusal and invalid input included), then the buyer's answer to that card.

Kept apart from the engine so the engine stays a pure function of a card; this is the
piece a channel calls. Coaching a message is CPU work (language detection, the learned
detectors), so an async channel runs it with `asyncio.to_thread`, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Collection

from bot.core.buyers import BuyerSheet
from bot.core.flow import CoachingFlow
from bot.core.models import Reply, ReplyKind
from bot.core.practice import BuyerTurn, PracticeSession, take_turn


def practice_turn(
    flow: CoachingFlow,
    session: PracticeSession,
    sheet: BuyerSheet,
    text: str,
    common: Collection[str] = frozenset(),
) -> tuple[Reply, BuyerTurn | None]:
    """The card reply for `text`, coached in the session's language, and the buyer's turn;
    the turn is None when the text gets no card (invalid input, a request to write the
    message for the rep): the buyer never sees it and the session does not move."""
    reply = flow.coach_text(text, session.lang)
    if reply.kind != ReplyKind.CARD or reply.card is None:
        return reply, None
    return reply, take_turn(session, sheet, reply.card, text, common)
