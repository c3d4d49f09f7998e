"""Store fixtures over real backends: an in-process MemoryStore, a SQLite file, and a
PostgreSQL database of its own per test (on the server scripts/test.sh starts).

`store` runs a test on every backend; `sql_url` gives a fresh, empty database URL for the
tests that need SQL itself (migrations, two processes racing on one database)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.store.memory import MemoryStore
from bot.store.sql import SqlStore, async_url

Store = MemoryStore | SqlStore

POSTGRES_SKIP = "PostgreSQL not available: FOURNIL_TEST_POSTGRES_URL unset (scripts/test.sh starts one)"


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database, deleted afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fournil.db'}"
        return
    admin_url = os.environ.get("FOURNIL_TEST_POSTGRES_URL")
    if not admin_url:
        pytest.skip(POSTGRES_SKIP)
    name = f"fournil_t_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(async_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    async with fresh_database(request.param, tmp_path) as url:
        opened = await SqlStore.open(url)
        try:
            yield opened
        finally:
            await opened.close()
