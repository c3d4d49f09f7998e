"""The embedded practice buyer: a deterministic dialogue driven by the coach card of each
message the rep writes.

Markets are conversations and an opener is only the first line of one, so the rep
practises the next lines against a buyer played from a character sheet
(`bot.core.buyers`). No language model: the card of the rep's message decides.

- A finding blocks: the buyer answers the worst one (the order of `PRIORITY`) the way the
  sheet says (a brochure request, silence, a polite no, an objection).
- A clean, open question about the buyer's world (a topic of the sheet, or words the buyer
  said) earns `engaged` and the next fact of the sheet, each deeper than the last; once
  every fact is out, the buyer proposes a next step and the practice is won.
- A clean open question about nothing in particular gets a guarded, `neutral` answer.
- Pitching right after an objection ends the conversation; so does running out of the
  buyer's patience (blocked turns).

Everything is a pure function of the session, the sheet, the card and the text: the
wording is drawn with a generator seeded by the session id, the turn and the case, so a
session replays identically, and a line already said is never drawn again. The session
is a pydantic model, serialisable to JSON for the store. The engine itself costs a
fraction of a millisecond (bench/practice_turn.py); the card it reads is the CPU work, so
channels compute it (and call this) in a worker thread, never on the event loop. The
buyer only ever answers: it never proposes a line to the rep.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.core.buyers import BuyerSheet, Reaction
from bot.core.errors import FournilError
from bot.core.models import Category, CoachCard, Finding, Language
from bot.core.practice_words import numbers, reused_words, topic_hits, without_stage_directions

# What a reader notices first, and what costs the most: the buyer reacts to that one.
PRIORITY: tuple[Category, ...] = (
    Category.TEMPLATE_LEFTOVER,
    Category.PRESSURE,
    Category.MEETING_ASK,
    Category.PITCH,
    Category.FAKE_PERSONALIZATION,
    Category.UNPROVEN_CLAIM,
    Category.JARGON,
    Category.SELF_FOCUS,
    Category.STACKED_QUESTIONS,
    Category.CLOSED_QUESTION,
    Category.WHY_QUESTION,
    Category.TOO_LONG,
    Category.NO_QUESTION,
)
# Selling instead of asking: after an objection, this is what ends the conversation.
PITCHING = frozenset({Category.PITCH, Category.MEETING_ASK, Category.UNPROVEN_CLAIM})
Status = Literal["open", "next_step", "left"]
# Which part of the sheet answered a turn.
Case = Literal["reaction", "objection", "fact", "vague", "next_step", "farewell"]
# How often a fact comes with a lead-in ("Good question, actually."): always would read
# like a tic, and lead-ins are never repeated within a session either.
LEAD_IN_SHARE = 0.6
_STATUS_AFTER: dict[str, Status] = {"farewell": "left", "next_step": "next_step"}


class PracticeOver(FournilError):
    """The buyer has already left, or proposed the next step: the session takes no more turns."""


class TurnRecord(BaseModel):
    """What one turn was, kept in the session for the debrief and the report. No text of
    the rep is kept: only the sheet's topics it named and the buyer's words it reused."""

    model_config = ConfigDict(frozen=True)

    turn: int
    score: int
    categories: list[Category]
    reaction: Reaction
    case: Case
    answered: Category | None = None  # the category the buyer reacted to
    lines: list[str]  # keys of the buyer's lines said this turn
    fact: int | None = None  # index of the fact revealed
    topics: list[str] = Field(default_factory=list)
    reused: list[str] = Field(default_factory=list)
    open_questions: int = 0
    pitched_after_objection: bool = False


class PracticeSession(BaseModel):
    """A practice conversation with one buyer; `model_dump_json()` is what the store keeps."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    buyer: str
    lang: Language
    status: Status = "open"
    facts_revealed: int = 0
    objections_raised: int = 0
    strikes: int = 0
    turns: list[TurnRecord] = Field(default_factory=list)

    @property
    def used(self) -> set[str]:
        return {key for turn in self.turns for key in turn.lines}

    @property
    def over(self) -> bool:
        return self.status != "open"


