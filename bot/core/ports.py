"""The small interfaces the core needs from the outside (knowledge base, storage).

The core defines them and never imports their implementations: `bot.knowledge` and
`bot.store` satisfy them, tests can build real ones, and channels never see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bot.core.models import Category, CoachCard, ConversationKey, LlmStatus, PrincipleRef
from bot.core.practice import PracticeSession


class PrincipleText(BaseModel):
    """A principle as a reader sees it: for "explain this principle" buttons and /explain."""

    model_config = ConfigDict(frozen=True)
    id: str
    lang: str
    title: str
    summary: str
    body: str
    sources: list[str]
    idea: str = ""
    strong_example: str = ""


class SearchHit(BaseModel):
    """A principle found for a text: `score` ranks (meaning fused with words),
    `similarity` is the cosine of the best matching document."""

    model_config = ConfigDict(frozen=True)
    principle: str
    score: float
    similarity: float


class QuestionIntent(StrEnum):
    """What a question to `ask` is: one the principles answer, one outside the method, or
    a request to write the message for the rep (which Fournil declines, explaining why)."""

    ANSWER = "answer"
    OFFTOPIC = "offtopic"
    WRITE_REQUEST = "write_request"


class QuestionReading(BaseModel):
    """How a question was read: its intent and the principles behind it, best first (the
    principles that answer it; for a write request, the principle behind the refusal or
    the one its topic calls for; none when it is off-topic)."""

    model_config = ConfigDict(frozen=True)
    intent: QuestionIntent
    hits: list[SearchHit] = Field(default_factory=list)
    # The principle to cite if the message is a request to write (whatever `intent`
    # says: the chat's own ghost-writing patterns may recognise one the reader did not).
    writing: str | None = None


class PrincipleSearch(Protocol):
    def search(self, text: str, lang: str, limit: int = 3) -> list[SearchHit]:
        """Principles that answer a question; empty when none is relevant."""
        ...

    def read_question(self, text: str, lang: str, limit: int = 3) -> QuestionReading:
        """A question's intent and its principles, from one embedding of it."""
        ...

    def related(self, text: str, limit: int = 2, gist: np.ndarray | None = None) -> list[SearchHit]:
        """Principles closest in meaning to an opener (no relevance gate: an opener is
        always about selling); cheaper, as it sits on the card's hot path. `gist` is the
        opener's meaning when the card already has it (the learned detectors embed every
        sentence): the search then embeds nothing."""
        ...


@dataclass(frozen=True)
class UnitReading:
    """What the learned detectors read in an opener's units: one probability per category
    for each unit, in the order given, and the opener's gist (the mean of the units'
    embeddings, L2-normalised), which the related-principles search reuses."""

    probabilities: tuple[dict[Category, float], ...]
    gist: np.ndarray | None = None


class UnitScorer(Protocol):
    """Learned sentence detectors (bot.knowledge.detectors): one batched call per opener."""

    @property
    def categories(self) -> tuple[Category, ...]: ...

    def read(self, units: Sequence[str]) -> UnitReading: ...


class PrincipleCatalog(Protocol):
    """Principles by id. An id merged into another principle stays valid as an alias:
    every method accepts it and answers with the kept principle (and the kept id)."""

    def resolve(self, principle_id: str) -> str | None:
        """The kept id for an id or an alias; None when neither resolves."""
        ...

    def ref(self, principle_id: str, lang: str) -> PrincipleRef | None: ...

    def describe(self, principle_id: str, lang: str) -> PrincipleText | None: ...


class LlmText(BaseModel):
    """An LLM's answer to a question about the method, past the guardrails: its text and
    the ids it cites (each among the principles it was given), or no text and the reason in
    `status` (then the composed answer stands). `notice` is what the rep reads when it was
    skipped."""

    model_config = ConfigDict(frozen=True)
    text: str | None
    cited: list[str] = Field(default_factory=list)
    status: LlmStatus
    notice: str | None = None


