"""Team coaching on Telegram, end to end: the real python-telegram-bot `Application` over
real HTTP against the stub Bot API, a real SQLite store, the real drill clock.

Time is never waited for: the clock is ticked by hand (`clock.tick(now)`) with a `now`
read from the store (a schedule's next occurrence, a run's closing time), and the
background clock of these bots ticks once an hour. Silence is checked as in test_bot.py:
after the answers that must come have come, in the same chat, never by waiting.
"""

from __future__ import annotations

import asyncio
import re
import statistics
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.channels.telegram.handlers import TelegramAdapter
from bot.channels.telegram.render import MAX_MESSAGE_CHARS, plain_text, render_reply, utf16_len
from bot.channels.telegram.team import drill_clock
from bot.channels.telegram.texts import default_telegram_strings
from bot.core.coach import Coach
from bot.core.drills import DrillLibrary
from bot.core.models import Reply, ReplyKind
from bot.core.ports import DrillSchedule
from bot.core.team import DrillClock, TeamCoach, render_drill
from bot.settings import Settings
from tests.telegram.botapi_stub import BOT_USERNAME, PNG_SIGNATURE, BotApiStub, Call
from tests.telegram.conftest import WEBHOOK_SECRET, RunningBot, bot_settings, free_port, running_bot
from tests.telegram.samples import OPENER

GROUP = -100_777
MANAGER = 301
MEMBERS = (311, 312, 313)
OUTSIDER = 320
DRILL = "company-brochure"
ANSWERS = (
    "We are the leading predictive maintenance platform. Can we book 30 minutes next week for a demo?",
    "Since the two press breakdowns last quarter, how do your shifts decide when to stop a press?",
    "How is your maintenance team planning interventions across the three shifts today?",
)
DM_LINK = f"https://t.me/{BOT_USERNAME}?start=drill"
AFTER_SCORE = re.compile(r"\b\d{1,3}/100 → (\d{1,3})/100")


def team_settings(stub: BotApiStub, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"managers": [f"telegram:{MANAGER}"], "timezone": "Europe/Paris"}
    values["clock_seconds"] = 3600.0  # the background clock ticks at start only: tests tick by hand
    values.update(overrides)
    return bot_settings(stub, data_dir, **values)


