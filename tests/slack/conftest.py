"""Slack fixtures: our Slack stub and the real app, both on 127.0.0.1, random ports.

The app is the one `fournil slack` runs in HTTP mode (`build_app` + `build_web_app`),
served by aiohttp over a real SQLite file in tmp_path; requests reach it signed, over
HTTP, and its Web API calls reach the stub over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import open_flow
from bot.channels.slack import build_app, build_web_app
from bot.channels.slack.server import FournilSlackApp
from bot.core.coach import Coach
from bot.core.flow import CoachingFlow
from bot.settings import Settings, load_settings
from tests.slack.fakes import BOT_TOKEN, SECRET, SlackSender, SlackStub


@dataclass
class Harness:
    stub: SlackStub
    app: FournilSlackApp
    flow: CoachingFlow
    sender: SlackSender
    url: str


def slack_test_settings(data_dir: Path, stub: SlackStub, **overrides: object) -> Settings:
    """Settings for one test; explicit values so a developer's SLACK_* env never leaks in."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": None,
        "language": "en",
        "force_language": None,
        "slack_bot_token": BOT_TOKEN,
        "slack_bot_token_file": None,
        "slack_signing_secret": SECRET,
        "slack_signing_secret_file": None,
        "slack_app_token": None,
        "slack_app_token_file": None,
        "slack_api_base_url": stub.base_url,
        "host": "127.0.0.1",
        "port": 0,
    }
    values.update(overrides)
    return load_settings(**values)


@asynccontextmanager
async def serve_slack(settings: Settings, coach: Coach, stub: SlackStub) -> AsyncIterator[Harness]:
    """The HTTP-mode app on 127.0.0.1:random, over the settings' SQLite file."""
    async with open_flow(settings, coach) as flow:
        app = build_app(settings, flow)
        runner = web.AppRunner(build_web_app(app), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        sender = SlackSender(f"{url}/slack/events")
        try:
            yield Harness(stub=stub, app=app, flow=flow, sender=sender, url=url)
        finally:
            await sender.close()
            await runner.cleanup()  # waits for the answers in flight


@pytest.fixture
async def stub() -> AsyncIterator[SlackStub]:
    started = await SlackStub().start()
    yield started
    await started.close()


@pytest.fixture
def slack_settings(tmp_path: Path, stub: SlackStub) -> Settings:
    return slack_test_settings(tmp_path / "data", stub)


@pytest.fixture
async def slack(coach: Coach, slack_settings: Settings, stub: SlackStub) -> AsyncIterator[Harness]:
    async with serve_slack(slack_settings, coach, stub) as harness:
        yield harness
