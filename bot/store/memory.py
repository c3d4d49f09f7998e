"""A process-local store for one-shot commands (`fournil coach`), where nothing is kept."""

from __future__ import annotations

from bot.core.models import ConversationKey
from bot.core.ports import CardRecord, ConversationState


class MemoryStore:
    def __init__(self) -> None:
        self._conversations: dict[ConversationKey, ConversationState] = {}
        self._languages: dict[tuple[str, str], str | None] = {}
        self.cards: list[CardRecord] = []
        self._events: set[tuple[str, str]] = set()

    async def load_conversation(self, key: ConversationKey) -> ConversationState | None:
        return self._conversations.get(key)

    async def save_conversation(self, state: ConversationState) -> None:
        self._conversations[state.key] = state

    async def record_card(self, record: CardRecord) -> None:
        self.cards.append(record)

    async def language_preference(self, channel: str, user_id: str) -> str | None:
        return self._languages.get((channel, user_id))

    async def set_language_preference(self, channel: str, user_id: str, language: str | None) -> None:
        self._languages[(channel, user_id)] = language

    async def claim_event(self, channel: str, event_id: str) -> bool:
        if (channel, event_id) in self._events:
            return False
        self._events.add((channel, event_id))
        return True

    async def recent_cards(self, channel: str, user_id: str, limit: int = 10) -> list[CardRecord]:
        mine = [c for c in self.cards if (c.key.channel, c.key.user_id) == (channel, user_id)]
        return list(reversed(mine))[:limit]

    async def forget_user(self, channel: str, user_id: str) -> int:
        keys = [k for k in self._conversations if (k.channel, k.user_id) == (channel, user_id)]
        for key in keys:
            del self._conversations[key]
        cards = [c for c in self.cards if (c.key.channel, c.key.user_id) == (channel, user_id)]
        self.cards = [c for c in self.cards if c not in cards]
        language = self._languages.pop((channel, user_id), None) is not None
        return len(keys) + len(cards) + int(language)
