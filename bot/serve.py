"""`fournil serve`: health and metrics over HTTP for a headless deployment.

`GET /healthz` answers 200 when the store answers a query and the knowledge base is loaded,
503 otherwise (what a container probe needs); `GET /metrics` is the Prometheus text format:
process figures from prometheus-client's own collectors plus the team's activity, read
from the store at scrape time so several replicas report the same numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import signal
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from bot.core.team import TeamCoach
from bot.settings import Settings

log = logging.getLogger("fournil.serve")
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"


class TeamFigures:
    """The figures of the last scrape, refreshed by `refresh` (the registry reads them
    synchronously, and the store is asynchronous)."""

    def __init__(self, team: TeamCoach, version: str, principles: int) -> None:
        self.team = team
        self.version = version
        self.principles = principles
        self.cards_24h = 0
        self.rewrites_24h = 0
        self.real_questions_24h = 0

    async def refresh(self, now: datetime) -> None:
        cards = await self.team.store.cards_between(now - timedelta(hours=24), now)
        self.cards_24h = len(cards)
        self.rewrites_24h = sum(1 for card in cards if card.is_rewrite)
        self.real_questions_24h = sum(1 for card in cards if card.has_question)


class TeamCollector(Collector):
    def __init__(self, figures: TeamFigures) -> None:
        self.figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily | InfoMetricFamily]:
        figures = self.figures
        yield InfoMetricFamily("fournil_build", "Fournil version", value={"version": figures.version})
        yield GaugeMetricFamily("fournil_cards_24h", "Coach cards in the last 24 hours", figures.cards_24h)
        yield GaugeMetricFamily(
            "fournil_rewrites_24h", "Cards of rewrites in the last 24 hours", figures.rewrites_24h
        )
        yield GaugeMetricFamily(
            "fournil_real_questions_24h",
            "Cards in the last 24 hours whose version ends as a real question",
            figures.real_questions_24h,
        )
        yield GaugeMetricFamily("fournil_principles", "Principles in the knowledge base", figures.principles)
        yield GaugeMetricFamily("fournil_drills", "Drills available", len(figures.team.drills.ids()))


def build_health_app(
    team: TeamCoach, version: str, principles: int, collectors: Iterable[Collector] = ()
) -> web.Application:
    """`collectors`: more figures of this process (the LLM's calls, when FOURNIL_LLM is set)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ProcessCollector(registry=None))
    for collector in collectors:
        registry.register(collector)
    figures = TeamFigures(team, version, principles)
    registry.register(TeamCollector(figures))

    async def healthz(_: web.Request) -> web.Response:
        try:
            await team.store.cards_between(datetime.now(UTC), datetime.now(UTC))
        except Exception as exc:  # any store failure makes the replica unhealthy
            log.warning("health check: store unavailable: %s", type(exc).__name__)
            return web.json_response({"status": "store unavailable"}, status=503)
        return web.json_response({"status": "ok", "principles": principles})

    async def metrics(_: web.Request) -> web.Response:
        await figures.refresh(datetime.now(UTC))
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get(HEALTH_PATH, healthz)
    app.router.add_get(METRICS_PATH, metrics)
    return app


async def serve_health(settings: Settings) -> None:
    """Runs until SIGTERM (containers, systemd) or Ctrl-C."""
    from bot.app import build_coach, load_principles, open_flow

    principles = len(load_principles(settings).ids)
    async with open_flow(settings, build_coach(settings)) as flow:
        assert flow.team is not None
        from bot.llm import LlmCoach

        llm = flow.llm.metrics.collectors if isinstance(flow.llm, LlmCoach) else ()
        runner = web.AppRunner(build_health_app(flow.team, _version(), principles, llm))
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        log.info("health and metrics on http://%s:%s%s", settings.host, settings.port, METRICS_PATH)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            loop.add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()


def _version() -> str:
    try:
        return importlib.metadata.version("fournil")
    except importlib.metadata.PackageNotFoundError:
        return "dev"
