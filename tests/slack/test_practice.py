"""Practice in Slack, end to end: the real app over signed HTTP, the Web API stub on
127.0.0.1, a real SQLite file. The rep's story (`/fournil practice ID` typed in a channel
runs in the DM, two turns, the app restarted on the same database mid-session, a third
turn, `stop` and the debrief, then normal coaching), the App Home button, a manager's
practice drill and its button, and /forget.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.channels.slack.blocks import ACTION_PRACTICE, ANY_BUYER
from bot.channels.slack.strings import strings_for
from bot.core.coach import Coach
from bot.settings import Settings
from bot.store.sql import SqlStore
from tests.slack.conftest import Harness, serve_slack, slack_test_settings
from tests.slack.fakes import (
    APP_ID,
    TEAM,
    Call,
    SlackStub,
    all_texts,
    block_action,
    dm_event,
    event_callback,
    slash_command,
)

REP = "UREP"
DM = "DREP"  # what the stub's conversations.open answers for UREP
MANAGER = "UMGR"
C1 = "C1"
DRILL = "fifteen-minute-demo"
PITCH = (
    "Hi Claire, we are the leading HR platform for multi-site businesses, trusted by 300 brands. "
    "Can I get 15 minutes next week for a quick demo?"
)
OPEN_1 = (
    "You opened eight clubs in a year and list twenty job ads: how is the HR team keeping up with the hiring?"
)
OPEN_2 = "A third of new receptionists gone within two months: what do they say when they leave?"


def texts_of(call: Call) -> str:
    return all_texts(call.params.get("blocks") or []) + "\n" + str(call.params.get("text") or "")


def practice_settings(tmp_path: Path, stub: SlackStub) -> Settings:
    return slack_test_settings(tmp_path / "data", stub, managers=[f"slack:{MANAGER}"])


@pytest.fixture
async def slack_team(coach: Coach, tmp_path: Path, stub: SlackStub) -> AsyncIterator[Harness]:
    async with serve_slack(practice_settings(tmp_path, stub), coach, stub) as harness:
        yield harness


def posts_to(stub: SlackStub, channel: str) -> list[Call]:
    return [call for call in stub.of("chat.postMessage") if call.params.get("channel") == channel]


async def next_post(stub: SlackStub, channel: str, action: Any) -> Call:
    """Runs `action` (a request to the app) and returns the next message posted to `channel`."""
    before = len(posts_to(stub, channel))
    await action
    deadline = time.monotonic() + 15.0
    while len(posts_to(stub, channel)) <= before:
        assert time.monotonic() < deadline, [c.method for c in stub.calls]
        await asyncio.sleep(0.01)
    return posts_to(stub, channel)[before]


def in_dm(harness: Harness, text: str) -> Any:
    return harness.sender.event(event_callback(dm_event(text, user=REP, channel=DM)))


def store_of(harness: Harness) -> SqlStore:
    assert isinstance(harness.flow.store, SqlStore)
    return harness.flow.store


async def sessions_of(harness: Harness, user: str) -> int:
    now = datetime.now(UTC)
    found = await store_of(harness).practice_between(now - timedelta(days=1), now + timedelta(days=1))
    return sum(record.key.user_id == user for record in found)


async def test_a_practice_from_a_channel_runs_in_the_dm_and_survives_a_restart(
    coach: Coach, tmp_path: Path, stub: SlackStub
) -> None:
    settings = practice_settings(tmp_path, stub)
    async with serve_slack(settings, coach, stub) as slack:
        command = slash_command(f"practice {DRILL}", stub.response_url("p"), user=REP, channel=C1)
        intro = await next_post(stub, DM, slack.sender.form(command))
        assert "Practice: HR director, A chain of fitness clubs" in texts_of(intro)
        assert "Send /fournil stop to end the practice" in texts_of(intro)  # as Slack users type it
        [note] = await stub.wait_for("response_url")  # in the channel, for the rep only
        assert all_texts(note.params["blocks"]) == strings_for("en").practice_in_dm
        first = await next_post(stub, DM, in_dm(slack, PITCH))
        assert texts_of(first).startswith("*Buyer* · "), texts_of(first)
        second = await next_post(stub, DM, in_dm(slack, OPEN_1))
        assert texts_of(second).startswith("*Buyer* · opens up"), texts_of(second)

    async with serve_slack(settings, coach, stub) as slack:  # a new process, the same database
        third = await next_post(stub, DM, in_dm(slack, OPEN_2))
        assert texts_of(third).startswith("*Buyer* · opens up"), texts_of(third)
        assert "You picked up their words (third, receptionists, gone)" in texts_of(third)
        debrief = texts_of(await next_post(stub, DM, in_dm(slack, "stop")))
        assert debrief.startswith("*Debrief*")
        for turn in ("Turn 1: ", "Turn 2: ", "Turn 3: "):
            assert turn in debrief
        assert "What opened the buyer: at turn 2" in debrief and "/fournil practice" in debrief
        card = await next_post(stub, DM, in_dm(slack, PITCH))  # normal coaching again
        assert "Conversation score" in texts_of(card)
        assert await sessions_of(slack, REP) == 1


def home_click(user: str, value: str) -> dict[str, Any]:
    """The App Home's button, as Slack sends it (a view container, no channel)."""
    return {
        "type": "block_actions",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.trigger",
        "team": {"id": TEAM, "domain": "stub"},
        "user": {"id": user, "name": "rep", "team_id": TEAM},
        "api_app_id": APP_ID,
        "container": {"type": "view", "view_id": "V0000STUB"},
        "view": {"id": "V0000STUB", "type": "home"},
        "actions": [{"type": "button", "action_id": ACTION_PRACTICE, "block_id": "b1", "value": value}],
    }


