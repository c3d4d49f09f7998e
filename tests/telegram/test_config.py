"""Configuration problems are one-line `FournilError`s that never show the token; the
application is built the way the settings say (self-hosted API URL, rate limiter)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.app import open_flow
from bot.channels.telegram import build_application, run_application, run_telegram
from bot.channels.telegram.app import bot_token, file_base_url, webhook_secret
from bot.channels.telegram.throughput import ChatOrderedProcessor, FournilRateLimiter
from bot.core.coach import Coach
from bot.core.errors import FournilError
from tests.telegram.botapi_stub import TOKEN, BotApiStub
from tests.telegram.conftest import bot_settings, free_port


def one_line_error(error: pytest.ExceptionInfo[FournilError], *secrets: str) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    assert all(secret not in message for secret in secrets if secret)
    return message


async def test_a_missing_token_is_one_line(stub: BotApiStub, tmp_path: Path) -> None:
    settings = bot_settings(stub, tmp_path, telegram_bot_token=None)
    with pytest.raises(FournilError) as error:
        await run_telegram(settings)
    assert "TELEGRAM_BOT_TOKEN is not set" in one_line_error(error)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "   ",
        "not-a-token",
        "123456789",
        "123456789:short",
        "abc:AAEhBP0av28AAEhBP0av28AAEhBP0av28x",
        "123456789:AAEhBP0av28 AAEhBP0av28AAEhBP0av28x",
        "123456789:AAEhBP0av28AAEhBP0av28AAEhBP0av28x\nsecond line",
    ],
)
def test_a_malformed_token_is_one_line(stub: BotApiStub, tmp_path: Path, token: str) -> None:
    with pytest.raises(FournilError) as error:
        bot_token(bot_settings(stub, tmp_path, telegram_bot_token=token))
    assert "TELEGRAM_BOT_TOKEN" in one_line_error(error, token.strip())


def test_the_token_may_come_from_a_file(stub: BotApiStub, tmp_path: Path) -> None:
    secret_file = tmp_path / "telegram-token"
    secret_file.write_text(TOKEN + "\n", encoding="utf-8")
    settings = bot_settings(stub, tmp_path, telegram_bot_token=None, telegram_bot_token_file=secret_file)
    assert bot_token(settings) == TOKEN


async def test_a_token_telegram_rejects_is_one_line(stub: BotApiStub, coach: Coach, tmp_path: Path) -> None:
    other = "987654321:AAEhBP0av28AAEhBP0av28AAEhBP0av28x"
    settings = bot_settings(stub, tmp_path, telegram_bot_token=other)
    warmed: list[bool] = []

    async def warm_up() -> None:
        warmed.append(True)

    async with open_flow(settings, coach) as flow:
        with pytest.raises(FournilError) as error:
            application = build_application(settings, flow)
            await run_application(application, settings, asyncio.Event(), before_start=warm_up)
    assert "rejected TELEGRAM_BOT_TOKEN" in one_line_error(error, other)
    assert not warmed  # no slow start before the token is known to work


async def test_an_unreachable_api_is_one_line(stub: BotApiStub, coach: Coach, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/bot"
    settings = bot_settings(stub, tmp_path, telegram_api_base_url=closed)
    async with open_flow(settings, coach) as flow:
        with pytest.raises(FournilError) as error:
            await run_application(build_application(settings, flow), settings, asyncio.Event())
    assert "cannot reach the Telegram Bot API" in one_line_error(error, TOKEN)


@pytest.mark.parametrize(("secret", "problem"), [(None, "is required"), ("has spaces", "is malformed")])
def test_webhook_mode_needs_a_well_formed_secret(
    stub: BotApiStub, tmp_path: Path, secret: str | None, problem: str
) -> None:
    settings = bot_settings(
        stub, tmp_path, telegram_webhook_url="https://x.example/telegram", telegram_webhook_secret=secret
    )
    with pytest.raises(FournilError) as error:
        webhook_secret(settings)
    assert problem in one_line_error(error)


@pytest.mark.parametrize(
    ("base_url", "file_url"),
    [
        ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/file/bot"),
        ("https://api.telegram.org/bot", "https://api.telegram.org/file/bot"),
        ("http://proxy.local/tg/bot/", "http://proxy.local/tg/file/bot"),
        ("http://127.0.0.1:8081/bot{token}", "http://127.0.0.1:8081/file/bot{token}"),
    ],
)
def test_file_url_follows_the_api_url(base_url: str, file_url: str) -> None:
    assert file_base_url(base_url) == file_url


async def test_the_application_uses_the_configured_api_and_limits(
    stub: BotApiStub, coach: Coach, tmp_path: Path
) -> None:
    settings = bot_settings(stub, tmp_path)
    async with open_flow(settings, coach) as flow:
        application = build_application(settings, flow)
    assert application.bot.base_url == f"{stub.base_url}{TOKEN}"
    assert application.bot.base_file_url == f"{stub.base_file_url}{TOKEN}"
    assert isinstance(application.bot.rate_limiter, FournilRateLimiter)
    assert isinstance(application.update_processor, ChatOrderedProcessor)
