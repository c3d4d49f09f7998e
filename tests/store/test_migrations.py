"""Schema migrations, on SQLite and PostgreSQL: a fresh database, a database made by the
version before migrations existed, reopening, and the migrated schema against the models."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.core.models import ConversationKey
from bot.core.ports import CardRecord, DrillSchedule
from bot.store.sql import LEGACY_REVISION, Base, SqlStore, alembic_config, async_url

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()

# What `Base.metadata.create_all` made before there were migrations, per backend.
LEGACY_DDL = {
    "sqlite": [
        """CREATE TABLE conversations (
            channel VARCHAR(32) NOT NULL, user_id VARCHAR(128) NOT NULL,
            conversation_id VARCHAR(128) NOT NULL, stage VARCHAR(32) NOT NULL,
            versions TEXT NOT NULL, language VARCHAR(8), updated_at DATETIME NOT NULL,
            PRIMARY KEY (channel, user_id, conversation_id))""",
        """CREATE TABLE users (
            channel VARCHAR(32) NOT NULL, user_id VARCHAR(128) NOT NULL, language VARCHAR(8),
            created_at DATETIME NOT NULL, PRIMARY KEY (channel, user_id))""",
        """CREATE TABLE cards (
            id INTEGER NOT NULL, channel VARCHAR(32) NOT NULL, user_id VARCHAR(128) NOT NULL,
            conversation_id VARCHAR(128) NOT NULL, language VARCHAR(8) NOT NULL,
            score INTEGER NOT NULL, categories TEXT NOT NULL, is_rewrite INTEGER NOT NULL,
            created_at DATETIME NOT NULL, PRIMARY KEY (id))""",
        "CREATE INDEX ix_cards_user_id ON cards (user_id)",
        "CREATE INDEX ix_cards_channel ON cards (channel)",
        """CREATE TABLE processed_events (
            channel VARCHAR(32) NOT NULL, event_id VARCHAR(191) NOT NULL,
            created_at DATETIME NOT NULL, PRIMARY KEY (channel, event_id))""",
    ],
    "postgresql": [
        """CREATE TABLE cards (
            id SERIAL NOT NULL, channel VARCHAR(32) NOT NULL, user_id VARCHAR(128) NOT NULL,
            conversation_id VARCHAR(128) NOT NULL, language VARCHAR(8) NOT NULL,
            score INTEGER NOT NULL, categories TEXT NOT NULL, is_rewrite INTEGER NOT NULL,
            created_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (id))""",
        "CREATE INDEX ix_cards_user_id ON cards (user_id)",
        "CREATE INDEX ix_cards_channel ON cards (channel)",
        """CREATE TABLE conversations (
            channel VARCHAR(32) NOT NULL, user_id VARCHAR(128) NOT NULL,
            conversation_id VARCHAR(128) NOT NULL, stage VARCHAR(32) NOT NULL,
            versions TEXT NOT NULL, language VARCHAR(8),
            updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
            PRIMARY KEY (channel, user_id, conversation_id))""",
        """CREATE TABLE processed_events (
            channel VARCHAR(32) NOT NULL, event_id VARCHAR(191) NOT NULL,
            created_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (channel, event_id))""",
        """CREATE TABLE users (
            channel VARCHAR(32) NOT NULL, user_id VARCHAR(128) NOT NULL, language VARCHAR(8),
            created_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (channel, user_id))""",
    ],
}
# Rows as the old version wrote them (SQLite kept UTC text without an offset).
LEGACY_ROWS = [
    "INSERT INTO conversations VALUES ('slack', 'U1', 'D1', 'awaiting_rewrite', '[\"Hi?\"]', 'en', "
    "'2026-01-05 10:00:00.000000')",
    "INSERT INTO users VALUES ('slack', 'U1', 'fr', '2026-01-05 10:00:00.000000')",
    "INSERT INTO cards (channel, user_id, conversation_id, language, score, categories, is_rewrite,"
    " created_at) VALUES ('slack', 'U1', 'D1', 'en', 42, '[\"meeting_ask\"]', 0,"
    " '2026-01-05 10:00:00.000000')",
    "INSERT INTO processed_events VALUES ('slack', 'Ev1', '2026-01-05 10:00:00.000000')",
]


async def run_on(url: str, work: Any) -> Any:
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def tables_and_version(conn: Connection) -> tuple[set[str], str | None]:
    return set(inspect(conn).get_table_names()), MigrationContext.configure(conn).get_current_revision()


def columns(conn: Connection, table: str) -> set[str]:
    return {c["name"] for c in inspect(conn).get_columns(table)}


def schema_differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_a_fresh_database_is_migrated_to_head(sql_url: str) -> None:
    store = await SqlStore.open(sql_url)
    await store.close()
    tables, version = await run_on(sql_url, tables_and_version)
    assert version == HEAD == "0004"
    assert tables == set(Base.metadata.tables) | {"alembic_version"}


async def test_the_migrated_schema_matches_the_models(sql_url: str) -> None:
    store = await SqlStore.open(sql_url)
    await store.close()
    assert await run_on(sql_url, schema_differences) == []


async def test_reopening_keeps_data_and_migrates_nothing(sql_url: str) -> None:
    store = await SqlStore.open(sql_url)
    schedule = await store.add_schedule(
        DrillSchedule(
            channel="slack",
            chat_id="C1",
            cron="0 9 * * 1",
            timezone="Europe/Paris",
            language="fr",
            created_by="M1",
            next_run_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
        )
    )
    await store.set_share_consent("slack", "U1", True)
    await store.close()

    for _ in range(2):
        reopened = await SqlStore.open(sql_url)
        assert await reopened.schedules("slack", "C1") == [schedule]
        assert await reopened.share_consent("slack", "U1")
        await reopened.close()
    _, version = await run_on(sql_url, tables_and_version)
    assert version == HEAD


async def test_a_database_from_before_migrations_is_stamped_then_upgraded(sql_url: str) -> None:
    def make_legacy(conn: Connection) -> None:
        for statement in LEGACY_DDL[conn.dialect.name] + LEGACY_ROWS:
            conn.execute(text(statement))

    await run_on(sql_url, make_legacy)
    tables, version = await run_on(sql_url, tables_and_version)
    assert version is None and "alembic_version" not in tables

    store = await SqlStore.open(sql_url)
    try:
        # The old rows survive, readable through the new code.
        key = ConversationKey(channel="slack", user_id="U1", conversation_id="D1")
        state = await store.load_conversation(key)
        assert state is not None and state.versions == ["Hi?"] and state.stage == "awaiting_rewrite"
        assert await store.language_preference("slack", "U1") == "fr"
        assert not await store.share_consent("slack", "U1")  # the new column's default
        old = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
        assert await store.cards_between(old, datetime(2026, 1, 6, tzinfo=UTC)) == [
            CardRecord(
                key=key,
                language="en",
                score=42,
                categories=["meeting_ask"],
                is_rewrite=False,
                has_question=False,
                created_at=old,
            )
        ]
        assert await store.event_done("slack", "Ev1")  # handled by the version that claimed it
        assert not await store.claim_event("slack", "Ev1")
        # And the new tables work.
        await store.set_share_consent("slack", "U1", True)
        assert await store.consenting_users() == {("slack", "U1")}
    finally:
        await store.close()

    def check(conn: Connection) -> tuple[set[str], str | None, set[str], set[str]]:
        tables, version = tables_and_version(conn)
        return tables, version, columns(conn, "cards"), columns(conn, "users")

    tables, version, card_columns, user_columns = await run_on(sql_url, check)
    assert version == HEAD
    assert set(Base.metadata.tables) <= tables
    assert "has_question" in card_columns and "share_consent" in user_columns
    assert await run_on(sql_url, schema_differences) == []


async def test_replicas_starting_together_both_open(sql_url: str) -> None:
    if sql_url.startswith("sqlite"):
        pytest.skip("replicas share PostgreSQL (an advisory lock orders their migrations), not SQLite")
    stores = await asyncio.gather(*(SqlStore.open(sql_url) for _ in range(3)))
    for store in stores:
        await store.close()
    _, version = await run_on(sql_url, tables_and_version)
    assert version == HEAD


async def test_downgrade_to_the_legacy_schema_and_back(sql_url: str) -> None:
    store = await SqlStore.open(sql_url)
    await store.set_language_preference("slack", "U1", "fr")
    await store.close()

    def downgrade(conn: Connection) -> None:
        command.downgrade(alembic_config(conn), LEGACY_REVISION)

    await run_on(sql_url, downgrade)
    tables, version = await run_on(sql_url, tables_and_version)
    assert version == LEGACY_REVISION
    assert tables == {"alembic_version", "conversations", "users", "cards", "processed_events"}

    store = await SqlStore.open(sql_url)
    try:
        assert await store.language_preference("slack", "U1") == "fr"
    finally:
        await store.close()
    assert await run_on(sql_url, schema_differences) == []
