"""No personal data in the logs: request bodies (a rep's email, phone number, opener) and
SQL parameters and rows never reach a log record, whatever the level.

Two ways a body used to leak: slack_bolt logs the whole body at INFO when a signature
check fails (a clock five minutes off is enough), and the DEBUG log carried every SQL
statement with its parameters (aiosqlite; SQLAlchemy with echo or its loggers turned up).
Records are captured with caplog (every logger, DEBUG) and, once, through the real set-up
of bot/logs.py writing to stderr.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from urllib.parse import quote, quote_plus, urlencode

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.core.models import ConversationKey
from bot.core.ports import ConversationState
from bot.logs import BOLT_LOGGER, WITHHELD, BoltBodyFilter, setup_logging
from bot.store.sql import SqlStore
from tests.slack.conftest import Harness
from tests.slack.fakes import SECRET, dm_event, event_callback, signature_headers, slash_command

EMAIL = "jane.doe@northwind-example.com"
PHONE = "+33 6 12 34 56 78"
OPENER = f"Hi Jane, I saw Northwind opened a Lyon site. Call me on {PHONE} or write to {EMAIL}?"
STORED = "Hi [name], how are you splitting picking between the Lyon and Lille warehouses?"


def _forms(secret: str) -> set[str]:
    """`secret` as a log line could carry it: as typed, JSON-escaped, form-encoded."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        quote_plus(secret),
        quote(secret),
        secret.replace(" ", ""),
    }


PERSONAL = _forms(EMAIL) | _forms(PHONE) | {"jane.doe", "12 34 56 78", "12+34+56+78"}


def assert_nothing_personal(texts: list[str]) -> None:
    for line in texts:
        for secret in PERSONAL:
            assert secret not in line, (secret, line[:300])


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every record as a handler would write it: message, exception and stack included."""
    texts = [caplog.text]
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_text:
            texts.append(record.exc_text)
    return texts


def stale_headers(body: str) -> dict[str, str]:
    """Signed with the right secret, six minutes ago: a clock that is off."""
    return signature_headers(SECRET, body, timestamp=int(time.time()) - 6 * 60)


def stale_bolt_request(body: str) -> AsyncBoltRequest:
    """The same, as Bolt's own request object: for Bolt's signature check, past the server's."""
    headers: dict[str, str | Sequence[str]] = {"content-type": "application/json", **stale_headers(body)}
    return AsyncBoltRequest(body=body, headers=headers)


