"""Privacy in the store: /forget leaves no row naming the user in any table, and retention
purges old openers, cards and answers. On every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.core.models import ConversationKey
from bot.core.ports import ConversationState, OnboardingProgress, PracticeRecord
from bot.core.practice import PracticeSession
from bot.store.sql import USER_ID_COLUMN_NAMES, USER_REFERENCES, Base, SqlStore
from tests.store.conftest import Store
from tests.store.test_team_store import MONDAY_9, answer, card, drill, weekly

# Tables that hold no platform user id at all (event ids and times only).
TABLES_WITHOUT_USERS = {"processed_events"}


async def populate(store: Store, user_id: str, run_id: int) -> None:
    """One row about `user_id` in every table that can hold one."""
    key = ConversationKey(channel="slack", user_id=user_id, conversation_id="D1")
    await store.save_conversation(ConversationState(key=key, stage="awaiting_rewrite", versions=["Hi?"]))
    await store.set_language_preference("slack", user_id, "fr")
    await store.set_share_consent("slack", user_id, True)
    await store.record_card(card(user_id, MONDAY_9, 60, True))
    await store.save_answer(answer(run_id, user_id, "What changed?", at=MONDAY_9))
    await store.save_progress(OnboardingProgress(channel="slack", user_id=user_id, step=2, passed=[1]))
    await store.add_schedule(weekly(created_by=user_id))
    await store.open_run(drill().model_copy(update={"opened_by": user_id}))
    session = PracticeSession(id=f"practice-{user_id}", buyer="fitness-hr-director", lang="en")
    await store.save_practice(PracticeRecord(key=key, session=session))


async def test_forget_leaves_no_row_naming_the_user(store: Store) -> None:
    run = await store.open_run(drill())
    assert run.id is not None
    await populate(store, "U1", run.id)
    await populate(store, "U2", run.id)
    # conversation, user (language + consent), card, answer, progress, schedule, run,
    # practice session
    assert await store.count_user_rows("slack", "U1") == 8
    assert await store.count_user_rows("slack", "U2") == 8

    assert await store.forget_user("slack", "U1") == 8
    assert await store.count_user_rows("slack", "U1") == 0
    assert await store.count_user_rows("slack", "U2") == 8
    key = ConversationKey(channel="slack", user_id="U1", conversation_id="D1")
    assert await store.open_practice(key) is None
    assert await store.open_practice(key.model_copy(update={"user_id": "U2"})) is not None
    assert await store.language_preference("slack", "U1") is None
    assert not await store.share_consent("slack", "U1")
    assert await store.consenting_users() == {("slack", "U2")}
    assert await store.load_progress("slack", "U1") is None
    assert [a.user_id for a in await store.run_answers(run.id)] == ["U2"]
    assert await store.recent_cards("slack", "U1") == []
    # What the team keeps survives, without the name.
    assert sorted(s.created_by for s in await store.schedules("slack", "C1")) == ["", "U2"]
    assert len(await store.recent_drill_ids("slack", "C1")) == 3
    assert await store.forget_user("slack", "U1") == 0


async def test_forget_is_per_channel(store: Store) -> None:
    await store.set_language_preference("slack", "42", "fr")
    await store.set_language_preference("telegram", "42", "en")
    await store.forget_user("telegram", "42")
    assert await store.language_preference("slack", "42") == "fr"
    assert await store.count_user_rows("telegram", "42") == 0


async def test_forget_leaves_no_value_in_any_user_column(sql_url: str) -> None:
    """Checked against the schema itself, not against the store's own list."""
    store = await SqlStore.open(sql_url)
    try:
        run = await store.open_run(drill())
        assert run.id is not None
        await populate(store, "U1", run.id)
        await populate(store, "U2", run.id)
        await store.forget_user("slack", "U1")
        async with store.engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                for column in table.columns:
                    if column.name in USER_ID_COLUMN_NAMES:
                        left = await conn.scalar(select(func.count()).where(column == "U1"))
                        assert left == 0, f"{table.name}.{column.name} still names U1"
                        kept = await conn.scalar(select(func.count()).where(column == "U2"))
                        assert kept, f"{table.name}.{column.name} lost U2's rows"
    finally:
        await store.close()


def test_every_user_id_column_is_forgotten_and_counted() -> None:
    """A table added with a user-id column must be listed in USER_REFERENCES (so /forget and
    count_user_rows cover it), and a table without one must be declared here."""
    listed = {(table, column) for table, column, _ in USER_REFERENCES}
    found = set()
    for table in Base.metadata.sorted_tables:
        user_columns = {
            c.name
            for c in table.columns
            if c.name in USER_ID_COLUMN_NAMES or c.name.endswith(("user_id", "_by", "user"))
        }
        found |= {(table.name, name) for name in user_columns}
        if not user_columns:
            assert table.name in TABLES_WITHOUT_USERS, f"{table.name}: user data or not? declare it"
        else:
            assert "channel" in table.columns, f"{table.name} names users without their channel"
    assert found == listed


async def test_purge_removes_old_rows_and_keeps_new(store: Store) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=400), now - timedelta(days=1)
    cutoff = now - timedelta(days=365)
    run = await store.open_run(drill(opened_at=old))
    assert run.id is not None
    await store.record_card(card("U1", old, 40, False))
    await store.record_card(card("U1", recent, 80, True))
    await store.save_answer(answer(run.id, "U1", "old answer", at=old))
    await store.save_answer(answer(run.id, "U2", "recent answer", at=recent))
    key = ConversationKey(channel="slack", user_id="U1", conversation_id="D1")
    await store.save_conversation(ConversationState(key=key, versions=["Hi?"]))  # touched now
    await store.claim_event("slack", "E1")

    assert await store.purge_before(cutoff) == 2
    assert [c.score for c in await store.recent_cards("slack", "U1")] == [80]
    assert [a.text for a in await store.run_answers(run.id)] == ["recent answer"]
    assert await store.load_conversation(key) is not None
    assert not await store.claim_event("slack", "E1")

    later = datetime.now(UTC) + timedelta(seconds=1)
    # conversation, card, answer, event
    assert await store.purge_before(later) == 4
    assert await store.load_conversation(key) is None
    assert await store.cards_between(old, later) == []
    assert await store.run_answers(run.id) == []
    assert await store.claim_event("slack", "E1")
    # Team history stays: the run itself is not personal text.
    assert await store.recent_drill_ids("slack", "C1") == ["d1"]
