"""The Slack app over real HTTP: signed requests in, Web API calls out, all on 127.0.0.1.

Timing is never asserted in seconds: "acked before the card" is proven by holding the
stub's answer to the card until the ack has arrived.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import pytest

from bot.channels.slack.blocks import ACTION_ALL_FINDINGS, ACTION_EXPLAIN, ACTION_REWROTE
from bot.channels.slack.payloads import CardRef
from bot.core.models import ConversationKey
from tests.slack.conftest import Harness
from tests.slack.fakes import (
    BOT_ID,
    BOT_USER,
    SECRET,
    all_texts,
    block_action,
    dm_event,
    event_callback,
    find_button,
    mention_event,
    message_shortcut,
    signature_headers,
    slash_command,
    view_submission,
)

OPENER = "Hi Sarah, we are a leading provider of analytics. Would you be open to a 15-minute call?"
REWRITE = (
    "Hi Sarah, since Northwind opened the Lyon site, "
    "how are you splitting picking between the two warehouses?"
)
FRENCH = (
    "Bonjour Marie, nous sommes le leader des solutions d'analyse. "
    "Seriez-vous disponible jeudi pour une démo de 15 minutes ?"
)
MANY_FINDINGS = (
    "Hi {first_name}, my name is Tom. Our revolutionary, best-in-class platform guarantees "
    "300% ROI. Last chance: book a 15-minute demo today?"
)


def card_header(slack: Harness, text: str) -> str:
    """The header a card for `text` must carry: the score the coach gives that opener."""
    coach = slack.flow.coach
    card = coach.coach(text)
    return coach.strings(card.language).text("card", "score", score=card.score)


def scores_line(slack: Harness, before: str, after: str) -> str:
    """ "N/100 → M/100": the comparison of these two versions."""
    coach = slack.flow.coach
    return f"{coach.coach(before).score}/100 → {coach.coach(after).score}/100"


async def test_health(slack: Harness) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{slack.url}/healthz") as response:
        assert response.status == 200
        assert (await response.json()) == {"status": "ok"}


async def test_dm_opener_gets_a_card(slack: Harness) -> None:
    sent = await slack.sender.event(event_callback(dm_event(OPENER)))
    assert (sent.status, sent.body) == (200, "")
    [call] = await slack.stub.wait_for("chat.postMessage")
    assert call.token is not None and call.token.startswith("xoxb-")
    assert call.params["channel"] == "D0000REP1"
    assert "thread_ts" not in call.params
    blocks = call.params["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == card_header(slack, OPENER)
    assert card_header(slack, OPENER) in call.params["text"]
    texts = all_texts(blocks)
    assert "Early meeting ask" in texts
    assert "Principle:" in texts
    find_button(blocks, ACTION_REWROTE)
    find_button(blocks, ACTION_EXPLAIN)


async def test_mention_answers_in_the_thread(slack: Harness) -> None:
    event = mention_event(f"<@{BOT_USER}> {OPENER}")
    await slack.sender.event(event_callback(event))
    [call] = await slack.stub.wait_for("chat.postMessage")
    assert call.params["channel"] == "C0000TEAM"
    assert call.params["thread_ts"] == event["ts"]
    assert call.params["blocks"][0]["text"]["text"] == card_header(slack, OPENER)
    key = ConversationKey(channel="slack", user_id="U0000REP1", conversation_id=f"C0000TEAM:{event['ts']}")
    state = await slack.flow.store.load_conversation(key)
    assert state is not None and state.versions
    assert "<@" not in state.versions[0] and "Sarah" not in state.versions[0]  # mention gone, name redacted


async def test_a_reply_in_the_thread_is_compared(slack: Harness) -> None:
    first = mention_event(f"<@{BOT_USER}> {OPENER}")
    await slack.sender.event(event_callback(first))
    await slack.stub.wait_for("chat.postMessage")
    second = mention_event(f"<@{BOT_USER}> {REWRITE}", thread_ts=first["ts"])
    await slack.sender.event(event_callback(second))
    calls = await slack.stub.wait_for("chat.postMessage", 2)
    assert calls[1].params["thread_ts"] == first["ts"]
    assert scores_line(slack, OPENER, REWRITE) in all_texts(calls[1].params["blocks"])


async def test_slash_command_is_acked_before_the_card_is_sent(slack: Harness) -> None:
    gate = slack.stub.gates["response_url"] = asyncio.Event()
    sent = await asyncio.wait_for(
        slack.sender.form(slash_command(f"coach {OPENER}", slack.stub.response_url("slash"))), 10
    )
    assert (sent.status, sent.body) == (200, "")
    assert slack.stub.of("response_url") == []  # the card is held by the stub: the ack did not wait
    gate.set()
    [call] = await slack.stub.wait_for("response_url")
    assert call.at > sent.at
    assert call.params["response_type"] == "ephemeral"
    assert call.params["replace_original"] is False
    assert call.params["blocks"][0]["text"]["text"] == card_header(slack, OPENER)
    assert slack.stub.of("chat.postMessage") == []  # private: nothing posted in the channel


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", "/fournil coach"),
        ("", "/fournil coach"),
        ("lang fr", "français"),
    ],
)
async def test_slash_subcommands(slack: Harness, text: str, expected: str) -> None:
    await slack.sender.form(slash_command(text, slack.stub.response_url()))
    [call] = await slack.stub.wait_for("response_url")
    assert call.params["blocks"]
    assert expected in all_texts(call.params["blocks"])


async def test_slash_ask_reaches_the_knowledge_base(slack: Harness) -> None:
    await slack.sender.form(
        slash_command("ask how do I follow up without nagging?", slack.stub.response_url())
    )
    [call] = await slack.stub.wait_for("response_url")
    texts = all_texts(call.params["blocks"])
    assert texts and slack.flow.coach.strings("en").text("flow", "unknown_command") not in texts


async def test_help_follows_the_slack_locale(slack: Harness) -> None:
    slack.stub.locales["U0000FR"] = "fr-FR"
    await slack.sender.form(slash_command("help", slack.stub.response_url(), user="U0000FR"))
    [call] = await slack.stub.wait_for("response_url")
    assert "Collez une accroche" in all_texts(call.params["blocks"])


async def test_shortcut_sends_the_card_privately(slack: Harness) -> None:
    payload = message_shortcut(OPENER, slack.stub.response_url("shortcut"))
    sent = await slack.sender.interactive(payload)
    assert (sent.status, sent.body) == (200, "")
    [call] = await slack.stub.wait_for("chat.postMessage")
    assert call.params["channel"].startswith("D")  # the rep's DM with Fournil, not #sales
    assert slack.stub.of("conversations.open")[0].params["users"] == "U0000REP1"
    assert call.params["blocks"][0]["text"]["text"] == card_header(slack, OPENER)
    assert [c for c in slack.stub.posted() if c.params.get("channel") == "C0000TEAM"] == []


async def test_button_modal_rewrite_comparison(slack: Harness) -> None:
    await slack.sender.event(event_callback(dm_event(OPENER)))
    [card] = await slack.stub.wait_for("chat.postMessage")
    rewrote = find_button(card.params["blocks"], ACTION_REWROTE)

    click = block_action(ACTION_REWROTE, rewrote["value"], response_url=slack.stub.response_url())
    sent = await slack.sender.interactive(click)
    assert (sent.status, sent.body) == (200, "")
    [opened] = await slack.stub.wait_for("views.open")
    assert opened.params["trigger_id"] == click["trigger_id"]
    view = opened.params["view"]
    assert view["type"] == "modal" and len(view["title"]["text"]) <= 24

    submitted = await slack.sender.interactive(view_submission(view, REWRITE))
    assert (submitted.status, submitted.body) == (200, "")  # empty ack closes the modal
    calls = await slack.stub.wait_for("chat.postMessage", 2)
    comparison = calls[1]
    assert comparison.params["channel"] == "D0000REP1"
    texts = all_texts(comparison.params["blocks"])
    assert "Before / after" in texts and scores_line(slack, OPENER, REWRITE) in texts
    assert "Resolved" in texts


async def test_why_and_all_findings_buttons(slack: Harness) -> None:
    await slack.sender.event(event_callback(dm_event(MANY_FINDINGS)))
    [card] = await slack.stub.wait_for("chat.postMessage")
    why = find_button(card.params["blocks"], ACTION_EXPLAIN)
    await slack.sender.interactive(block_action(ACTION_EXPLAIN, why["value"]))
    explained = (await slack.stub.wait_for("chat.postMessage", 2))[1]
    assert explained.params["channel"] == "D0000REP1"
    principle = why["value"].split(":", 1)[1]
    assert "Unknown principle" not in all_texts(explained.params["blocks"]), principle

    more = find_button(card.params["blocks"], ACTION_ALL_FINDINGS)
    await slack.sender.interactive(block_action(ACTION_ALL_FINDINGS, more["value"]))
    everything = (await slack.stub.wait_for("chat.postMessage", 3))[2]
    shown = [
        b for b in everything.params["blocks"] if b.get("accessory", {}).get("action_id") == ACTION_EXPLAIN
    ]
    assert len(shown) > 3


async def test_ephemeral_card_buttons_answer_through_the_response_url(slack: Harness) -> None:
    ref = CardRef(conversation="C0000TEAM", owner="U0000REP1", lang="en").encode()
    await slack.sender.form(slash_command(f"coach {OPENER}", slack.stub.response_url("card")))
    await slack.stub.wait_for("response_url")
    click = block_action(
        ACTION_REWROTE,
        ref,
        channel="C0000TEAM",
        response_url=slack.stub.response_url("click"),
        ephemeral=True,
    )
    await slack.sender.interactive(click)
    [opened] = await slack.stub.wait_for("views.open")
    await slack.sender.interactive(view_submission(opened.params["view"], REWRITE))
    calls = await slack.stub.wait_for("response_url", 2)
    assert calls[1].params["name"] == "click"
    assert scores_line(slack, OPENER, REWRITE) in all_texts(calls[1].params["blocks"])


async def test_french_opener_gets_a_french_card(slack: Harness) -> None:
    await slack.sender.event(event_callback(dm_event(FRENCH)))
    [call] = await slack.stub.wait_for("chat.postMessage")
    blocks = call.params["blocks"]
    assert blocks[0]["text"]["text"].startswith("Score de conversation")
    assert find_button(blocks, ACTION_REWROTE)["text"]["text"] == "Je l'ai réécrite"
    assert find_button(blocks, ACTION_EXPLAIN)["text"]["text"] == "Pourquoi ?"
    assert "Rendez-vous trop tôt" in all_texts(blocks)


@pytest.mark.parametrize("problem", ["unsigned", "wrong secret", "six minutes old", "tampered body"])
async def test_badly_signed_requests_are_refused(slack: Harness, problem: str) -> None:
    body = json.dumps(event_callback(dm_event(OPENER)))
    if problem == "unsigned":
        headers: dict[str, str] = {}
    elif problem == "wrong secret":
        headers = signature_headers("not-the-secret", body)
    elif problem == "six minutes old":
        headers = signature_headers(SECRET, body, timestamp=int(time.time()) - 6 * 60)
    else:
        headers = signature_headers(SECRET, body)
        body = body.replace("Sarah", "Sara")
    sent = await slack.sender.post_raw(body, "application/json", headers)
    assert sent.status == 401
    await slack.app.channel.drain()
    assert slack.stub.posted() == []


@dataclass(frozen=True)
class Malformed:
    """A request that must be refused cleanly: `status`, one log line, no traceback."""

    body: bytes
    content_type: str = "application/json"
    signed: bool = True
    timestamp: str | None = None  # None: now
    status: int = 400


def _sign(body: bytes, timestamp: str) -> dict[str, str]:
    """Slack's signature over the raw bytes (`signature_headers` takes text)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


