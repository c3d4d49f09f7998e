"""Team coaching in the core, over a real SQLite file: the manager's story first (a drill
on a schedule, answers coached privately, an anonymous summary), then onboarding,
privacy and the edge cases. Channels are covered in tests/slack and tests/telegram."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import build_team
from bot.core.coach import Coach
from bot.core.flow import CoachingFlow
from bot.core.models import ConversationKey, IncomingMessage, Reply, ReplyKind
from bot.core.schedule import DayWords, ScheduleError, describe, next_fire, parse_schedule
from bot.core.team import DrillClock, TeamCoach, TeamConfig
from bot.settings import Settings, load_settings
from bot.store.sql import SqlStore

MANAGER = "M1"
GROUP = "G1"
WEAK = "Hi, we are the leading platform for route optimisation. Can we book 30 minutes this week?"
STRONG = "Since the new depot opened, how are your planners deciding which routes to rebalance first?"


@dataclass
class RecordingPoster:
    """The outside world: a team chat that keeps what was posted and numbers the messages."""

    posts: list[tuple[str, Reply]] = field(default_factory=list)

    async def post(self, chat_id: str, reply: Reply) -> str | None:
        self.posts.append((chat_id, reply))
        return f"msg-{len(self.posts)}"


def team_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "managers": [f"telegram:{MANAGER}"],
        "timezone": "Europe/Paris",
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
async def team_flow(coach: Coach, tmp_path: Path) -> AsyncIterator[CoachingFlow]:
    settings = team_settings(tmp_path)
    store = await SqlStore.open(settings.resolved_database_url)
    team = build_team(settings, coach, store)
    team.rng = random.Random(7)
    yield CoachingFlow(coach, store, team=team)
    await store.close()


def said(
    user: str, text: str, chat: str = GROUP, reply_to: str | None = None, group: bool = True
) -> IncomingMessage:
    key = ConversationKey(channel="telegram", user_id=user, conversation_id=chat)
    return IncomingMessage(key=key, text=text, chat_id=chat, in_group=group, reply_to=reply_to)


def team_of(flow: CoachingFlow) -> TeamCoach:
    assert flow.team is not None
    return flow.team


async def test_a_scheduled_drill_fires_is_answered_privately_and_summed_up(team_flow: CoachingFlow) -> None:
    team = team_of(team_flow)
    scheduled = await team_flow.handle(said(MANAGER, "/drill every monday 9:30"))
    assert "Monday 09:30" in scheduled.text and "Europe/Paris" in scheduled.text

    [schedule] = await team.store.schedules("telegram", GROUP)
    local = schedule.next_run_at.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 30)

    poster = RecordingPoster()
    clock = DrillClock(team, "telegram", poster)
    assert await clock.tick(schedule.next_run_at - timedelta(minutes=1)) == 0  # not yet
    assert await clock.tick(schedule.next_run_at + timedelta(seconds=5)) == 1
    chat, post = poster.posts[0]
    assert chat == GROUP and post.kind is ReplyKind.DRILL and not post.private

    answers = {"A": WEAK, "B": STRONG, "C": "How are you planning the winter routes around the new depot?"}
    replies = {
        user: await team_flow.handle(said(user, text, reply_to="msg-1")) for user, text in answers.items()
    }
    for user, reply in replies.items():
        assert reply.private, f"{user}'s coaching must not go to the team chat"
        assert reply.card is not None
    assert replies["B"].card is not None and replies["A"].card is not None
    assert replies["B"].card.score > replies["A"].card.score

    await team_flow.handle(said("B", "/share on", chat="dm-B", group=False))
    run = await team.store.latest_open_run("telegram", GROUP)
    assert run is not None
    assert await clock.tick(run.closes_at + timedelta(seconds=1)) == 1
    _, summary = poster.posts[-1]
    assert summary.kind is ReplyKind.SUMMARY
    assert "3 answered" in summary.text
    assert "Since the new depot opened" in summary.text  # B agreed to be quoted
    assert WEAK not in summary.text
    assert await clock.tick(run.closes_at + timedelta(minutes=5)) == 0  # closed once


async def test_a_non_manager_is_refused(team_flow: CoachingFlow) -> None:
    for command in ("/drill now", "/drill every monday 9:30", "/report", "/onboard status"):
        reply = await team_flow.handle(said("rep-1", command))
        assert "Only managers" in reply.text, command
    assert await team_of(team_flow).store.schedules("telegram", GROUP) == []


async def test_refusals_are_in_the_managers_language(team_flow: CoachingFlow) -> None:
    await team_flow.handle(said("rep-1", "/lang fr"))
    reply = await team_flow.handle(said("rep-1", "/drill now"))
    assert "Seuls les managers" in reply.text


async def test_a_restart_between_scheduling_and_firing_fires_once(coach: Coach, tmp_path: Path) -> None:
    settings = team_settings(tmp_path)
    first = await SqlStore.open(settings.resolved_database_url)
    flow = CoachingFlow(coach, first, team=build_team(settings, coach, first))
    await flow.handle(said(MANAGER, "/drill lundi 9h30 nagging-follow-up"))
    [schedule] = await first.schedules("telegram", GROUP)
    await first.close()

    again = await SqlStore.open(settings.resolved_database_url)
    try:
        team = build_team(settings, coach, again)
        poster = RecordingPoster()
        due = schedule.next_run_at + timedelta(seconds=30)
        assert await DrillClock(team, "telegram", poster).tick(due) == 1
        assert await DrillClock(team, "telegram", poster).tick(due + timedelta(seconds=30)) == 0
        assert [reply.kind for _, reply in poster.posts] == [ReplyKind.DRILL]
        run = await again.latest_open_run("telegram", GROUP)
        assert run is not None and run.drill_id == "nagging-follow-up" and run.message_ref == "msg-1"
    finally:
        await again.close()


async def test_a_bot_down_for_weeks_posts_once_then_waits_for_the_next_slot(team_flow: CoachingFlow) -> None:
    team = team_of(team_flow)
    await team_flow.handle(said(MANAGER, "/drill every monday 9:30"))
    [schedule] = await team.store.schedules("telegram", GROUP)
    poster = RecordingPoster()
    late = schedule.next_run_at + timedelta(weeks=3, hours=2)
    assert await DrillClock(team, "telegram", poster).tick(late) == 1
    [moved] = await team.store.schedules("telegram", GROUP)
    assert moved.next_run_at > late


async def test_drill_now_list_cancel_and_close(team_flow: CoachingFlow) -> None:
    team = team_of(team_flow)
    posted = await team_flow.handle(said(MANAGER, "/drill now meeting-ask-too-soon"))
    if posted.kind is not ReplyKind.DRILL:  # the id must exist in prompts/drills
        ids = team.drills.ids()
        posted = await team_flow.handle(said(MANAGER, f"/drill now {ids[0]}"))
    assert posted.kind is ReplyKind.DRILL and posted.drill_run is not None
    await team.attach(posted.drill_run, "post-1")
    assert (await team_flow.handle(said("A", STRONG, reply_to="post-1"))).private

    await team_flow.handle(said(MANAGER, "/drill weekdays 8:45"))
    listing = await team_flow.handle(said(MANAGER, "/drill list"))
    assert "#1" in listing.text and "08:45" in listing.text
    assert "removed" in (await team_flow.handle(said(MANAGER, "/drill cancel 1"))).text
    assert "no schedule #1" in (await team_flow.handle(said(MANAGER, "/drill cancel 1"))).text.lower()

    closed = await team_flow.handle(said(MANAGER, "/drill close"))
    assert closed.kind is ReplyKind.SUMMARY and "1 answered" in closed.text
    late = await team_flow.handle(said("B", STRONG, reply_to="post-1"))
    assert late.private and "closed" in late.text


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/drill now no-such-drill", "No drill called"),
        ("/drill every 9:30", "I need a day"),
        ("/drill every monday", "I need a time"),
        ("/drill close", "No drill is open"),
        ("/drill cancel x", "/drill now"),
        ("/drill", "/drill every monday"),
    ],
)
async def test_manager_mistakes_get_a_clear_answer(
    team_flow: CoachingFlow, command: str, expected: str
) -> None:
    reply = await team_flow.handle(said(MANAGER, command))
    assert expected in reply.text


async def test_drills_are_posted_in_a_group_not_in_a_dm(team_flow: CoachingFlow) -> None:
    reply = await team_flow.handle(said(MANAGER, "/drill now", chat="dm", group=False))
    assert "team channel or group" in reply.text


async def test_bad_input_to_a_drill_gets_a_private_explanation(team_flow: CoachingFlow) -> None:
    team = team_of(team_flow)
    posted = await team_flow.handle(said(MANAGER, "/drill now"))
    assert posted.drill_run is not None
    await team.attach(posted.drill_run, "post-9")
    for text in ("", "🙂🙂🙂", "https://example.com/x"):
        reply = await team_flow.handle(said("A", text, reply_to="post-9"))
        assert reply.private and reply.kind is ReplyKind.INVALID


async def test_answers_are_stored_redacted(team_flow: CoachingFlow) -> None:
    team = team_of(team_flow)
    posted = await team_flow.handle(said(MANAGER, "/drill now"))
    assert posted.drill_run is not None
    await team.attach(posted.drill_run, "post-2")
    text = "Hi Sarah, since the new depot opened how do your planners work? Call me on +33 6 12 34 56 78"
    await team_flow.handle(said("A", text, reply_to="post-2"))
    [answer] = await team.store.run_answers(posted.drill_run)
    assert "+33 6 12" not in answer.text and "Sarah" not in answer.text


async def test_onboarding_is_started_resumed_and_passed(team_flow: CoachingFlow) -> None:
    team = team_of(team_flow)
    first = await team_flow.handle(said("newbie", "/onboard", chat="dm-newbie", group=False))
    assert first.kind is ReplyKind.LESSON and "Step 1/" in first.text
    failed = await team_flow.handle(said("newbie", WEAK, chat="dm-newbie", group=False))
    assert "Not yet" in failed.text
    progress = await team.store.load_progress("telegram", "newbie")
    assert progress is not None and progress.step == 1 and progress.passed == []

    resumed = await team_flow.handle(said("newbie", "/onboard", chat="dm-newbie", group=False))
    assert "Step 1/" in resumed.text  # a restart of the conversation resumes, not restarts
    step = team.onboarding.step(1, "en")
    assert step is not None
    passed = await team_flow.handle(said("newbie", STRONG, chat="dm-newbie", group=False))
    assert "Step 1 passed" in passed.text, passed.text
    progress = await team.store.load_progress("telegram", "newbie")
    assert progress is not None and progress.step == 2 and progress.passed == [1]
    following = await team_flow.handle(said("newbie", "/onboard", chat="dm-newbie", group=False))
    assert "Step 2/" in following.text

    status = await team_flow.handle(said(MANAGER, "/onboard status"))
    assert "1 started" in status.text and "newbie" not in status.text


async def test_privacy_and_share(team_flow: CoachingFlow) -> None:
    privacy = await team_flow.handle(said("A", "/privacy", chat="dm-A", group=False))
    assert "90 days" in privacy.text and "/forget" in privacy.text
    assert "off" in (await team_flow.handle(said("A", "/share", chat="dm-A", group=False))).text
    await team_flow.handle(said("A", "/share on", chat="dm-A", group=False))
    assert await team_of(team_flow).store.share_consent("telegram", "A")
    french = await team_flow.handle(said("A", "/confidentialite", chat="dm-A", group=False))
    assert french.text.startswith("Ce que je garde")


async def test_forget_removes_drill_answers_progress_and_consent(team_flow: CoachingFlow) -> None:
    team = team_of(team_flow)
    posted = await team_flow.handle(said(MANAGER, "/drill now"))
    assert posted.drill_run is not None
    await team.attach(posted.drill_run, "post-3")
    await team_flow.handle(said("A", STRONG, reply_to="post-3"))
    await team_flow.handle(said("A", "/share on", chat="dm-A", group=False))
    await team_flow.handle(said("A", "/onboard", chat="dm-A", group=False))
    store = team.store
    assert isinstance(store, SqlStore)
    assert await store.count_user_rows("telegram", "A") > 0
    await team_flow.handle(said("A", "/forget", chat="dm-A", group=False))
    assert await store.count_user_rows("telegram", "A") == 0
    assert await store.run_answers(posted.drill_run) == []
    assert await store.latest_open_run("telegram", GROUP) is not None  # the team's drill stays


async def test_retention_purges_old_openers(coach: Coach, tmp_path: Path) -> None:
    settings = team_settings(tmp_path, retention_days=30)
    store = await SqlStore.open(settings.resolved_database_url)
    try:
        flow = CoachingFlow(coach, store, team=build_team(settings, coach, store))
        await flow.handle(said("A", WEAK, chat="dm-A", group=False))
        team = team_of(flow)
        assert await DrillClock(team, "telegram", RecordingPoster()).tick(datetime.now(UTC)) == 0
        assert await store.count_user_rows("telegram", "A") > 0  # recent: kept
        await team.purge(datetime.now(UTC) + timedelta(days=31))
        assert await store.load_conversation(said("A", "", chat="dm-A").key) is None
    finally:
        await store.close()


def test_team_config_reads_managers_with_or_without_channel() -> None:
    config = TeamConfig(managers=frozenset({"slack:U1", "42"}))
    assert config.is_manager("slack", "U1")
    assert not config.is_manager("telegram", "U1")
    assert config.is_manager("telegram", "42")
    assert config.is_manager("slack", "U9", platform_admin=True)
    assert not config.is_manager("slack", "U9")


EN = DayWords(
    days={"mon": ["monday", "mon"], "thu": ["thursday", "thu"], "fri": ["friday"]},
    every_day=["every day", "daily"],
    weekdays=["weekdays"],
)
FR = DayWords(
    days={"mon": ["lundi", "lundis"], "thu": ["jeudi"]}, every_day=["tous les jours"], weekdays=["en semaine"]
)


@pytest.mark.parametrize(
    ("text", "cron", "rest"),
    [
        ("every monday at 9:30", "30 9 * * mon", ""),
        ("monday 9:30 nagging-follow-up", "30 9 * * mon", "nagging-follow-up"),
        ("lundi 9h30", "30 9 * * mon", ""),
        ("tous les lundis à 9h", "0 9 * * mon", ""),
        ("mon, thu 17:05", "5 17 * * mon,thu", ""),
        ("weekdays 8:45", "45 8 * * mon-fri", ""),
        ("en semaine 8h45 x", "45 8 * * mon-fri", "x"),
        ("daily 7:00", "0 7 * * *", ""),
        ("30 9 * * 1 some-drill", "30 9 * * 1", "some-drill"),
    ],
)
def test_schedules_in_managers_words(text: str, cron: str, rest: str) -> None:
    parsed = parse_schedule(text, [EN, FR])
    assert (parsed.cron, parsed.rest) == (cron, rest)


@pytest.mark.parametrize(("text", "code"), [("friday", "time"), ("at 9:30", "day"), ("61 9 * * 1", "cron")])
def test_schedules_that_cannot_be_read(text: str, code: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text, [EN, FR])
    assert caught.value.code == code


def test_next_fire_follows_the_team_clock_across_daylight_saving() -> None:
    # Paris leaves summer time on 2026-10-25: 9:30 local is 07:30 UTC before, 08:30 after.
    before = next_fire("30 9 * * mon", "Europe/Paris", datetime(2026, 10, 13, 12, tzinfo=UTC))
    after = next_fire("30 9 * * mon", "Europe/Paris", datetime(2026, 10, 27, 12, tzinfo=UTC))
    assert (before.day, before.hour) == (19, 7)
    assert (after.day, after.hour) == (2, 8)
    exactly = next_fire("30 9 * * mon", "Europe/Paris", after)
    assert exactly - after == timedelta(weeks=1)


def test_describe_says_the_schedule_back() -> None:
    names = {"mon": "Monday", "thu": "Thursday"}
    assert describe("30 9 * * mon,thu", names, "every day at", "weekdays at") == "Monday, Thursday 09:30"
    assert describe("45 8 * * mon-fri", names, "every day at", "weekdays at") == "weekdays at 08:45"
    assert describe("*/5 * * * *", names, "every day at", "weekdays at") == "*/5 * * * *"


async def test_every_entry_point_purges_what_is_past_retention(coach: Coach, tmp_path: Path) -> None:
    from bot.app import open_flow
    from bot.core.ports import CardRecord

    settings = team_settings(tmp_path, retention_days=30)
    store = await SqlStore.open(settings.resolved_database_url)
    key = ConversationKey(channel="telegram", user_id="A", conversation_id="dm-A")
    for age in (40, 5):
        await store.record_card(
            CardRecord(
                key=key,
                language="en",
                score=50,
                categories=[],
                is_rewrite=False,
                created_at=datetime.now(UTC) - timedelta(days=age),
            )
        )
    await store.close()
    async with open_flow(settings, coach) as flow:
        cards = await flow.store.recent_cards("telegram", "A")
    assert len(cards) == 1 and cards[0].created_at is not None
    assert datetime.now(UTC) - cards[0].created_at < timedelta(days=6)


@dataclass
class RefusingPoster(RecordingPoster):
    """A team chat that no longer accepts the bot (removed from the group)."""

    refused: set[str] = field(default_factory=set)

    async def post(self, chat_id: str, reply: Reply) -> str | None:
        if chat_id in self.refused:
            return None
        return await super().post(chat_id, reply)


async def test_a_drill_that_cannot_be_posted_is_closed_and_the_manager_told(team_flow: CoachingFlow) -> None:
    team = team_of(team_flow)
    await team_flow.handle(said(MANAGER, "/drill every monday 9:30"))
    [schedule] = await team.store.schedules("telegram", GROUP)
    poster = RefusingPoster(refused={GROUP})
    assert await DrillClock(team, "telegram", poster).tick(schedule.next_run_at + timedelta(seconds=1)) == 0
    [(chat, notice)] = poster.posts
    assert chat == MANAGER and notice.private and "/drill cancel 1" in notice.text
    assert await team.store.latest_open_run("telegram", GROUP) is None  # no orphan run left open
