"""Composition root: builds the coach, the knowledge search and the conversation flow.

The only place that knows which implementation backs each core port.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import numpy as np

from bot.core.coach import Coach
from bot.core.drills import DrillLibrary
from bot.core.flow import CoachingFlow
from bot.core.models import Reply, ReplyKind
from bot.core.onboarding import OnboardingPath
from bot.core.ports import PrincipleSearch, SearchHit, UnitScorer
from bot.core.report import build_team_report, load_report_strings, render_team_report, share_labels
from bot.core.team import ReportBuilder, TeamCoach, TeamConfig
from bot.core.ui import UiStrings
from bot.knowledge.principles import PrincipleStore
from bot.settings import Settings
from bot.store.sql import SqlStore

Progress = Callable[[int, int], None]


def load_principles(settings: Settings) -> PrincipleStore:
    return PrincipleStore.load(settings.knowledge_dir / "principles")


def open_search(
    settings: Settings, principles: PrincipleStore, progress: Progress | None = None
) -> PrincipleSearch:
    """The principle index (Chroma), brought in step with the files: only changed
    documents are embedded again, so a warm start costs the time to open it."""
    from bot.knowledge.index import PrincipleIndex, SearchTuning, chroma_client

    index, _ = PrincipleIndex.open(
        chroma_client(settings),
        principles,
        progress=progress,
        offtopic=settings.knowledge_dir / "offtopic.yaml",
        tuning=SearchTuning.load(settings.knowledge_dir / "search.yaml"),
        concepts=settings.knowledge_dir / "concepts.yaml",
        concept_cache=settings.data_dir / "concept-counts.json",
    )
    return index


class LazySearch:
    """Opens the index on the first search: loading Chroma and the encoder takes ~3 s, which
    a command that only rejects bad input or prints help should not pay."""

    def __init__(self, settings: Settings, principles: PrincipleStore, progress: Progress | None) -> None:
        self._settings = settings
        self._principles = principles
        self._progress = progress
        self._index: PrincipleSearch | None = None
        self._lock = threading.Lock()

    def warm(self) -> PrincipleSearch:
        with self._lock:  # cards are computed in worker threads: open the index once
            if self._index is None:
                self._index = open_search(self._settings, self._principles, self._progress)
            return self._index

    def search(self, text: str, lang: str, limit: int = 3) -> list[SearchHit]:
        return self.warm().search(text, lang, limit)

    def related(self, text: str, limit: int = 2, gist: np.ndarray | None = None) -> list[SearchHit]:
        return self.warm().related(text, limit, gist)


def build_coach(settings: Settings, with_search: bool = False, progress: Progress | None = None) -> Coach:
    principles = load_principles(settings)
    search = LazySearch(settings, principles, progress) if with_search else None
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
    return TeamConfig(
        managers=frozenset(settings.managers),
        timezone=settings.timezone,
        drill_window=timedelta(hours=settings.drill_hours),
        retention=timedelta(days=settings.retention_days),
    )


def report_builder(settings: Settings, store: SqlStore) -> ReportBuilder:
    """`/report` in a chat: the same figures and chart as `fournil report --png`."""
    strings = load_report_strings(settings.prompts_dir / "report")

    async def build(ui: UiStrings, days: int, now: datetime) -> Reply:
        from bot.report_chart import render_report_png  # matplotlib: loaded on first report only

        since = now - timedelta(days=days)
        cards = await store.cards_between(since, now)
        report = build_team_report(cards, since, now, share_labels(await store.consenting_users()))
        texts = strings.get(ui.lang) or strings[settings.language]
        chart = await asyncio.to_thread(render_report_png, report, texts)
        return Reply(
            kind=ReplyKind.REPORT, language=ui.lang, text=render_team_report(report, texts), image=chart
        )

    return build


def build_team(settings: Settings, coach: Coach, store: SqlStore) -> TeamCoach:
    """Drills and the onboarding path come from `prompts/`; a manager adds one by dropping
    a file there (checked by `fournil kb check`)."""
    return TeamCoach(
        coach=coach,
        store=store,
        drills=DrillLibrary.load(settings.prompts_dir / "drills"),
        onboarding=OnboardingPath.load(settings.prompts_dir / "onboarding"),
        config=team_config(settings),
        report=report_builder(settings, store),
    )


@asynccontextmanager
async def open_flow(settings: Settings, coach: Coach | None = None) -> AsyncIterator[CoachingFlow]:
    """The conversation flow over the configured store, closed on exit (channels use this)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await SqlStore.open(settings.resolved_database_url)
    try:
        coach = coach or build_coach(settings, with_search=True)
        team = build_team(settings, coach, store)
        # Retention applies from the first start of any entry point (the bots' clocks purge
        # again every few hours while they run).
        await team.purge(datetime.now(UTC))
        yield CoachingFlow(coach, store, team=team)
    finally:
        await store.close()