FORM = "application/x-www-form-urlencoded"
DEEP = 100_000  # far beyond Python's recursion limit: json.loads raises RecursionError
GOOD_EVENT = json.dumps(event_callback(dm_event(OPENER))).encode()
MALFORMED = {
    "unsigned, timestamp abc": Malformed(GOOD_EVENT, signed=False, timestamp="abc", status=401),
    "signed, timestamp abc": Malformed(GOOD_EVENT, timestamp="abc", status=401),
    "signed, timestamp 1_700_000_000": Malformed(GOOD_EVENT, timestamp=f"{int(time.time()):_}", status=401),
    "unsigned, not JSON": Malformed(b'{"type": "event_callback", oops', signed=False, status=401),
    "not JSON": Malformed(b'{"type": "event_callback", oops'),
    "not JSON, no content type": Malformed(b"{oops", content_type="text/plain"),
    "a JSON array": Malformed(b'[{"type": "event_callback"}]'),
    "a JSON string": Malformed(b'"event_callback"'),
    "JSON null": Malformed(b"null"),
    "invalid UTF-8": Malformed(b'{"type": "event_callback", "text": "caf\xe9 \xff"}'),
    "invalid UTF-8 in a form": Malformed(b"command=%2Ffournil&text=\xff\xfe", FORM),
    "form payload is not JSON": Malformed(b"payload=" + quote('{"type": "view" oops').encode(), FORM),
    "form payload is a JSON array": Malformed(b"payload=" + quote("[1, 2]").encode(), FORM),
    "form payload is empty": Malformed(b"payload=", FORM),
    # JSON objects whose fields Bolt reads are not the types Slack sends
    "event is a string": Malformed(b'{"type": "event_callback", "event": "message"}'),
    "actions hold a number": Malformed(b'{"type": "block_actions", "actions": [5]}'),
    "view is a string": Malformed(b'{"type": "view_submission", "view": "modal"}'),
    "view state is a string": Malformed(b'{"type": "view_closed", "view": {"type": "modal", "state": "x"}}'),
    "team is a number": Malformed(b'{"type": "block_actions", "team": 5}'),
    "command is a number": Malformed(b'{"command": 5, "text": "coach"}'),
    "nested beyond the parser": Malformed(b'{"event": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    "nested beyond the limit": Malformed(
        b'{"type": "event_callback", "event": ' + b'{"a": ' * 500 + b"1" + b"}" * 501
    ),
    "form payload nested beyond the parser": Malformed(
        b"payload=" + quote('{"a": ' + "[" * DEEP + "]" * DEEP + "}").encode(), FORM
    ),
}