class LlmAssist(Protocol):
    """An LLM beside the embedded coach (FOURNIL_LLM; bot.llm.LlmCoach). It never raises:
    whatever fails (timeout, HTTP error, a guardrail) comes back as the embedded result with
    `llm.status` "fallback" and the reason."""

    @property
    def model(self) -> str:
        """`provider:model`."""
        ...

    async def enrich(self, card: CoachCard, opener: str) -> CoachCard:
        """`card` with the LLM's part laid on (second-opinion findings, a note, tailored
        stems; its score untouched) and `llm`/`notice` saying how it went. `opener` is the
        text the card was made from; it is redacted before it leaves."""
        ...

    async def answer_question(self, question: str, principles: Sequence[PrincipleText], lang: str) -> LlmText:
        """A short answer from `principles` (those the search retrieved, best first)."""
        ...


class ConversationState(BaseModel):
    """Where one conversation stands; saved after every message so a restart loses nothing."""

    model_config = ConfigDict(frozen=True)
    key: ConversationKey
    stage: str = "idle"  # idle | awaiting_rewrite
    versions: list[str] = Field(default_factory=list)  # redacted opener, then each rewrite
    language: str | None = None
    updated_at: datetime | None = None


class CardRecord(BaseModel):
    """What is kept of a card for progress and team figures: no text, only the numbers."""

    model_config = ConfigDict(frozen=True)
    key: ConversationKey
    language: str
    score: int
    categories: list[str]
    is_rewrite: bool
    # The version ends as a real question (it has one, and no closed or missing question
    # finding): the team report's headline share.
    has_question: bool = False
    created_at: datetime | None = None

    @classmethod
    def from_card(cls, key: ConversationKey, card: CoachCard, is_rewrite: bool) -> CardRecord:
        return cls(
            key=key,
            language=card.language,
            score=card.score,
            categories=[str(c) for c in card.categories],
            is_rewrite=is_rewrite,
            has_question=card.ends_as_real_question,
        )


class ConversationStore(Protocol):
    async def load_conversation(self, key: ConversationKey) -> ConversationState | None: ...

    async def save_conversation(self, state: ConversationState) -> None: ...

    async def record_card(self, record: CardRecord) -> None: ...

    async def language_preference(self, channel: str, user_id: str) -> str | None: ...

    async def set_language_preference(self, channel: str, user_id: str, language: str | None) -> None: ...

    async def forget_user(self, channel: str, user_id: str) -> int: ...

    async def claim_event(self, channel: str, event_id: str, now: datetime | None = None) -> bool:
        """True when this call may handle the event: the first time its id is seen, or when
        the claim on it was not finished within the store's lease (the replica that took
        it died mid-work: the platform sent it again). False for an event done, or claimed
        by someone else and still within its lease. See bot/core/delivery.py."""
        ...

    async def finish_event(self, channel: str, event_id: str, now: datetime | None = None) -> None:
        """Marks a claimed event done (its reply went out): from now on it is never taken
        over, and a retry of it is skipped."""
        ...

    async def event_done(self, channel: str, event_id: str) -> bool:
        """Whether the event was finished (rather than claimed and in progress, or unknown)."""
        ...

    async def recent_cards(self, channel: str, user_id: str, limit: int = 10) -> list[CardRecord]: ...


class DrillSchedule(BaseModel):
    """A manager's recurring drill: a 5-field crontab read in the team's time zone.

    `next_run_at` (UTC) is stored, and moved forward with a compare-and-set before the drill
    is posted, so a restart, or two replicas, never post the same occurrence twice."""

    model_config = ConfigDict(frozen=True)
    id: int | None = None
    channel: str  # "slack" | "telegram"
    chat_id: str  # Slack channel id, Telegram chat id
    cron: str
    timezone: str
    drill_id: str | None = None  # None: a random drill each time
    language: str
    created_by: str
    next_run_at: datetime


class DrillRun(BaseModel):
    """One drill posted to a team chat, open for answers until `closes_at`."""

    model_config = ConfigDict(frozen=True)
    id: int | None = None
    channel: str
    chat_id: str
    drill_id: str
    language: str
    opened_by: str
    opened_at: datetime
    closes_at: datetime
    message_ref: str | None = None  # Slack message ts / Telegram message id of the post
    schedule_id: int | None = None
    closed_at: datetime | None = None


