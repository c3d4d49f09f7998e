"""`run_slack` itself: Socket Mode against our websocket stub, HTTP mode on a real port,
one-line errors for missing, malformed or refused tokens, and retries across restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path

import aiohttp
import pytest

from bot.channels.slack import run_slack, slack_tokens
from bot.core.coach import Coach
from bot.core.errors import FournilError
from tests.slack.conftest import serve_slack, slack_test_settings
from tests.slack.fakes import (
    APP_TOKEN,
    BOT_TOKEN,
    SlackStub,
    all_texts,
    dm_event,
    event_callback,
    slash_command,
)

OPENER = "Hi Sarah, we are a leading provider of analytics. Would you be open to a 15-minute call?"


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _wait_ack(stub: SlackStub, envelope_id: str) -> dict[str, object]:
    async with asyncio.timeout(10):
        while True:
            for ack in stub.socket_acks:
                if ack.get("envelope_id") == envelope_id:
                    return ack
            await asyncio.sleep(0.01)


async def test_socket_mode_run(coach: Coach, stub: SlackStub, tmp_path: Path) -> None:
    settings = slack_test_settings(tmp_path, stub, slack_app_token=APP_TOKEN, slack_signing_secret=None)
    task = asyncio.create_task(run_slack(settings, coach=coach))
    try:
        await asyncio.wait_for(stub.socket_connected.wait(), 10)
        opened = stub.of("apps.connections.open")
        assert opened and all(call.token == APP_TOKEN for call in opened)

        gate = stub.gates["chat.postMessage"] = asyncio.Event()
        body = event_callback(dm_event(OPENER))
        await stub.push({"envelope_id": "env-1", "type": "events_api", "payload": body, "retry_attempt": 0})
        ack = await _wait_ack(stub, "env-1")
        assert "payload" not in ack  # a plain ack: the card comes through the Web API
        assert stub.of("chat.postMessage") == []
        gate.set()
        [card] = await stub.wait_for("chat.postMessage")
        assert card.params["blocks"][0]["text"]["text"].endswith("/100")

        # the same event again (Slack's retry over the socket) is acked and not answered twice
        await stub.push({"envelope_id": "env-2", "type": "events_api", "payload": body, "retry_attempt": 1})
        await _wait_ack(stub, "env-2")

        command = slash_command("help", stub.response_url("socket"))
        await stub.push(
            {
                "envelope_id": "env-3",
                "type": "slash_commands",
                "payload": command,
                "accepts_response_payload": True,
            }
        )
        await _wait_ack(stub, "env-3")
        [helped] = await stub.wait_for("response_url")
        assert "/fournil coach" in all_texts(helped.params["blocks"])
        assert len(stub.of("chat.postMessage")) == 1
    finally:
        await _stop(task)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_http_mode_run_serves_events_and_health(coach: Coach, stub: SlackStub, tmp_path: Path) -> None:
    port = _free_port()
    settings = slack_test_settings(tmp_path, stub, port=port)
    task = asyncio.create_task(run_slack(settings, coach=coach))
    try:
        async with aiohttp.ClientSession() as session:
            async with asyncio.timeout(20):
                while True:
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            async with session.post(f"http://127.0.0.1:{port}/slack/events", json={"type": "x"}) as response:
                assert response.status == 401  # unsigned
        assert stub.of("auth.test")  # the token was checked at start-up
    finally:
        await _stop(task)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"slack_bot_token": None}, "SLACK_BOT_TOKEN is not set"),
        ({"slack_bot_token": "xoxp-1234-user-token-value"}, "SLACK_BOT_TOKEN is malformed"),
        ({"slack_bot_token": "xoxb-1234 with spaces"}, "SLACK_BOT_TOKEN is malformed"),
        ({"slack_app_token": "xoxb-not-an-app-token"}, "SLACK_APP_TOKEN is malformed"),
        ({"slack_signing_secret": None}, "SLACK_SIGNING_SECRET is not set"),
        ({"slack_api_base_url": "127.0.0.1:9200"}, "SLACK_API_BASE_URL is malformed"),
    ],
)
async def test_token_problems_are_one_line(
    coach: Coach, stub: SlackStub, tmp_path: Path, overrides: dict[str, object], expected: str
) -> None:
    settings = slack_test_settings(tmp_path, stub, **overrides)
    with pytest.raises(FournilError) as raised:
        await run_slack(settings, coach=coach)
    message = str(raised.value)
    assert message.startswith(expected)
    assert "\n" not in message
    assert "1234" not in message  # never the token itself
    assert stub.calls == []  # nothing was sent anywhere


@pytest.mark.parametrize(
    ("failing", "expected"),
    [
        ("auth.test", "SLACK_BOT_TOKEN was refused by Slack (invalid_auth)."),
        ("apps.connections.open", "SLACK_APP_TOKEN was refused by Slack (invalid_auth)."),
    ],
)
async def test_refused_tokens_are_one_line(
    coach: Coach, stub: SlackStub, tmp_path: Path, failing: str, expected: str
) -> None:
    stub.fail[failing] = "invalid_auth"
    settings = slack_test_settings(tmp_path, stub, slack_app_token=APP_TOKEN)
    with pytest.raises(FournilError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        await asyncio.wait_for(run_slack(settings, coach=coach), 20)


async def test_unreachable_api_is_one_line(coach: Coach, stub: SlackStub, tmp_path: Path) -> None:
    settings = slack_test_settings(tmp_path, stub, slack_api_base_url=f"http://127.0.0.1:{_free_port()}/api/")
    with pytest.raises(FournilError, match="cannot reach the Slack Web API"):
        await asyncio.wait_for(run_slack(settings, coach=coach), 40)


async def test_start_up_says_nothing_about_the_token_being_unused(
    coach: Coach,
    stub: SlackStub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and warned, at every start,
    "As you gave `client` as well, `token` will be unused": noise, as the client holds it."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    settings = slack_test_settings(tmp_path, stub)
    with caplog.at_level(logging.INFO):
        async with serve_slack(settings, coach, stub) as running:
            sent = await running.sender.event(event_callback(dm_event(OPENER)))
            assert sent.status == 200
            await stub.wait_for("chat.postMessage")
    assert [r.getMessage() for r in caplog.records if "token" in r.getMessage().lower()] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_tokens_from_files(tmp_path: Path, stub: SlackStub) -> None:
    bot_file = tmp_path / "bot"
    bot_file.write_text(BOT_TOKEN + "\n", encoding="utf-8")
    app_file = tmp_path / "app"
    app_file.write_text(APP_TOKEN, encoding="utf-8")
    settings = slack_test_settings(
        tmp_path,
        stub,
        slack_bot_token=None,
        slack_bot_token_file=bot_file,
        slack_app_token_file=app_file,
        slack_signing_secret=None,
    )
    tokens = slack_tokens(settings)
    assert (tokens.bot, tokens.app, tokens.socket_mode) == (BOT_TOKEN, APP_TOKEN, True)


async def test_a_retry_after_a_restart_is_not_answered_again(
    coach: Coach, stub: SlackStub, tmp_path: Path
) -> None:
    settings = slack_test_settings(tmp_path, stub)
    body = event_callback(dm_event(OPENER))
    async with serve_slack(settings, coach, stub) as first:
        await first.sender.event(body)
        await stub.wait_for("chat.postMessage")
    async with serve_slack(settings, coach, stub) as restarted:  # the process came back
        sent = await restarted.sender.event(body, retry=1)
        assert sent.status == 200
        await restarted.app.channel.drain()
    assert len(stub.of("chat.postMessage")) == 1
