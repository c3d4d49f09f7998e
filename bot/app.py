"""Composition root: builds the coach and the conversation flow from settings.

The only place that knows which implementation backs each core port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.core.coach import Coach
from bot.core.flow import CoachingFlow
from bot.knowledge.principles import PrincipleStore
from bot.settings import Settings
from bot.store.sql import SqlStore


def build_coach(settings: Settings) -> Coach:
    principles = PrincipleStore.load(settings.knowledge_dir / "principles")
    return Coach.load(
        settings.knowledge_dir,
        settings.prompts_dir,
        principles,
        default_language=settings.language,
        max_chars=settings.max_input_chars,
    )


@asynccontextmanager
async def open_flow(settings: Settings, coach: Coach | None = None) -> AsyncIterator[CoachingFlow]:
    """The conversation flow over the configured store, closed on exit (channels use this)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await SqlStore.open(settings.resolved_database_url)
    try:
        yield CoachingFlow(coach or build_coach(settings), store)
    finally:
        await store.close()