async def test_the_app_home_button_starts_a_practice_in_the_dm(slack_team: Harness) -> None:
    stub = slack_team.stub
    stub.locales[REP] = "fr-FR"
    await slack_team.sender.event(event_callback({"type": "app_home_opened", "user": REP, "tab": "home"}))
    [published] = await stub.wait_for("views.publish")
    buttons = [
        block["accessory"]
        for block in published.params["view"]["blocks"]
        if block.get("accessory", {}).get("action_id") == ACTION_PRACTICE
    ]
    assert [b["value"] for b in buttons] == [ANY_BUYER]
    assert buttons[0]["text"]["text"] == strings_for("fr").practice_button
    intro = await next_post(stub, DM, slack_team.sender.interactive(home_click(REP, ANY_BUYER)))
    assert "Entraînement : " in texts_of(intro)  # a buyer drawn at random, in the rep's language
    assert not stub.of("chat.postEphemeral") and not stub.of("response_url")
    assert await sessions_of(slack_team, REP) == 1


async def test_a_practice_drill_is_posted_with_its_button(slack_team: Harness) -> None:
    stub = slack_team.stub
    command = slash_command(f"drill now {DRILL} practice", stub.response_url("d"), user=MANAGER, channel=C1)
    post = await next_post(stub, C1, slack_team.sender.form(command))
    assert "Team drill: " in texts_of(post) and f"/fournil practice {DRILL}" in texts_of(post)
    [actions] = [block for block in post.params["blocks"] if block["type"] == "actions"]
    [button] = actions["elements"]
    assert (button["action_id"], button["value"]) == (ACTION_PRACTICE, DRILL)
    # A member presses it under the post: the practice starts in their DM, a note in C1.
    click = block_action(ACTION_PRACTICE, DRILL, user=REP, channel=C1)
    intro = await next_post(stub, DM, slack_team.sender.interactive(click))
    assert "Practice: HR director" in texts_of(intro)
    [note] = await stub.wait_for("chat.postEphemeral")
    assert note.params["channel"] == C1 and note.params["user"] == REP
    assert all_texts(note.params["blocks"]) == strings_for("en").practice_in_dm


async def test_forget_deletes_the_practice(slack_team: Harness) -> None:
    stub = slack_team.stub
    await next_post(stub, DM, in_dm(slack_team, f"practice {DRILL}"))  # typed in the DM, no slash
    await next_post(stub, DM, in_dm(slack_team, OPEN_1))
    assert await sessions_of(slack_team, REP) == 1
    await slack_team.sender.form(slash_command("forget", stub.response_url("f"), user=REP, channel=C1))
    [done] = await stub.wait_for("response_url")
    assert "I deleted everything" in texts_of(done)
    assert await store_of(slack_team).count_user_rows("slack", REP) == 0
    card = await next_post(stub, DM, in_dm(slack_team, OPEN_1))  # no buyer any more: a card
    assert "Conversation score" in texts_of(card)
