"""Conversations, cards, drills, onboarding, consent and practice sessions in SQL: SQLite
by default, PostgreSQL when the team grows (`FOURNIL_DATABASE_URL=postgresql://…`).

Every message commits before the reply goes out, so a crash or a restart between an
opener and its rewrite loses nothing. Only redacted text is ever written here.

The schema belongs to the Alembic migrations in `bot/store/migrations/` (see its docstring
for how to add one): `SqlStore.open` upgrades the database to the latest revision before
anything else. The ORM classes below must always describe what the migrations build; a test
compares the two on both backends.

Every query here is plain SQLAlchemy that both SQLite and PostgreSQL run; upserts use each
dialect's `INSERT … ON CONFLICT`. Races between replicas are settled by the database:
`claim_event` (a first claim, or the take-over of one whose lease ran out),
`advance_schedule` and `close_run` are single conditional statements, and only the call
whose statement changed a row acts.

A database server that goes away while the bots run (a restart, a fail-over, a network
cut) is an outage, not a bug: every public method raises `StoreUnavailable` (one line
naming the password-free URL and the setting) instead of the driver's error, the outage is
logged once, and each later call tries the server again, so the store recovers by itself.
Pooled connections are checked before use (`pool_pre_ping`), so none left stale by a
restart fails a request. A call that could not even connect ran nothing; for the first
`reconnect_grace` seconds of an outage it is tried again after a short pause, so a restart
of a few seconds only delays the replies (and events are still claimed exactly once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect as pyinspect
import json
import logging
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    delete,
    event,
    false,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.core.delivery import CLAIM_LEASE_SECONDS, current_event, replica_name
from bot.core.errors import StoreUnavailable
from bot.core.models import ConversationKey
from bot.core.ports import (
    CardRecord,
    ConversationState,
    DrillAnswer,
    DrillRun,
    DrillSchedule,
    OnboardingProgress,
    PracticeRecord,
)
from bot.core.practice import PracticeSession
from bot.logs import guard_sql_loggers
from bot.settings import with_setting_origin

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
StoreT = TypeVar("StoreT", bound="SqlStore")

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# The revision that describes the tables the store made before it had migrations: a
# database that has them but no `alembic_version` table is stamped at it, then upgraded.
LEGACY_REVISION = "0001"
# Held while migrating on PostgreSQL, so replicas starting together migrate one at a time.
_MIGRATION_LOCK_KEY = 0x666F75726E696C  # "fournil"
# A PostgreSQL connection attempt gives up after this long (asyncpg would wait a minute):
# a server that does not answer must not hold a rep's reply that long.
CONNECT_TIMEOUT_SECONDS = 5.0
# For this long after the database stopped answering, a call that could not connect is
# tried again after a short pause (a restart or a fail-over of a few seconds goes
# unnoticed); past it, each call tries once and gives up at once.
RECONNECT_GRACE_SECONDS = 5.0
_RECONNECT_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
# SQLSTATEs of a server that cannot be reached or is going away: connection exceptions
# (class 08), shutdown by an administrator or a crash, starting up, too many connections.
_OUTAGE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# … of them, those a server sends instead of accepting a connection: nothing ran.
_NOT_NOW_SQLSTATES = frozenset({"57P03", "53300"})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _now() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL keeps `timestamptz`; SQLite keeps text without an offset and hands back naive
    values, which are UTC because everything is converted to UTC on the way in. A naive
    datetime is refused: its time zone would be a guess."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime given to the store (expected aware UTC): {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


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
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, index=True)
    # The platform event whose work saved this state last, and the state before that work
    # (JSON; "null": no conversation before), so that a take-over of the event can roll
    # the conversation back before handling it again (bot/core/delivery.py).
    event_id: Mapped[str | None] = mapped_column(String(191), nullable=True)
    state_before: Mapped[str | None] = mapped_column(Text, nullable=True)


class UserRow(Base):
    __tablename__ = "users"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
    # The member agreed that the team sees their drill answers under their name.
    share_consent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, index=True)
    has_question: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    event_id: Mapped[str | None] = mapped_column(String(191), nullable=True)  # whose work made it


class ProcessedEventRow(Base):
    """Platform events claimed by a replica (no user data: ids, a replica's name, times).

    `claimant` and `claimed_at` name the latest claim (a take-over replaces them);
    `done_at` is set once the work is over. A row without `claimed_at` was claimed by a
    version before migration 0004, which handled an event as soon as it claimed it: done."""

    __tablename__ = "processed_events"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(191), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, index=True)
    claimant: Mapped[str | None] = mapped_column(String(128), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class DrillScheduleRow(Base):
    __tablename__ = "drill_schedules"
    __table_args__ = (Index("ix_drill_schedules_chat", "channel", "chat_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    cron: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64))
    drill_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    language: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(String(128))
    next_run_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)


class DrillRunRow(Base):
    __tablename__ = "drill_runs"
    __table_args__ = (
        Index("ix_drill_runs_chat", "channel", "chat_id", "opened_at"),
        Index("ix_drill_runs_message", "channel", "chat_id", "message_ref"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    drill_id: Mapped[str] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(8))
    opened_by: Mapped[str] = mapped_column(String(128))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closes_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    message_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # No foreign key: removing a schedule keeps the history of the drills it posted.
    schedule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class DrillAnswerRow(Base):
    __tablename__ = "drill_answers"
    __table_args__ = (
        UniqueConstraint("run_id", "channel", "user_id", name="uq_drill_answers_run_user"),
        Index("ix_drill_answers_user", "channel", "user_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, ForeignKey("drill_runs.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    score: Mapped[int] = mapped_column(Integer)
    categories: Mapped[str] = mapped_column(Text)
    has_question: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, index=True)


class OnboardingProgressRow(Base):
    __tablename__ = "onboarding_progress"
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, default=1)
    passed: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of step numbers
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now)


class PracticeSessionRow(Base):
    """A practice session: the `PracticeSession` JSON (no whole message of the rep, only
    the redacted words it kept), keyed by its id and found by its conversation."""

    __tablename__ = "practice_sessions"
    __table_args__ = (Index("ix_practice_sessions_key", "channel", "user_id", "conversation_id"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    conversation_id: Mapped[str] = mapped_column(String(128))
    session: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=_now, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


# Every column that holds a platform user id, and what `/forget` does with its rows:
# "delete" the row, or "blank" the id when the row must survive for the team (a schedule
# the manager set up, a drill that was posted). Each of these tables also has `channel`.
# A test walks the metadata and fails if a user-id column is missing here.
USER_ID_COLUMN_NAMES = frozenset({"user_id", "created_by", "opened_by"})
USER_REFERENCES: tuple[tuple[str, str, Literal["delete", "blank"]], ...] = (
    ("conversations", "user_id", "delete"),
    ("users", "user_id", "delete"),  # language preference and share consent
    ("cards", "user_id", "delete"),
    ("drill_answers", "user_id", "delete"),
    ("onboarding_progress", "user_id", "delete"),
    ("practice_sessions", "user_id", "delete"),
    ("drill_schedules", "created_by", "blank"),
    ("drill_runs", "opened_by", "blank"),
)


def async_url(url: str) -> str:
    """Accept plain `sqlite:///` or `postgresql://` URLs and pick the async driver."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code: no alembic.ini is needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_schema(connection: Connection) -> None:
    """Brings the database on `connection` to the latest revision (inside its transaction).

    A database made before migrations existed (the store's tables, no `alembic_version`)
    is first stamped at the revision that describes it, so nothing is created twice."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    config = alembic_config(connection)
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables and "conversations" in tables:
        command.stamp(config, LEGACY_REVISION)
    command.upgrade(config, "head")


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _card(row: CardRow) -> CardRecord:
    return CardRecord(
        key=ConversationKey(channel=row.channel, user_id=row.user_id, conversation_id=row.conversation_id),
        language=row.language,
        score=row.score,
        categories=json.loads(row.categories),
        is_rewrite=bool(row.is_rewrite),
        has_question=bool(row.has_question),
        created_at=row.created_at,
    )


def _schedule(row: DrillScheduleRow) -> DrillSchedule:
    return DrillSchedule(
        id=row.id,
        channel=row.channel,
        chat_id=row.chat_id,
        cron=row.cron,
        timezone=row.timezone,
        drill_id=row.drill_id,
        language=row.language,
        created_by=row.created_by,
        next_run_at=row.next_run_at,
    )


def _run(row: DrillRunRow) -> DrillRun:
    return DrillRun(
        id=row.id,
        channel=row.channel,
        chat_id=row.chat_id,
        drill_id=row.drill_id,
        language=row.language,
        opened_by=row.opened_by,
        opened_at=row.opened_at,
        closes_at=row.closes_at,
        message_ref=row.message_ref,
        schedule_id=row.schedule_id,
        closed_at=row.closed_at,
    )


def _answer(row: DrillAnswerRow) -> DrillAnswer:
    return DrillAnswer(
        run_id=row.run_id,
        channel=row.channel,
        user_id=row.user_id,
        text=row.text,
        score=row.score,
        categories=json.loads(row.categories),
        has_question=bool(row.has_question),
        created_at=row.created_at,
    )


def _progress(row: OnboardingProgressRow) -> OnboardingProgress:
    return OnboardingProgress(
        channel=row.channel,
        user_id=row.user_id,
        step=row.step,
        passed=json.loads(row.passed),
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _practice(row: PracticeSessionRow) -> PracticeRecord:
    return PracticeRecord(
        key=ConversationKey(channel=row.channel, user_id=row.user_id, conversation_id=row.conversation_id),
        session=PracticeSession.model_validate_json(row.session),
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The error, the driver's error it wraps and their causes, without looping."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        link = pending.pop(0)
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        orig = getattr(link, "orig", None)
        pending += [orig if isinstance(orig, BaseException) else None, link.__cause__, link.__context__]


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def connection_failure(exc: BaseException) -> str | None:
    """Why the database server could not be used, when `exc` says it cannot be reached or
    dropped the connection (refused, reset, timed out, shut down, restarting); None for
    any other error (a constraint, a bug), which is not an outage."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return _first_line(exc.orig if isinstance(exc.orig, BaseException) else exc)
    for link in _causes(exc):
        if isinstance(link, OSError) and link.filename is None:  # refused, reset, timed out, DNS
            return _first_line(link)
        state = getattr(link, "sqlstate", None)
        if isinstance(state, str) and (state.startswith("08") or state in _OUTAGE_SQLSTATES):
            return _first_line(link)
    return None


def _could_not_connect(exc: BaseException) -> bool:
    """Whether a call failed before anything ran: the server refused the connection or
    accepts none yet (starting up, shutting down, full), or the driver failed while
    connecting (its own error, which SQLAlchemy wraps only around statements and commits)."""
    for link in _causes(exc):
        if isinstance(link, ConnectionRefusedError) or getattr(link, "sqlstate", None) in _NOT_NOW_SQLSTATES:
            return True
    return not isinstance(exc, SQLAlchemyError)


class StoreOutage:
    """The store's view of its database server: up, or unreachable since some moment.

    Says whether an error is an outage (`unavailable`), whether a call may wait and try
    again (`pause`), and keeps the log to one warning per outage (when a call first has
    to give up) and one line when the server answers again."""

    def __init__(self, where: str, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.where = where
        self.grace = grace
        self._clock = clock
        self.since: float | None = None
        self._warned = False

    @property
    def down(self) -> bool:
        return self.since is not None

    def unavailable(self, exc: BaseException) -> StoreUnavailable | None:
        cause = connection_failure(exc)
        if cause is None:
            return None
        if self.since is None:
            self.since = self._clock()
        return StoreUnavailable(f"{self.where} cannot be reached ({cause})", "FOURNIL_DATABASE_URL")

    def pause(self, exc: BaseException, attempt: int, idempotent: bool) -> float | None:
        """How long to wait before trying a call again, or None to give up now: only within
        the grace period of the outage, and only a call that could not connect (it ran
        nothing) or whose effect is the same when run twice (a read, an upsert, a delete;
        not a claim or a compare-and-set, whose commit may have landed unseen)."""
        if self.since is None or not (idempotent or _could_not_connect(exc)):
            return None
        if self._clock() - self.since >= self.grace:
            return None
        return _RECONNECT_PAUSES[min(attempt, len(_RECONNECT_PAUSES) - 1)]

    def gave_up(self, error: StoreUnavailable) -> None:
        if self._warned:
            return
        self._warned = True
        log.warning(
            "%s; replies that need the team's data say it is unavailable for a moment, "
            "cards are given but not kept; the database is tried again at each request",
            with_setting_origin(str(error)),
        )

    def answered(self) -> None:
        if self.since is None:
            return
        seconds = self._clock() - self.since
        if self._warned:
            log.info("%s answers again, after %.1f s: replies use the team's data again", self.where, seconds)
        else:
            log.info("%s answers again, after %.1f s (requests waited, none refused)", self.where, seconds)
        self.since, self._warned = None, False


def _guarded(
    method: Callable[Concatenate[StoreT, P], Coroutine[Any, Any, T]], idempotent: bool
) -> Callable[Concatenate[StoreT, P], Coroutine[Any, Any, T]]:
    @functools.wraps(method)
    async def guarded(self: StoreT, /, *args: P.args, **kwargs: P.kwargs) -> T:
        outage = self.outage
        attempt = 0
        while True:
            try:
                result = await method(self, *args, **kwargs)
            except Exception as exc:
                error = outage.unavailable(exc)
                if error is None:
                    raise
                pause = outage.pause(exc, attempt, idempotent)
                if pause is None:
                    outage.gave_up(error)
                    raise error from exc
                attempt += 1
                await asyncio.sleep(pause)
                continue
            outage.answered()
            return result

    return guarded


# The store's methods whose second run would not do what the first did: a claim, a
# compare-and-set, or an insert of a new row. A new method of that kind must be listed
# here; every other one is tried again during the first seconds of an outage.
_RUN_ONCE = frozenset(
    {
        "claim_event", "advance_schedule", "close_run", "remove_schedule",
        "record_card", "add_schedule", "open_run",
    }
)  # fmt: skip


def _outage_aware(cls: type[StoreT]) -> type[StoreT]:
    """Every public coroutine method of the store goes through `_guarded`. Each one is a
    single transaction, so one that could not connect ran nothing and may run again."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and name != "close" and pyinspect.iscoroutinefunction(member):
            setattr(cls, name, _guarded(member, idempotent=name not in _RUN_ONCE))
    return cls


@_outage_aware
class SqlStore:
    """Implements the core's `ConversationStore`, `TeamStore` and `PracticeStore` ports."""

    def __init__(
        self,
        engine: AsyncEngine,
        reconnect_grace: float = RECONNECT_GRACE_SECONDS,
        claim_lease: float = CLAIM_LEASE_SECONDS,
    ) -> None:
        self._engine = engine
        # Seconds a claim on an event holds before a retry may take it over, and the name
        # this process claims under (bot/core/delivery.py).
        self.claim_lease = claim_lease
        self.owner = replica_name()
        shown = engine.url.set(drivername=engine.url.get_backend_name())  # as configured: no driver
        where = f"the database at {shown.render_as_string(hide_password=True)}"
        self.outage = StoreOutage(where, reconnect_grace)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite takes one writer at a time: queue writes inside the process instead of
        # letting concurrent users hit "database is locked" under a burst.
        self._write_lock: asyncio.Lock | contextlib.AbstractAsyncContextManager[None] = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        self._claims = 0

    @classmethod
    async def open(
        cls,
        url: str,
        reconnect_grace: float = RECONNECT_GRACE_SECONDS,
        claim_lease: float = CLAIM_LEASE_SECONDS,
    ) -> SqlStore:
        """Connects and migrates the schema to the latest revision (a no-op when it is)."""
        parsed = make_url(async_url(url))
        if parsed.drivername.startswith("sqlite") and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Parameters (openers, names) stay out of SQLAlchemy's log lines and out of its
        # exceptions' messages ("[parameters: …]"), which end up in tracebacks; the
        # drivers' own loggers are filtered too (bot/logs.py).
        guard_sql_loggers()
        if parsed.drivername.startswith("postgresql"):
            # A connection a restarted server dropped is replaced before use, never handed
            # to a request; an unreachable server is given up after a few seconds.
            engine = create_async_engine(
                parsed,
                hide_parameters=True,
                pool_pre_ping=True,
                connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
            )
        else:
            engine = create_async_engine(parsed, hide_parameters=True)
        if parsed.drivername.startswith("sqlite"):
            # WAL lets readers work while a card is saved; NORMAL sync is still crash-safe
            # in WAL mode and cuts the cost of the several commits each message makes.
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        try:
            # Alembic's cookbook, "Programmatic API use (connection sharing) with asyncio".
            async with engine.begin() as conn:
                await conn.run_sync(upgrade_schema)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine, reconnect_grace, claim_lease)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        await self._engine.dispose()

    def _insert(self, table: type[Base]) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that can take `ON CONFLICT` on this backend."""
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        if self._engine.dialect.name == "sqlite":
            return sqlite.insert(table)
        raise NotImplementedError(f"unsupported database: {self._engine.dialect.name}")

    def _table(self, name: str) -> Table:
        return Base.metadata.tables[name]

    # --- ConversationStore -------------------------------------------------------------

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
        """Upserts the state; inside the work on a claimed event, tagged with the event and
        with the state as it was before that event's work (see `_roll_back`)."""
        key = state.key
        row = ConversationRow
        event = current_event(key.channel)
        values: dict[str, Any] = {
            "stage": state.stage,
            "versions": json.dumps(state.versions, ensure_ascii=False),
            "language": state.language,
            "updated_at": _now(),
            "event_id": event,
            "state_before": None,
        }
        async with self._write_lock, self._engine.begin() as conn:
            if event is not None:
                where = (
                    row.channel == key.channel,
                    row.user_id == key.user_id,
                    row.conversation_id == key.conversation_id,
                )
                columns = (row.stage, row.versions, row.language, row.event_id, row.state_before)
                found = (await conn.execute(select(*columns).where(*where))).first()
                if found is not None and found.event_id == event:  # saved again by the same work
                    values["state_before"] = found.state_before
                else:
                    values["state_before"] = json.dumps(
                        None
                        if found is None
                        else {"stage": found.stage, "versions": found.versions, "language": found.language}
                    )
            statement = self._insert(row).values(
                channel=key.channel, user_id=key.user_id, conversation_id=key.conversation_id, **values
            )
            statement = statement.on_conflict_do_update(
                index_elements=["channel", "user_id", "conversation_id"],
                set_={name: statement.excluded[name] for name in values},
            )
            await conn.execute(statement)

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
                    has_question=record.has_question,
                    created_at=record.created_at or _now(),
                    event_id=current_event(record.key.channel),
                )
            )

    async def language_preference(self, channel: str, user_id: str) -> str | None:
        async with self._sessions() as session:
            row = await session.get(UserRow, (channel, user_id))
            return row.language if row is not None else None

    async def set_language_preference(self, channel: str, user_id: str, language: str | None) -> None:
        await self._upsert_user(channel, user_id, {"language": language})

    async def _upsert_user(self, channel: str, user_id: str, values: dict[str, Any]) -> None:
        statement = self._insert(UserRow).values(
            channel=channel, user_id=user_id, created_at=_now(), **values
        )
        statement = statement.on_conflict_do_update(
            index_elements=["channel", "user_id"],
            set_={name: statement.excluded[name] for name in values},
        )
        async with self._write_lock, self._engine.begin() as conn:
            await conn.execute(statement)

    async def forget_user(self, channel: str, user_id: str) -> int:
        """Deletes every row about the user, and blanks their id in rows the team keeps."""
        if not user_id:
            return 0
        changed = 0
        async with self._write_lock, self._engine.begin() as conn:
            for table_name, column, action in USER_REFERENCES:
                table = self._table(table_name)
                where = (table.c.channel == channel, table.c[column] == user_id)
                if action == "delete":
                    result = await conn.execute(delete(table).where(*where))
                else:
                    result = await conn.execute(update(table).where(*where).values({column: ""}))
                changed += _rowcount(result)
        return changed

    async def count_user_rows(self, channel: str, user_id: str) -> int:
        """Rows that still name a user, across every user-id column of every table (used to
        prove /forget leaves none)."""
        total = 0
        async with self._engine.connect() as conn:
            for table_name, column, _ in USER_REFERENCES:
                table = self._table(table_name)
                count = await conn.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.channel == channel, table.c[column] == user_id)
                )
                total += int(count or 0)
        return total

    async def claim_event(self, channel: str, event_id: str, now: datetime | None = None) -> bool:
        """One statement: insert the claim, or take over one not done whose lease ran out;
        a take-over then rolls back what the dead claimant's work wrote, in the same
        transaction."""
        now = now or _now()
        lease = timedelta(seconds=self.claim_lease)
        row = ProcessedEventRow
        insert = self._insert(row).values(
            channel=channel, event_id=event_id, created_at=now, claimant=self.owner, claimed_at=now
        )
        statement = insert.on_conflict_do_update(
            index_elements=["channel", "event_id"],
            set_={"claimant": insert.excluded.claimant, "claimed_at": insert.excluded.claimed_at},
            where=row.done_at.is_(None) & (row.claimed_at < now - lease),
        ).returning(row.created_at)
        async with self._write_lock, self._engine.begin() as conn:
            won = (await conn.execute(statement)).first()
            claimed = won is not None
            if won is not None and won.created_at < now - lease:  # an older row: taken over
                await self._roll_back(conn, channel, event_id)
            self._claims += 1
            if self._claims % 500 == 1:  # platforms retry within minutes; keep a week
                cutoff = now - timedelta(days=7)
                await conn.execute(delete(row).where(row.created_at < cutoff))
        return claimed

    @staticmethod
    async def _roll_back(conn: AsyncConnection, channel: str, event_id: str) -> None:
        """Undoes what a dead claimant's work on the event wrote: the cards it recorded, and
        each conversation it saved goes back to its state before (or away, if it began)."""
        await conn.execute(delete(CardRow).where(CardRow.channel == channel, CardRow.event_id == event_id))
        row = ConversationRow
        found = await conn.execute(
            select(row.user_id, row.conversation_id, row.state_before).where(
                row.channel == channel, row.event_id == event_id
            )
        )
        for user_id, conversation_id, before in found.all():
            where = (row.channel == channel, row.user_id == user_id, row.conversation_id == conversation_id)
            state = json.loads(before or "null")
            if state is None:
                await conn.execute(delete(row).where(*where))
            else:
                restored = {name: state[name] for name in ("stage", "versions", "language")}
                restored |= {"event_id": None, "state_before": None}
                await conn.execute(update(row).where(*where).values(**restored))

    async def finish_event(self, channel: str, event_id: str, now: datetime | None = None) -> None:
        """One statement in autocommit (no BEGIN, no COMMIT): from the reply going out to
        this mark, a replica that dies has its event handled again, so the fewer round
        trips the better."""
        row = ProcessedEventRow
        statement = (
            update(row)
            .where(row.channel == channel, row.event_id == event_id, row.done_at.is_(None))
            .values(done_at=now or _now())
        )
        async with self._write_lock, self._engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(statement)

    async def event_done(self, channel: str, event_id: str) -> bool:
        row = ProcessedEventRow
        statement = select(row.claimed_at, row.done_at).where(
            row.channel == channel, row.event_id == event_id
        )
        async with self._engine.connect() as conn:
            found = (await conn.execute(statement)).first()
        return found is not None and (found.done_at is not None or found.claimed_at is None)

    async def recent_cards(self, channel: str, user_id: str, limit: int = 10) -> list[CardRecord]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(CardRow)
                .where(CardRow.channel == channel, CardRow.user_id == user_id)
                .order_by(CardRow.id.desc())
                .limit(limit)
            )
            return [_card(row) for row in rows]

    # --- TeamStore: schedules ----------------------------------------------------------

    async def add_schedule(self, schedule: DrillSchedule) -> DrillSchedule:
        row = DrillScheduleRow(
            channel=schedule.channel,
            chat_id=schedule.chat_id,
            cron=schedule.cron,
            timezone=schedule.timezone,
            drill_id=schedule.drill_id,
            language=schedule.language,
            created_by=schedule.created_by,
            next_run_at=schedule.next_run_at,
            created_at=_now(),
        )
        async with self._write_lock, self._sessions.begin() as session:
            session.add(row)
            await session.flush()
            return _schedule(row)

    async def schedules(self, channel: str, chat_id: str) -> list[DrillSchedule]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DrillScheduleRow)
                .where(DrillScheduleRow.channel == channel, DrillScheduleRow.chat_id == chat_id)
                .order_by(DrillScheduleRow.id)
            )
            return [_schedule(row) for row in rows]

    async def remove_schedule(self, channel: str, chat_id: str, schedule_id: int) -> bool:
        statement = delete(DrillScheduleRow).where(
            DrillScheduleRow.id == schedule_id,
            DrillScheduleRow.channel == channel,
            DrillScheduleRow.chat_id == chat_id,
        )
        async with self._write_lock, self._engine.begin() as conn:
            return _rowcount(await conn.execute(statement)) == 1

    async def due_schedules(self, now: datetime) -> list[DrillSchedule]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DrillScheduleRow)
                .where(DrillScheduleRow.next_run_at <= now)
                .order_by(DrillScheduleRow.next_run_at, DrillScheduleRow.id)
            )
            return [_schedule(row) for row in rows]

    async def advance_schedule(self, schedule_id: int, expected: datetime, next_run_at: datetime) -> bool:
        """Compare-and-set: only the caller that still saw `expected` moves it on."""
        statement = (
            update(DrillScheduleRow)
            .where(DrillScheduleRow.id == schedule_id, DrillScheduleRow.next_run_at == expected)
            .values(next_run_at=next_run_at)
        )
        async with self._write_lock, self._engine.begin() as conn:
            return _rowcount(await conn.execute(statement)) == 1

    # --- TeamStore: runs and answers ---------------------------------------------------

    async def open_run(self, run: DrillRun) -> DrillRun:
        row = DrillRunRow(
            channel=run.channel,
            chat_id=run.chat_id,
            drill_id=run.drill_id,
            language=run.language,
            opened_by=run.opened_by,
            opened_at=run.opened_at,
            closes_at=run.closes_at,
            message_ref=run.message_ref,
            schedule_id=run.schedule_id,
            closed_at=run.closed_at,
        )
        async with self._write_lock, self._sessions.begin() as session:
            session.add(row)
            await session.flush()
            return _run(row)

    async def set_run_message(self, run_id: int, message_ref: str) -> None:
        statement = update(DrillRunRow).where(DrillRunRow.id == run_id).values(message_ref=message_ref)
        async with self._write_lock, self._engine.begin() as conn:
            await conn.execute(statement)

    async def find_run(self, channel: str, chat_id: str, message_ref: str) -> DrillRun | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(DrillRunRow)
                .where(
                    DrillRunRow.channel == channel,
                    DrillRunRow.chat_id == chat_id,
                    DrillRunRow.message_ref == message_ref,
                )
                .order_by(DrillRunRow.id.desc())
                .limit(1)
            )
            return _run(row) if row is not None else None

    async def latest_open_run(self, channel: str, chat_id: str) -> DrillRun | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(DrillRunRow)
                .where(
                    DrillRunRow.channel == channel,
                    DrillRunRow.chat_id == chat_id,
                    DrillRunRow.closed_at.is_(None),
                )
                .order_by(DrillRunRow.opened_at.desc(), DrillRunRow.id.desc())
                .limit(1)
            )
            return _run(row) if row is not None else None

    async def due_runs(self, now: datetime) -> list[DrillRun]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DrillRunRow)
                .where(DrillRunRow.closed_at.is_(None), DrillRunRow.closes_at <= now)
                .order_by(DrillRunRow.closes_at, DrillRunRow.id)
            )
            return [_run(row) for row in rows]

    async def close_run(self, run_id: int, now: datetime) -> bool:
        """Compare-and-set: True for the one call that closed the run."""
        statement = (
            update(DrillRunRow)
            .where(DrillRunRow.id == run_id, DrillRunRow.closed_at.is_(None))
            .values(closed_at=now)
        )
        async with self._write_lock, self._engine.begin() as conn:
            return _rowcount(await conn.execute(statement)) == 1

    async def recent_drill_ids(self, channel: str, chat_id: str, limit: int = 10) -> list[str]:
        async with self._sessions() as session:
            ids = await session.scalars(
                select(DrillRunRow.drill_id)
                .where(DrillRunRow.channel == channel, DrillRunRow.chat_id == chat_id)
                .order_by(DrillRunRow.opened_at.desc(), DrillRunRow.id.desc())
                .limit(limit)
            )
            return list(ids)

    async def save_answer(self, answer: DrillAnswer) -> None:
        values = {
            "text": answer.text,
            "score": answer.score,
            "categories": json.dumps(answer.categories),
            "has_question": answer.has_question,
            "created_at": answer.created_at or _now(),
        }
        statement = self._insert(DrillAnswerRow).values(
            run_id=answer.run_id, channel=answer.channel, user_id=answer.user_id, **values
        )
        statement = statement.on_conflict_do_update(
            index_elements=["run_id", "channel", "user_id"],
            set_={name: statement.excluded[name] for name in values},
        )
        async with self._write_lock, self._engine.begin() as conn:
            await conn.execute(statement)

    async def run_answers(self, run_id: int) -> list[DrillAnswer]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DrillAnswerRow)
                .where(DrillAnswerRow.run_id == run_id)
                .order_by(DrillAnswerRow.created_at, DrillAnswerRow.id)
            )
            return [_answer(row) for row in rows]

    # --- TeamStore: onboarding and consent ---------------------------------------------

    async def load_progress(self, channel: str, user_id: str) -> OnboardingProgress | None:
        async with self._sessions() as session:
            row = await session.get(OnboardingProgressRow, (channel, user_id))
            return _progress(row) if row is not None else None

    async def save_progress(self, progress: OnboardingProgress) -> None:
        now = _now()
        values: dict[str, Any] = {
            "step": progress.step,
            "passed": json.dumps(progress.passed),
            "finished_at": progress.finished_at,
            "updated_at": now,
        }
        statement = self._insert(OnboardingProgressRow).values(
            channel=progress.channel,
            user_id=progress.user_id,
            started_at=progress.started_at or now,
            **values,
        )
        updated = list(values)
        if progress.started_at is not None:  # otherwise the first save's time stays
            updated.append("started_at")
        statement = statement.on_conflict_do_update(
            index_elements=["channel", "user_id"],
            set_={name: statement.excluded[name] for name in updated},
        )
        async with self._write_lock, self._engine.begin() as conn:
            await conn.execute(statement)

    async def all_progress(self, channel: str) -> list[OnboardingProgress]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(OnboardingProgressRow)
                .where(OnboardingProgressRow.channel == channel)
                .order_by(OnboardingProgressRow.started_at, OnboardingProgressRow.user_id)
            )
            return [_progress(row) for row in rows]

    async def share_consent(self, channel: str, user_id: str) -> bool:
        async with self._sessions() as session:
            row = await session.get(UserRow, (channel, user_id))
            return bool(row.share_consent) if row is not None else False

    async def set_share_consent(self, channel: str, user_id: str, share: bool) -> None:
        await self._upsert_user(channel, user_id, {"share_consent": share})

    async def consenting_users(self, channel: str | None = None) -> set[tuple[str, str]]:
        statement = select(UserRow.channel, UserRow.user_id).where(UserRow.share_consent.is_(True))
        if channel is not None:
            statement = statement.where(UserRow.channel == channel)
        async with self._sessions() as session:
            rows = await session.execute(statement)
            return {(row.channel, row.user_id) for row in rows}

    # --- TeamStore: team figures and retention -----------------------------------------

    async def cards_between(
        self, since: datetime, until: datetime, channel: str | None = None
    ) -> list[CardRecord]:
        """Cards made in [since, until), oldest first."""
        statement = select(CardRow).where(CardRow.created_at >= since, CardRow.created_at < until)
        if channel is not None:
            statement = statement.where(CardRow.channel == channel)
        async with self._sessions() as session:
            rows = await session.scalars(statement.order_by(CardRow.created_at, CardRow.id))
            return [_card(row) for row in rows]

    async def purge_before(self, cutoff: datetime) -> int:
        """Deletes conversations and practice sessions last touched, and cards, answers and
        event ids made, before `cutoff`; returns how many rows went."""
        statements: Sequence[Any] = (
            delete(ConversationRow).where(ConversationRow.updated_at < cutoff),
            delete(CardRow).where(CardRow.created_at < cutoff),
            delete(DrillAnswerRow).where(DrillAnswerRow.created_at < cutoff),
            delete(ProcessedEventRow).where(ProcessedEventRow.created_at < cutoff),
            delete(PracticeSessionRow).where(PracticeSessionRow.updated_at < cutoff),
        )
        deleted = 0
        async with self._write_lock, self._engine.begin() as conn:
            for statement in statements:
                deleted += _rowcount(await conn.execute(statement))
        return deleted

    # --- PracticeStore -----------------------------------------------------------------

    async def save_practice(self, record: PracticeRecord) -> None:
        key, now = record.key, _now()
        values: dict[str, Any] = {
            "session": record.session.model_dump_json(),
            "updated_at": now,
            "ended_at": record.ended_at,
        }
        statement = self._insert(PracticeSessionRow).values(
            id=record.session.id,
            channel=key.channel,
            user_id=key.user_id,
            conversation_id=key.conversation_id,
            created_at=record.created_at or now,
            **values,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={name: statement.excluded[name] for name in values}
        )
        async with self._write_lock, self._engine.begin() as conn:
            await conn.execute(statement)

    async def open_practice(self, key: ConversationKey) -> PracticeRecord | None:
        async with self._sessions() as session:
            row = await session.scalar(
                select(PracticeSessionRow)
                .where(
                    PracticeSessionRow.channel == key.channel,
                    PracticeSessionRow.user_id == key.user_id,
                    PracticeSessionRow.conversation_id == key.conversation_id,
                    PracticeSessionRow.ended_at.is_(None),
                )
                .order_by(PracticeSessionRow.created_at.desc(), PracticeSessionRow.id)
                .limit(1)
            )
            return _practice(row) if row is not None else None

    async def practice_between(
        self, since: datetime, until: datetime, channel: str | None = None
    ) -> list[PracticeRecord]:
        """Sessions started in [since, until), oldest first."""
        statement = select(PracticeSessionRow).where(
            PracticeSessionRow.created_at >= since, PracticeSessionRow.created_at < until
        )
        if channel is not None:
            statement = statement.where(PracticeSessionRow.channel == channel)
        async with self._sessions() as session:
            rows = await session.scalars(
                statement.order_by(PracticeSessionRow.created_at, PracticeSessionRow.id)
            )
            return [_practice(row) for row in rows]
