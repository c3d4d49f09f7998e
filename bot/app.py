"""Composition root: builds the coach, the knowledge search and the conversation flow.

The only place that knows which implementation backs each core port.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bot.core.ask import AskAnswer
from bot.core.coach import Coach
from bot.core.errors import IndexUnavailable, StoreUnavailable
from bot.core.flow import CoachingFlow
from bot.core.models import Reply, ReplyKind
from bot.core.ports import LlmAssist, PrincipleSearch, QuestionReading, SearchHit, UnitScorer
from bot.knowledge.principles import PrincipleStore
from bot.knowledge.related import RelatedMatrix, documents_fingerprint, stored_fingerprint
from bot.settings import Settings, with_setting_origin

# What a one-shot card does not use loads where it is used: SQLAlchemy and Alembic when a
# store is opened, the team (drills, schedules, reports) and practice with the flow of a
# chat or a bot (together ~0.4 s of imports).
if TYPE_CHECKING:
    from bot.core.practice_flow import PracticeCoach
    from bot.core.team import ReportBuilder, TeamCoach, TeamConfig
    from bot.core.ui import UiStrings
    from bot.knowledge.index import PrincipleIndex
    from bot.store.sql import SqlStore

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
# After an outage of the knowledge index, how long requests go on without it before the
# next one tries to open it again.
INDEX_RETRY_SECONDS = 30.0
_DAMAGED = re.compile(r"not a database|malformed|corrupt", re.IGNORECASE)


def load_principles(settings: Settings) -> PrincipleStore:
    return PrincipleStore.load(settings.knowledge_dir / "principles")


def related_copy_path(settings: Settings) -> Path | None:
    """Where the copy of the related-principle matrix lives (bot/knowledge/related.py):
    beside the embedded index in the data dir; none with a Chroma server, which stays the
    one source (and whose outage a card must show)."""
    return None if settings.chroma_url else settings.data_dir / "related-principles.npz"


def principles_fingerprint(principles: PrincipleStore) -> str:
    """Of the documents the principle files give now (what the index holds once in step)."""
    from bot.knowledge.index import principle_documents

    return documents_fingerprint((doc.id, doc.digest) for doc in principle_documents(principles))


def keep_related_copy(settings: Settings, index: PrincipleIndex, principles: PrincipleStore) -> None:
    """After the index was brought in step with the files: writes the copy of its matrix
    when the one in the data dir is missing or was written for other files."""
    path = related_copy_path(settings)
    if path is None:
        return
    fingerprint = principles_fingerprint(principles)
    if stored_fingerprint(path) != fingerprint:
        index.related_matrix().save(path, fingerprint)


def open_search(
    settings: Settings, principles: PrincipleStore, progress: Progress | None = None
) -> PrincipleSearch:
    """The principle index (Chroma), brought in step with the files: only changed
    documents are embedded again, so a warm start costs the time to open it."""
    from bot.knowledge.ask_model import AskModel
    from bot.knowledge.index import PrincipleIndex, SearchTuning, chroma_client

    # The learned question reader (knowledge/ask/, written by `fournil kb train`).
    ask_model = AskModel.load(settings.knowledge_dir / "ask", principles)
    index, _ = PrincipleIndex.open(
        chroma_client(settings),
        principles,
        progress=progress,
        offtopic=settings.knowledge_dir / "offtopic.yaml",
        tuning=SearchTuning.load(settings.knowledge_dir / "search.yaml"),
        concepts=settings.knowledge_dir / "concepts.yaml",
        concept_cache=settings.data_dir / "concept-counts.json",
        ask_model=ask_model,
    )
    keep_related_copy(settings, index, principles)
    return index


class LazySearch:
    """Opens the index on the first search: loading Chroma and the encoder takes ~3 s, which
    a command that only rejects bad input or prints help should not pay.

    An outage of the index (Chroma unreachable, its directory unusable) never stops a card:
    `related` then finds nothing and `search` raises `IndexUnavailable` (its caller says
    so). For `retry_after` seconds requests go on without the index, without waiting on
    it; then the next request opens it again, so the bot recovers by itself when Chroma is
    back. The outage is logged once, where the service degrades (`warn`), not per request.

    With `related_copy` (a one-shot card: `fournil coach`, `compare`), a card's related
    principles come from the copy of the index's matrix in the data dir while it was
    written for the principle files as they are now: the same vectors, so the same
    principles, without opening Chroma (~1 s). Without a usable copy the index is opened,
    brought in step and the copy written again."""

    def __init__(
        self,
        settings: Settings,
        principles: PrincipleStore,
        progress: Progress | None,
        retry_after: float = INDEX_RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        related_copy: Path | None = None,
    ) -> None:
        self._settings = settings
        self._principles = principles
        self._progress = progress
        self._retry_after = retry_after
        self._clock = clock
        self._related_copy = related_copy
        self._copy: tuple[RelatedMatrix | None] | None = None
        self._index: PrincipleSearch | None = None
        self._outage: IndexUnavailable | None = None
        self._warned = False
        self._retry_at = 0.0
        self._lock = threading.Lock()

    @property
    def outage(self) -> IndexUnavailable | None:
        """The current outage; None while the index is open or has not been tried."""
        return self._outage

    def warm(self) -> PrincipleSearch:
        """The open index; raises `IndexUnavailable` during an outage."""
        with self._lock:  # cards are computed in worker threads: open the index once
            if self._index is not None:
                return self._index
            outage = self._outage
            if outage is not None and self._clock() < self._retry_at:
                # A new error each time: raising one instance again and again grows its traceback.
                raise IndexUnavailable(outage.problem, outage.setting)
            try:
                self._index = open_search(self._settings, self._principles, self._progress)
            except IndexUnavailable as exc:
                self._record(exc)
                raise
            if self._outage is not None:
                if self._warned:
                    log.info("knowledge index available again")
                self._outage, self._warned = None, False
            return self._index

    def search(self, text: str, lang: str, limit: int = 3) -> list[SearchHit]:
        index = self.warm()
        try:
            return index.search(text, lang, limit)
        except IndexUnavailable as exc:
            self._lost(index, exc)
            raise

    def read_question(self, text: str, lang: str, limit: int = 3) -> QuestionReading:
        index = self.warm()
        try:
            return index.read_question(text, lang, limit)
        except IndexUnavailable as exc:
            self._lost(index, exc)
            raise

    @property
    def opened(self) -> bool:
        """Whether the index itself has been opened (a card from the copy does not)."""
        return self._index is not None

    def related(self, text: str, limit: int = 2, gist: np.ndarray | None = None) -> list[SearchHit]:
        """No related principles during an outage: the card goes on without them."""
        copy = self._fresh_copy() if gist is not None and self._index is None else None
        if copy is not None and gist is not None:
            if not text.strip():
                return []
            return [
                SearchHit(principle=pid, score=round(similarity, 4), similarity=round(similarity, 4))
                for pid, similarity in copy.nearest(gist)[:limit]
            ]
        try:
            index = self.warm()
        except IndexUnavailable as exc:
            self.warn(exc)
            return []
        try:
            return index.related(text, limit, gist)
        except IndexUnavailable as exc:
            self._lost(index, exc)
            self.warn(exc)
            return []

    def _fresh_copy(self) -> RelatedMatrix | None:
        """The copy of the matrix when there is one for the principle files as they are
        (looked for once)."""
        if self._related_copy is None:
            return None
        with self._lock:
            if self._copy is None:
                fingerprint = principles_fingerprint(self._principles)
                self._copy = (RelatedMatrix.load(self._related_copy, fingerprint),)
            return self._copy[0]

    def warn(self, exc: IndexUnavailable) -> None:
        """Logs the outage, once until the index is back."""
        with self._lock:
            if self._warned:
                return
            self._warned = True
        log.warning(
            "%s; cards go on without related principles and questions are declined; "
            "the index is tried again every %.0f s",
            with_setting_origin(str(exc)),
            self._retry_after,
        )

    def _lost(self, index: PrincipleSearch, exc: IndexUnavailable) -> None:
        """The index failed while in use: forget it (it is opened again after the back-off,
        which also recreates what a restarted server may have lost)."""
        with self._lock:
            if self._index is index:
                self._index = None
            self._record(exc)

    def _record(self, exc: IndexUnavailable) -> None:
        self._outage = exc
        self._retry_at = self._clock() + self._retry_after


def build_coach(
    settings: Settings, with_search: bool = False, progress: Progress | None = None, one_shot: bool = False
) -> Coach:
    """`one_shot`: for a command that prints one card and ends, whose related principles
    may come from the copy of the index's matrix (`LazySearch`)."""
    principles = load_principles(settings)
    copy = related_copy_path(settings) if one_shot else None
    search = LazySearch(settings, principles, progress, related_copy=copy) if with_search else None
    scorer: UnitScorer | None = None
    if settings.learned_detectors:
        from bot.knowledge.detectors import LearnedDetectors

        # The encoder itself loads on the first opener (shared with the search).
        scorer = LearnedDetectors.load(settings.knowledge_dir / "detectors")
    return Coach.load(
        settings.knowledge_dir,
        settings.prompts_dir,
        principles,
        default_language=settings.language,
        max_chars=settings.max_input_chars,
        search=search,
        scorer=scorer,
    )


