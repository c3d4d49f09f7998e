"""Webhook mode's HTTP side: `POST /telegram` for updates and `GET /healthz`.

A small aiohttp app rather than python-telegram-bot's built-in tornado server, so the same
process can later serve other paths (Slack events, metrics) on one port, and so the secret
check is ours to read. An update whose `X-Telegram-Bot-Api-Secret-Token` header does not
match the secret given to `setWebhook` is refused with 403 before it is even parsed: only
Telegram knows the secret.

An accepted update is processed while Telegram waits, by the same handlers and the same
per-chat ordering as polling (the application's update processor), and the answer says
how it went (bot/core/delivery.py): 200 once it is handled (its reply sent) or skipped as
handled already; 503 when another replica claimed it and is still working on it, so that
Telegram sends it again later. A replica killed mid-work never answers 200: Telegram sends
the update again, to another replica, which takes the claim over once its lease ran out.
The wait is bounded (`answer_within`, under the lease): past it the answer is 200 and the
work goes on, as before this change. The work runs in a task of its own, so a client that
hangs up does not cancel it, and the server answers `/healthz` meanwhile.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import web
from telegram import Update

from bot.channels.telegram.handlers import TelegramApplication
from bot.core.delivery import Delivery, receiving

log = logging.getLogger("fournil.telegram")

WEBHOOK_PATH = "/telegram"
HEALTH_PATH = "/healthz"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1 << 20
ANSWER_WITHIN_SECONDS = 20.0  # at most; `run_application` keeps it under half the lease
DRAIN_SECONDS = 10.0  # work still going on at shutdown may finish this long


def webhook_app(
    application: TelegramApplication, secret: str, answer_within: float = ANSWER_WITHIN_SECONDS
) -> web.Application:
    expected = secret.encode("utf-8")
    work: set[asyncio.Task[None]] = set()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, expected):
            log.warning("webhook: update refused (missing or wrong secret) from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        try:
            payload = await request.json()
            if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
                raise ValueError("not an update object")
            update = Update.de_json(payload, application.bot)
        except Exception as exc:  # untrusted input: whatever fails to parse is a bad request
            log.warning("webhook: malformed update refused: %s", exc)
            return web.Response(status=400, text="malformed update")
        delivery = Delivery()
        with receiving(delivery):  # the task below runs in this context
            task = asyncio.create_task(_process(application, update), name=f"telegram-{update.update_id}")
        work.add(task)
        task.add_done_callback(work.discard)
        done, _ = await asyncio.wait({task}, timeout=answer_within)
        if delivery.busy:
            return web.Response(status=503, text="being handled elsewhere: send it again later")
        if not done:
            log.info(
                "update %s still being handled after %.0f s: answered, the work goes on",
                update.update_id,
                answer_within,
            )
        return web.Response(text="ok")

    async def health(request: web.Request) -> web.Response:
        running = application.running
        return web.json_response(
            {"status": "ok" if running else "stopped", "channel": "telegram", "mode": "webhook"},
            status=200 if running else 503,
        )

    async def drain(_: web.Application) -> None:
        """Work still going on (answered past `answer_within`) finishes before the bot stops."""
        if work:
            late = (await asyncio.wait(set(work), timeout=DRAIN_SECONDS))[1]
            for task in late:
                task.cancel()
            if late:
                log.warning("webhook: %d update(s) still unfinished at shutdown, cancelled", len(late))
                await asyncio.gather(*late, return_exceptions=True)

    app = web.Application(client_max_size=MAX_UPDATE_BYTES)
    app.router.add_post(WEBHOOK_PATH, receive)
    app.router.add_get(HEALTH_PATH, health)
    app.on_cleanup.append(drain)
    return app


async def _process(application: TelegramApplication, update: Update) -> None:
    """What polling does with an update: the handlers, through the per-chat processor.
    Errors are the handlers' (`on_error`); what escapes them is logged here."""
    try:
        await application.update_processor.process_update(update, application.process_update(update))
    except Exception as exc:
        log.error("update %s failed: %s", update.update_id, exc, exc_info=exc)
