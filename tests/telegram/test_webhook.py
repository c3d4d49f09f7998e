"""Webhook mode: updates POSTed to /telegram with Telegram's secret header, /healthz, the
webhook registered with its secret; wrong or missing secrets refused with 403."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.core.coach import Coach
from tests.telegram.botapi_stub import BotApiStub
from tests.telegram.conftest import WEBHOOK_SECRET, RunningBot, bot_settings, free_port, running_bot
from tests.telegram.samples import OPENER, REWRITE, SCORE

PUBLIC_URL = "https://fournil.example.com/telegram"


@pytest.fixture
async def webhook_bot(stub: BotApiStub, coach: Coach, tmp_path: Path) -> AsyncIterator[RunningBot]:
    settings = bot_settings(
        stub,
        tmp_path / "data",
        telegram_webhook_url=PUBLIC_URL,
        telegram_webhook_secret=WEBHOOK_SECRET,
        port=free_port(),
    )
    async with running_bot(stub, settings, coach) as running:
        yield running


async def post(bot: RunningBot, body: Any, secret: str | None = WEBHOOK_SECRET, raw: bool = False) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    url = f"http://127.0.0.1:{bot.settings.port}/telegram"
    async with aiohttp.ClientSession() as session:
        if raw:
            response = await session.post(url, data=body, headers=headers)
        else:
            response = await session.post(url, json=body, headers=headers)
        async with response:
            return response.status


async def test_the_webhook_is_registered_with_its_secret(stub: BotApiStub, webhook_bot: RunningBot) -> None:
    assert stub.webhook["url"] == PUBLIC_URL
    assert stub.webhook["secret_token"] == WEBHOOK_SECRET
    assert stub.webhook["allowed_updates"] == ["message", "callback_query"]
    assert not stub.of("getUpdates")


async def test_an_update_with_the_right_secret_gets_a_card(stub: BotApiStub, webhook_bot: RunningBot) -> None:
    mark = stub.mark()
    assert await post(webhook_bot, stub.private(401, OPENER)) == 200
    [card] = await stub.wait_for("sendMessage", after=mark, chat_id=401)
    assert SCORE.search(card.shown)


@pytest.mark.parametrize("secret", ["wrong-secret", "", None, WEBHOOK_SECRET + "x", "é"])
async def test_a_wrong_or_missing_secret_is_refused(
    stub: BotApiStub, webhook_bot: RunningBot, secret: str | None
) -> None:
    mark = stub.mark()
    assert await post(webhook_bot, stub.private(402, OPENER), secret=secret) == 403
    assert await post(webhook_bot, stub.private(402, "/help")) == 200
    [answer] = await stub.wait_for("sendMessage", after=mark, chat_id=402)
    assert answer.shown.startswith("Paste an opener")  # the refused opener was never coached
    assert len(stub.of("sendMessage", after=mark, chat_id=402)) == 1


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"no_update_id": true}', '{"update_id": "x"}'])
async def test_a_malformed_update_is_a_bad_request(webhook_bot: RunningBot, body: str) -> None:
    assert await post(webhook_bot, body, raw=True) == 400


async def test_a_retried_update_is_handled_once(stub: BotApiStub, webhook_bot: RunningBot) -> None:
    mark = stub.mark()
    opener = stub.private(403, OPENER)
    assert await post(webhook_bot, opener) == 200
    assert await post(webhook_bot, opener) == 200  # Telegram retries the same update
    assert await post(webhook_bot, stub.private(403, REWRITE)) == 200
    card, comparison = await stub.wait_for("sendMessage", after=mark, chat_id=403, count=2)
    assert SCORE.search(card.shown) and "Before / after" not in card.shown
    # Compared with the opener, not with a second copy of it (which would score +0).
    assert re.search(r"\(\+[1-9]\d*\)", comparison.shown), comparison.shown


async def test_health(webhook_bot: RunningBot) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{webhook_bot.settings.port}/healthz") as response,
    ):
        assert response.status == 200
        assert (await response.json())["status"] == "ok"
