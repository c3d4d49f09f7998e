"""Conversation state and card history in SQL (SQLite by default, any SQLAlchemy URL).

Every message commits before the reply goes out, so a crash or a restart between an
opener and its rewrite loses nothing. Only redacted text is ever written here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, delete, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.core.models import ConversationKey
from bot.core.ports import CardRecord, ConversationState


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ConversationRow(Base):
    __tablename__ = "conversations"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    stage: Mapped[str] = mapped_column(String(32), default="idle")
    versions: Mapped[str] = mapped_column(Text, default="[]")
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class UserRow(Base):
    __tablename__ = "users"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class CardRow(Base):
    __tablename__ = "cards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32), index=True)
    user_id: Mapped[str] = mapped_column(String(128), index=True)
    conversation_id: Mapped[str] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(Integer)
    categories: Mapped[str] = mapped_column(Text)
    is_rewrite: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ProcessedEventRow(Base):
    """Ids of platform events already handled (no user data: ids and time only)."""

    __tablename__ = "processed_events"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(191), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


USER_TABLES = (ConversationRow, UserRow, CardRow)


def async_url(url: str) -> str:
    """Accept plain `sqlite:///` or `postgresql://` URLs and pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


class SqlStore:
    """Implements the core's `ConversationStore` port."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite takes one writer at a time: queue writes inside the process instead of
        # letting concurrent users hit "database is locked" under a burst.
        self._write_lock: asyncio.Lock | contextlib.AbstractAsyncContextManager[None] = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        self._claims = 0

    @classmethod
    async def open(cls, url: str) -> SqlStore:
        parsed = make_url(async_url(url))
        if parsed.drivername.startswith("sqlite") and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(parsed)
        if parsed.drivername.startswith("sqlite"):
            # WAL lets readers work while a card is saved; NORMAL sync is still crash-safe
            # in WAL mode and cuts the cost of the several commits each message makes.
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        return cls(engine)

    async def close(self) -> None:
        await self._engine.dispose()

    async def load_conversation(self, key: ConversationKey) -> ConversationState | None:
        async with self._sessions() as session:
            row = await session.get(ConversationRow, (key.channel, key.user_id, key.conversation_id))
            if row is None:
                return None
            return ConversationState(
                key=key,
                stage=row.stage,
                versions=json.loads(row.versions),
                language=row.language,
                updated_at=row.updated_at,
            )

    async def save_conversation(self, state: ConversationState) -> None:
        key = state.key
        async with self._write_lock, self._sessions.begin() as session:
            row = await session.get(ConversationRow, (key.channel, key.user_id, key.conversation_id))
            if row is None:
                row = ConversationRow(
                    channel=key.channel, user_id=key.user_id, conversation_id=key.conversation_id
                )
                session.add(row)
            row.stage = state.stage
            row.versions = json.dumps(state.versions, ensure_ascii=False)
            row.language = state.language
            row.updated_at = _now()

    async def record_card(self, record: CardRecord) -> None:
        async with self._write_lock, self._sessions.begin() as session:
            session.add(
                CardRow(
                    channel=record.key.channel,
                    user_id=record.key.user_id,
                    conversation_id=record.key.conversation_id,
                    language=record.language,
                    score=record.score,
                    categories=json.dumps(record.categories),
                    is_rewrite=int(record.is_rewrite),
                )
            )

    async def language_preference(self, channel: str, user_id: str) -> str | None:
        async with self._sessions() as session:
            row = await session.get(UserRow, (channel, user_id))
            return row.language if row is not None else None

    async def set_language_preference(self, channel: str, user_id: str, language: str | None) -> None:
        async with self._write_lock, self._sessions.begin() as session:
            row = await session.get(UserRow, (channel, user_id))
            if row is None:
                session.add(UserRow(channel=channel, user_id=user_id, language=language))
            else:
                row.language = language

    async def forget_user(self, channel: str, user_id: str) -> int:
        deleted = 0
        async with self._write_lock, self._sessions.begin() as session:
            for table in USER_TABLES:
                result = await session.execute(
                    delete(table).where(table.channel == channel, table.user_id == user_id)
                )
                deleted += int(getattr(result, "rowcount", 0) or 0)
        return deleted

    async def claim_event(self, channel: str, event_id: str) -> bool:
        try:
            async with self._write_lock, self._sessions.begin() as session:
                session.add(ProcessedEventRow(channel=channel, event_id=event_id))
                self._claims += 1
                if self._claims % 500 == 1:  # platforms retry within minutes; keep a week
                    cutoff = _now() - timedelta(days=7)
                    await session.execute(
                        delete(ProcessedEventRow).where(ProcessedEventRow.created_at < cutoff)
                    )
        except IntegrityError:
            return False
        return True

    async def recent_cards(self, channel: str, user_id: str, limit: int = 10) -> list[CardRecord]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(CardRow)
                .where(CardRow.channel == channel, CardRow.user_id == user_id)
                .order_by(CardRow.id.desc())
                .limit(limit)
            )
            return [
                CardRecord(
                    key=ConversationKey(
                        channel=row.channel, user_id=row.user_id, conversation_id=row.conversation_id
                    ),
                    language=row.language,
                    score=row.score,
                    categories=json.loads(row.categories),
                    is_rewrite=bool(row.is_rewrite),
                    created_at=row.created_at,
                )
                for row in rows.scalars()
            ]

    async def count_user_rows(self, channel: str, user_id: str) -> int:
        """Rows about a user across every table (used to prove /forget leaves none)."""
        total = 0
        async with self._sessions() as session:
            for table in USER_TABLES:
                rows = await session.execute(
                    select(table).where(table.channel == channel, table.user_id == user_id)
                )
                total += len(rows.all())
        return total
