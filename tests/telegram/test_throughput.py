"""The rate limiter's and the update processor's rules, checked by their effects (which call
waits for which), never by measuring time."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from telegram import Update

from bot.channels.telegram.throughput import (
    GROUP_CHAT_INTERVAL,
    PRIVATE_CHAT_INTERVAL,
    ChatOrderedProcessor,
    FournilRateLimiter,
)


def recorder(
    log: list[str], name: str, gate: asyncio.Event | None = None, started: asyncio.Event | None = None
) -> Any:
    async def call(*args: Any, **kwargs: Any) -> bool:
        log.append(f"start {name}")
        if started is not None:
            started.set()
        if gate is not None:
            await gate.wait()
        log.append(f"end {name}")
        return True

    return call


async def send(limiter: FournilRateLimiter, endpoint: str, chat_id: int, call: Any) -> Any:
    data = {"chat_id": chat_id}
    return await limiter.process_request(call, (), {}, endpoint, data, None)


async def test_a_typing_action_never_waits_behind_a_reply() -> None:
    limiter = FournilRateLimiter()
    log: list[str] = []
    gate, started = asyncio.Event(), asyncio.Event()
    reply = asyncio.create_task(send(limiter, "sendMessage", 1, recorder(log, "reply", gate, started)))
    await started.wait()
    assert limiter.queued == 1
    assert await send(limiter, "sendChatAction", 2, recorder(log, "typing")) is True
    assert "start typing" not in log  # skipped, answered as the Bot API would
    gate.set()
    await reply
    assert limiter.queued == 0
    assert await send(limiter, "sendChatAction", 2, recorder(log, "typing")) is True
    assert log[-1] == "end typing"  # idle: sent


async def test_a_chat_waits_for_its_turn_and_other_chats_do_not() -> None:
    limiter = FournilRateLimiter(private_interval=60)  # a second message could leave in a minute
    log: list[str] = []
    await send(limiter, "sendMessage", 1, recorder(log, "first"))
    second = asyncio.create_task(send(limiter, "sendMessage", 1, recorder(log, "second")))
    await send(limiter, "sendMessage", 2, recorder(log, "other chat"))
    assert limiter.turn(1).lock.locked()  # the second message holds chat 1's turn, waiting
    assert log == ["start first", "end first", "start other chat", "end other chat"]
    second.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await second


async def test_groups_and_private_chats_have_their_own_spacing() -> None:
    limiter = FournilRateLimiter()
    assert limiter.turn(42).interval == PRIVATE_CHAT_INTERVAL >= 1
    assert limiter.turn(-100_123).interval == limiter.turn("@channel").interval == GROUP_CHAT_INTERVAL
    assert GROUP_CHAT_INTERVAL >= 60 / 20


async def test_idle_chat_turns_are_pruned() -> None:
    limiter = FournilRateLimiter()
    for chat in range(2000):
        limiter.turn(chat)
        assert len(limiter._turns) <= 514


def update(update_id: int, chat_id: int) -> Update:
    message = {
        "message_id": update_id,
        "date": 0,
        "chat": {"id": chat_id, "type": "private"},
        "text": "x",
    }
    return Update.de_json({"update_id": update_id, "message": message}, None)


async def test_updates_run_in_order_within_a_chat_and_concurrently_across_chats() -> None:
    processor = ChatOrderedProcessor()
    log: list[str] = []
    gate = asyncio.Event()

    async def handle(name: str, wait: bool = False) -> None:
        log.append(f"start {name}")
        if wait:
            await gate.wait()
        log.append(f"end {name}")

    first = asyncio.create_task(processor.process_update(update(1, 10), handle("opener", wait=True)))
    second = asyncio.create_task(processor.process_update(update(2, 10), handle("rewrite")))
    other = asyncio.create_task(processor.process_update(update(3, 20), handle("other chat")))
    await other
    assert log == ["start opener", "start other chat", "end other chat"]  # the rewrite waits
    gate.set()
    await asyncio.gather(first, second)
    assert log[3:] == ["end opener", "start rewrite", "end rewrite"]
    assert not processor._locks
