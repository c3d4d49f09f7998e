"""Composition root: builds the coach and the conversation flow from settings.

The only place that knows which implementation backs each core port.
"""

from __future__ import annotations

from bot.core.coach import Coach
from bot.knowledge.principles import PrincipleStore
from bot.settings import Settings


def build_coach(settings: Settings) -> Coach:
    principles = PrincipleStore.load(settings.knowledge_dir / "principles")
    return Coach.load(
        settings.knowledge_dir,
        settings.prompts_dir,
        principles,
        default_language=settings.language,
        max_chars=settings.max_input_chars,
    )
