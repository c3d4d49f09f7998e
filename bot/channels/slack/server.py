"""`fournil slack`: the Bolt app, its HTTP endpoint, Socket Mode, and the checks before.

Two ways to receive Slack's requests, one app:

- Socket Mode when `SLACK_APP_TOKEN` is set: Fournil dials out to Slack over a
  websocket, so no public URL is needed (a laptop, a server behind a firewall);
- HTTP mode otherwise: Slack POSTs to `http://FOURNIL_HOST:FOURNIL_PORT/slack/events`,
  each request checked against `SLACK_SIGNING_SECRET` (HMAC v0, five-minute window). This
  is the mode for several stateless replicas behind a load balancer.

In HTTP mode every request is checked before Bolt sees it (`check_signature`, then
`parse_for_bolt`): Bolt parses the body while building its request object, before its own
signature check, and a body it cannot parse (not JSON, a JSON array, invalid UTF-8, a
broken `payload=` form, nesting deep enough for a RecursionError) or a timestamp that is
not a number would otherwise be a 500 with a traceback. A bad or missing signature is a
401, a signed body Slack would never send a 400; either is one log line, without the body.

`process_before_response=True` makes Bolt answer when the listener function returns, in
both modes: event listeners return once their work is done (a reply sent) or after 2.5 s,
the others ack at once and schedule their work (see `channel.py`). `/healthz` is served in
both modes.

In both modes the drill clock runs beside the app (`running_clock`): every
`FOURNIL_CLOCK_SECONDS` it posts the scheduled drills that are due and closes the open
ones whose time is up; it stops, its current tick finished, before the app shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import hmac
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
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
from bot.logs import BOLT_LOGGER, guard_bolt_loggers
from bot.settings import Settings

log = logging.getLogger("fournil.slack")

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
DEFAULT_API_BASE_URL = "https://slack.com/api/"
API_TIMEOUT_SECONDS = 30
CLOCK_STOP_SECONDS = 10.0  # a tick in progress (a post, a summary) may finish this long
SIGNATURE_WINDOW_SECONDS = 5 * 60  # Slack's (and slack_sdk's) replay window
# Slack's payloads nest about fifteen levels at most (a view's state, a message's blocks
# inside an attachment); anything deeper is not Slack's and is not worth walking.
MAX_BODY_DEPTH = 64


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


class _ClientTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and, since Fournil hands it
    a client that already holds that very token, warns at every start that "token will be
    unused": noise an operator would chase. Only that line is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


class FournilSlackApp(AsyncApp):
    """Bolt's AsyncApp, plus the channel serving it so servers can drain its answers, and
    the signing secret the HTTP endpoint checks requests with before Bolt parses them."""

    def __init__(self, channel: SlackChannel, *, signing_secret: str, **kwargs: Any) -> None:
        super().__init__(signing_secret=signing_secret, **kwargs)
        self.channel = channel
        self.signing_secret = signing_secret


def build_app(settings: Settings, flow: CoachingFlow) -> FournilSlackApp:
    """The Bolt app over a flow: Web API client at `SLACK_API_BASE_URL`, signature checks
    in HTTP mode, events answered after their work, the rest acked before it."""
    tokens = slack_tokens(settings)
    # Slack answers a burst with 429 + Retry-After: waiting and retrying (twice) delivers
    # the card late rather than never.
    retries = [*async_default_handlers(), AsyncRateLimitErrorRetryHandler(max_retry_count=2)]
    client = AsyncWebClient(token=tokens.bot, base_url=api_base_url(settings), retry_handlers=retries)
    channel = SlackChannel(flow, default_language=settings.language)
    # Bolt writes request bodies (emails, phone numbers, openers) into some of its log
    # lines; its loggers take their filters from this one (see bot/logs.py).
    guard_bolt_loggers()
    bolt_logger = logging.getLogger(BOLT_LOGGER)
    if not any(isinstance(existing, _ClientTokenNotice) for existing in bolt_logger.filters):
        bolt_logger.addFilter(_ClientTokenNotice())
    app = FournilSlackApp(
        channel,
        client=client,
        # In Socket Mode the websocket is authenticated by the app token; Bolt skips the
        # signature check for it. An empty string keeps Bolt from reading the environment.
        signing_secret=tokens.signing_secret or "",
        process_before_response=True,
        logger=bolt_logger,
    )
    channel.register(app)
    guard_bolt_loggers()  # and the loggers Bolt has just made, whatever filters they had
    return app


class BadRequest(Exception):
    """A request refused before Bolt sees it: `status` and a reason fit for a log line
    (never any of the body)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_signature(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Slack's v0 signature over the raw bytes, as slack_sdk checks it but without its
    failures: a timestamp that is not a number, a body that is not UTF-8 or a signature
    that is not ASCII are refusals (401), not exceptions. Raises `BadRequest`."""
    timestamp = headers.get("X-Slack-Request-Timestamp")
    signature = headers.get("X-Slack-Signature")
    if not timestamp or not signature:
        raise BadRequest(401, "unsigned (no signature or timestamp header)")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise BadRequest(401, "malformed signature timestamp")
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        raise BadRequest(401, "stale signature timestamp (clock skew or replay)")
    if not secret:
        raise BadRequest(401, "no signing secret to check the signature with")
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = b"v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape")):
        raise BadRequest(401, "invalid signature")


def parse_for_bolt(body: bytes, query: str, headers: Mapping[str, str]) -> AsyncBoltRequest:
    """Bolt's request for a signed body, built here so that whatever its parsing raises
    (`json.loads` on the body or on a `payload=` field, its context extraction on a body
    that is not an object) is a 400; then the shape and depth Bolt's listeners can walk
    safely are checked. Raises `BadRequest`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, "body is not UTF-8") from None
    try:
        request = AsyncBoltRequest(body=text, query=query, headers=headers)  # type: ignore[arg-type]
    except RecursionError:
        raise BadRequest(400, "body nested too deeply to parse") from None
    except ValueError:  # json.JSONDecodeError
        raise BadRequest(400, "body (or its payload field) is not valid JSON") from None
    except Exception as exc:  # Bolt reading fields of a list, a string, a number
        raise BadRequest(400, f"body is not a Slack payload ({type(exc).__name__})") from None
    if not isinstance(request.body, dict):
        raise BadRequest(400, "body is not a JSON object")
    if _depth_exceeds(request.body, MAX_BODY_DEPTH):
        raise BadRequest(400, f"body nested deeper than {MAX_BODY_DEPTH} levels")
    problem = _shape_problem(request.body)
    if problem is not None:
        raise BadRequest(400, problem)
    return request


