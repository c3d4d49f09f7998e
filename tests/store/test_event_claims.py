"""Event claims with a lease (bot/core/delivery.py), on every backend: a claim not done
within the lease is taken over by a retry, never before; done is final; a take-over rolls
back what the dead claimant's work wrote (its conversation state, its card), so the event
is handled again from where it began. On SQL, two processes (two replicas) racing for the
same take-over: one wins. Times are given to the store (`now=`), never waited for."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.core.delivery import Claim, Delivery, claim, handling, receiving
from bot.core.models import ConversationKey
from bot.core.ports import CardRecord, ConversationState
from bot.store.sql import ProcessedEventRow, SqlStore
from tests.store.conftest import Store

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def after(store: Store, seconds: float) -> datetime:
    """`seconds` past the end of a lease that started at T0."""
    return T0 + timedelta(seconds=store.claim_lease + seconds)


async def test_a_claim_not_done_is_taken_over_once_its_lease_ran_out(store: Store) -> None:
    assert await store.claim_event("slack", "Ev1", now=T0)
    assert not await store.event_done("slack", "Ev1")
    assert await store.claim_event("slack", "Ev1", now=after(store, 1))
    # The take-over is a new claim with a new lease: not taken over again before it ends.
    assert not await store.claim_event("slack", "Ev1", now=after(store, 2))
    assert not await store.claim_event("slack", "Ev1", now=after(store, store.claim_lease))
    assert await store.claim_event("slack", "Ev1", now=after(store, store.claim_lease + 2))


async def test_no_take_over_within_the_lease(store: Store) -> None:
    assert await store.claim_event("telegram", "42:7", now=T0)
    for seconds in (0.0, 1.0, store.claim_lease / 2, store.claim_lease - 0.5, store.claim_lease):
        assert not await store.claim_event("telegram", "42:7", now=T0 + timedelta(seconds=seconds))
    assert not await store.event_done("telegram", "42:7")
    assert await store.claim_event("telegram", "42:8", now=T0)  # another event: its own claim


async def test_done_is_final(store: Store) -> None:
    assert await store.claim_event("slack", "Ev1", now=T0)
    await store.finish_event("slack", "Ev1", now=T0 + timedelta(seconds=1))
    assert await store.event_done("slack", "Ev1")
    for later in (T0 + timedelta(seconds=2), after(store, 1), T0 + timedelta(days=1)):
        assert not await store.claim_event("slack", "Ev1", now=later)
    await store.finish_event("slack", "Ev1")  # again: nothing changes
    assert await store.event_done("slack", "Ev1")
    assert not await store.claim_event("slack", "Ev1", now=T0 + timedelta(days=2))


async def test_a_taken_over_claim_is_finished_like_any_other(store: Store) -> None:
    assert await store.claim_event("slack", "Ev1", now=T0)
    assert await store.claim_event("slack", "Ev1", now=after(store, 5))
    await store.finish_event("slack", "Ev1", now=after(store, 6))
    assert await store.event_done("slack", "Ev1")
    assert not await store.claim_event("slack", "Ev1", now=after(store, 3 * store.claim_lease))


async def test_unknown_events(store: Store) -> None:
    assert not await store.event_done("slack", "nope")
    await store.finish_event("slack", "nope")  # finishing what was never claimed: no row made
    assert not await store.event_done("slack", "nope")
    assert await store.claim_event("slack", "nope")


async def test_the_delivery_protocol(store: Store) -> None:
    """`claim` inside `handling`: the first delivery handles the event and finishes it when
    its work ends; one arriving while it works is told busy (503); one arriving after is
    told done (200); an error still finishes it; a cancelled piece of work does not."""
    first, retry, late = Delivery(), Delivery(), Delivery()
    with receiving(first):
        async with handling(store):
            assert await claim(store, "slack", "Ev1") is Claim.FIRST
            assert first.claimed == [("slack", "Ev1")]
            with receiving(retry):
                assert await claim(store, "slack", "Ev1") is Claim.BUSY
            assert retry.busy and not retry.claimed
            assert not await store.event_done("slack", "Ev1")
    assert await store.event_done("slack", "Ev1") and not first.busy and not first.claimed
    with receiving(late):
        assert await claim(store, "slack", "Ev1") is Claim.DONE
    assert not late.busy

    with pytest.raises(RuntimeError):
        async with handling(store):  # no endpoint around it (polling): a delivery of its own
            assert await claim(store, "slack", "Ev2") is Claim.FIRST
            raise RuntimeError("the reply failed; the apology is the answer")
    assert await store.event_done("slack", "Ev2")

    started = asyncio.Event()

    async def work() -> None:
        async with handling(store):
            assert await claim(store, "slack", "Ev3") is Claim.FIRST
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(work())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await store.event_done("slack", "Ev3")  # left to its lease and a retry


# --- SQL: two replicas --------------------------------------------------------------------


async def test_two_replicas_race_for_one_take_over(sql_url: str) -> None:
    first = await SqlStore.open(sql_url)
    second = await SqlStore.open(sql_url)
    dead = await SqlStore.open(sql_url)  # the replica that claimed, then died
    try:
        assert first.owner != second.owner != dead.owner
        for i in range(5):
            assert await dead.claim_event("slack", f"E{i}", now=T0)
            within = T0 + timedelta(seconds=first.claim_lease / 2)
            early = await asyncio.gather(
                first.claim_event("slack", f"E{i}", now=within),
                second.claim_event("slack", f"E{i}", now=within),
            )
            assert not any(early)
            late = after(first, 1)
            won = await asyncio.gather(
                first.claim_event("slack", f"E{i}", now=late), second.claim_event("slack", f"E{i}", now=late)
            )
            assert sorted(won) == [False, True]
            winner = first if won[0] else second
            async with winner.engine.connect() as conn:
                row = (
                    await conn.execute(select(ProcessedEventRow).where(ProcessedEventRow.event_id == f"E{i}"))
                ).one()
            assert (row.claimant, row.claimed_at, row.created_at) == (winner.owner, late, T0)
            assert row.done_at is None
    finally:
        for store in (first, second, dead):
            await store.close()


async def test_the_lease_is_the_store_s_setting(sql_url: str) -> None:
    short = await SqlStore.open(sql_url, claim_lease=2.0)
    try:
        assert await short.claim_event("slack", "Ev1", now=T0)
        assert not await short.claim_event("slack", "Ev1", now=T0 + timedelta(seconds=2))
        assert await short.claim_event("slack", "Ev1", now=T0 + timedelta(seconds=2.5))
    finally:
        await short.close()


# --- a take-over gives the reply the first attempt gave -------------------------------------

KEY = ConversationKey(channel="slack", user_id="U1", conversation_id="D1")


def record(score: int, is_rewrite: bool) -> CardRecord:
    return CardRecord(
        key=KEY, language="en", score=score, categories=["pitch"], is_rewrite=is_rewrite, created_at=T0
    )


async def dead_claimant_works_on(
    store: Store, event: str, *states: ConversationState, card: CardRecord
) -> None:
    """A claimant that saved its state and its card, then died: its work never finished."""
    with receiving(Delivery()):
        assert await claim(store, "slack", event) is Claim.FIRST
        for state in states:
            await store.save_conversation(state)
        await store.record_card(card)


async def test_a_take_over_rolls_back_what_the_dead_claimant_wrote(store: Store) -> None:
    opener = ConversationState(key=KEY, stage="awaiting_rewrite", versions=["v1"], language="en")
    with receiving(Delivery()):
        async with handling(store):  # the opener: handled and done
            assert await claim(store, "slack", "Ev0") is Claim.FIRST
            await store.save_conversation(opener)
            await store.record_card(record(40, is_rewrite=False))
    rewrite = opener.model_copy(update={"versions": ["v1", "v2"]})
    again = opener.model_copy(update={"versions": ["v1", "v2", "v2"]})  # saved twice by one work
    await dead_claimant_works_on(store, "Ev1", rewrite, again, card=record(80, is_rewrite=True))
    state = await store.load_conversation(KEY)
    assert state is not None and state.versions == ["v1", "v2", "v2"]
    assert not await store.claim_event("slack", "Ev1")  # within the lease: nothing moves
    assert [c.score for c in await store.recent_cards("slack", "U1")] == [80, 40]

    assert await store.claim_event(
        "slack", "Ev1", now=datetime.now(UTC) + timedelta(seconds=store.claim_lease + 1)
    )
    state = await store.load_conversation(KEY)
    assert state is not None
    assert (state.stage, state.versions, state.language) == ("awaiting_rewrite", ["v1"], "en")
    assert [c.score for c in await store.recent_cards("slack", "U1")] == [40]


async def test_a_conversation_begun_by_a_dead_claimant_goes_away(store: Store) -> None:
    opener = ConversationState(key=KEY, stage="awaiting_rewrite", versions=["v1"], language="en")
    await dead_claimant_works_on(store, "Ev1", opener, card=record(40, is_rewrite=False))
    assert await store.load_conversation(KEY) is not None
    assert await store.claim_event(
        "slack", "Ev1", now=datetime.now(UTC) + timedelta(seconds=store.claim_lease + 1)
    )
    assert await store.load_conversation(KEY) is None
    assert await store.recent_cards("slack", "U1") == []


async def test_what_finished_work_wrote_stays(store: Store) -> None:
    opener = ConversationState(key=KEY, stage="awaiting_rewrite", versions=["v1"], language="en")
    with receiving(Delivery()):
        async with handling(store):
            assert await claim(store, "slack", "Ev1") is Claim.FIRST
            await store.save_conversation(opener)
            await store.record_card(record(40, is_rewrite=False))
    later = datetime.now(UTC) + timedelta(days=1)
    assert not await store.claim_event("slack", "Ev1", now=later)  # done: never taken over
    assert await store.claim_event("slack", "Ev2", now=later)  # another event: its own claim
    state = await store.load_conversation(KEY)
    assert state is not None and state.versions == ["v1"]
    assert [c.score for c in await store.recent_cards("slack", "U1")] == [40]
    await store.save_conversation(opener.model_copy(update={"versions": ["v1", "v3"]}))  # outside any work
    assert await store.claim_event("slack", "Ev3", now=later)
    state = await store.load_conversation(KEY)
    assert state is not None and state.versions == ["v1", "v3"]
