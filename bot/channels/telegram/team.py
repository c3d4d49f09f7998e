"""The drill clock on Telegram: scheduled drills posted to their group, open drills closed
with their summary, by the core's `DrillClock` through a `TelegramPoster`.

The clock is built with the application (`attach_clock`, kept in `bot_data` so tests and
the runner find the very same one) and runs beside polling or the webhook server while
the bot runs (`clock_running`), interval `FOURNIL_CLOCK_SECONDS`. It only calls `tick()`:
the store's compare-and-set decides who posts each occurrence, so a restart, or several
replicas each with a clock, never post a drill twice.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram import Bot
from telegram.error import TelegramError

from bot.channels.telegram.handlers import CHANNEL, TelegramAdapter, TelegramApplication
from bot.core.models import Reply
from bot.core.team import DrillClock

log = logging.getLogger("fournil.telegram")

CLOCK_KEY = "fournil.drill_clock"


class TelegramPoster:
    """`TeamPoster` for Telegram: a rendered reply sent to a chat; the id of its first
    message (the one members reply to), or None when Telegram refused it (the bot was
    removed from the group, say: logged, and the clock goes on with the other chats)."""

    def __init__(self, adapter: TelegramAdapter, bot: Bot) -> None:
        self.adapter = adapter
        self.bot = bot

    async def post(self, chat_id: str, reply: Reply) -> str | None:
        try:
            sent = await self.adapter.deliver(self.bot, int(chat_id), reply, owner="", reply_to=None)
        except TelegramError as exc:
            log.warning("drill clock: could not post to chat %s: %s", chat_id, exc)
            return None
        return str(sent[0]) if sent else None


def attach_clock(
    application: TelegramApplication, adapter: TelegramAdapter, interval: float
) -> DrillClock | None:
    """The application's drill clock (None when the flow has no team coaching)."""
    team = adapter.flow.team
    if team is None:
        return None
    clock = DrillClock(team, CHANNEL, TelegramPoster(adapter, application.bot), interval=interval)
    application.bot_data[CLOCK_KEY] = clock
    return clock


def drill_clock(application: TelegramApplication) -> DrillClock | None:
    clock = application.bot_data.get(CLOCK_KEY)
    return clock if isinstance(clock, DrillClock) else None


@asynccontextmanager
async def clock_running(application: TelegramApplication) -> AsyncIterator[DrillClock | None]:
    """The clock ticking in a task for the duration of the block (a tick on entry, then
    every interval); on exit it is told to stop and awaited, so a tick in progress
    finishes its posts before the bot shuts down."""
    clock = drill_clock(application)
    if clock is None:
        yield None
        return
    async with clock.running():
        yield clock