# The fields Bolt reads before any listener runs (its context, its matchers, its
# "unhandled request" warning), with the types Slack always sends them as: another type
# would be an exception inside Bolt (a 500 and a traceback), so it is a 400 here.
_NONE = type(None)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "type": (str,),
    "command": (str,),
    "text": (str,),
    "callback_id": (str,),
    "trigger_id": (str,),
    "response_url": (str,),
    "event": (dict,),
    "view": (dict,),
    "message": (dict,),
    "container": (dict,),
    "actions": (list,),
    "authorizations": (list,),
    "team": (dict, str, _NONE),
    "user": (dict, str, _NONE),
    "channel": (dict, str, _NONE),
    "enterprise": (dict, str, _NONE),
}
_VIEW_FIELD_TYPES: dict[str, tuple[type, ...]] = {"type": (str,), "callback_id": (str,), "state": (dict,)}


def _shape_problem(body: dict[str, Any]) -> str | None:
    """What in `body` is not the type Slack sends (a field name, never a value), or None."""
    for name, types in _FIELD_TYPES.items():
        if name in body and not isinstance(body[name], types):
            return f"field {name!r} has the wrong type"
    for name in ("actions", "authorizations"):
        if not all(isinstance(item, dict) for item in body.get(name, ())):
            return f"field {name!r} holds something other than objects"
    event = body.get("event")
    if event is not None and not isinstance(event.get("type"), str):
        return "field 'event.type' is missing or has the wrong type"
    view = body.get("view")
    if view is not None:
        if not isinstance(view.get("type"), str):
            return "field 'view.type' is missing or has the wrong type"
        for name, types in _VIEW_FIELD_TYPES.items():
            if name in view and not isinstance(view[name], types):
                return f"field 'view.{name}' has the wrong type"
    return None


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether `value` nests deeper than `limit` containers, walked without recursion."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


def _where(exc: BaseException) -> str:
    """File and line an exception was raised at, for a one-line log."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"


def build_web_app(app: FournilSlackApp) -> web.Application:
    """aiohttp app: Slack's requests at `/slack/events`, `/healthz`; on shutdown it waits
    for the answers in flight."""

    async def events(request: web.Request) -> web.Response:
        body = await request.read()  # over aiohttp's client_max_size (1 MiB): its own 413
        try:
            check_signature(app.signing_secret, request.headers, body, time.time())
            bolt_request = parse_for_bolt(body, request.query_string, request.headers)
        except BadRequest as refused:
            level = logging.INFO if refused.status == 401 else logging.WARNING
            status, reason = refused.status, refused.reason
            log.log(level, "slack: refused a request (%d, %d bytes): %s", status, len(body), reason)
            error = "invalid request" if status == 401 else "bad request"
            return web.json_response({"error": error}, status=status)
        try:
            bolt_response = await app.async_dispatch(bolt_request)
            return await to_aiohttp_response(bolt_response)
        except Exception as exc:  # Bolt handles its own; this is the last net, one line
            log.error("slack: a request failed in Bolt: %s at %s", type(exc).__name__, _where(exc))
            return web.json_response({"error": "internal error"}, status=500)

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