def build_llm(settings: Settings, coach: Coach) -> LlmAssist | None:
    """The LLM beside the embedded coach when FOURNIL_LLM is set (`--no-llm` unsets it);
    None otherwise, and then langchain is never imported. `LlmSetupError` (a `SetupError`:
    one line naming the setting) when it is set but cannot work."""
    if not settings.llm:
        return None
    from bot.llm import LlmCoach

    return LlmCoach.from_settings(settings, coach)


WARM_UP_OPENERS = (
    "Hi Sarah, we are a leading provider of analytics. Would you be open to a 15-minute call?",
    "Bonjour Marie, seriez-vous disponible jeudi pour une démo de notre plateforme ?",
)


async def warm_up(flow: CoachingFlow) -> None:
    """Before a bot serves its first user: opens (or builds) the knowledge index and loads
    the language and embedding models, in a worker thread so the event loop stays free.
    Done lazily, the first card would stall every conversation behind it."""
    for opener in WARM_UP_OPENERS:
        await asyncio.to_thread(flow.coach_text, opener)


def team_config(settings: Settings) -> TeamConfig:
    from bot.core.team import TeamConfig

    return TeamConfig(
        managers=frozenset(settings.managers),
        timezone=settings.timezone,
        drill_window=timedelta(hours=settings.drill_hours),
        retention=timedelta(days=settings.retention_days),
    )


