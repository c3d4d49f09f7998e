"""Webhook updates delivered at least once, handled once (bot/core/delivery.py), through
the real bot and aiohttp server against the stub Bot API: Telegram's HTTP answer comes
once the reply is sent; an update another replica claimed and is still working on gets a
503 (Telegram sends it again later); one whose claim outlived its lease (that replica
died) is taken over; a done one is skipped. Slow work is answered at the bound while
/healthz answers. Nothing measures time: the store is given the claims' times."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.core.coach import Coach
from tests.telegram.botapi_stub import BotApiStub
from tests.telegram.conftest import WEBHOOK_SECRET, RunningBot, bot_settings, free_port, running_bot
from tests.telegram.samples import OPENER, SCORE

LIMIT = 15.0  # turns a hang into a failure; nothing measures time


async def start_webhook_bot(stub: BotApiStub, coach: Coach, data: Path, **settings: Any) -> Any:
    values = bot_settings(
        stub,
        data,
        telegram_webhook_url="https://fournil.example.com/telegram",
        telegram_webhook_secret=WEBHOOK_SECRET,
        port=free_port(),
        **settings,
    )
    return running_bot(stub, values, coach)


@pytest.fixture
async def webhook_bot(stub: BotApiStub, coach: Coach, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with await start_webhook_bot(stub, coach, tmp_path / "data") as running:
        yield running


async def post(bot: RunningBot, update: dict[str, Any]) -> int:
    url = f"http://127.0.0.1:{bot.settings.port}/telegram"
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=update, headers=headers) as response,
    ):
        return response.status


def event_id(stub: BotApiStub, update: dict[str, Any]) -> str:
    return f"{stub.bot_id}:{update['update_id']}"


async def test_telegram_gets_its_answer_once_the_reply_is_sent(
    stub: BotApiStub, webhook_bot: RunningBot
) -> None:
    mark = stub.mark()
    update = stub.private(411, OPENER)
    assert await post(webhook_bot, update) == 200
    # No waiting: the card went out (and the Bot API answered it) before the 200.
    [card] = stub.of("sendMessage", after=mark, chat_id=411)
    assert card.done and SCORE.search(card.shown)
    assert await webhook_bot.flow.store.event_done("telegram", event_id(stub, update))
    assert await post(webhook_bot, update) == 200  # a retry: skipped, answered
    assert len(stub.of("sendMessage", after=mark, chat_id=411)) == 1


async def test_an_update_another_replica_is_on_is_sent_again_later(
    stub: BotApiStub, webhook_bot: RunningBot
) -> None:
    store, update = webhook_bot.flow.store, stub.private(412, OPENER)
    assert await store.claim_event("telegram", event_id(stub, update))  # another replica's, lease running
    mark = stub.mark()
    assert await post(webhook_bot, update) == 503
    assert await post(webhook_bot, update) == 503
    await store.finish_event("telegram", event_id(stub, update))  # that replica answered it
    assert await post(webhook_bot, update) == 200
    assert stub.of("sendMessage", after=mark, chat_id=412) == []


async def test_a_dead_replica_s_claim_is_taken_over_after_its_lease(
    stub: BotApiStub, webhook_bot: RunningBot
) -> None:
    store, lease = webhook_bot.flow.store, webhook_bot.settings.claim_lease_seconds
    update = stub.private(413, OPENER)
    died = datetime.now(UTC) - timedelta(seconds=lease + 1)  # claimed, then nothing for a lease
    assert await store.claim_event("telegram", event_id(stub, update), now=died)
    mark = stub.mark()
    assert await post(webhook_bot, update) == 200
    [card] = stub.of("sendMessage", after=mark, chat_id=413)
    assert SCORE.search(card.shown)
    assert await post(webhook_bot, update) == 200
    assert len(stub.of("sendMessage", after=mark, chat_id=413)) == 1


async def test_slow_work_is_answered_at_the_bound_and_goes_on(
    stub: BotApiStub, coach: Coach, tmp_path: Path
) -> None:
    # The shortest lease: the webhook answers within half of it, 2.5 s.
    async with await start_webhook_bot(stub, coach, tmp_path / "data", claim_lease_seconds=5) as bot:
        gate = stub.gates["sendMessage"] = asyncio.Event()
        mark = stub.mark()
        update = stub.private(414, OPENER)
        posting = asyncio.create_task(post(bot, update))
        [held] = await stub.wait_for("sendMessage", after=mark, chat_id=414, answered=False)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{bot.settings.port}/healthz") as health,
        ):
            assert health.status == 200  # while the update's work waits on the Bot API
        assert not posting.done()
        assert await asyncio.wait_for(posting, LIMIT) == 200
        assert not held.done  # answered at the bound, the reply still on its way
        assert not await bot.flow.store.event_done("telegram", event_id(stub, update))
        gate.set()
        [card] = await stub.wait_for("sendMessage", after=mark, chat_id=414)
        assert SCORE.search(card.shown)
        # The chat's next update is handled once the first one's work is over: done by then.
        assert await post(bot, stub.private(414, "/help")) == 200
        assert await bot.flow.store.event_done("telegram", event_id(stub, update))