async def _post_malformed(slack: Harness, case: Malformed) -> int:
    stamp = case.timestamp if case.timestamp is not None else str(int(time.time()))
    headers = {"Content-Type": case.content_type}
    if case.signed:
        headers |= _sign(case.body, stamp)
    else:
        headers["X-Slack-Request-Timestamp"] = stamp
    async with slack.sender.session.post(slack.sender.url, data=case.body, headers=headers) as response:
        await response.read()
        return response.status


@pytest.mark.parametrize("name", list(MALFORMED))
async def test_malformed_requests_are_refused_in_one_line(
    slack: Harness, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    case = MALFORMED[name]
    with caplog.at_level(logging.DEBUG):
        status = await _post_malformed(slack, case)
        await slack.app.channel.drain()
    assert status == case.status, name
    assert slack.stub.posted() == []
    for record in caplog.records:
        assert record.exc_info is None and record.exc_text is None, (record.name, record.getMessage())
        assert "Traceback" not in record.getMessage()
        assert record.levelno < logging.ERROR, (record.name, record.getMessage())
    refusals = [r for r in caplog.records if r.name == "fournil.slack" and "refused" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in caplog.records]
    [line] = refusals
    assert "\n" not in line.getMessage()
    assert str(case.status) in line.getMessage()
    assert "oops" not in caplog.text and "event_callback" not in caplog.text  # nothing of the body


async def test_the_server_stays_healthy_after_malformed_requests(slack: Harness) -> None:
    statuses = await asyncio.gather(*(_post_malformed(slack, case) for case in MALFORMED.values()))
    assert statuses == [case.status for case in MALFORMED.values()]
    async with aiohttp.ClientSession() as session, session.get(f"{slack.url}/healthz") as response:
        assert response.status == 200
        assert (await response.json()) == {"status": "ok"}
    sent = await slack.sender.event(event_callback(dm_event(OPENER)))
    assert sent.status == 200
    [call] = await slack.stub.wait_for("chat.postMessage")
    assert call.params["blocks"][0]["text"]["text"] == card_header(slack, OPENER)


async def test_an_exception_escaping_bolt_is_one_line_and_a_500(
    slack: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def escaping(request: object) -> object:
        raise KeyError("jane.doe@example.com")

    monkeypatch.setattr(slack.app, "async_dispatch", escaping)
    with caplog.at_level(logging.DEBUG):
        sent = await slack.sender.event(event_callback(dm_event(OPENER)))
    assert sent.status == 500
    [line] = [r for r in caplog.records if r.name == "fournil.slack"]
    assert line.exc_info is None and "\n" not in line.getMessage()
    assert "KeyError" in line.getMessage() and "jane.doe" not in caplog.text
    monkeypatch.undo()
    async with aiohttp.ClientSession() as session, session.get(f"{slack.url}/healthz") as response:
        assert response.status == 200


async def test_a_retried_event_is_answered_once(slack: Harness) -> None:
    body = event_callback(dm_event(OPENER))
    first = await slack.sender.event(body)
    retry = await slack.sender.event(body, retry=1)
    again = await slack.sender.event(body, retry=2)
    assert [first.status, retry.status, again.status] == [200, 200, 200]
    await slack.stub.wait_for("chat.postMessage")
    await slack.app.channel.drain()
    assert len(slack.stub.of("chat.postMessage")) == 1


async def test_own_and_other_bots_messages_are_ignored(slack: Harness) -> None:
    own = dm_event("Conversation score: 40/100", bot_id=BOT_ID, user=BOT_USER)
    other = dm_event(OPENER, bot_id="B0000OTHER", user="U0000OTHERBOT")
    edit = dm_event(OPENER, subtype="message_changed")
    for event in (own, other, edit):
        sent = await slack.sender.event(event_callback(event))
        assert sent.status == 200  # acked, so Slack does not retry
    await slack.app.channel.drain()
    assert slack.stub.posted() == []


async def test_a_failure_is_logged_with_its_request_id_and_apologised_for(
    slack: Harness, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = slack.flow.store
    original = store.load_conversation
    calls = 0

    async def broken_once(key: ConversationKey) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database on fire")
        return await original(key)

    monkeypatch.setattr(store, "load_conversation", broken_once)
    body = event_callback(dm_event(OPENER))
    with caplog.at_level(logging.ERROR, logger="fournil.slack"):
        await slack.sender.event(body)
        [apology] = await slack.stub.wait_for("chat.postMessage")
        await slack.app.channel.drain()
    assert "Sorry" in all_texts(apology.params["blocks"])
    assert any(body["event_id"] in record.getMessage() for record in caplog.records)
    # still running: the next opener gets its card
    await slack.sender.event(event_callback(dm_event(OPENER)))
    calls_after = await slack.stub.wait_for("chat.postMessage", 2)
    assert calls_after[1].params["blocks"][0]["text"]["text"] == card_header(slack, OPENER)


async def test_app_home_shows_recent_cards(slack: Harness) -> None:
    await slack.sender.event(event_callback(dm_event(OPENER)))
    await slack.stub.wait_for("chat.postMessage")
    await slack.sender.event(event_callback({"type": "app_home_opened", "user": "U0000REP1", "tab": "home"}))
    [published] = await slack.stub.wait_for("views.publish")
    assert published.params["user_id"] == "U0000REP1"
    view = published.params["view"]
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    texts = all_texts(view["blocks"])
    assert "Your progress" in texts and "/100" in texts and "opener" in texts


async def test_app_home_before_any_card_in_french(slack: Harness) -> None:
    slack.stub.locales["U0000FR"] = "fr-FR"
    await slack.sender.event(event_callback({"type": "app_home_opened", "user": "U0000FR", "tab": "home"}))
    [published] = await slack.stub.wait_for("views.publish")
    assert "Pas encore de fiche" in all_texts(published.params["view"]["blocks"])


async def test_user_text_is_escaped_in_the_card(slack: Harness) -> None:
    # As Slack delivers it: & < > arrive as entities, a real @channel as <!channel>.
    typed = (
        "Hi <!channel>, we are the #1 leader. Would you &amp; &lt;b&gt;your team&lt;/b&gt; be open to a call?"
    )
    await slack.sender.event(event_callback(dm_event(typed)))
    [call] = await slack.stub.wait_for("chat.postMessage")
    texts = all_texts(call.params["blocks"])
    assert "<!channel>" not in texts and "<b>" not in texts
    assert "&amp; &lt;b&gt;your team&lt;/b&gt;" in texts  # the rep's own words, shown as typed


async def test_buttons_on_a_thread_card_answer_privately_in_the_thread(slack: Harness) -> None:
    event = mention_event(f"<@{BOT_USER}> {OPENER}")
    await slack.sender.event(event_callback(event))
    [card] = await slack.stub.wait_for("chat.postMessage")
    why = find_button(card.params["blocks"], ACTION_EXPLAIN)
    in_thread = {"channel": "C0000TEAM", "thread_ts": event["ts"], "response_url": slack.stub.response_url()}
    await slack.sender.interactive(block_action(ACTION_EXPLAIN, why["value"], **in_thread))
    [explained] = await slack.stub.wait_for("chat.postEphemeral")
    assert (explained.params["channel"], explained.params["user"]) == ("C0000TEAM", "U0000REP1")
    assert explained.params["thread_ts"] == event["ts"]

    rewrote = find_button(card.params["blocks"], ACTION_REWROTE)
    await slack.sender.interactive(block_action(ACTION_REWROTE, rewrote["value"], **in_thread))
    [opened] = await slack.stub.wait_for("views.open")
    await slack.sender.interactive(view_submission(opened.params["view"], REWRITE))
    comparison = (await slack.stub.wait_for("chat.postEphemeral", 2))[1]
    assert comparison.params["thread_ts"] == event["ts"]
    assert scores_line(slack, OPENER, REWRITE) in all_texts(comparison.params["blocks"])
    assert len(slack.stub.of("chat.postMessage")) == 1  # nothing more said publicly


async def test_no_locale_scope_still_gets_the_card(slack: Harness) -> None:
    slack.stub.fail["users.info"] = "missing_scope"
    await slack.sender.event(event_callback(dm_event(OPENER)))
    [call] = await slack.stub.wait_for("chat.postMessage")
    assert call.params["blocks"][0]["text"]["text"] == card_header(slack, OPENER)


async def test_a_rewrite_typed_in_the_dm_is_compared(slack: Harness) -> None:
    await slack.sender.event(event_callback(dm_event(OPENER)))
    await slack.stub.wait_for("chat.postMessage")
    await slack.sender.event(event_callback(dm_event(REWRITE)))
    calls = await slack.stub.wait_for("chat.postMessage", 2)
    texts = all_texts(calls[1].params["blocks"])
    assert "Before / after" in texts and "/fournil new" in texts
    assert scores_line(slack, OPENER, REWRITE) in texts


async def test_a_rate_limited_post_is_retried(slack: Harness) -> None:
    slack.stub.rate_limit["chat.postMessage"] = 1  # the first call gets 429, Retry-After: 1
    await slack.sender.event(event_callback(dm_event(OPENER)))
    calls = await slack.stub.wait_for("chat.postMessage", 2, within=15)
    assert calls[1].params["blocks"][0]["text"]["text"] == card_header(slack, OPENER)