def report_builder(settings: Settings, store: SqlStore) -> ReportBuilder:
    """`/report` in a chat: the same figures and chart as `fournil report --png`."""
    from bot.core.report import build_team_report, load_report_strings, render_team_report, share_labels

    strings = load_report_strings(settings.prompts_dir / "report")

    async def build(ui: UiStrings, days: int, now: datetime) -> Reply:
        from bot.report_chart import render_report_png  # matplotlib: loaded on first report only

        since = now - timedelta(days=days)
        cards = await store.cards_between(since, now)
        named = share_labels(await store.consenting_users())
        report = build_team_report(cards, since, now, named, await store.practice_between(since, now))
        texts = strings.get(ui.lang) or strings[settings.language]
        chart = await asyncio.to_thread(render_report_png, report, texts)
        return Reply(
            kind=ReplyKind.REPORT, language=ui.lang, text=render_team_report(report, texts), image=chart
        )

    return build


def build_team(settings: Settings, coach: Coach, store: SqlStore) -> TeamCoach:
    """Drills and the onboarding path come from `prompts/`; a manager adds one by dropping
    a file there (checked by `fournil kb check`)."""
    from bot.core.buyers import BuyerLibrary
    from bot.core.drills import DrillLibrary
    from bot.core.onboarding import OnboardingPath
    from bot.core.team import TeamCoach

    return TeamCoach(
        coach=coach,
        store=store,
        drills=DrillLibrary.load(settings.prompts_dir / "drills"),
        onboarding=OnboardingPath.load(settings.prompts_dir / "onboarding"),
        config=team_config(settings),
        report=report_builder(settings, store),
        buyers=BuyerLibrary.load(settings.prompts_dir / "buyers"),
    )


def build_practice(settings: Settings, store: SqlStore) -> PracticeCoach:
    """`/practice` in the chats: the buyers of `prompts/buyers/`, sessions in the store."""
    from bot.core.buyers import BuyerLibrary
    from bot.core.practice_flow import PracticeCoach
    from bot.core.practice_strings import load_practice_strings

    return PracticeCoach(
        store=store,
        buyers=BuyerLibrary.load(settings.prompts_dir / "buyers"),
        strings=load_practice_strings(settings.prompts_dir / "practice"),
        default_language=settings.language,
    )


