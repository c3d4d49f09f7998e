"""Practice sessions in the store, on every backend (memory, SQLite, PostgreSQL): saved
after each turn and read back whole, the one in progress found by its conversation, the
team report's period query, and retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.core.models import Category, ConversationKey
from bot.core.ports import PracticeRecord
from bot.core.practice import PracticeSession, TurnRecord
from tests.store.conftest import Store

KEY = ConversationKey(channel="slack", user_id="U1", conversation_id="D1")


def session(session_id: str, turns: int = 0) -> PracticeSession:
    records = [
        TurnRecord(
            turn=number,
            score=40 + number,
            categories=[Category.PITCH] if number == 1 else [],
            reaction="closed" if number == 1 else "engaged",
            case="reaction" if number == 1 else "fact",
            answered=Category.PITCH if number == 1 else None,
            lines=["reactions.pitch.0"] if number == 1 else [f"facts.{number - 2}"],
            fact=None if number == 1 else number - 2,
            topics=[] if number == 1 else ["hiring"],
            reused=["rotas"] if number > 2 else [],
            open_questions=0 if number == 1 else 1,
        )
        for number in range(1, turns + 1)
    ]
    return PracticeSession(
        id=session_id,
        buyer="fitness-hr-director",
        lang="fr",
        facts_revealed=max(turns - 1, 0),
        strikes=1 if turns else 0,
        turns=records,
    )


async def test_a_session_is_saved_turn_by_turn_and_read_back_whole(store: Store) -> None:
    assert await store.open_practice(KEY) is None
    await store.save_practice(PracticeRecord(key=KEY, session=session("s1")))
    started = await store.open_practice(KEY)
    assert started is not None and started.session == session("s1")
    assert started.created_at is not None and started.ended_at is None

    await store.save_practice(started.model_copy(update={"session": session("s1", turns=3)}))
    moved = await store.open_practice(KEY)
    assert moved is not None and moved.session == session("s1", turns=3)
    assert moved.created_at == started.created_at  # the start stays; updated_at moves
    assert moved.updated_at is not None and started.updated_at is not None
    assert moved.updated_at >= started.updated_at

    ended = datetime.now(UTC)
    await store.save_practice(moved.model_copy(update={"ended_at": ended}))
    assert await store.open_practice(KEY) is None
    [kept] = await store.practice_between(ended - timedelta(hours=1), ended + timedelta(hours=1))
    assert kept.session == session("s1", turns=3) and kept.ended_at == ended and kept.key == KEY


async def test_the_session_in_progress_is_per_conversation(store: Store) -> None:
    other = KEY.model_copy(update={"conversation_id": "D2"})
    await store.save_practice(PracticeRecord(key=KEY, session=session("a")))
    await store.save_practice(PracticeRecord(key=other, session=session("b")))
    found = await store.open_practice(KEY)
    assert found is not None and found.session.id == "a"
    found = await store.open_practice(other)
    assert found is not None and found.session.id == "b"
    assert await store.open_practice(KEY.model_copy(update={"channel": "telegram"})) is None


async def test_the_report_reads_sessions_by_their_start(store: Store) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    await store.save_practice(PracticeRecord(key=KEY, session=session("old"), created_at=old))
    await asyncio.sleep(0)
    await store.save_practice(PracticeRecord(key=KEY, session=session("new", 2), created_at=recent))
    telegram = KEY.model_copy(update={"channel": "telegram"})
    await store.save_practice(PracticeRecord(key=telegram, session=session("tg"), created_at=recent))
    since = now - timedelta(days=28)
    assert [r.session.id for r in await store.practice_between(since, now)] in (["new", "tg"], ["tg", "new"])
    assert [r.session.id for r in await store.practice_between(since, now, "slack")] == ["new"]
    assert [r.session.id for r in await store.practice_between(old, since)] == ["old"]


async def test_retention_purges_sessions_last_touched_before_the_cutoff(store: Store) -> None:
    await store.save_practice(PracticeRecord(key=KEY, session=session("s", 2)))
    now = datetime.now(UTC)
    assert await store.purge_before(now - timedelta(days=1)) == 0
    assert await store.open_practice(KEY) is not None
    assert await store.purge_before(now + timedelta(seconds=1)) == 1
    assert await store.open_practice(KEY) is None
    assert await store.practice_between(now - timedelta(days=1), now + timedelta(days=1)) == []
