"""`fournil slack`: the Bolt app, its HTTP endpoint, Socket Mode, and the checks before.

Two ways to receive Slack's requests, one app:

- Socket Mode when `SLACK_APP_TOKEN` is set: Fournil dials out to Slack over a
  websocket, so no public URL is needed (a laptop, a server behind a firewall);
- HTTP mode otherwise: Slack POSTs to `http://FOURNIL_HOST:FOURNIL_PORT/slack/events`,
  each request checked against `SLACK_SIGNING_SECRET` (HMAC v0, five-minute window). This
  is the mode for several stateless replicas behind a load balancer.

`process_before_response=True` makes Bolt answer as soon as the listener function
returns, in both modes; the listeners only ack and schedule their work (see
`channel.py`). `/healthz` is served in both modes.

In both modes the drill clock runs beside the app (`running_clock`): every
`FOURNIL_CLOCK_SECONDS` it posts the scheduled drills that are due and closes the open
ones whose time is up; it stops, its current tick finished, before the app shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    async_default_handlers,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import open_flow, warm_up
from bot.channels.slack.channel import CHANNEL, SlackChannel, SlackPoster
from bot.core.coach import Coach
from bot.core.errors import FournilError
from bot.core.flow import CoachingFlow
from bot.core.team import DrillClock
from bot.settings import Settings

log = logging.getLogger("fournil.slack")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
DEFAULT_API_BASE_URL = "https://slack.com/api/"
API_TIMEOUT_SECONDS = 30
CLOCK_STOP_SECONDS = 10.0  # a tick in progress (a post, a summary) may finish this long


# Coached once at start-up: the language detector is built on first use, and the first
# rep should not wait for it.
@dataclass(frozen=True)
class SlackTokens:
    bot: str
    app: str | None
    signing_secret: str | None

    @property
    def socket_mode(self) -> bool:
        return self.app is not None


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value.get_secret_value())
    return text or None


def slack_tokens(settings: Settings) -> SlackTokens:
    """The tokens this mode needs, checked for shape; a one-line `FournilError` that says
    which variable and what is expected (never the value) when one is missing or wrong."""
    bot = _secret(settings.slack_bot_token)
    app_token = _secret(settings.slack_app_token)
    signing = _secret(settings.slack_signing_secret)
    if bot is None:
        raise FournilError(
            "SLACK_BOT_TOKEN is not set: copy the Bot User OAuth Token (xoxb-…) from the app's "
            "OAuth & Permissions page (or give SLACK_BOT_TOKEN_FILE)."
        )
    if not bot.startswith("xoxb-") or any(c.isspace() for c in bot):
        raise FournilError("SLACK_BOT_TOKEN is malformed: a bot token starts with xoxb- and has no spaces.")
    if app_token is not None and (not app_token.startswith("xapp-") or any(c.isspace() for c in app_token)):
        raise FournilError(
            "SLACK_APP_TOKEN is malformed: an app-level token starts with xapp- and has no spaces "
            "(Basic Information > App-Level Tokens, scope connections:write)."
        )
    if app_token is None and signing is None:
        raise FournilError(
            "SLACK_SIGNING_SECRET is not set: HTTP mode needs it to check Slack's requests "
            "(Basic Information > Signing Secret), or set SLACK_APP_TOKEN for Socket Mode."
        )
    if signing is not None and any(c.isspace() for c in signing):
        raise FournilError("SLACK_SIGNING_SECRET is malformed: it has spaces in it.")
    return SlackTokens(bot=bot, app=app_token, signing_secret=signing)


def api_base_url(settings: Settings) -> str:
    """`SLACK_API_BASE_URL` in slack_sdk's form (with its trailing slash), or Slack's."""
    base = (settings.slack_api_base_url or "").strip() or DEFAULT_API_BASE_URL
    parsed = urlparse(base)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise FournilError(
            "SLACK_API_BASE_URL is malformed: expected a URL such as "
            f"http://127.0.0.1:9200/api/, got {base!r}."
        )
    return base if base.endswith("/") else base + "/"


class FournilSlackApp(AsyncApp):
    """Bolt's AsyncApp, plus the channel serving it so servers can drain its answers."""

    def __init__(self, channel: SlackChannel, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.channel = channel


def build_app(settings: Settings, flow: CoachingFlow) -> FournilSlackApp:
    """The Bolt app over a flow: Web API client at `SLACK_API_BASE_URL`, signature checks
    in HTTP mode, acks before work."""
    tokens = slack_tokens(settings)
    # Slack answers a burst with 429 + Retry-After: waiting and retrying (twice) delivers
    # the card late rather than never.
    retries = [*async_default_handlers(), AsyncRateLimitErrorRetryHandler(max_retry_count=2)]
    client = AsyncWebClient(token=tokens.bot, base_url=api_base_url(settings), retry_handlers=retries)
    channel = SlackChannel(flow, default_language=settings.language)
    app = FournilSlackApp(
        channel,
        client=client,
        # In Socket Mode the websocket is authenticated by the app token; Bolt skips the
        # signature check for it. An empty string keeps Bolt from reading the environment.
        signing_secret=tokens.signing_secret or "",
        process_before_response=True,
        logger=logging.getLogger("fournil.slack.bolt"),
    )
    channel.register(app)
    return app


def build_web_app(app: FournilSlackApp) -> web.Application:
    """aiohttp app: Slack's requests at `/slack/events`, `/healthz`; on shutdown it waits
    for the answers in flight."""

    async def events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def start(_: web.Application) -> None:
        await open_api_session(app)

    async def stop(_: web.Application) -> None:
        await app.channel.drain()
        await close_api_session(app)

    web_app = build_health_app()
    web_app.router.add_post(EVENTS_PATH, events)
    web_app.on_startup.append(start)
    web_app.on_cleanup.append(stop)
    return web_app


async def open_api_session(app: AsyncApp) -> None:
    """One pooled HTTP session for every Web API call (Bolt's per-request clients borrow
    the app client's): without it each call opens and closes its own connection."""
    if app.client.session is None:
        app.client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT_SECONDS))