class ResilientFlow(CoachingFlow):
    """The flow the channels get: during an outage of the knowledge index, a question is
    answered the way a coach without the index answers it (`ask.unavailable`) instead of
    failing the conversation."""

    def ask(self, question: str, lang: str | None = None) -> tuple[Reply, AskAnswer | None]:
        try:
            return super().ask(question, lang)
        except IndexUnavailable as exc:
            if isinstance(self.coach.search, LazySearch):
                self.coach.search.warn(exc)
            else:
                log.warning("%s", exc)
            without_index = replace(self.coach, search=None)
            return CoachingFlow(without_index, self.store, team=self.team).ask(question, lang)


def store_error(settings: Settings, exc: BaseException) -> StoreUnavailable | None:
    """What an operator needs to read when the data dir or the database cannot be used:
    the path or (password-free) URL, the cause, and the setting to check. None for any
    other error."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, StoreUnavailable):
        return exc
    configured = bool(settings.database_url)
    setting = "FOURNIL_DATABASE_URL" if configured else "FOURNIL_DATA_DIR"
    try:
        url = make_url(settings.resolved_database_url)
        where = (
            f"the database at {url.render_as_string(hide_password=True)}"
            if configured
            else f"the database {url.database}"
        )
    except ArgumentError:
        return StoreUnavailable("FOURNIL_DATABASE_URL is not a valid database URL", "FOURNIL_DATABASE_URL")
    if isinstance(exc, ArgumentError):
        return StoreUnavailable(f"{where} cannot be used ({_first_line(exc)})", "FOURNIL_DATABASE_URL")
    if isinstance(exc, DBAPIError | sqlite3.Error):
        cause = _first_line(exc.orig if isinstance(exc, DBAPIError) else exc)
        if isinstance(exc, OperationalError | InterfaceError | sqlite3.OperationalError):
            if not configured and any(word in cause for word in ("readonly", "read-only", "unable to open")):
                return StoreUnavailable(
                    f"{where} cannot be opened for writing ({cause})",
                    f"that FOURNIL_DATA_DIR ({settings.data_dir}) and the files in it are writable",
                )
            return StoreUnavailable(f"{where} cannot be used ({cause})", setting)
        if isinstance(exc, DatabaseError | sqlite3.DatabaseError) and _DAMAGED.search(cause):
            return StoreUnavailable(
                f"{where} is damaged or is not a database ({cause})",
                setting if configured else f"{setting}, or move the file aside to start afresh",
            )
        return None  # an integrity or programming error is a bug, not the operator's
    if isinstance(exc, OSError):
        reason = exc.strerror or _first_line(exc)
        if exc.filename is None:
            return StoreUnavailable(f"{where} cannot be reached ({reason})", setting)
        path, data_dir = Path(exc.filename), settings.data_dir
        creating = path == data_dir or path in data_dir.parents
        what = f"the data directory {data_dir} cannot be created" if creating else f"cannot use {path}"
        check = f"that FOURNIL_DATA_DIR ({data_dir}) is a writable directory"
        return StoreUnavailable(f"{what} ({reason})", check)
    return None


def _first_line(exc: object) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


@contextmanager
def store_errors(settings: Settings) -> Iterator[None]:
    """Turns a failure of the data dir or the database into `StoreUnavailable` (one line)."""
    try:
        yield
    except Exception as exc:
        error = store_error(settings, exc)
        if error is None:
            raise
        raise error from exc


async def open_store(settings: Settings) -> SqlStore:
    """The configured store (SQLite in the data dir by default), migrated; raises
    `StoreUnavailable` when the data dir or the database cannot be used."""
    from bot.store.sql import SqlStore

    with store_errors(settings):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return await SqlStore.open(settings.resolved_database_url, claim_lease=settings.claim_lease_seconds)


@asynccontextmanager
async def open_flow(settings: Settings, coach: Coach | None = None) -> AsyncIterator[CoachingFlow]:
    """The conversation flow over the configured store, closed on exit (channels use this)."""
    store = await open_store(settings)
    try:
        coach = coach or build_coach(settings, with_search=True)
        llm = build_llm(settings, coach)  # once, at start
        team = build_team(settings, coach, store)
        # Retention applies from the first start of any entry point (the bots' clocks purge
        # again every few hours while they run).
        with store_errors(settings):
            await team.purge(datetime.now(UTC))
        yield ResilientFlow(coach, store, team=team, practice=build_practice(settings, store), llm=llm)
    finally:
        await store.close()
