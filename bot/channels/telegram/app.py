"""Running Fournil as a Telegram bot: build the python-telegram-bot `Application`, then serve
it by long polling (default) or by webhook (`TELEGRAM_WEBHOOK_URL`).

`run_telegram(settings)` is what `fournil telegram` calls; the drill clock (scheduled
drills, closing open ones) runs beside polling or the webhook server (see team.py). `build_application` and
`run_application` are separate so tests (and the bench) drive the very same code against a
Bot API server of their own, given as `TELEGRAM_API_BASE_URL` exactly like a self-hosted
Bot API server would be.

Configuration problems (no token, a malformed one, one Telegram rejects, an unreachable
API, a port in use, a refused webhook) are raised as `FournilError` with one line that
never contains the token, so the command prints a sentence, not a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web
from telegram.error import InvalidToken, TelegramError
from telegram.ext import ApplicationBuilder

from bot.app import open_flow, warm_up
from bot.channels.telegram.handlers import (
    ALLOWED_UPDATES,
    TelegramAdapter,
    TelegramApplication,
    register_commands,
)
from bot.channels.telegram.team import attach_clock, clock_running
from bot.channels.telegram.texts import default_telegram_strings
from bot.channels.telegram.throughput import ChatOrderedProcessor, FournilRateLimiter
from bot.channels.telegram.webhook import ANSWER_WITHIN_SECONDS, webhook_app
from bot.core.errors import FournilError
from bot.core.flow import CoachingFlow
from bot.settings import Settings

log = logging.getLogger("fournil.telegram")

DEFAULT_API = "https://api.telegram.org"
DEFAULT_POLL_TIMEOUT = 10.0
# <bot id>:<secret>, as @BotFather gives it; checked before anything reaches the network.
TOKEN_FORMAT = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{30,100}$")
# What setWebhook accepts as secret_token.
SECRET_FORMAT = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def bot_token(settings: Settings) -> str:
    """The token, or a one-line error saying what is wrong with it (never the token)."""
    if settings.telegram_bot_token is None:
        raise FournilError(
            "TELEGRAM_BOT_TOKEN is not set (nor TELEGRAM_BOT_TOKEN_FILE): "
            "create a bot with @BotFather and set its token."
        )
    token = settings.telegram_bot_token.get_secret_value().strip()
    if not token:
        raise FournilError("TELEGRAM_BOT_TOKEN is empty: set the token @BotFather gave you.")
    if not TOKEN_FORMAT.match(token):
        raise FournilError(
            "TELEGRAM_BOT_TOKEN is malformed: expected <bot id>:<secret> as @BotFather gives it "
            "(digits, a colon, then some 35 letters, digits, _ or -)."
        )
    return token


def webhook_secret(settings: Settings) -> str:
    """Webhook mode needs a secret: without it anyone who finds the URL could post updates."""
    if settings.telegram_webhook_secret is None:
        raise FournilError(
            "TELEGRAM_WEBHOOK_SECRET is required with TELEGRAM_WEBHOOK_URL: "
            "1-256 characters among A-Z, a-z, 0-9, _ and -."
        )
    secret = settings.telegram_webhook_secret.get_secret_value().strip()
    if not SECRET_FORMAT.match(secret):
        raise FournilError(
            "TELEGRAM_WEBHOOK_SECRET is malformed: 1-256 characters among A-Z, a-z, 0-9, _ and -."
        )
    return secret


def file_base_url(base_url: str) -> str:
    """The file URL that goes with a Bot API base URL (`…/bot` → `…/file/bot`)."""
    return re.sub(r"/bot(\{[A-Za-z_-]+\})?/?$", r"/file/bot\1", base_url.rstrip())


def build_application(settings: Settings, flow: CoachingFlow) -> TelegramApplication:
    """The bot over this flow: rate-limited, updates ordered per chat, handlers registered.
    Not yet initialised: `run_application` (or a test) starts it."""
    builder = (
        ApplicationBuilder()
        .token(bot_token(settings))
        .rate_limiter(FournilRateLimiter())
        .concurrent_updates(ChatOrderedProcessor())
        .job_queue(None)
    )
    if settings.telegram_api_base_url:
        base = settings.telegram_api_base_url.strip()
        builder = builder.base_url(base).base_file_url(file_base_url(base))
    application = builder.build()
    adapter = TelegramAdapter(flow)
    adapter.register(application)
    attach_clock(application, adapter, settings.clock_seconds)
    return application


async def run_application(
    application: TelegramApplication,
    settings: Settings,
    stop: asyncio.Event,
    *,
    poll_timeout: float = DEFAULT_POLL_TIMEOUT,
    before_start: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Initialises the bot (getMe: a rejected token fails here, before any slow start),
    registers the command menus, awaits `before_start` (the warm-up), serves updates by
    polling or webhook, with the drill clock ticking beside them, until `stop` is set,
    then shuts everything down in order (the clock first, so its last posts go out)."""
    webhook = settings.telegram_webhook_url
    secret = webhook_secret(settings) if webhook else None
    token = bot_token(settings)
    api = _api_location(settings)
    try:
        await application.initialize()
    except InvalidToken:
        raise FournilError(
            f"the Bot API at {api} rejected TELEGRAM_BOT_TOKEN (revoked or mistyped?): "
            "check it with @BotFather."
        ) from None
    except TelegramError as exc:
        raise FournilError(f"cannot reach the Telegram Bot API at {api}: {_redact(exc, token)}") from None
    try:
        bot = application.bot
        try:
            await register_commands(bot, default_telegram_strings(), settings.language)
        except TelegramError as exc:  # the menu is a convenience: the bot works without it
            log.warning("could not register the command menu: %s", _redact(exc, token))
        if before_start is not None:
            await before_start()
        await application.start()
        try:
            async with clock_running(application):
                if webhook and secret:
                    await _serve_webhook(application, settings, webhook, secret, stop, token)
                else:
                    await _poll(application, poll_timeout, stop)
        finally:
            await application.stop()
    finally:
        await application.shutdown()


