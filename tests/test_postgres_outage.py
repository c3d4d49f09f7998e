"""PostgreSQL going away while the bots run, and coming back.

A real PostgreSQL server of this module's own (tests/postgres_cluster.py: initdb/pg_ctl in
a temp dir, 127.0.0.1) is stopped and started again under a running flow, Telegram bot and
Slack app. While it is down: an opener still gets its card, saying it is not kept; a
question is answered; whatever needs stored data gets one line, in the rep's language,
saying the team's data store is unavailable for a moment; the log gets one warning for
the whole outage and no traceback. When it is back, the store reconnects by itself: the
rewrite of an opener sent before the outage is compared with it. A restart between two
requests leaves no stale connection behind, and a request made during a short restart
waits for the server instead of being refused.

Skipped when PostgreSQL's binaries are not installed (scripts/test.sh installs them in CI).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from bot.app import ResilientFlow, build_coach, build_team
from bot.core.coach import Coach
from bot.core.models import ConversationKey, IncomingMessage, Reply, ReplyKind
from bot.settings import load_settings
from bot.store.sql import _RUN_ONCE, SqlStore
from tests.postgres_cluster import PostgresCluster, PostgresError
from tests.slack.conftest import serve_slack, slack_test_settings
from tests.slack.fakes import SlackStub, all_texts, dm_event, event_callback
from tests.telegram.botapi_stub import BotApiStub
from tests.telegram.conftest import bot_settings, running_bot

ROOT = Path(__file__).resolve().parent.parent
OPENER = "Hi Sarah, we are a leading provider of analytics. Would you be open to a 15-minute call?"
REWRITE = (
    "Hi Sarah, since Northwind opened the Lyon site, "
    "how are you splitting picking between the two warehouses?"
)
FRENCH = "Bonjour Marie, seriez-vous disponible jeudi pour une démo de notre plateforme ?"
MANAGER = "u-manager"
# Not a duration that is measured: how long a test waits before calling a hang a failure.
HANG = 60.0


def _ui(lang: str, key: str) -> str:
    data = yaml.safe_load((ROOT / "prompts" / "ui" / f"{lang}.yaml").read_text(encoding="utf-8"))
    return str(data["flow"][key])


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    reason = PostgresCluster.missing()
    if reason:
        pytest.skip(reason)
    try:
        server = PostgresCluster()
    except PostgresError as exc:
        pytest.skip(str(exc))
    try:
        try:
            server.init()
        except PostgresError as exc:
            pytest.skip(f"PostgreSQL could not be started here: {exc}")
        yield server
    finally:
        server.destroy()


@pytest.fixture
def database(cluster: PostgresCluster) -> Iterator[str]:
    """A fresh database on the running server; the server is running again afterwards."""
    url = cluster.create_database(f"outage_{uuid.uuid4().hex[:12]}")
    yield url
    if not cluster.running:
        cluster.start()


@pytest.fixture(scope="module")
def search_coach(tmp_path_factory: pytest.TempPathFactory) -> Coach:
    """A coach with the knowledge index (embedded Chroma in a temp data dir): questions are
    answered during the outage, not declined for want of an index."""
    return build_coach(load_settings(data_dir=tmp_path_factory.mktemp("outage-index")), with_search=True)


def _say(
    text: str,
    user: str = "u1",
    locale: str | None = "en-US",
    *,
    chat: str | None = None,
    reply_to: str | None = None,
) -> IncomingMessage:
    key = ConversationKey(channel="test", user_id=user, conversation_id=chat or f"dm-{user}")
    return IncomingMessage(
        key=key, text=text, locale=locale, chat_id=chat, in_group=chat is not None, reply_to=reply_to
    )


def _problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def _is_card_not_kept(reply: Reply, lang: str) -> bool:
    return (
        reply.card is not None
        and reply.comparison is None
        and reply.language == lang
        and reply.text.startswith(_ui(lang, "card_not_kept"))
        and f"{reply.card.score}/100" in reply.text
    )


async def test_postgres_stopped_then_started_while_the_flow_runs(
    cluster: PostgresCluster,
    database: str,
    search_coach: Coach,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    # No grace: the first request after the stop is refused at once (the grace has its own test).
    store = await SqlStore.open(database, reconnect_grace=0)
    settings = load_settings(data_dir=tmp_path, managers=[MANAGER])
    flow = ResilientFlow(search_coach, store, team=build_team(settings, search_coach, store))
    try:
        first = await flow.handle(_say(OPENER))
        assert first.kind == ReplyKind.CARD and first.card is not None

        cluster.stop()
        rewrite = await flow.handle(_say(REWRITE))
        assert rewrite.kind == ReplyKind.NOTICE and _is_card_not_kept(rewrite, "en"), rewrite.text
        french = await flow.handle(_say(FRENCH, user="u2", locale="fr-FR"))
        assert _is_card_not_kept(french, "fr"), french.text
        coached = await flow.handle(_say(f"/coach {OPENER}", user="u3"))
        assert _is_card_not_kept(coached, "en")

        asked = await flow.handle(_say("/ask how do I follow up without nagging?"))
        assert asked.kind == ReplyKind.ANSWER, asked.text
        plain_question = await flow.handle(_say("Comment relancer sans harceler ?", locale="fr-FR"))
        assert plain_question.kind == ReplyKind.ANSWER and plain_question.language == "fr"
        assert (await flow.handle(_say("/help"))).kind == ReplyKind.HELP

        for command in ("/new", "/forget", "/findings", "/lang fr", "/report", "/share on"):
            refused = await flow.handle(_say(command))
            assert (refused.kind, refused.text) == (ReplyKind.NOTICE, _ui("en", "store_unavailable")), command
        in_french = await flow.handle(_say("/lang en", locale="fr-FR"))
        assert (in_french.language, in_french.text) == ("fr", _ui("fr", "store_unavailable"))
        drill = await flow.handle(_say("/drill now", user=MANAGER, chat="G1"))
        assert drill.text == _ui("en", "store_unavailable") and drill.drill_run is None
        # A reply in a team chat may be a drill answer: never coached in front of the team.
        answer = await flow.handle(_say(REWRITE, user="u4", chat="G1", reply_to="17"))
        assert answer.private and answer.text == _ui("en", "store_unavailable") and answer.card is None

        problems = _problems(caplog)
        assert len(problems) == 1, [r.getMessage() for r in problems]  # once for the whole outage
        [warning] = problems
        assert warning.name == "bot.store.sql" and warning.levelno == logging.WARNING
        assert cluster.url(database.rsplit("/", 1)[1]) in warning.getMessage()
        assert "FOURNIL_DATABASE_URL" in warning.getMessage()

        cluster.start()
        # Reconnected by itself: the rewrite is compared with the opener sent before the outage.
        again = await flow.handle(_say(REWRITE))
        assert again.kind == ReplyKind.COMPARISON and again.comparison is not None
        assert again.comparison.before.score == first.card.score
        assert len(_problems(caplog)) == 1
        assert any(r.name == "bot.store.sql" and "answers again" in r.getMessage() for r in caplog.records)
        assert not store.outage.down
    finally:
        await store.close()


async def test_a_restart_between_requests_leaves_no_stale_connection(
    cluster: PostgresCluster, database: str, coach: Coach, caplog: pytest.LogCaptureFixture
) -> None:
    """The pool's connections die with the server; each is checked before use and replaced."""
    caplog.set_level(logging.INFO)
    store = await SqlStore.open(database, reconnect_grace=0)
    flow = ResilientFlow(coach, store)
    try:
        first = await flow.handle(_say(OPENER))
        assert first.card is not None
        cluster.stop()
        cluster.start()
        second = await flow.handle(_say(REWRITE))
        assert second.kind == ReplyKind.COMPARISON, second.text
        assert _problems(caplog) == [] and not store.outage.down
    finally:
        await store.close()