@pytest.fixture
async def team_bot(stub: BotApiStub, coach: Coach, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with running_bot(stub, team_settings(stub, tmp_path / "data"), coach) as running:
        yield running


def team_of(bot: RunningBot) -> TeamCoach:
    assert bot.flow.team is not None
    return bot.flow.team


def clock_of(bot: RunningBot) -> DrillClock:
    clock = drill_clock(bot.application)
    assert clock is not None
    return clock


async def exchange(stub: BotApiStub, update: dict[str, Any], chat_id: int, count: int = 1) -> list[Call]:
    mark = stub.mark()
    stub.push(update)
    return await stub.wait_for("sendMessage", after=mark, chat_id=chat_id, count=count)


def quoted(call: Call) -> int | None:
    parameters = call.params.get("reply_parameters") or {}
    return int(parameters["message_id"]) if "message_id" in parameters else None


async def next_fire(bot: RunningBot) -> datetime:
    [schedule] = await team_of(bot).store.schedules("telegram", str(GROUP))
    return schedule.next_run_at


# --- the acceptance story ------------------------------------------------------------------


async def test_a_scheduled_drill_is_answered_privately_and_summarised(
    stub: BotApiStub, team_bot: RunningBot
) -> None:
    command = stub.message(GROUP, MANAGER, f"/drill every monday 9:30 {DRILL}")
    [scheduled] = await exchange(stub, command, GROUP)
    assert scheduled.shown.startswith("Scheduled here") and "Monday 09:30 (Europe/Paris)" in scheduled.shown
    assert quoted(scheduled) == command["message"]["message_id"]
    [listed] = await exchange(stub, stub.message(GROUP, MANAGER, "/drill list"), GROUP)
    assert "#1" in listed.shown

    # The clock fires just after the schedule's next occurrence: one drill post, quoting nobody.
    due = await next_fire(team_bot)
    mark = stub.mark()
    assert await clock_of(team_bot).tick(due + timedelta(seconds=5)) == 1
    [post] = stub.of("sendMessage", after=mark, chat_id=GROUP)
    assert post.shown.startswith("Team drill: The company brochure") and quoted(post) is None
    assert await next_fire(team_bot) > due  # moved on to the next Monday

    # Three members reply to the post: each gets the coaching in their DM, the group nothing.
    mark = stub.mark()
    scores: list[int] = []
    for member, answer in zip(MEMBERS, ANSWERS, strict=True):
        [coached] = await exchange(stub, stub.message(GROUP, member, answer, reply_to=post.result), member)
        assert coached.shown.startswith("Your answer to the drill “The company brochure” (only you")
        assert "What a good answer shows" in coached.shown
        after = AFTER_SCORE.search(coached.shown)
        assert after is not None, coached.shown
        scores.append(int(after.group(1)))
    assert not stub.of("sendMessage", after=mark, chat_id=GROUP)

    # The drill closes: the group gets the anonymous summary.
    run = await team_of(team_bot).store.latest_open_run("telegram", str(GROUP))
    assert run is not None and run.message_ref == str(post.result["message_id"])
    assert await clock_of(team_bot).tick(run.closes_at + timedelta(seconds=1)) == 1
    [summary] = stub.of("sendMessage", after=mark, chat_id=GROUP)
    median = round(statistics.median(scores))
    assert summary.shown.startswith("Drill closed: The company brochure")
    assert f"3 answered · median score {median}/100" in summary.shown
    for member in MEMBERS:  # nobody agreed to be quoted: no answer shows
        assert not stub.of("sendMessage", after=mark, chat_id=member)[1:]
    assert not any(answer in summary.shown for answer in ANSWERS)

    # A member who is not a manager cannot post a drill.
    refused = stub.message(GROUP, OUTSIDER, "/drill now")
    [refusal] = await exchange(stub, refused, GROUP)
    assert refusal.shown.startswith("Only managers")
    assert quoted(refusal) == refused["message"]["message_id"]
    assert await team_of(team_bot).store.latest_open_run("telegram", str(GROUP)) is None


async def test_a_restart_between_scheduling_and_firing_posts_once(
    stub: BotApiStub, coach: Coach, tmp_path: Path
) -> None:
    settings = team_settings(stub, tmp_path / "data")
    async with running_bot(stub, settings, coach) as first:
        await exchange(stub, stub.message(GROUP, MANAGER, f"/drill every monday 9:30 {DRILL}"), GROUP)
        due = await next_fire(first)
    async with running_bot(stub, settings, coach) as second:  # a new process: same database
        clock = clock_of(second)
        mark = stub.mark()
        assert await clock.tick(due + timedelta(seconds=5)) == 1
        assert await clock.tick(due + timedelta(seconds=10)) == 0
        [post] = stub.of("sendMessage", after=mark, chat_id=GROUP)
        assert post.shown.startswith("Team drill:")
        # The post was attached to its run: a reply to it is an answer, coached in the DM.
        [coached] = await exchange(
            stub, stub.message(GROUP, MEMBERS[0], ANSWERS[1], reply_to=post.result), MEMBERS[0]
        )
        assert coached.shown.startswith("Your answer to the drill")
    async with running_bot(stub, settings, coach) as third:  # and again: nothing is due
        mark = stub.mark()
        assert await clock_of(third).tick(due + timedelta(seconds=15)) == 0
        assert not stub.of("sendMessage", after=mark, chat_id=GROUP)


async def test_drill_now_posts_and_members_answers_are_matched(
    stub: BotApiStub, team_bot: RunningBot
) -> None:
    command = stub.message(GROUP, MANAGER, f"/drill now {DRILL}")
    [post] = await exchange(stub, command, GROUP)
    assert post.shown.startswith("Team drill:") and quoted(post) is None
    [coached] = await exchange(
        stub, stub.message(GROUP, MEMBERS[1], ANSWERS[0], reply_to=post.result), MEMBERS[1]
    )
    assert coached.shown.startswith("Your answer to the drill")
    # A group's updates are handled in order: the post was attached before the answer came.
    run = await team_of(team_bot).store.latest_open_run("telegram", str(GROUP))
    assert run is not None and run.message_ref == str(post.result["message_id"])
    # "Why?" buttons only: the others would act on a conversation the answer is not in.
    assert coached.buttons and all(str(b["callback_data"]).startswith("x:") for b in coached.buttons)
    [closed] = await exchange(stub, stub.message(GROUP, MANAGER, "/drill close"), GROUP)
    assert closed.shown.startswith("Drill closed") and "1 answered" in closed.shown


# --- private delivery refused ----------------------------------------------------------------


async def test_a_refused_dm_gets_a_note_in_the_group_never_the_coaching(
    stub: BotApiStub, team_bot: RunningBot
) -> None:
    [post] = await exchange(stub, stub.message(GROUP, MANAGER, f"/drill now {DRILL}"), GROUP)
    member = MEMBERS[2]
    stub.forbid(member)  # never opened a chat with the bot
    answer = stub.message(GROUP, member, ANSWERS[1], language_code="fr", reply_to=post.result)
    [note] = await exchange(stub, answer, GROUP)
    [refused] = stub.of("sendMessage", chat_id=member)
    assert refused.error is not None and refused.error.startswith("Forbidden")
    expected = default_telegram_strings()["fr"].dm_needed.format(link=DM_LINK)
    assert note.shown == expected  # in the rep's language, with the link, and nothing else
    assert quoted(note) == answer["message"]["message_id"]
    assert "/100" not in note.shown and "Your answer" not in note.shown

    # The rep follows the link (/start drill), then answers again: coached privately.
    stub.allow(member)
    [ready] = await exchange(stub, stub.message(member, member, "/start drill", language_code="fr"), member)
    assert ready.shown.startswith(default_telegram_strings()["fr"].dm_ready)
    mark = stub.mark()
    again = stub.message(GROUP, member, ANSWERS[2], language_code="fr", reply_to=post.result)
    [coached] = await exchange(stub, again, member)
    assert coached.shown.startswith("Your answer to the drill")
    assert not stub.of("sendMessage", after=mark, chat_id=GROUP)
    run = await team_of(team_bot).store.latest_open_run("telegram", str(GROUP))
    assert run is not None and run.id is not None
    [kept] = await team_of(team_bot).store.run_answers(run.id)  # the latest version counts, once
    assert kept.user_id == str(member)


# --- the team report -------------------------------------------------------------------------


async def test_report_sends_the_chart_then_the_text(
    stub: BotApiStub, team_bot: RunningBot, coach: Coach, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert team_of(team_bot).report is not None  # bot/app.py wires the real builder
    await exchange(stub, stub.private(MEMBERS[0], OPENER), MEMBERS[0])  # one card this month
    command = stub.message(GROUP, MANAGER, "/report 28")
    mark = stub.mark()
    stub.push(command)
    [photo] = await stub.wait_for("sendPhoto", after=mark, chat_id=GROUP)
    [text] = await stub.wait_for("sendMessage", after=mark, chat_id=GROUP)
    upload = photo.files["photo"]
    assert upload.filename == "report.png" and upload.data.startswith(PNG_SIGNATURE)
    assert quoted(photo) == command["message"]["message_id"]
    assert photo.at < text.at and quoted(text) is None
    assert "caption" not in photo.params
    # the figures of this chat's one card, not just any text
    shown = " ".join(text.shown.split())
    assert "1 cards: 1 first versions, 0 rewrites, from 1 reps" in shown
    assert f"Median score: {coach.coach(OPENER).score}/100 for first versions" in shown
    assert "Openers that end as a real question: 0% (0 of 1)" in shown
    assert "**" not in shown


async def test_report_without_a_builder_and_for_non_managers(
    stub: BotApiStub, team_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(team_of(team_bot), "report", None)
    [usage] = await exchange(stub, stub.private(MANAGER, "/report"), MANAGER)
    assert usage.shown.startswith("Usage: /report")
    [refused] = await exchange(stub, stub.private(OUTSIDER, "/report 7"), OUTSIDER)
    assert refused.shown.startswith("Only managers")
    assert not stub.of("sendPhoto")


# --- other team commands ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language_code", "start"),
    [("fr", "Ce que je garde sur vous"), ("en", "What I keep about you")],
)
async def test_privacy_answers_in_the_users_language(
    stub: BotApiStub, team_bot: RunningBot, language_code: str, start: str
) -> None:
    user = 330
    [privacy] = await exchange(stub, stub.message(user, user, "/privacy", language_code=language_code), user)
    assert privacy.shown.startswith(start)
    [grouped] = await exchange(
        stub, stub.message(GROUP, user, "/privacy", language_code=language_code), GROUP
    )
    assert grouped.shown.startswith(start)


async def test_onboarding_and_its_status_for_managers(stub: BotApiStub, team_bot: RunningBot) -> None:
    [lesson] = await exchange(stub, stub.private(MEMBERS[0], "/onboard"), MEMBERS[0])
    assert "Step 1/" in lesson.shown
    [status] = await exchange(stub, stub.private(MANAGER, "/onboard status"), MANAGER)
    assert "1 started" in status.shown
    [refused] = await exchange(stub, stub.private(OUTSIDER, "/onboard status"), OUTSIDER)
    assert refused.shown.startswith("Only managers")


async def test_team_commands_are_known_in_groups_and_in_the_menu(team_bot: RunningBot) -> None:
    adapter = TelegramAdapter(team_bot.flow)
    for strings in default_telegram_strings().values():
        # all but /stop: a bare /stop in a group is more likely another bot's (practice is in DMs)
        assert set(strings.commands) - {"stop"} <= adapter.known_commands
    assert "stop" not in adapter.known_commands
    assert {"drill", "report", "onboard", "privacy", "share", "exercice"} <= adapter.known_commands


def test_every_shipped_drill_posts_as_one_message(coach: Coach, settings: Settings) -> None:
    """Members reply to the drill post's message: it must not be split (the first chunk
    is the one attached to the run, and a reply to a later one would not count)."""
    library = DrillLibrary.load(settings.prompts_dir / "drills")
    assert len(library) > 0
    for drill in library.all():
        ui = coach.strings(drill.lang)
        post = Reply(kind=ReplyKind.DRILL, language=ui.lang, text=render_drill(drill, ui, "2030-12-31 23:59"))
        rendered = render_reply(post, ui, default_telegram_strings()[ui.lang], owner="")
        assert len(rendered.chunks) == 1 and not rendered.keyboard, drill.id
        assert utf16_len(plain_text(rendered.chunks[0])) < MAX_MESSAGE_CHARS // 2, drill.id  # room to grow


# --- the clock runs with the bot, by polling and by webhook ----------------------------------


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_the_clock_runs_with_the_bot_and_stops_with_it(
    stub: BotApiStub, coach: Coach, tmp_path: Path, mode: str
) -> None:
    overrides: dict[str, Any] = {"clock_seconds": 0.2}
    if mode == "webhook":
        overrides |= {
            "telegram_webhook_url": "https://fournil.example.com/telegram",
            "telegram_webhook_secret": WEBHOOK_SECRET,
            "port": free_port(),
        }
    settings = team_settings(stub, tmp_path / "data", **overrides)
    async with running_bot(stub, settings, coach) as running:
        mark = stub.mark()
        await team_of(running).store.add_schedule(
            DrillSchedule(
                channel="telegram",
                chat_id=str(GROUP),
                cron="30 9 * * 1",
                timezone="Europe/Paris",
                drill_id=DRILL,
                language="en",
                created_by=str(MANAGER),
                next_run_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
        [post] = await stub.wait_for("sendMessage", after=mark, chat_id=GROUP)
        assert post.shown.startswith("Team drill:")
        tasks = [task for task in asyncio.all_tasks() if task.get_name() == "fournil-telegram-drill-clock"]
        assert len(tasks) == 1
    assert tasks[0].done() and not tasks[0].cancelled() and tasks[0].exception() is None
    assert len(stub.of("sendMessage", after=mark, chat_id=GROUP)) == 1
