"""Team data in the store (drills, schedules, onboarding, consent, team figures), on every
backend: the same calls must give the same answers in memory, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from bot.core.models import ConversationKey
from bot.core.ports import (
    CardRecord,
    ConversationState,
    DrillAnswer,
    DrillRun,
    DrillSchedule,
    OnboardingProgress,
)
from bot.store.sql import SqlStore
from tests.store.conftest import Store

MONDAY_9 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Paris
NEXT_MONDAY_9 = MONDAY_9 + timedelta(days=7)


def weekly(chat_id: str = "C1", created_by: str = "M1", next_run_at: datetime = MONDAY_9) -> DrillSchedule:
    return DrillSchedule(
        channel="slack",
        chat_id=chat_id,
        cron="0 9 * * 1",
        timezone="Europe/Paris",
        drill_id=None,
        language="fr",
        created_by=created_by,
        next_run_at=next_run_at,
    )


def drill(chat_id: str = "C1", drill_id: str = "d1", opened_at: datetime = MONDAY_9) -> DrillRun:
    return DrillRun(
        channel="slack",
        chat_id=chat_id,
        drill_id=drill_id,
        language="fr",
        opened_by="M1",
        opened_at=opened_at,
        closes_at=opened_at + timedelta(hours=24),
    )


def answer(run_id: int, user_id: str, text: str, score: int = 50, at: datetime | None = None) -> DrillAnswer:
    return DrillAnswer(
        run_id=run_id,
        channel="slack",
        user_id=user_id,
        text=text,
        score=score,
        categories=["closed_question"] if score < 60 else [],
        has_question=score >= 60,
        created_at=at,
    )


def card(user_id: str, at: datetime, score: int, has_question: bool, channel: str = "slack") -> CardRecord:
    return CardRecord(
        key=ConversationKey(channel=channel, user_id=user_id, conversation_id="c1"),
        language="en",
        score=score,
        categories=[] if has_question else ["no_question"],
        is_rewrite=False,
        has_question=has_question,
        created_at=at,
    )


# --- the manager's stories -------------------------------------------------------------


async def test_manager_schedules_a_weekly_drill_that_comes_due(store: Store) -> None:
    added = await store.add_schedule(weekly())
    assert added.id is not None
    assert added.model_dump(exclude={"id"}) == weekly().model_dump(exclude={"id"})
    await store.add_schedule(weekly(chat_id="C2"))

    assert [s.id for s in await store.schedules("slack", "C1")] == [added.id]
    assert await store.due_schedules(MONDAY_9 - timedelta(seconds=1)) == []
    due = await store.due_schedules(MONDAY_9)
    assert [s.chat_id for s in due] == ["C1", "C2"]
    assert due[0].next_run_at == MONDAY_9 and due[0].next_run_at.tzinfo is not None

    assert await store.advance_schedule(added.id, MONDAY_9, NEXT_MONDAY_9)
    assert [s.chat_id for s in await store.due_schedules(MONDAY_9 + timedelta(hours=1))] == ["C2"]
    assert (await store.schedules("slack", "C1"))[0].next_run_at == NEXT_MONDAY_9

    assert not await store.remove_schedule("slack", "C2", added.id)  # not that chat's schedule
    assert await store.remove_schedule("slack", "C1", added.id)
    assert not await store.remove_schedule("slack", "C1", added.id)
    assert await store.schedules("slack", "C1") == []


async def test_an_occurrence_is_advanced_once(store: Store) -> None:
    schedule = await store.add_schedule(weekly())
    assert schedule.id is not None
    assert await store.advance_schedule(schedule.id, MONDAY_9, NEXT_MONDAY_9)
    # A second worker that read the same occurrence loses: it must not post it again.
    assert not await store.advance_schedule(schedule.id, MONDAY_9, NEXT_MONDAY_9)
    assert not await store.advance_schedule(schedule.id + 1000, MONDAY_9, NEXT_MONDAY_9)
    assert (await store.schedules("slack", "C1"))[0].next_run_at == NEXT_MONDAY_9


async def test_advance_compares_instants_not_time_zones(store: Store) -> None:
    schedule = await store.add_schedule(weekly())
    assert schedule.id is not None
    paris = MONDAY_9.astimezone(timezone(timedelta(hours=1)))
    assert await store.advance_schedule(schedule.id, paris, NEXT_MONDAY_9)


async def test_a_drill_is_posted_answered_and_closed(store: Store) -> None:
    run = await store.open_run(drill())
    assert run.id is not None and run.closed_at is None and run.message_ref is None
    await store.set_run_message(run.id, "1712.0001")
    assert await store.find_run("slack", "C1", "1712.0001") == run.model_copy(
        update={"message_ref": "1712.0001"}
    )
    assert await store.find_run("slack", "C2", "1712.0001") is None
    assert await store.find_run("slack", "C1", "other") is None

    latest = await store.latest_open_run("slack", "C1")
    assert latest is not None and latest.id == run.id
    assert await store.due_runs(run.closes_at - timedelta(seconds=1)) == []
    assert [r.id for r in await store.due_runs(run.closes_at)] == [run.id]

    closed_at = run.closes_at + timedelta(minutes=1)
    assert await store.close_run(run.id, closed_at)
    assert not await store.close_run(run.id, closed_at + timedelta(minutes=1))  # already closed
    assert await store.due_runs(closed_at) == []
    assert await store.latest_open_run("slack", "C1") is None
    found = await store.find_run("slack", "C1", "1712.0001")
    assert found is not None and found.closed_at == closed_at


async def test_latest_open_run_is_the_newest_open_one(store: Store) -> None:
    older = await store.open_run(drill(drill_id="d1", opened_at=MONDAY_9))
    newer = await store.open_run(drill(drill_id="d2", opened_at=MONDAY_9 + timedelta(hours=1)))
    await store.open_run(drill(chat_id="C2", drill_id="d3", opened_at=MONDAY_9 + timedelta(hours=2)))
    assert newer.id is not None and older.id is not None
    latest = await store.latest_open_run("slack", "C1")
    assert latest is not None and latest.drill_id == "d2"
    await store.close_run(newer.id, MONDAY_9 + timedelta(hours=3))
    latest = await store.latest_open_run("slack", "C1")
    assert latest is not None and latest.id == older.id


async def test_recent_drill_ids_newest_first_per_chat(store: Store) -> None:
    for day, drill_id in enumerate(["d1", "d2", "d3", "d4"]):
        await store.open_run(drill(drill_id=drill_id, opened_at=MONDAY_9 + timedelta(days=day)))
    await store.open_run(drill(chat_id="C2", drill_id="elsewhere"))
    assert await store.recent_drill_ids("slack", "C1") == ["d4", "d3", "d2", "d1"]
    assert await store.recent_drill_ids("slack", "C1", limit=2) == ["d4", "d3"]
    assert await store.recent_drill_ids("slack", "C3") == []


async def test_a_member_answer_replaces_their_previous_one(store: Store) -> None:
    run = await store.open_run(drill())
    other = await store.open_run(drill(drill_id="d2"))
    assert run.id is not None and other.id is not None
    first = MONDAY_9 + timedelta(minutes=5)
    await store.save_answer(answer(run.id, "U1", "Are you free?", score=30, at=first))
    await store.save_answer(answer(run.id, "U2", "What changed since Lyon?", score=80, at=first))
    await store.save_answer(answer(other.id, "U1", "Elsewhere", at=first))
    await store.save_answer(
        answer(run.id, "U1", "How do you split picking?", score=85, at=first + timedelta(minutes=10))
    )

    answers = await store.run_answers(run.id)
    assert [(a.user_id, a.text, a.score, a.has_question) for a in answers] == [
        ("U2", "What changed since Lyon?", 80, True),
        ("U1", "How do you split picking?", 85, True),
    ]
    assert answers[1].categories == [] and answers[1].created_at == first + timedelta(minutes=10)
    assert len(await store.run_answers(other.id)) == 1
    assert await store.run_answers(other.id + run.id + 1000) == []


async def test_an_answer_without_time_is_stamped_now(store: Store) -> None:
    run = await store.open_run(drill())
    assert run.id is not None
    before = datetime.now(UTC) - timedelta(seconds=1)
    await store.save_answer(answer(run.id, "U1", "What changed?"))
    stamped = (await store.run_answers(run.id))[0].created_at
    assert stamped is not None and before <= stamped <= datetime.now(UTC) + timedelta(seconds=1)


async def test_onboarding_progress_round_trip(store: Store) -> None:
    assert await store.load_progress("telegram", "42") is None
    started = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    await store.save_progress(OnboardingProgress(channel="telegram", user_id="42", started_at=started))
    progress = await store.load_progress("telegram", "42")
    assert progress == OnboardingProgress(
        channel="telegram", user_id="42", step=1, passed=[], started_at=started
    )

    finished = started + timedelta(days=3)
    # A later save without `started_at` keeps the first one.
    await store.save_progress(
        OnboardingProgress(channel="telegram", user_id="42", step=4, passed=[1, 2, 3], finished_at=finished)
    )
    progress = await store.load_progress("telegram", "42")
    assert progress is not None
    assert (progress.step, progress.passed, progress.started_at, progress.finished_at) == (
        4,
        [1, 2, 3],
        started,
        finished,
    )

    await store.save_progress(OnboardingProgress(channel="telegram", user_id="43", step=2, passed=[1]))
    await store.save_progress(OnboardingProgress(channel="slack", user_id="42"))
    everyone = await store.all_progress("telegram")
    assert [(p.user_id, p.step) for p in everyone] == [("42", 4), ("43", 2)]
    assert everyone[1].started_at is not None and everyone[1].started_at.tzinfo is not None


async def test_share_consent_is_opt_in(store: Store) -> None:
    assert not await store.share_consent("slack", "U1")
    assert await store.consenting_users() == set()
    await store.set_language_preference("slack", "U1", "fr")
    await store.set_share_consent("slack", "U1", True)
    await store.set_share_consent("telegram", "7", True)
    await store.set_share_consent("slack", "U2", False)
    assert await store.share_consent("slack", "U1")
    assert not await store.share_consent("slack", "U2")
    assert await store.language_preference("slack", "U1") == "fr"  # one does not clobber the other
    await store.set_language_preference("slack", "U1", "en")
    assert await store.share_consent("slack", "U1")
    assert await store.consenting_users() == {("slack", "U1"), ("telegram", "7")}
    assert await store.consenting_users("slack") == {("slack", "U1")}
    await store.set_share_consent("slack", "U1", False)
    assert await store.consenting_users("slack") == set()


async def test_cards_between_is_a_half_open_window_in_time_order(store: Store) -> None:
    week = MONDAY_9
    await store.record_card(card("U1", week + timedelta(days=2), 70, True))
    await store.record_card(card("U2", week, 40, False))  # on the start: in
    await store.record_card(card("U1", week - timedelta(seconds=1), 90, True))  # before: out
    await store.record_card(card("U3", week + timedelta(days=7), 90, True))  # on the end: out
    await store.record_card(card("7", week + timedelta(days=1), 55, True, channel="telegram"))

    cards = await store.cards_between(week, week + timedelta(days=7))
    assert [(c.key.user_id, c.score, c.has_question) for c in cards] == [
        ("U2", 40, False),
        ("7", 55, True),
        ("U1", 70, True),
    ]
    assert cards[0].created_at == week and cards[0].created_at.tzinfo is not None
    assert cards[0].categories == ["no_question"]
    slack = await store.cards_between(week, week + timedelta(days=7), channel="slack")
    assert [c.key.user_id for c in slack] == ["U2", "U1"]


async def test_recent_cards_keep_has_question(store: Store) -> None:
    await store.record_card(card("U1", MONDAY_9, 40, False))
    await store.record_card(card("U1", MONDAY_9 + timedelta(minutes=1), 80, True))
    recent = await store.recent_cards("slack", "U1")
    assert [(c.score, c.has_question) for c in recent] == [(80, True), (40, False)]


async def test_conversation_and_events_on_every_backend(store: Store) -> None:
    key = ConversationKey(channel="slack", user_id="U1", conversation_id="D1")
    assert await store.load_conversation(key) is None
    await store.save_conversation(
        ConversationState(key=key, stage="awaiting_rewrite", versions=["Réécris-moi ça ?"], language="fr")
    )
    await store.save_conversation(
        ConversationState(key=key, stage="awaiting_rewrite", versions=["v1", "v2"], language="fr")
    )
    state = await store.load_conversation(key)
    assert state is not None and state.versions == ["v1", "v2"] and state.stage == "awaiting_rewrite"
    assert state.updated_at is not None and state.updated_at.tzinfo is not None
    assert await store.claim_event("slack", "Ev1")
    assert not await store.claim_event("slack", "Ev1")
    assert await store.claim_event("telegram", "Ev1")


# --- SQL only: time zones and races between processes ------------------------------------


async def test_times_come_back_as_aware_utc(sql_url: str) -> None:
    store = await SqlStore.open(sql_url)
    try:
        paris = timezone(timedelta(hours=1))
        added = await store.add_schedule(weekly(next_run_at=datetime(2026, 3, 2, 9, 0, tzinfo=paris)))
        stored = (await store.schedules("slack", "C1"))[0]
        assert stored.next_run_at == added.next_run_at == MONDAY_9
        assert stored.next_run_at.utcoffset() == timedelta(0)
        with pytest.raises((ValueError, StatementError), match="naive datetime"):
            await store.due_schedules(datetime(2026, 3, 2, 9, 0))  # no time zone: refused
    finally:
        await store.close()


async def test_two_processes_advance_one_occurrence_once(sql_url: str) -> None:
    first = await SqlStore.open(sql_url)
    second = await SqlStore.open(sql_url)
    try:
        schedule = await first.add_schedule(weekly())
        assert schedule.id is not None
        for week in range(5):
            expected = MONDAY_9 + timedelta(days=7 * week)
            won = await asyncio.gather(
                first.advance_schedule(schedule.id, expected, expected + timedelta(days=7)),
                second.advance_schedule(schedule.id, expected, expected + timedelta(days=7)),
            )
            assert sorted(won) == [False, True]
        assert (await second.schedules("slack", "C1"))[0].next_run_at == MONDAY_9 + timedelta(days=35)
    finally:
        await first.close()
        await second.close()


async def test_two_processes_close_one_run_once(sql_url: str) -> None:
    first = await SqlStore.open(sql_url)
    second = await SqlStore.open(sql_url)
    try:
        runs = [await first.open_run(drill(drill_id=f"d{i}")) for i in range(5)]
        for run in runs:
            assert run.id is not None
            won = await asyncio.gather(
                first.close_run(run.id, run.closes_at), second.close_run(run.id, run.closes_at)
            )
            assert sorted(won) == [False, True]
        assert await second.due_runs(MONDAY_9 + timedelta(days=2)) == []
    finally:
        await first.close()
        await second.close()


async def test_two_processes_claim_one_event_once(sql_url: str) -> None:
    first = await SqlStore.open(sql_url)
    second = await SqlStore.open(sql_url)
    try:
        for i in range(5):
            won = await asyncio.gather(
                first.claim_event("slack", f"E{i}"), second.claim_event("slack", f"E{i}")
            )
            assert sorted(won) == [False, True]
    finally:
        await first.close()
        await second.close()


async def test_concurrent_answers_from_one_member_keep_one_row(sql_url: str) -> None:
    first = await SqlStore.open(sql_url)
    second = await SqlStore.open(sql_url)
    try:
        run = await first.open_run(drill())
        assert run.id is not None
        await asyncio.gather(
            first.save_answer(answer(run.id, "U1", "one", at=MONDAY_9)),
            second.save_answer(answer(run.id, "U1", "two", at=MONDAY_9)),
        )
        answers = await first.run_answers(run.id)
        assert len(answers) == 1 and answers[0].text in {"one", "two"}
    finally:
        await first.close()
        await second.close()