class DrillAnswer(BaseModel):
    """A member's answer to a drill (redacted text; the latest answer per member counts)."""

    model_config = ConfigDict(frozen=True)
    run_id: int
    channel: str
    user_id: str
    text: str
    score: int
    categories: list[str]
    has_question: bool
    created_at: datetime | None = None


class OnboardingProgress(BaseModel):
    """Where a new seller is on the onboarding path."""

    model_config = ConfigDict(frozen=True)
    channel: str
    user_id: str
    step: int = 1  # the step being worked on
    passed: list[int] = Field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class TeamStore(Protocol):
    """Drills, schedules, onboarding, consent and team figures.

    Every timestamp is timezone-aware UTC. Methods returning bool tell whether this call
    won a race (claim, advance, close): only the winner acts."""

    async def add_schedule(self, schedule: DrillSchedule) -> DrillSchedule: ...

    async def schedules(self, channel: str, chat_id: str) -> list[DrillSchedule]: ...

    async def remove_schedule(self, channel: str, chat_id: str, schedule_id: int) -> bool: ...

    async def due_schedules(self, now: datetime) -> list[DrillSchedule]: ...

    async def advance_schedule(self, schedule_id: int, expected: datetime, next_run_at: datetime) -> bool:
        """Moves `next_run_at` from `expected` to `next_run_at`; False if someone else did."""
        ...

    async def open_run(self, run: DrillRun) -> DrillRun: ...

    async def set_run_message(self, run_id: int, message_ref: str) -> None: ...

    async def find_run(self, channel: str, chat_id: str, message_ref: str) -> DrillRun | None: ...

    async def latest_open_run(self, channel: str, chat_id: str) -> DrillRun | None: ...

    async def due_runs(self, now: datetime) -> list[DrillRun]:
        """Open runs whose `closes_at` has passed."""
        ...

    async def close_run(self, run_id: int, now: datetime) -> bool: ...

    async def recent_drill_ids(self, channel: str, chat_id: str, limit: int = 10) -> list[str]: ...

    async def save_answer(self, answer: DrillAnswer) -> None:
        """Replaces the member's previous answer to the same run."""
        ...

    async def run_answers(self, run_id: int) -> list[DrillAnswer]: ...

    async def load_progress(self, channel: str, user_id: str) -> OnboardingProgress | None: ...

    async def save_progress(self, progress: OnboardingProgress) -> None: ...

    async def all_progress(self, channel: str) -> list[OnboardingProgress]: ...

    async def share_consent(self, channel: str, user_id: str) -> bool: ...

    async def set_share_consent(self, channel: str, user_id: str, share: bool) -> None: ...

    async def consenting_users(self, channel: str | None = None) -> set[tuple[str, str]]: ...

    async def cards_between(
        self, since: datetime, until: datetime, channel: str | None = None
    ) -> list[CardRecord]: ...

    async def purge_before(self, cutoff: datetime) -> int:
        """Deletes stored openers, cards and answers older than `cutoff` (retention)."""
        ...


class PracticeRecord(BaseModel):
    """A practice session as the store keeps it: whose it is (the conversation it runs in),
    the session itself (`PracticeSession`: counters, scores, reactions, the keys of the
    buyer's lines and a few redacted words of the rep, never a whole message), and when it
    started, last moved and ended (`ended_at` None: the rep is still in it)."""

    model_config = ConfigDict(frozen=True)
    key: ConversationKey
    session: PracticeSession
    created_at: datetime | None = None
    updated_at: datetime | None = None
    ended_at: datetime | None = None


class PracticeStore(Protocol):
    """Practice sessions, saved after every turn so a restart mid-session loses nothing;
    `/forget` deletes them with the rest of the user's rows, retention purges them."""

    async def save_practice(self, record: PracticeRecord) -> None:
        """Inserts the session, or replaces the stored one with the same session id."""
        ...

    async def open_practice(self, key: ConversationKey) -> PracticeRecord | None:
        """The session the rep is in for this conversation (not ended), the latest if several."""
        ...

    async def practice_between(
        self, since: datetime, until: datetime, channel: str | None = None
    ) -> list[PracticeRecord]:
        """Sessions started in [since, until), oldest first (the team report)."""
        ...