@pytest.fixture
def everything(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG on the root and on every logger that matters here."""
    with (
        caplog.at_level(logging.DEBUG),
        caplog.at_level(logging.DEBUG, logger="slack_bolt"),
        caplog.at_level(logging.DEBUG, logger=BOLT_LOGGER),
        caplog.at_level(logging.DEBUG, logger="aiosqlite"),
    ):
        yield caplog


# ---------------------------------------------------------------- request bodies


@pytest.mark.parametrize("kind", ["event", "slash command"])
async def test_a_stale_request_logs_no_personal_data(
    slack: Harness, everything: pytest.LogCaptureFixture, kind: str
) -> None:
    if kind == "event":
        body, content_type = json.dumps(event_callback(dm_event(OPENER))), "application/json"
    else:
        body = urlencode(slash_command(f"coach {OPENER}", slack.stub.response_url()))
        content_type = "application/x-www-form-urlencoded"
    sent = await slack.sender.post_raw(body, content_type, stale_headers(body))
    await slack.app.channel.drain()
    assert sent.status == 401
    assert slack.stub.posted() == []
    refusals = [r.getMessage() for r in everything.records if "refused" in r.getMessage()]
    assert refusals and "stale" in refusals[0]  # logged, in one line, without the body
    assert_nothing_personal(messages(everything))


async def test_bolts_own_signature_check_logs_no_body(
    slack: Harness, everything: pytest.LogCaptureFixture
) -> None:
    """Straight to Bolt, past the server's own check: Bolt's RequestVerification refuses
    the request and writes its line, body withheld."""
    body = json.dumps(event_callback(dm_event(OPENER)))
    response = await slack.app.async_dispatch(stale_bolt_request(body))
    assert response.status == 401
    [line] = [r for r in everything.records if "Invalid request signature" in r.getMessage()]
    assert line.name.startswith("slack_bolt") and line.levelno == logging.INFO
    assert line.getMessage().endswith(f"body: {WITHHELD}")
    assert_nothing_personal(messages(everything))


@pytest.mark.parametrize(
    ("logger", "message", "kept"),
    [
        (
            "slack_bolt.RequestVerification",
            f"Invalid request signature detected (signature: v0=ab, timestamp: 1, body: text={EMAIL})",
            "Invalid request signature detected (signature: v0=ab, timestamp: 1, body: ",
        ),
        (
            BOLT_LOGGER,
            f"Unhandled request ({{'type': 'view_submission', 'submission': {{'phone': '{PHONE}'}}}})"
            "\n\n---\n[Suggestion] You can handle this type of event with the following listener",
            "Unhandled request (",
        ),
        (
            BOLT_LOGGER,
            "A global middleware (m) skipped calling either `next()` or `next_()` without providing "
            f"a response for the request ({{'text': '{EMAIL}'}})",
            "A global middleware (m) skipped calling",
        ),
        ("slack_bolt.AsyncApp", f"request body: {{'text': '{PHONE}'}}", "request body: "),
    ],
)
def test_bolt_lines_that_carry_a_body_are_withheld(logger: str, message: str, kept: str) -> None:
    record = logging.LogRecord(logger, logging.INFO, __file__, 1, "%s", (message,), None)
    assert BoltBodyFilter().filter(record)
    assert record.getMessage().startswith(kept)
    assert WITHHELD in record.getMessage()
    assert_nothing_personal([record.getMessage()])


def test_other_lines_pass_untouched() -> None:
    record = logging.LogRecord("fournil.slack", logging.INFO, __file__, 1, "request body: %s", (EMAIL,), None)
    assert BoltBodyFilter().filter(record)
    assert record.getMessage() == f"request body: {EMAIL}"  # Fournil's own lines are its own business


# ---------------------------------------------------------------- SQL


async def _store_round_trip(store: SqlStore) -> None:
    key = ConversationKey(channel="slack", user_id="U0000REP1", conversation_id="D0000REP1")
    state = ConversationState(key=key, versions=[STORED], language="en", updated_at=datetime.now(UTC))
    await store.save_conversation(state)
    loaded = await store.load_conversation(key)
    assert loaded is not None and loaded.versions == [STORED]


@pytest.mark.parametrize("how", ["root at DEBUG", "sqlalchemy.engine at DEBUG", "echo='debug'"])
async def test_a_store_operation_at_debug_logs_no_opener_text(
    store: SqlStore, everything: pytest.LogCaptureFixture, how: str
) -> None:
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    handlers = list(engine_logger.handlers)
    try:
        if how == "sqlalchemy.engine at DEBUG":
            everything.set_level(logging.DEBUG, logger="sqlalchemy.engine")
        elif how == "echo='debug'":
            store.engine.echo = "debug"
        await _store_round_trip(store)
    finally:
        store.engine.echo = False
        engine_logger.handlers[:] = handlers  # echo adds a stdout handler
    texts = messages(everything)
    assert not any(STORED in line for line in texts), [line[:200] for line in texts if STORED in line]
    assert not any("Lyon" in line for line in texts)
    if how != "root at DEBUG":  # SQLAlchemy did log: the statements, not the data
        assert any(r.name.startswith("sqlalchemy.engine") for r in everything.records)


async def test_database_errors_do_not_carry_parameters(store: SqlStore) -> None:
    async with store.engine.connect() as conn:
        with pytest.raises(DBAPIError) as caught:
            await conn.execute(text("SELECT no_such_column WHERE :opener IS NOT NULL"), {"opener": STORED})
    assert STORED not in str(caught.value)  # no "[parameters: …]" in a traceback either


# ---------------------------------------------------------------- the real set-up


@pytest.fixture
def real_logging() -> Iterator[None]:
    """setup_logging replaces the root handlers and sets levels: put everything back."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    names = ["alembic", "bm25s", "chromadb", "httpx", "urllib3", "aiosqlite", "sqlalchemy"]
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_the_real_log_setup_writes_no_personal_data(
    slack: Harness, real_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG")
    body = json.dumps(event_callback(dm_event(OPENER)))
    sent = await slack.sender.post_raw(body, "application/json", stale_headers(body))
    assert sent.status == 401
    assert (await slack.app.async_dispatch(stale_bolt_request(body))).status == 401
    store = slack.flow.store
    assert isinstance(store, SqlStore)
    await _store_round_trip(store)
    written = capsys.readouterr().err
    assert "refused a request (401" in written
    assert f"body: {WITHHELD}" in written
    assert "DEBUG" in written  # the level was DEBUG indeed
    assert_nothing_personal(written.splitlines())
    assert STORED not in written