async def test_a_request_during_a_short_restart_waits_for_the_server(
    cluster: PostgresCluster, database: str, coach: Coach, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    store = await SqlStore.open(database, reconnect_grace=HANG)
    flow = ResilientFlow(coach, store)
    try:
        first = await flow.handle(_say(OPENER))
        assert first.card is not None
        cluster.stop()
        pending = asyncio.create_task(flow.handle(_say(REWRITE)))
        for _ in range(int(HANG / 0.05)):  # until the request found the server gone
            if store.outage.down:
                break
            await asyncio.sleep(0.05)
        assert store.outage.down and not pending.done()  # … and is waiting for it
        await asyncio.to_thread(cluster.start)
        async with asyncio.timeout(HANG):
            reply = await pending
        assert reply.kind == ReplyKind.COMPARISON and reply.comparison is not None
        assert reply.comparison.before.score == first.card.score
        assert _problems(caplog) == []  # nobody was refused: nothing to warn about
        assert any("none refused" in r.getMessage() for r in caplog.records if r.name == "bot.store.sql")
    finally:
        await store.close()


def test_the_methods_never_run_twice_are_the_stores() -> None:
    """`_RUN_ONCE` names methods that exist: a renamed claim would otherwise be retried after
    a commit that may have landed, and an event claimed twice would be dropped."""
    public = {name for name in vars(SqlStore) if not name.startswith("_")}
    assert public >= _RUN_ONCE
    assert {"claim_event", "advance_schedule", "close_run", "record_card"} <= _RUN_ONCE


# --- the chat platforms ------------------------------------------------------------------


@pytest.fixture
async def telegram_stub() -> AsyncIterator[BotApiStub]:
    async with BotApiStub() as server:
        yield server


async def test_telegram_with_postgres_down(
    cluster: PostgresCluster,
    database: str,
    telegram_stub: BotApiStub,
    coach: Coach,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    stub = telegram_stub
    settings = bot_settings(stub, tmp_path / "data", database_url=database)
    async with running_bot(stub, settings, coach) as bot:
        store = bot.flow.store
        assert isinstance(store, SqlStore)
        store.outage.grace = 0
        cluster.stop()
        mark = stub.mark()
        stub.push(stub.private(601, OPENER))
        [card] = await stub.wait_for("sendMessage", after=mark, chat_id=601, limit=HANG)
        assert card.shown.startswith(_ui("en", "card_not_kept")) and "/100" in card.shown
        assert card.buttons == []  # no "I rewrote it": there is nothing to compare with
        mark = stub.mark()
        stub.push(stub.private(602, "/lang en", language_code="fr"))
        [line] = await stub.wait_for("sendMessage", after=mark, chat_id=602, limit=HANG)
        assert line.shown == _ui("fr", "store_unavailable")
        cluster.start()
        mark = stub.mark()
        stub.push(stub.private(601, OPENER))
        [kept] = await stub.wait_for("sendMessage", after=mark, chat_id=601, limit=HANG)
        assert not kept.shown.startswith(_ui("en", "card_not_kept")) and "/100" in kept.shown
    problems = _problems(caplog)
    assert [r.name for r in problems] == ["bot.store.sql"], [r.getMessage() for r in problems]


async def test_slack_with_postgres_down(
    cluster: PostgresCluster, database: str, coach: Coach, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    stub = await SlackStub().start()
    try:
        settings = slack_test_settings(tmp_path, stub, database_url=database)
        async with serve_slack(settings, coach, stub) as slack:
            store = slack.flow.store
            assert isinstance(store, SqlStore)
            store.outage.grace = 0
            cluster.stop()
            event = dm_event(OPENER, user="U0000REP7", channel="D0000REP7")
            sent = await slack.sender.event(event_callback(event))
            assert sent.status == 200
            [card] = await stub.wait_for("chat.postMessage", within=HANG)
            shown = all_texts(card.params["blocks"])
            assert _ui("en", "card_not_kept") in shown and "/100" in shown
            cluster.start()
    finally:
        await stub.close()
    problems = _problems(caplog)
    assert [r.name for r in problems] == ["bot.store.sql"], [r.getMessage() for r in problems]