async def close_api_session(app: AsyncApp) -> None:
    session, app.client.session = app.client.session, None
    if session is not None:
        await session.close()


def build_health_app() -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    web_app = web.Application()
    web_app.router.add_get(HEALTH_PATH, healthz)
    return web_app


async def check_tokens(app: AsyncApp, tokens: SlackTokens) -> None:
    """Ask Slack once at start-up, so a revoked token is one clear line, not a stream of
    failed requests later (Socket Mode would otherwise retry forever)."""
    await _refused_as_error("SLACK_BOT_TOKEN", app.client, app.client.auth_test())
    if tokens.app is not None:
        opened = app.client.apps_connections_open(app_token=tokens.app)
        await _refused_as_error("SLACK_APP_TOKEN", app.client, opened)


async def _refused_as_error(variable: str, client: AsyncWebClient, call: Awaitable[Any]) -> None:
    try:
        await call
    except SlackApiError as exc:
        raise FournilError(f"{variable} was refused by Slack ({exc.response.get('error')}).") from None
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        raise FournilError(f"cannot reach the Slack Web API at {client.base_url}: {reason}") from None


def build_clock(app: FournilSlackApp, settings: Settings) -> DrillClock | None:
    """The drill clock of this app: Slack's drills and summaries, posted with the app's
    client; None when the flow has no team coaching."""
    team = app.channel.flow.team
    if team is None:
        return None
    poster = SlackPoster(app.channel, app.client)
    return DrillClock(team, CHANNEL, poster, interval=settings.clock_seconds)


@contextlib.asynccontextmanager
async def running_clock(app: FournilSlackApp, settings: Settings) -> AsyncIterator[DrillClock | None]:
    """The drill clock as a task for as long as the block runs; on the way out (stop,
    Ctrl-C, cancellation) it is told to stop, its tick in progress finishes (or is
    cancelled after CLOCK_STOP_SECONDS), and the task is awaited: nothing leaks."""
    clock = build_clock(app, settings)
    if clock is None:
        yield None
        return
    async with clock.running(CLOCK_STOP_SECONDS):
        yield clock


@contextlib.contextmanager
def _stop_on_sigterm(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM (containers, systemd) stops like Ctrl-C: in-flight cards are finished."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):
        installed = False
    try:
        yield
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


async def _serve_http(app: FournilSlackApp, settings: Settings, stop: asyncio.Event) -> None:
    runner = web.AppRunner(build_web_app(app), access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, settings.host, settings.port).start()
        except OSError as exc:
            raise FournilError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
        log.info(
            "Fournil for Slack: HTTP mode, events at http://%s:%s%s",
            settings.host,
            settings.port,
            EVENTS_PATH,
        )
        async with running_clock(app, settings):
            await stop.wait()
    finally:
        await runner.cleanup()


async def _serve_socket_mode(
    app: FournilSlackApp, app_token: str, settings: Settings, stop: asyncio.Event
) -> None:
    health = web.AppRunner(build_health_app(), access_log=None)
    await health.setup()
    await open_api_session(app)
    handler = AsyncSocketModeHandler(app, app_token=app_token, web_client=app.client)
    try:
        try:
            await web.TCPSite(health, settings.host, settings.port).start()
        except OSError as exc:  # optional in this mode: say so and carry on
            log.warning("no health endpoint on %s:%s: %s", settings.host, settings.port, exc.strerror)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("Fournil for Slack: Socket Mode, connected")
        async with running_clock(app, settings):
            await stop.wait()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await app.channel.drain()
        await close_api_session(app)
        await health.cleanup()


async def run_slack(settings: Settings, *, coach: Coach | None = None) -> None:
    """Run the Slack app until SIGTERM/Ctrl-C (or cancellation): Socket Mode when an app
    token is set, else HTTP mode. Raises `FournilError` (one line) for missing or
    malformed tokens, tokens Slack refuses, or a port already taken. `coach` lets tests
    share one already built coach."""
    tokens = slack_tokens(settings)
    api_base_url(settings)
    async with open_flow(settings, coach) as flow:
        await warm_up(flow)
        app = build_app(settings, flow)
        await check_tokens(app, tokens)
        # The coach, its language models and the libraries live as long as the process:
        # move them out of the collector's sight, or every full collection walks them
        # again (a 50-100 ms pause, in the middle of a burst of acks).
        gc.collect()
        gc.freeze()
        stop = asyncio.Event()
        with _stop_on_sigterm(stop):
            if tokens.app is not None:
                await _serve_socket_mode(app, tokens.app, settings, stop)
            else:
                await _serve_http(app, settings, stop)
