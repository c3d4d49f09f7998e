"""Webhook mode's HTTP side: `POST /telegram` for updates and `GET /healthz`.

A small aiohttp app rather than python-telegram-bot's built-in tornado server, so the same
process can later serve other paths (Slack events, metrics) on one port, and so the secret
check is ours to read. An update whose `X-Telegram-Bot-Api-Secret-Token` header does not
match the secret given to `setWebhook` is refused with 403 before it is even parsed: only
Telegram knows the secret. Accepted updates go to `application.update_queue`, exactly
where polling puts them, so both modes share every handler; the 200 is sent as soon as the
update is queued, and a retried delivery is caught by the store's event claim.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from telegram import Update

from bot.channels.telegram.handlers import TelegramApplication

log = logging.getLogger("fournil.telegram")

WEBHOOK_PATH = "/telegram"
HEALTH_PATH = "/healthz"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1 << 20


def webhook_app(application: TelegramApplication, secret: str) -> web.Application:
    expected = secret.encode("utf-8")

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
        await application.update_queue.put(update)
        return web.Response(text="ok")

    async def health(request: web.Request) -> web.Response:
        running = application.running
        return web.json_response(
            {"status": "ok" if running else "stopped", "channel": "telegram", "mode": "webhook"},
            status=200 if running else 503,
        )

    app = web.Application(client_max_size=MAX_UPDATE_BYTES)
    app.router.add_post(WEBHOOK_PATH, receive)
    app.router.add_get(HEALTH_PATH, health)
    return app
