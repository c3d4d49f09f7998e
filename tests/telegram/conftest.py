"""Fixtures for the Telegram channel: the stub Bot API server on 127.0.0.1 and the real bot
(`build_application` + `run_application`, the code `fournil telegram` runs) pointed at it
with `TELEGRAM_API_BASE_URL`, over a real SQLite store in a temporary directory."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_flow
from bot.channels.telegram import build_application, run_application
from bot.channels.telegram.handlers import TelegramApplication
from bot.core.coach import Coach
from bot.core.flow import CoachingFlow
from bot.settings import Settings, load_settings
from tests.telegram.botapi_stub import TOKEN, BotApiStub

WEBHOOK_SECRET = "s3cret-for_the-tests"


@pytest.fixture
async def stub() -> AsyncIterator[BotApiStub]:
    async with BotApiStub() as server:
        yield server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def bot_settings(stub: BotApiStub, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": None,
        "language": "en",
        "force_language": None,
        "telegram_bot_token": TOKEN,
        "telegram_bot_token_file": None,
        "telegram_api_base_url": stub.base_url,
        "telegram_webhook_url": None,
        "telegram_webhook_secret": None,
        "telegram_webhook_secret_file": None,
        "host": "127.0.0.1",
    }
    values.update(overrides)
    return load_settings(**values)


@dataclass
class RunningBot:
    application: TelegramApplication
    flow: CoachingFlow
    settings: Settings


@asynccontextmanager
async def running_bot(stub: BotApiStub, settings: Settings, coach: Coach) -> AsyncIterator[RunningBot]:
    """The bot running (polling, or webhook when the settings say so) until the block ends;
    the bot is shut down cleanly (as on SIGTERM) when the block exits."""
    # Polling is ready once python-telegram-bot deleted any webhook (its polling loop starts
    # right after); webhook mode once the webhook is set (the server listens before that).
    ready = "setWebhook" if settings.telegram_webhook_url else "deleteWebhook"
    mark = stub.mark()
    async with open_flow(settings, coach) as flow:
        application = build_application(settings, flow)
        stop = asyncio.Event()
        task = asyncio.create_task(run_application(application, settings, stop, poll_timeout=1))
        waiter = asyncio.create_task(stub.wait_for(ready, after=mark))
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            waiter.cancel()
            task.result()  # raises what stopped the bot
            raise AssertionError("the bot stopped before it was ready")
        try:
            yield RunningBot(application, flow, settings)
        finally:
            stop.set()
            await task


@pytest.fixture
async def bot(stub: BotApiStub, coach: Coach, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with running_bot(stub, bot_settings(stub, tmp_path / "data"), coach) as running:
        yield running
