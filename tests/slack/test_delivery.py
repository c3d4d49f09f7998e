"""Slack events delivered at least once, handled once (bot/core/delivery.py), over real
HTTP against the Slack stub: an event's 200 comes once its reply is out; an event another
replica claimed and is still working on gets a 503 (Slack sends it again later); a claim
that outlived its lease (that replica died) is taken over; a done event is skipped; work
longer than the listener's bound is acked at the bound and goes on. Nothing measures
time: the store is given the claims' times, the stub holds replies until told."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.slack.conftest import Harness
from tests.slack.fakes import dm_event, event_callback

OPENER = "Hi Sarah, we are a leading provider of analytics. Would you be open to a 15-minute call?"
LIMIT = 60.0  # a bound no test reaches; nothing measures time


def card_header(slack: Harness) -> str:
    card = slack.flow.coach.coach(OPENER)
    return slack.flow.coach.strings(card.language).text("card", "score", score=card.score)


async def test_slack_gets_its_answer_once_the_reply_is_out(slack: Harness) -> None:
    slack.app.channel.event_ack_seconds = LIMIT
    body = event_callback(dm_event(OPENER))
    sent = await slack.sender.event(body)
    assert (sent.status, sent.body) == (200, "")
    # No waiting: the card was posted (and Slack answered the post) before the 200.
    [card] = slack.stub.of("chat.postMessage")
    assert card.params["blocks"][0]["text"]["text"] == card_header(slack)
    assert await slack.flow.store.event_done("slack", body["event_id"])
    retry = await slack.sender.event(body, retry=1)
    assert retry.status == 200  # done: skipped, answered
    assert len(slack.stub.of("chat.postMessage")) == 1


async def test_an_event_another_replica_is_on_is_sent_again_later(slack: Harness) -> None:
    store, body = slack.flow.store, event_callback(dm_event(OPENER))
    assert await store.claim_event("slack", body["event_id"])  # another replica's, lease running
    first = await slack.sender.event(body)
    retry = await slack.sender.event(body, retry=1)
    assert [first.status, retry.status] == [503, 503]
    await store.finish_event("slack", body["event_id"])  # that replica answered it
    assert (await slack.sender.event(body, retry=2)).status == 200
    await slack.app.channel.drain()
    assert slack.stub.of("chat.postMessage") == []


async def test_a_dead_replica_s_claim_is_taken_over_after_its_lease(slack: Harness) -> None:
    slack.app.channel.event_ack_seconds = LIMIT
    store, body = slack.flow.store, event_callback(dm_event(OPENER))
    lease = store.claim_lease  # type: ignore[attr-defined]  # the SqlStore of the harness
    died = datetime.now(UTC) - timedelta(seconds=lease + 1)  # claimed, then nothing for a lease
    assert await store.claim_event("slack", body["event_id"], now=died)
    sent = await slack.sender.event(body, retry=1)
    assert sent.status == 200
    [card] = slack.stub.of("chat.postMessage")
    assert card.params["blocks"][0]["text"]["text"] == card_header(slack)
    assert (await slack.sender.event(body, retry=2)).status == 200
    assert len(slack.stub.of("chat.postMessage")) == 1


async def test_work_past_the_bound_is_acked_and_goes_on(slack: Harness) -> None:
    slack.app.channel.event_ack_seconds = 0.0  # any work outlasts it
    gate = slack.stub.gates["chat.postMessage"] = asyncio.Event()
    body = event_callback(dm_event(OPENER))
    sent = await asyncio.wait_for(slack.sender.event(body), LIMIT)
    assert (sent.status, sent.body) == (200, "")
    assert slack.stub.of("chat.postMessage") == []  # held by the stub: the ack did not wait
    gate.set()
    [card] = await slack.stub.wait_for("chat.postMessage")
    assert card.params["blocks"][0]["text"]["text"] == card_header(slack)
    await slack.app.channel.drain()
    assert await slack.flow.store.event_done("slack", body["event_id"])
