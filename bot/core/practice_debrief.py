"""What the rep reads about their practice: the coaching notes of each turn (listening,
one open question, selling after an objection) and the short debrief that ends a
session (scores by turn, what opened the buyer, one thing to think about next time).

The thing to think about is a question for the rep to reflect on, chosen from
`prompts/practice/<lang>.yaml`, never a line to send: the rep writes every line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from bot.core.buyers import BuyerSheet, Reaction
from bot.core.models import Language
from bot.core.practice import PRIORITY, PracticeSession, Status, TurnRecord, TurnSignals
from bot.core.practice_strings import PracticeStrings

MAX_QUOTED = 3


class TurnScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    turn: int
    score: int
    reaction: Reaction


class Debrief(BaseModel):
    model_config = ConfigDict(frozen=True)

    buyer: str
    lang: Language
    outcome: Status
    turns: list[TurnScore]
    facts_revealed: int
    facts_total: int
    opened_at: int | None  # the first turn the buyer engaged
    opened_by: str
    listened: int  # turns where the rep picked up the buyer's words
    focus: str  # which question to think about (a key of try_next)
    try_next: str


def _focus(turns: list[TurnRecord]) -> str:
    """The one thing to think about: pitching after an objection first (it ends
    conversations), then the problem the buyer met most often, then vague questions, then
    not listening; when all went well, how to go deeper."""
    if any(turn.pitched_after_objection for turn in turns):
        return "pitched_after_objection"
    counts = Counter(turn.answered for turn in turns if turn.answered is not None)
    if counts:
        most = max(counts.values())
        return next(category.value for category in PRIORITY if counts.get(category) == most)
    if any(turn.case == "vague" for turn in turns):
        return "vague"
    later = turns[1:]
    if len(later) >= 2 and not any(turn.reused for turn in later):
        return "not_listening"
    return "deeper"


def _quote(words: list[str]) -> str:
    return ", ".join(words[:MAX_QUOTED])


def _opened_by(
    turns: list[TurnRecord], opened: TurnRecord | None, strings: PracticeStrings, labels: Mapping[str, str]
) -> str:
    if not turns:
        return strings.text("debrief", "no_turns")
    if opened is not None:
        if opened.reused:
            return strings.text("debrief", "opened_listening", turn=opened.turn, about=_quote(opened.reused))
        return strings.text("debrief", "opened", turn=opened.turn, about=_quote(opened.topics))
    counts = Counter(turn.answered for turn in turns if turn.answered is not None)
    if not counts:
        return strings.text("debrief", "never_opened_vague")
    most = max(counts.values())
    category = next(c for c in PRIORITY if counts.get(c) == most)
    return strings.text("debrief", "never_opened", category=labels.get(category.value, category.value))


def build_debrief(
    session: PracticeSession, sheet: BuyerSheet, strings: PracticeStrings, labels: Mapping[str, str]
) -> Debrief:
    """`labels` names the categories in the session's language (the UI's `categories`)."""
    turns = session.turns
    opened = next((turn for turn in turns if turn.reaction == "engaged"), None)
    focus = _focus(turns)
    return Debrief(
        buyer=session.buyer,
        lang=session.lang,
        outcome=session.status,
        turns=[TurnScore(turn=t.turn, score=t.score, reaction=t.reaction) for t in turns],
        facts_revealed=session.facts_revealed,
        facts_total=len(sheet.facts),
        opened_at=opened.turn if opened is not None else None,
        opened_by=_opened_by(turns, opened, strings, labels),
        listened=sum(1 for turn in turns if turn.reused),
        focus=focus,
        try_next=strings.text("try_next", focus),
    )


def render_debrief(debrief: Debrief, strings: PracticeStrings) -> str:
    """The debrief as plain lines, for the terminal and the chat channels."""
    lines = [strings.text("debrief", "title"), ""]
    if debrief.turns:
        lines.append(strings.text("debrief", "turns"))
        for turn in debrief.turns:
            reaction = strings.text("reactions", turn.reaction)
            lines.append(
                "  " + strings.text("debrief", "turn", turn=turn.turn, score=turn.score, reaction=reaction)
            )
        lines.append("")
        lines.append(strings.text("debrief", debrief.outcome))
        lines.append(
            strings.text("debrief", "facts", revealed=debrief.facts_revealed, total=debrief.facts_total)
        )
    lines.append(debrief.opened_by)
    lines += ["", strings.text("debrief", "try_next"), f"  {debrief.try_next}"]
    return "\n".join(lines)


def coaching_notes(signals: TurnSignals, open_questions: int, strings: PracticeStrings) -> list[str]:
    """What matters after the opener, in words, for one turn: listening, one open
    question, and selling after an objection (only where the question arises)."""
    notes: list[str] = []
    if signals.listened is True:
        notes.append(strings.text("coaching", "listened", words=_quote(signals.reused)))
    elif signals.listened is False:
        notes.append(strings.text("coaching", "not_listened"))
    if signals.one_open_question:
        notes.append(strings.text("coaching", "one_question"))
    elif open_questions == 0:
        notes.append(strings.text("coaching", "no_open_question"))
    else:
        notes.append(strings.text("coaching", "several_questions"))
    if signals.stopped_pitching is not None:
        notes.append(
            strings.text("coaching", "stopped_pitching" if signals.stopped_pitching else "kept_pitching")
        )
    return notes
