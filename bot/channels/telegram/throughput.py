"""How many messages go out, and in which order updates are handled.

`FournilRateLimiter` keeps the bot inside Telegram's published flood limits (about 30
messages a second overall, about one a second in a chat, 20 a minute in a group) without
ever dropping a message. It is python-telegram-bot's `AIORateLimiter` (which keeps the
overall limit and retries after a 429 `RetryAfter`) with these changes, each measured by
bench/telegram_burst.py:

- *no bursts*: `AIORateLimiter`'s default buckets hold 30 (resp. 20) requests, so a burst
  can put 59 messages in one second, or 39 in one minute in a group. A bucket of one request
  draining at the same rate (`overall_max_rate=1`, `overall_time_period=1/29`) spaces
  messages evenly instead, for the same sustained throughput;
- *spacing per chat, measured at the send*: a chat's next message leaves at least 1.05 s
  (private chat) or 3.15 s (group: 20 a minute) after the previous one *was sent*.
  `AIORateLimiter`'s group bucket takes its token before waiting for the overall one, so
  under load two group messages could leave 2.6 s apart; here the chat keeps its turn until
  its message is on the wire. It has no per-chat limit for private chats at all;
- *margins*: 29 rather than 30 a second, 5 % on the chat intervals, so network jitter never
  makes the limits look broken where Telegram counts them, on arrival;
- *typing is a courtesy*: `sendChatAction` never waits and never delays a reply; it is
  skipped while replies are queued, and capped at 10 a second.

`ChatOrderedProcessor` handles updates concurrently across chats, so one slow chat never
holds up the others, but strictly in order within a chat, so an opener is always coached
before the rewrite the rep sent right after it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram import Update
from telegram.ext import AIORateLimiter, BaseUpdateProcessor

JSONDict = dict[str, Any]
Result = bool | JSONDict | list[JSONDict]
COURTESY_ENDPOINTS = frozenset({"sendChatAction"})
MESSAGES_PER_SECOND = 29.0  # Telegram: about 30
PRIVATE_CHAT_INTERVAL = 1.05  # Telegram: about one message a second in a chat
GROUP_CHAT_INTERVAL = 3.15  # Telegram: 20 messages a minute in a group
CHAT_ACTIONS_PER_SECOND = 10
_PRUNE_ABOVE = 512  # idle chat turns are dropped past this many, as AIORateLimiter does


class ChatTurn:
    """A chat's place in line: held from the wait until its message is sent."""

    __slots__ = ("interval", "lock", "sent_at")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.lock = asyncio.Lock()
        self.sent_at = -math.inf  # loop time of the chat's last send

    def idle(self, now: float) -> bool:
        return not self.lock.locked() and now >= self.sent_at + self.interval


class FournilRateLimiter(AIORateLimiter):
    """`AIORateLimiter` without bursts, with spacing per chat taken at the send, margins,
    and best-effort chat actions (see the module docstring for why)."""

    def __init__(
        self,
        messages_per_second: float = MESSAGES_PER_SECOND,
        private_interval: float = PRIVATE_CHAT_INTERVAL,
        group_interval: float = GROUP_CHAT_INTERVAL,
        max_retries: int = 3,
    ) -> None:
        super().__init__(
            overall_max_rate=1,
            overall_time_period=1 / messages_per_second,
            group_max_rate=0,  # replaced by the group spacing below
            max_retries=max_retries,
        )
        self._private_interval = private_interval
        self._group_interval = group_interval
        self._turns: dict[str, ChatTurn] = {}
        self._actions = AsyncLimiter(1, 1 / CHAT_ACTIONS_PER_SECOND)
        self._queued = 0  # message requests waiting or in flight

    @property
    def queued(self) -> int:
        return self._queued

    def turn(self, chat_id: object) -> ChatTurn:
        """The chat's turn; negative ids (and @usernames) are groups and channels."""
        key = str(chat_id)
        if len(self._turns) > _PRUNE_ABOVE:
            now = asyncio.get_running_loop().time()
            for other, turn in list(self._turns.items()):
                if other != key and turn.idle(now):
                    del self._turns[other]
        if key not in self._turns:
            private = key.isdigit()
            self._turns[key] = ChatTurn(self._private_interval if private else self._group_interval)
        return self._turns[key]

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        if endpoint in COURTESY_ENDPOINTS:
            if self._queued or not self._actions.has_capacity():
                return True  # what the Bot API answers to a chat action
            async with self._actions:
                return await callback(*args, **kwargs)
        chat_id = data.get("chat_id")
        if chat_id is None:
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        turn = self.turn(chat_id)
        loop = asyncio.get_running_loop()

        async def send(*call_args: Any, **call_kwargs: Any) -> Result:
            turn.sent_at = loop.time()  # the overall token is ours: this is the send
            return await callback(*call_args, **call_kwargs)

        self._queued += 1
        try:
            async with turn.lock:
                wait = turn.sent_at + turn.interval - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                return await super().process_request(send, args, kwargs, endpoint, data, rate_limit_args)
        finally:
            self._queued -= 1


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Concurrent across chats, sequential within a chat (updates keep their order), at most
    `workers` updates being worked on at once.

    The worker limit is taken *after* the chat's turn: a rep who sends fifty messages in a
    row holds one worker, not fifty, so other chats are never starved (python-telegram-bot's
    own semaphore, taken before, is set high and only bounds the backlog). Few workers make
    a burst flow: the coach runs on the event loop, so with hundreds of updates interleaved
    every one would finish late, and the first reply would wait for all of them, while an
    open database transaction waited behind all that coaching (SQLite then gives up with
    "database is locked"). With eight, replies start going out at once and the rate limit,
    not the interleaving, sets the pace (bench/telegram_burst.py).
    """

    def __init__(self, workers: int = 8, backlog: int = 4096) -> None:
        super().__init__(backlog)
        self._workers = asyncio.Semaphore(workers)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            async with self._workers:
                await coroutine
            return
        # Tasks reach this point in the order updates arrived and asyncio.Lock wakes waiters
        # first-in first-out, so a chat's updates run in arrival order.
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._users[chat.id] = self._users.get(chat.id, 0) + 1
        try:
            async with lock, self._workers:
                await coroutine
        finally:
            self._users[chat.id] -= 1
            if not self._users[chat.id]:
                del self._users[chat.id], self._locks[chat.id]

    async def initialize(self) -> None:
        """Nothing to set up: locks are made per chat as updates come."""

    async def shutdown(self) -> None:
        """Nothing to release."""