async def run_telegram(settings: Settings) -> None:
    """`fournil telegram`: the bot until SIGINT or SIGTERM, by polling, or by webhook when
    TELEGRAM_WEBHOOK_URL is set. Raises `FournilError` (one line) on configuration problems."""
    bot_token(settings)
    if settings.telegram_webhook_url:
        webhook_secret(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # not on this platform / not main thread
            pass
    try:
        async with open_flow(settings) as flow:
            application = build_application(settings, flow)
            await run_application(application, settings, stop, before_start=lambda: warm_up(flow))
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


async def _poll(application: TelegramApplication, poll_seconds: float, stop: asyncio.Event) -> None:
    updater = application.updater
    if updater is None:
        raise FournilError("this Telegram application was built without an updater: polling is impossible.")
    # start_polling deletes any webhook first; pending updates are kept, and the store's
    # event claim skips the ones a previous run already handled.
    await updater.start_polling(
        timeout=timedelta(seconds=poll_seconds),
        allowed_updates=list(ALLOWED_UPDATES),
        drop_pending_updates=False,
    )
    log.info("Telegram bot @%s: polling for updates", application.bot.username)
    try:
        await stop.wait()
    finally:
        await updater.stop()


async def _serve_webhook(
    application: TelegramApplication,
    settings: Settings,
    url: str,
    secret: str,
    stop: asyncio.Event,
    token: str,
) -> None:
    # Answered (200 at the latest) before half the claim's lease has run, so Telegram has no
    # reason to send an update again while this replica holds its claim (bot/core/delivery.py).
    answer_within = min(ANSWER_WITHIN_SECONDS, settings.claim_lease_seconds / 2)
    runner = web.AppRunner(webhook_app(application, secret, answer_within), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as exc:
            raise FournilError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
            ) from None
        # Listen first, then tell Telegram: its first delivery finds the server up. The
        # webhook is left in place on exit, since other replicas may still be serving it.
        try:
            await application.bot.set_webhook(
                url=url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES)
            )
        except TelegramError as exc:
            raise FournilError(f"Telegram refused the webhook {url}: {_redact(exc, token)}") from None
        log.info(
            "Telegram bot @%s: webhook %s, listening on %s:%s/telegram",
            application.bot.username,
            url,
            settings.host,
            settings.port,
        )
        await stop.wait()
    finally:
        await runner.cleanup()


def _api_location(settings: Settings) -> str:
    return (settings.telegram_api_base_url or DEFAULT_API).strip()


def _redact(error: Exception, token: str) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text.replace(token, "[token]")