class TurnSignals(BaseModel):
    """What matters after the opener: did the rep listen, ask one open question, and stop
    selling once the buyer objected (None where the question does not arise)."""

    model_config = ConfigDict(frozen=True)

    listened: bool | None
    reused: list[str]
    one_open_question: bool
    stopped_pitching: bool | None


class BuyerTurn(BaseModel):
    model_config = ConfigDict(frozen=True)

    turn: int
    buyer: str
    reaction: Reaction
    ended: bool
    signals: TurnSignals
    session: PracticeSession


def start_session(sheet: BuyerSheet, session_id: str) -> PracticeSession:
    """A new session with `sheet`'s buyer; `session_id` seeds the wording (same id, same lines)."""
    return PracticeSession.model_validate({"id": session_id, "buyer": sheet.id, "lang": sheet.lang})


def buyer_lines(session: PracticeSession, sheet: BuyerSheet) -> list[str]:
    """What the buyer has said so far, in order."""
    return [sheet.line(key) for turn in session.turns for key in turn.lines]


def _last_reply(session: PracticeSession, sheet: BuyerSheet) -> str:
    if not session.turns:
        return ""
    return " ".join(sheet.line(key) for key in session.turns[-1].lines)


def blocking(findings: Iterable[Finding], heard: str) -> list[Category]:
    """The card's categories, except a figure the rep quotes back from the buyer: echoing
    "a third of new hires leave" is listening, not an unproven claim."""
    said = numbers(heard)
    categories: dict[Category, None] = {}
    for finding in findings:
        if finding.category == Category.UNPROVEN_CLAIM:
            quoted = numbers(finding.evidence or finding.excerpt)
            if quoted and quoted <= said:
                continue
        categories.setdefault(finding.category, None)
    return list(categories)


class _Draw:
    """Draws the buyer's lines for one turn: reproducible (seeded by session, turn and
    case) and never a line already said in the session."""

    def __init__(self, session: PracticeSession, sheet: BuyerSheet, turn: int) -> None:
        self._seed = f"{session.id}|{turn}"
        self._sheet = sheet
        self._used = session.used

    def chance(self, name: str) -> float:
        return random.Random(f"{self._seed}|{name}").random()

    def line(self, name: str) -> str | None:
        """An unused key of a case (`farewell`, `reactions.pitch`…); None once all are said."""
        if name.startswith("reactions."):
            count = len(self._sheet.reactions[Category(name.split(".")[1])].lines)
        else:
            count = len(getattr(self._sheet, name))
        fresh = [f"{name}.{index}" for index in range(count) if f"{name}.{index}" not in self._used]
        if not fresh:
            return None
        return random.Random(f"{self._seed}|{name}").choice(fresh)


class _Answer(BaseModel):
    """What the buyer does with one turn, before the patience check."""

    case: Case
    reaction: Reaction
    lines: list[str] = Field(default_factory=list)
    answered: Category | None = None
    fact: int | None = None
    strike: bool = False


def _blocked_answer(session: PracticeSession, sheet: BuyerSheet, draw: _Draw, answered: Category) -> _Answer:
    """A finding blocks: once the buyer has opened up, selling meets their next objection;
    otherwise the sheet's reaction to that category."""
    objections = session.objections_raised
    if answered in PITCHING and session.facts_revealed > 0 and objections < len(sheet.objections):
        return _Answer(
            case="objection",
            reaction="objection",
            lines=[f"objections.{objections}"],
            answered=answered,
            strike=True,
        )
    key = draw.line(f"reactions.{answered.value}")
    if key is None:  # the same mistake once more than the sheet has words for: they leave
        return _Answer(case="farewell", reaction="closed", answered=answered, strike=True)
    reaction = sheet.reactions[answered].reaction
    return _Answer(case="reaction", reaction=reaction, lines=[key], answered=answered, strike=True)


