"""The typed data the coaching core passes around and hands to every channel.

The field names of `CoachCard`, `Finding` and `Comparison` follow the JSON contract of
docs/contracts.md, so `model_dump()` is the `--json` output and channels never reshape it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.core.input_check import clean_text

Language = Literal["fr", "en"]
Severity = Literal["high", "medium", "low"]
# Where a finding comes from: a rule of knowledge/rules/, a learned sentence detector
# (knowledge/detectors/), or an LLM's second opinion.
FindingSource = Literal["rule", "model", "llm"]
SEVERITY_ORDER: dict[str, int] = {"high": 0, "medium": 1, "low": 2}


class Category(StrEnum):
    """The fixed finding vocabulary of docs/contracts.md; rules are finer and map to one."""

    PITCH = "pitch"
    SELF_FOCUS = "self_focus"
    MEETING_ASK = "meeting_ask"
    CLOSED_QUESTION = "closed_question"
    WHY_QUESTION = "why_question"  # "why did you…?": asks the buyer to defend a choice
    NO_QUESTION = "no_question"
    STACKED_QUESTIONS = "stacked_questions"
    PRESSURE = "pressure"
    JARGON = "jargon"
    UNPROVEN_CLAIM = "unproven_claim"
    FAKE_PERSONALIZATION = "fake_personalization"
    TOO_LONG = "too_long"
    TEMPLATE_LEFTOVER = "template_leftover"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Finding(_Frozen):
    rule: str
    category: Category
    severity: Severity
    excerpt: str
    message: str
    principle: str
    source: FindingSource = "rule"
    # What the finding rests on, quoted from the opener: the words a rule matched, or the
    # sentence a learned detector flagged (with its probability in `confidence`).
    evidence: str = ""
    confidence: float | None = None


# Why an LLM's output was not used (docs/contracts.md `llm.reason`).
LlmReason = Literal[
    "timeout",
    "busy",
    "rate_limited",
    "http_error",
    "unreachable",
    "malformed",
    "message_like",
    "wrong_language",
    "not_socratic",
    "unknown_citation",
    "nothing_kept",
    "error",
]


class LlmStatus(_Frozen):
    """docs/contracts.md `llm`: `used` (the LLM's part is on the card or the answer, though a
    piece of it may have been skipped: `reason` then says why), `off` (no LLM configured,
    `--no-llm`, or this card was not sent to it), `fallback` (the embedded result alone,
    `reason` says why). `model` is FOURNIL_LLM (`provider:model`)."""

    status: Literal["used", "off", "fallback"] = "off"
    model: str | None = None
    reason: LlmReason | None = None

    @classmethod
    def off(cls) -> LlmStatus:
        return cls(status="off")


class PrincipleRef(_Frozen):
    id: str
    title: str


class ScoreLine(_Frozen):
    """One reason the score moved: points (+/-) and why, in the card's language."""

    points: int
    reason: str


class CoachCard(_Frozen):
    language: Language
    score: int = Field(ge=0, le=100)
    findings: list[Finding]
    questions: list[str]
    principles: list[PrincipleRef]
    llm: LlmStatus = Field(default_factory=LlmStatus)
    note: str | None = None  # the LLM's coaching note: a question to the rep about their buyer
    # What the rep reads when the LLM's part (or a piece of it) was skipped; not in the JSON,
    # whose `llm.reason` says it as a code.
    notice: str | None = Field(default=None, exclude=True)
    explanation: list[ScoreLine] = Field(default_factory=list, exclude=True)
    buying_group_nudge: str | None = Field(default=None, exclude=True)
    related: list[str] = Field(default_factory=list, exclude=True)  # ids found by meaning
    word_count: int = Field(default=0, exclude=True)
    open_questions: int = Field(default=0, exclude=True)  # open questions the opener asks

    @property
    def ends_as_real_question(self) -> bool:
        """It asks an open question and nothing says the question is closed or missing:
        the headline share of the team report."""
        blocking = {Category.NO_QUESTION, Category.CLOSED_QUESTION}
        return self.open_questions > 0 and not blocking & set(self.categories)

    @property
    def categories(self) -> list[Category]:
        seen: dict[Category, None] = {}
        for finding in self.findings:
            seen.setdefault(finding.category, None)
        return list(seen)


class Comparison(_Frozen):
    language: Language
    before: CoachCard
    after: CoachCard
    delta: int
    resolved: list[Category]
    remaining: list[Category]
    new: list[Category]


class ReplyKind(StrEnum):
    CARD = "card"
    COMPARISON = "comparison"
    HELP = "help"
    REFUSAL = "refusal"
    NOTICE = "notice"
    INVALID = "invalid"
    PRINCIPLE = "principle"
    ANSWER = "answer"
    DRILL = "drill"  # a drill posted to a team chat
    SUMMARY = "summary"  # the anonymous summary when a drill closes
    REPORT = "report"
    LESSON = "lesson"  # an onboarding step
    PRACTICE = "practice"  # a practice session's intro, a buyer's turn, or its debrief


class Reply(_Frozen):
    """What the conversation flow answers; channels render `card`/`comparison` natively
    and fall back to `text` (markdown-ish) for everything else."""

    kind: ReplyKind
    language: Language
    text: str
    card: CoachCard | None = None
    comparison: Comparison | None = None
    all_findings: bool = False  # the card is shown in full (/findings)
    # Deliver to the sender only (Slack ephemeral, Telegram DM): a drill answer's coaching
    # never shows in the team chat.
    private: bool = False
    image: bytes | None = None  # a PNG to send with the text (the team report's chart)
    drill_run: int | None = None  # this reply is a drill post: tell the run its message id
    # A practice drill posted to a team: the drill each member may practise in private
    # (channels add their way to start it, a button or a link to the bot's DM).
    practice: str | None = None
    # The LLM's part of this reply (its card's, or its answer's); None when no LLM was asked.
    llm: LlmStatus | None = None
    # With an LLM, the same reply with the LLM's part laid on, when it arrives: channels send
    # this reply first and edit it into that one; the command line waits for it. Never
    # raises; the reply it gives has no follow-up of its own. Not part of the JSON.
    follow_up: Callable[[], Awaitable[Reply]] | None = Field(default=None, exclude=True, repr=False)


class ConversationKey(_Frozen):
    channel: str
    user_id: str
    conversation_id: str


class IncomingMessage(_Frozen):
    key: ConversationKey
    text: str
    locale: str | None = None
    chat_id: str | None = None  # the team chat (Slack channel, Telegram group) it was said in
    in_group: bool = False
    reply_to: str | None = None  # the message it answers (Slack thread ts, Telegram message id)
    platform_admin: bool = False  # a Slack workspace admin or owner

    @field_validator("text")
    @classmethod
    def _no_lone_surrogates(cls, text: str) -> str:
        return clean_text(text)
