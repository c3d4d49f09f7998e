"""The small interfaces the core needs from the outside (knowledge base, storage).

The core defines them and never imports their implementations: `bot.knowledge` and
`bot.store` satisfy them, tests can build real ones, and channels never see them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from bot.core.models import ConversationKey, PrincipleRef


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


class PrincipleSearch(Protocol):
    def search(self, text: str, lang: str, limit: int = 3) -> list[SearchHit]:
        """Principles that answer a question; empty when none is relevant."""
        ...

    def related(self, text: str, limit: int = 2) -> list[SearchHit]:
        """Principles closest in meaning to an opener (no relevance gate: an opener is
        always about selling); cheaper, as it sits on the card's hot path."""
        ...


class PrincipleCatalog(Protocol):
    def ref(self, principle_id: str, lang: str) -> PrincipleRef | None: ...

    def describe(self, principle_id: str, lang: str) -> PrincipleText | None: ...


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
    created_at: datetime | None = None


class ConversationStore(Protocol):
    async def load_conversation(self, key: ConversationKey) -> ConversationState | None: ...

    async def save_conversation(self, state: ConversationState) -> None: ...

    async def record_card(self, record: CardRecord) -> None: ...

    async def language_preference(self, channel: str, user_id: str) -> str | None: ...

    async def set_language_preference(self, channel: str, user_id: str, language: str | None) -> None: ...

    async def forget_user(self, channel: str, user_id: str) -> int: ...

    async def claim_event(self, channel: str, event_id: str) -> bool:
        """True the first time an event id is seen: retried or replayed events run once."""
        ...

    async def recent_cards(self, channel: str, user_id: str, limit: int = 10) -> list[CardRecord]: ...