def _open_answer(session: PracticeSession, sheet: BuyerSheet, draw: _Draw, specific: bool) -> _Answer:
    """A clean open question: about their world, the next fact (or, once all are out, the
    next step); about nothing in particular, a guarded answer."""
    if not specific:
        key = draw.line("vague_question")
        if key is None:
            return _Answer(case="farewell", reaction="closed", strike=True)
        return _Answer(case="vague", reaction="neutral", lines=[key], strike=True)
    facts = session.facts_revealed
    if facts >= len(sheet.facts):
        return _Answer(case="next_step", reaction="engaged", lines=[draw.line("next_step") or "next_step.0"])
    lead = draw.line("open_question")
    lines = [lead] if lead is not None and draw.chance("with-lead") < LEAD_IN_SHARE else []
    return _Answer(case="fact", reaction="engaged", lines=[*lines, f"facts.{facts}"], fact=facts)


def take_turn(
    session: PracticeSession,
    sheet: BuyerSheet,
    card: CoachCard,
    text: str,
    common: Collection[str] = frozenset(),
) -> BuyerTurn:
    """The buyer's answer to the rep's message `text`, whose coach card is `card`.

    `common` holds the words that never show listening (from the practice strings).
    Raises `PracticeOver` when the session takes no more turns, ValueError when the
    sheet is not the session's buyer."""
    if session.over:
        raise PracticeOver(f"practice session {session.id} is over ({session.status})")
    if (sheet.id, sheet.lang) != (session.buyer, session.lang):
        raise ValueError(f"sheet {sheet.id}.{sheet.lang} is not the buyer of session {session.id}")
    turn = len(session.turns) + 1
    draw = _Draw(session, sheet, turn)
    heard = buyer_lines(session, sheet)
    last = _last_reply(session, sheet)
    previous = session.turns[-1] if session.turns else None
    categories = blocking(card.findings, " ".join(heard))
    reused = reused_words(text, heard, common)
    topics = topic_hits(text, sheet.topics)
    after_objection = previous is not None and previous.reaction == "objection"
    pitched = bool(set(categories) & PITCHING)
    signals = TurnSignals(
        listened=bool(reused_words(text, [last], common)) if without_stage_directions(last).strip() else None,
        reused=reused,
        one_open_question=card.open_questions == 1
        and not {Category.STACKED_QUESTIONS, Category.CLOSED_QUESTION} & set(categories),
        stopped_pitching=(not pitched) if after_objection else None,
    )
    # Nothing flagged yet nothing asked (a check of who answered the phone, say): the
    # buyer has nothing to answer.
    blocked = categories or ([Category.NO_QUESTION] if card.open_questions == 0 else [])
    if after_objection and pitched:
        answer = _Answer(case="farewell", reaction="closed", strike=True)
    elif blocked:
        answer = _blocked_answer(session, sheet, draw, next(c for c in PRIORITY if c in blocked))
    else:
        answer = _open_answer(session, sheet, draw, specific=bool(topics or reused))
    strikes = session.strikes + int(answer.strike)
    if answer.strike and strikes >= sheet.patience:
        answer = answer.model_copy(update={"case": "farewell", "reaction": "closed"})
    lines = answer.lines
    if answer.case == "farewell":
        lines = [draw.line("farewell") or "farewell.0"]
    status = _STATUS_AFTER.get(answer.case, "open")
    record = TurnRecord(
        turn=turn,
        score=card.score,
        categories=card.categories,
        reaction=answer.reaction,
        case=answer.case,
        answered=answer.answered,
        lines=lines,
        fact=answer.fact,
        topics=topics,
        reused=reused,
        open_questions=card.open_questions,
        pitched_after_objection=after_objection and pitched,
    )
    updated = session.model_copy(
        update={
            "status": status,
            "facts_revealed": session.facts_revealed + int(answer.fact is not None),
            "objections_raised": session.objections_raised + int(answer.case == "objection"),
            "strikes": strikes,
            "turns": [*session.turns, record],
        }
    )
    return BuyerTurn(
        turn=turn,
        buyer=" ".join(sheet.line(key) for key in lines),
        reaction=answer.reaction,
        ended=updated.over,
        signals=signals,
        session=updated,
    )
