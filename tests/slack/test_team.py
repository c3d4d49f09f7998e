"""Team coaching in Slack, end to end: the real app over signed HTTP, the Web API stub on
127.0.0.1, a real SQLite file. The drill clock is ticked by hand with a `now` read from
the store: no test waits for a Monday.

The story: a manager schedules a drill in C1, the clock posts it, three members answer in
its thread and each is coached privately (ephemeral, in that thread), the clock closes it
and posts the anonymous summary; a non-manager is turned away.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.channels.slack import run_slack
from bot.channels.slack.server import build_clock
from bot.core.coach import Coach
from bot.core.ports import DrillSchedule
from bot.core.team import DrillClock, TeamCoach
from bot.settings import Settings
from bot.store.sql import SqlStore
from tests.slack.conftest import Harness, serve_slack, slack_test_settings
from tests.slack.fakes import (
    APP_TOKEN,
    BOT_USER,
    Call,
    SlackStub,
    all_texts,
    dm_event,
    event_callback,
    mention_event,
    slash_command,
    thread_reply,
)

MANAGER = "UMGR"
ADMIN = "UADMIN"
REP = "UREP"
C1 = "C1"
ANSWERS = {
    "UANS1": "Hi Paul, we are the leading platform. Can we book 30 minutes this week for a demo?",
    "UANS2": "Paul, since the new stores opened, how are your teams handling the busy Saturday mornings?",
    "UANS3": "How is your team deciding which registers to replace first across the 25 bakeries?",
}


def _texts(call: Call) -> str:
    return all_texts(call.params.get("blocks") or []) + "\n" + str(call.params.get("text") or "")


def team_settings(tmp_path: Path, stub: SlackStub, **overrides: object) -> Settings:
    values: dict[str, object] = {"managers": [f"slack:{MANAGER}"], "timezone": "Europe/Paris"}
    values.update(overrides)
    return slack_test_settings(tmp_path / "data", stub, **values)


@pytest.fixture
async def team(coach: Coach, tmp_path: Path, stub: SlackStub) -> AsyncIterator[tuple[Harness, Settings]]:
    settings = team_settings(tmp_path, stub)
    async with serve_slack(settings, coach, stub) as harness:
        yield harness, settings


def _team(harness: Harness) -> TeamCoach:
    assert harness.flow.team is not None
    return harness.flow.team


def _clock(harness: Harness, settings: Settings) -> DrillClock:
    clock = build_clock(harness.app, settings)
    assert clock is not None
    return clock


async def _slash(harness: Harness, text: str, user: str, channel: str = C1, name: str = "r") -> Call:
    """A slash command and its (ephemeral) answer through the response_url."""
    before = len(harness.stub.of("response_url"))
    await harness.sender.form(
        slash_command(text, harness.stub.response_url(name), user=user, channel=channel)
    )
    calls = await harness.stub.wait_for("response_url", before + 1)
    return calls[before]


async def _schedule(harness: Harness, settings: Settings) -> DrillSchedule:
    answer = await _slash(harness, "drill every monday 9:30", MANAGER)
    texts = _texts(answer)
    assert "Scheduled here" in texts, texts
    assert "/fournil drill list" in texts  # the core's "/drill list", as Slack users type it
    [schedule] = await _team(harness).store.schedules("slack", C1)
    assert schedule.cron == "30 9 * * mon" and schedule.timezone == "Europe/Paris"
    return schedule


# --------------------------------------------------------------------------- the story


async def test_scheduled_drill_answered_in_its_thread_and_summarised(
    team: tuple[Harness, Settings],
) -> None:
    harness, settings = team
    stub, store = harness.stub, _team(harness).store
    schedule = await _schedule(harness, settings)
    assert stub.of("chat.postMessage") == []  # scheduling posts nothing yet

    clock = _clock(harness, settings)
    assert await clock.tick(schedule.next_run_at - timedelta(seconds=1)) == 0  # not yet
    assert await clock.tick(schedule.next_run_at + timedelta(seconds=1)) == 1
    [post] = stub.of("chat.postMessage")
    assert post.params["channel"] == C1 and "thread_ts" not in post.params
    assert "Team drill" in _texts(post) and post.params["text"]  # blocks, and a fallback text
    ts = post.answer["ts"]
    run = await store.find_run("slack", C1, ts)
    assert run is not None and run.closed_at is None  # the run knows its message

    for user, text in ANSWERS.items():
        sent = await harness.sender.event(event_callback(thread_reply(text, ts, user=user, channel=C1)))
        assert sent.status == 200
    ephemeral = await stub.wait_for("chat.postEphemeral", 3)
    await harness.app.channel.drain()
    assert sorted(call.params["user"] for call in ephemeral) == sorted(ANSWERS)
    for call in ephemeral:
        assert (call.params["channel"], call.params["thread_ts"]) == (C1, ts)
        texts = _texts(call)
        assert "only you can see this" in texts and "/100" in texts
    assert len(stub.of("chat.postMessage")) == 1  # no coaching said in public
    assert stub.of("response_url")[1:] == []

    assert run.closes_at is not None
    assert await clock.tick(run.closes_at + timedelta(seconds=1)) == 1
    summary = stub.of("chat.postMessage")[1]
    assert summary.params["channel"] == C1 and "thread_ts" not in summary.params
    texts = _texts(summary)
    assert "Drill closed" in texts and "3 answered" in texts and "median score" in texts
    for answer in ANSWERS.values():  # nobody agreed to be quoted (/share on)
        assert answer not in texts
    assert await clock.tick(run.closes_at + timedelta(seconds=2)) == 0  # closed once


async def test_a_non_manager_cannot_post_a_drill(team: tuple[Harness, Settings]) -> None:
    harness, _settings = team
    answer = await _slash(harness, "drill now", REP)
    assert "Only managers" in _texts(answer)
    assert answer.params["response_type"] == "ephemeral"
    await harness.app.channel.drain()
    assert harness.stub.of("chat.postMessage") == []
    assert await _team(harness).store.latest_open_run("slack", C1) is None


async def test_a_workspace_admin_counts_as_a_manager(team: tuple[Harness, Settings]) -> None:
    harness, _settings = team
    harness.stub.admins.add(ADMIN)
    sent = await harness.sender.form(
        slash_command("drill now", harness.stub.response_url(), user=ADMIN, channel=C1)
    )
    assert sent.status == 200
    [post] = await harness.stub.wait_for("chat.postMessage")
    await harness.app.channel.drain()
    assert post.params["channel"] == C1 and "Team drill" in _texts(post)
    run = await _team(harness).store.find_run("slack", C1, post.answer["ts"])
    assert run is not None and run.opened_by == ADMIN
    assert harness.stub.of("response_url") == []  # the post is the answer
    [info] = harness.stub.of("users.info")
    assert info.params["user"] == ADMIN

    harness.stub.owners.add("UOWNER")
    await _slash(harness, "drill list", "UOWNER")
    assert "Only managers" not in _texts(harness.stub.of("response_url")[-1])


async def test_drill_now_with_an_id_and_a_manual_close(team: tuple[Harness, Settings]) -> None:
    harness, _settings = team
    ids = await _slash(harness, "drill ids", MANAGER)
    drill_id = next(line for line in _texts(ids).splitlines() if line.startswith("• ")).split()[1]
    await harness.sender.form(
        slash_command(f"drill now {drill_id}", harness.stub.response_url(), user=MANAGER, channel=C1)
    )
    [post] = await harness.stub.wait_for("chat.postMessage")
    ts = post.answer["ts"]
    text = next(iter(ANSWERS.values()))
    await harness.sender.event(event_callback(thread_reply(text, ts, user="UANS1", channel=C1)))
    await harness.stub.wait_for("chat.postEphemeral")
    await harness.sender.form(
        slash_command("drill close", harness.stub.response_url(), user=MANAGER, channel=C1)
    )
    calls = await harness.stub.wait_for("chat.postMessage", 2)
    assert calls[1].params["channel"] == C1 and "1 answered" in _texts(calls[1])  # public summary
    await harness.app.channel.drain()
    run = await _team(harness).store.find_run("slack", C1, ts)
    assert run is not None and run.drill_id == drill_id and run.closed_at is not None

    late = thread_reply("How are you choosing the first stores this year?", ts, user="UANS2", channel=C1)
    await harness.sender.event(event_callback(late))
    [_, closed] = await harness.stub.wait_for("chat.postEphemeral", 2)
    assert closed.params["user"] == "UANS2" and "This drill is closed" in _texts(closed)


async def test_a_restart_between_scheduling_and_firing_fires_once(
    coach: Coach, tmp_path: Path, stub: SlackStub
) -> None:
    settings = team_settings(tmp_path, stub)
    async with serve_slack(settings, coach, stub) as first:
        schedule = await _schedule(first, settings)
    async with serve_slack(settings, coach, stub) as restarted:  # new app, new store, same file
        now = schedule.next_run_at + timedelta(seconds=1)
        clock, replica = _clock(restarted, settings), _clock(restarted, settings)
        assert await clock.tick(now) == 1
        assert await clock.tick(now + timedelta(seconds=1)) == 0
        assert await replica.tick(now) == 0  # a second replica's clock: same store, no second post
        [post] = stub.of("chat.postMessage")
        assert post.params["channel"] == C1
        [moved] = await _team(restarted).store.schedules("slack", C1)
        assert moved.next_run_at - schedule.next_run_at == timedelta(days=7)


async def test_ordinary_channel_messages_cost_nothing(team: tuple[Harness, Settings]) -> None:
    harness, _settings = team
    chatter = [
        thread_reply("Great call today, well done!", "1700000000.000100", user="UANS1", channel=C1),
        {
            **dm_event("Lunch at noon?", user="UANS1", channel=C1),
            "channel_type": "channel",
        },  # not in a thread
        {
            **thread_reply("Private channel thread", "1700000000.000200", channel="G1"),
            "channel_type": "group",
        },
    ]
    for event in chatter:
        sent = await harness.sender.event(event_callback(event))
        assert (sent.status, sent.body) == (200, "")
    await harness.app.channel.drain()
    # Bolt checks its token once (auth.test, then cached); Fournil itself calls nothing.
    assert [call.method for call in harness.stub.calls if call.method != "auth.test"] == []


async def test_a_mention_in_a_drill_thread_is_answered_once_and_privately(
    team: tuple[Harness, Settings],
) -> None:
    harness, _settings = team
    await harness.sender.form(
        slash_command("drill now", harness.stub.response_url(), user=MANAGER, channel=C1)
    )
    [post] = await harness.stub.wait_for("chat.postMessage")
    ts = post.answer["ts"]
    text = f"<@{BOT_USER}> {ANSWERS['UANS2']}"
    mention = mention_event(text, user="UANS2", channel=C1, thread_ts=ts)
    # Slack sends both: app_mention, and message.channels for the same message.
    await harness.sender.event(event_callback(mention))
    await harness.sender.event(event_callback(thread_reply(text, ts, user="UANS2", channel=C1)))
    [answer] = await harness.stub.wait_for("chat.postEphemeral")
    await harness.app.channel.drain()
    assert len(harness.stub.of("chat.postEphemeral")) == 1
    assert (answer.params["user"], answer.params["thread_ts"]) == ("UANS2", ts)
    assert "only you can see this" in _texts(answer)
    assert len(harness.stub.of("chat.postMessage")) == 1


async def test_a_drill_where_the_bot_is_not_invited(team: tuple[Harness, Settings]) -> None:
    harness, _settings = team
    harness.stub.fail["chat.postMessage"] = "not_in_channel"
    answer = await _slash(harness, "drill now", MANAGER)
    assert "invite me" in _texts(answer)
    await harness.app.channel.drain()
    assert await _team(harness).store.latest_open_run("slack", C1) is None  # closed, no ghost summary


# --------------------------------------------------------------------------- report


async def test_report_chart_is_uploaded_to_the_managers_dm(team: tuple[Harness, Settings]) -> None:
    harness, _ = team
    assert _team(harness).report is not None  # bot/app.py wires the real builder
    await harness.sender.event(event_callback(dm_event(ANSWERS["UANS2"], user="UANS2", channel="DANS2")))
    await harness.stub.wait_for("chat.postMessage")

    note = await _slash(harness, "report 28", MANAGER, name="report")
    [(params, data)] = harness.stub.uploaded()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    [opened] = harness.stub.of("conversations.open")
    assert opened.params["users"] == MANAGER
    assert params["channel_id"] == "DMGR"  # the manager's DM, never the team channel
    assert params["initial_comment"]
    [asked] = harness.stub.of("files.getUploadURLExternal")
    assert asked.params["filename"] == "report.png" and int(asked.params["length"]) == len(data)
    assert "direct messages" in _texts(note)  # where it went, said privately

    denied = await _slash(harness, "report", REP, name="denied")
    assert "Only managers" in _texts(denied)
    assert len(harness.stub.uploaded()) == 1


async def test_report_typed_in_the_dm_is_uploaded_there(team: tuple[Harness, Settings]) -> None:
    harness, _ = team
    await harness.sender.event(event_callback(dm_event("report", user=MANAGER, channel="DMGR")))
    await harness.stub.wait_for("files.completeUploadExternal")
    await harness.app.channel.drain()
    [(params, data)] = harness.stub.uploaded()
    assert params["channel_id"] == "DMGR" and data.startswith(b"\x89PNG")
    assert harness.stub.of("conversations.open") == []  # the DM was known
    assert harness.stub.of("chat.postEphemeral") == []


# --------------------------------------------------------------------------- other commands


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        ("privacy", REP, "What I keep about you"),
        ("share on", REP, "Thank you"),
        ("partage off", REP, "ni cité ni nommé"),  # the French word answers in French
        ("onboard", REP, "onboarding path"),
        ("onboard status", REP, "Only managers"),
        ("onboard status", MANAGER, "Nobody has started"),
        ("drill", REP, "Only managers"),
        ("drill", MANAGER, "/fournil drill every monday 9:30"),
        ("drill list", MANAGER, "No drill is scheduled"),
        ("drill every day", MANAGER, "I need a time"),
        ("drill close", MANAGER, "No drill is open"),
        ("report", REP, "Only managers"),
    ],
)
async def test_team_slash_commands(
    team: tuple[Harness, Settings], text: str, user: str, expected: str
) -> None:
    harness, _settings = team
    answer = await _slash(harness, text, user)
    assert expected in _texts(answer)
    assert answer.params["response_type"] == "ephemeral"
    await harness.app.channel.drain()
    assert harness.stub.of("chat.postMessage") == []


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        ("share on", REP, "Thank you"),
        ("privacy", REP, "What I keep about you"),
        ("onboard status", MANAGER, "onboarding"),
        ("drill now", MANAGER, "team channel"),  # a drill needs a channel, not a DM
    ],
)
async def test_team_commands_typed_in_the_dm(
    team: tuple[Harness, Settings], text: str, user: str, expected: str
) -> None:
    harness, _settings = team
    await harness.sender.event(event_callback(dm_event(text, user=user, channel="D" + user[1:])))
    [answer] = await harness.stub.wait_for("chat.postMessage")
    assert answer.params["channel"] == "D" + user[1:]
    assert expected in _texts(answer)


async def test_the_users_info_lookup_is_cached(team: tuple[Harness, Settings]) -> None:
    harness, _settings = team
    harness.stub.admins.add(ADMIN)
    await _slash(harness, "drill list", ADMIN, name="a")
    await _slash(harness, "drill list", ADMIN, name="b")
    assert len(harness.stub.of("users.info")) == 1


# --------------------------------------------------------------------------- the clock in run_slack


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("mode", ["http", "socket"])
async def test_run_slack_runs_the_drill_clock_and_stops_it(
    coach: Coach, stub: SlackStub, tmp_path: Path, mode: str
) -> None:
    overrides: dict[str, object] = {"clock_seconds": 0.05, "port": _free_port()}
    if mode == "socket":
        overrides |= {"slack_app_token": APP_TOKEN, "slack_signing_secret": None}
    settings = team_settings(tmp_path, stub, **overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await SqlStore.open(settings.resolved_database_url)
    try:
        await store.add_schedule(
            DrillSchedule(
                channel="slack",
                chat_id=C1,
                cron="30 9 * * mon",
                timezone="Europe/Paris",
                language="en",
                created_by=MANAGER,
                next_run_at=datetime.now(UTC) - timedelta(minutes=1),  # due: fires at start
            )
        )
    finally:
        await store.close()

    task = asyncio.create_task(run_slack(settings, coach=coach))
    try:
        [post] = await stub.wait_for("chat.postMessage", within=30)
        assert post.params["channel"] == C1 and "Team drill" in _texts(post)
        await asyncio.sleep(0.2)  # several more ticks: still one post
        assert len(stub.of("chat.postMessage")) == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    leftovers = [t for t in asyncio.all_tasks() if t.get_name() == "fournil-slack-drill-clock"]
    assert leftovers == []
    store = await SqlStore.open(settings.resolved_database_url)
    try:
        run = await store.latest_open_run("slack", C1)
        assert run is not None and run.message_ref == post.answer["ts"]
    finally:
        await store.close()
