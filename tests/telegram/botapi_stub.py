"""A small Bot API server for tests and benches: real HTTP on 127.0.0.1, recorded calls.

It speaks the part of https://core.telegram.org/bots/api the bot uses (getMe, getUpdates
with offset/limit/long-poll timeout, sendMessage, sendPhoto (multipart upload),
editMessageText, answerCallbackQuery, sendChatAction, setMyCommands, deleteWebhook,
setWebhook, getWebhookInfo) and checks what Telegram checks, so a test fails where
Telegram would refuse: the token, HTML parse mode (known tags, balanced, `<`, `>`, `&`
escaped; an independent parser, not the bot's), 4096 characters after parsing (UTF-16),
1024 for a caption, a photo that is an image, callback data of 1-64 bytes, command menus,
the target of an edit, "message is not modified". Updates are queued with `push` (or the
helpers that build private, group, callback and photo updates) and served by getUpdates; a
failure can be injected for the next calls of a method, and `forbid` makes every message
to a chat fail as it does for a user who never opened a chat with the bot (403).

The python-telegram-bot `Application` under test talks to it through `base_url`, exactly as
it would to a self-hosted Bot API server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

TOKEN = "123456789:TESTtoken-for-the-stub-Bot-API-server_00"
BOT_ID = 123456789
BOT_USERNAME = "FournilTestBot"
_JSON_FIELDS = {
    "reply_markup",
    "reply_parameters",
    "link_preview_options",
    "commands",
    "allowed_updates",
    "scope",
    "entities",
}
_STRING_FIELDS = {
    "text", "caption", "url", "secret_token", "callback_query_id", "action", "parse_mode",
    "language_code", "description", "emoji",
}  # fmt: skip
_TELEGRAM_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
    "a", "tg-emoji", "code", "pre", "blockquote",
}  # fmt: skip
_NOT_MODIFIED = (
    "specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BARE_AMPERSAND = re.compile(r"&(?!#\d+;|#x[0-9a-fA-F]+;|[a-zA-Z]+;)")


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass(frozen=True)
class Upload:
    """A file the bot uploaded (multipart/form-data)."""

    filename: str | None
    content_type: str
    data: bytes


@dataclass
class Call:
    """One request the bot made: the method, its decoded parameters and uploaded files,
    when it arrived (perf_counter), and once answered (`done`) the result or the error."""

    method: str
    params: dict[str, Any]
    at: float
    result: Any = None
    error: str | None = None
    done: bool = False
    files: dict[str, Upload] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        """The text a reader sees (entities parsed), for a sent or edited message."""
        return str(self.result.get("text", "")) if isinstance(self.result, dict) else ""

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        return str(self.params.get("text", ""))

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.params.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]


@dataclass
class _Failure:
    code: int
    description: str
    retry_after: int | None = None


@dataclass
class BotApiStub:
    token: str = TOKEN
    bot_id: int = BOT_ID
    username: str = BOT_USERNAME
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    commands: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)
    port: int = 0
    # method → its calls are recorded, then answered only once the event is set
    gates: dict[str, asyncio.Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._forbidden: set[int] = set()
        self._pending: list[dict[str, Any]] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._update_ids = itertools.count(1000)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._callback_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> BotApiStub:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and getattr(server, "sockets", None)
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        for gate in self.gates.values():
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> BotApiStub:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # --- driving the bot ------------------------------------------------------------------

    def push(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queues an update for getUpdates (an update_id is given if it has none)."""
        update.setdefault("update_id", next(self._update_ids))
        self._pending.append(update)
        self._pending.sort(key=lambda item: int(item["update_id"]))
        self._wakeup.set()
        return update

    def new_update(self, **payload: Any) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), **payload}

    def message(
        self,
        chat_id: int,
        user_id: int,
        text: str | None = None,
        *,
        language_code: str | None = "en",
        reply_to: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """An incoming message update (private when chat_id > 0, else a supergroup), with
        bot_command and mention entities computed as Telegram would (UTF-16 offsets)."""
        chat: dict[str, Any] = (
            {"id": chat_id, "type": "private", "first_name": f"Rep {user_id}"}
            if chat_id > 0
            else {"id": chat_id, "type": "supergroup", "title": "Sales team"}
        )
        sender: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": f"Rep {user_id}"}
        if language_code:
            sender["language_code"] = language_code
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
            **extra,
        }
        if text is not None:
            message["text"] = text
            entities = _entities(text)
            if entities:
                message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return self.new_update(message=message)

    def private(self, user_id: int, text: str, language_code: str | None = "en") -> dict[str, Any]:
        return self.message(user_id, user_id, text, language_code=language_code)

    def photo(self, chat_id: int, user_id: int, caption: str | None = None) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "photo": [{"file_id": "photo-1", "file_unique_id": "u-photo-1", "width": 90, "height": 90}]
        }
        if caption:
            extra["caption"] = caption
            extra["caption_entities"] = _entities(caption)
        return self.message(chat_id, user_id, None, **extra)

    def sticker(self, chat_id: int, user_id: int) -> dict[str, Any]:
        sticker = {
            "file_id": "sticker-1",
            "file_unique_id": "u-sticker-1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
        return self.message(chat_id, user_id, None, sticker=sticker)

    def callback(self, user_id: int, message: dict[str, Any], data: str) -> dict[str, Any]:
        """A button press on one of the bot's messages (as stored when it was sent)."""
        query = {
            "id": f"cbq-{next(self._callback_ids)}",
            "from": {"id": user_id, "is_bot": False, "first_name": f"Rep {user_id}", "language_code": "en"},
            "chat_instance": "chat-instance-1",
            "message": message,
            "data": data,
        }
        return self.new_update(callback_query=query)

    def fail(
        self,
        method: str,
        code: int = 400,
        description: str = "Bad Request: injected failure",
        *,
        times: int = 1,
    ) -> None:
        """The next `times` calls of `method` fail as Telegram would fail them."""
        retry_after = 1 if code == 429 else None
        self._failures.setdefault(method, []).extend(
            _Failure(code, description, retry_after) for _ in range(times)
        )

    def forbid(self, chat_id: int) -> None:
        """Every later message to this chat is refused with 403, as Telegram refuses a bot
        writing first to a user who never started a chat with it."""
        self._forbidden.add(chat_id)

    def allow(self, chat_id: int) -> None:
        """The user opened a chat with the bot: messages to them go through again."""
        self._forbidden.discard(chat_id)

    # --- observing ------------------------------------------------------------------------

    def mark(self) -> int:
        """An index into `calls`: pass it as `after` to wait only for later calls."""
        return len(self.calls)

    def of(self, method: str, after: int = 0, chat_id: int | None = None) -> list[Call]:
        return [
            call
            for call in self.calls[after:]
            if call.method == method and (chat_id is None or call.chat_id == chat_id)
        ]

    async def wait_for(
        self,
        method: str,
        *,
        after: int = 0,
        chat_id: int | None = None,
        count: int = 1,
        where: Callable[[Call], bool] | None = None,
        limit: float = 15.0,
        answered: bool = True,
    ) -> list[Call]:
        """The first `count` matching calls made after `after`, once answered (or as soon
        as they arrive, with `answered=False`), waiting for them (`limit` only turns a hang
        into a failure; nothing measures time)."""

        def matching() -> list[Call]:
            found = self.of(method, after, chat_id)
            return [call for call in found if (call.done or not answered) and (where is None or where(call))]

        async with asyncio.timeout(limit), self._changed:
            await self._changed.wait_for(lambda: len(matching()) >= count)
        return matching()[:count]

    # --- the API --------------------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        params, files = await _params(request)
        call = Call(method, params, time.perf_counter(), files=files)
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        if method in self.gates:
            await self.gates[method].wait()
        try:
            failures = self._failures.get(method)
            if failures:
                failure = failures.pop(0)
                raise ApiError(failure.code, failure.description, failure.retry_after)
            result = await self._dispatch(method, params, files)
        except ApiError as error:
            body: dict[str, Any] = {"ok": False, "error_code": error.code, "description": error.description}
            if error.retry_after is not None:
                body["parameters"] = {"retry_after": error.retry_after}
            await self._answered(call, None, error.description)
            return web.json_response(body, status=error.code)
        await self._answered(call, result, None)
        return web.json_response({"ok": True, "result": result})

    async def _answered(self, call: Call, result: Any, error: str | None) -> None:
        async with self._changed:
            call.result, call.error, call.done = result, error, True
            self._changed.notify_all()

    async def _dispatch(self, method: str, params: dict[str, Any], files: dict[str, Upload]) -> Any:
        chat = params.get("chat_id")
        if chat is not None and method.startswith("send") and int(chat) in self._forbidden:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if method == "getMe":
            return {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "Fournil",
                "username": self.username,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method == "getUpdates":
            return await self._get_updates(params)
        if method == "sendMessage":
            return self._send_message(params)
        if method == "sendPhoto":
            return self._send_photo(params, files)
        if method == "editMessageText":
            return self._edit_message(params)
        if method == "answerCallbackQuery":
            _require(params, "callback_query_id")
            if len(str(params.get("text", ""))) > 200:
                raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
            return True
        if method == "sendChatAction":
            _require(params, "chat_id", "action")
            return True
        if method == "setMyCommands":
            return self._set_commands(params)
        if method == "deleteWebhook":
            self.webhook = {}
            return True
        if method == "setWebhook":
            _require(params, "url")
            self.webhook = dict(params)
            return True
        if method == "getWebhookInfo":
            return {
                "url": self.webhook.get("url", ""),
                "has_custom_certificate": False,
                "pending_update_count": 0,
            }
        raise ApiError(404, "Not Found: method not found")

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        wait = float(params.get("timeout") or 0)
        self._pending = [update for update in self._pending if int(update["update_id"]) >= offset]
        if not self._pending and wait > 0 and not self._closing:
            self._wakeup.clear()
            try:
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()
            except TimeoutError:
                pass
        return [update for update in self._pending if int(update["update_id"]) >= offset][:limit]

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        _require(params, "chat_id", "text")
        chat_id = int(params["chat_id"])
        text = _checked_text(params)
        _check_markup(params)
        message = self._bot_message(chat_id, params)
        message["text"] = text
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _send_photo(self, params: dict[str, Any], files: dict[str, Upload]) -> dict[str, Any]:
        _require(params, "chat_id")
        upload = files.get("photo")
        if upload is None:  # a file_id or URL string: the bot always uploads its charts
            raise ApiError(400, "Bad Request: there is no photo in the request")
        if not upload.data.startswith((PNG_SIGNATURE, b"\xff\xd8\xff")) or len(upload.data) > 10 << 20:
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        chat_id = int(params["chat_id"])
        message = self._bot_message(chat_id, params)
        message["photo"] = [
            {
                "file_id": f"photo-{chat_id}-{message['message_id']}",
                "file_unique_id": "u",
                "width": 1080,
                "height": 1620,
            }
        ]
        if params.get("caption"):
            caption = _checked_text({**params, "text": params["caption"]}, limit=1024)
            message["caption"] = caption
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _bot_message(self, chat_id: int, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "Fournil", "username": self.username},
        }
        reply = (params.get("reply_parameters") or {}).get("message_id")
        if reply is not None:
            message["reply_to_message"] = {
                "message_id": int(reply),
                "date": int(time.time()),
                "chat": message["chat"],
            }
        return message

    def _edit_message(self, params: dict[str, Any]) -> dict[str, Any]:
        _require(params, "chat_id", "message_id", "text")
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        text = _checked_text(params)
        _check_markup(params)
        message = dict(self.messages[key])
        markup = params.get("reply_markup")
        if message.get("text") == text and message.get("reply_markup") == markup:
            raise ApiError(400, f"Bad Request: message is not modified: {_NOT_MODIFIED}")
        message["text"] = text
        message["edit_date"] = int(time.time())
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        self.messages[key] = message
        return message

    def _set_commands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or not 1 <= len(commands) <= 100:
            raise ApiError(400, "Bad Request: commands must be a non-empty list")
        for command in commands:
            if not _COMMAND_NAME.match(str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[str(params.get("language_code") or "")] = commands
        return True

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)


async def _params(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Bot API parameters from the query string, a form body (multipart for uploads) or a
    JSON body; and the files uploaded."""
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, Upload] = {}
    if request.content_type == "application/json":
        body = await request.json()
        raw.update(body if isinstance(body, dict) else {})
        return raw, files
    if request.can_read_body:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str):
                raw[key] = value
            elif isinstance(value, web.FileField):
                files[key] = Upload(value.filename, value.content_type, value.file.read())
    for name, value in raw.items():
        if not isinstance(value, str) or name in _STRING_FIELDS:
            continue
        try:
            raw[name] = json.loads(value)  # numbers, booleans and objects come JSON-encoded
        except json.JSONDecodeError as exc:
            if name in _JSON_FIELDS:
                raise web.HTTPBadRequest(text=f"{name}: invalid JSON") from exc
    return raw, files


def _require(params: dict[str, Any], *names: str) -> None:
    for name in names:
        if params.get(name) in (None, ""):
            raise ApiError(400, f"Bad Request: {name} is empty")


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _checked_text(params: dict[str, Any], limit: int = 4096) -> str:
    """The message (or caption) text as a reader sees it, refused as Telegram refuses it."""
    text = str(params["text"])
    if str(params.get("parse_mode", "")).upper() == "HTML":
        if _BARE_AMPERSAND.search(text):
            raise ApiError(400, 'Bad Request: can\'t parse entities: unescaped "&"')
        parser = _TelegramHtml()
        parser.feed(text)
        parser.close()
        if parser.error is None and parser.stack:
            parser.error = f'can\'t find end tag corresponding to start tag "{parser.stack[-1]}"'
        if parser.error is not None:
            raise ApiError(400, f"Bad Request: can't parse entities: {parser.error}")
        text = "".join(parser.text)
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if _utf16(text) > limit:
        raise ApiError(
            400,
            "Bad Request: message is too long" if limit == 4096 else "Bad Request: MEDIA_CAPTION_TOO_LONG",
        )
    return text


def _check_markup(params: dict[str, Any]) -> None:
    markup = params.get("reply_markup")
    if not markup:
        return
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if not str(button.get("text", "")):
                raise ApiError(400, "Bad Request: BUTTON_TEXT_EMPTY")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


class _TelegramHtml(HTMLParser):
    """Telegram's HTML style, checked independently of the bot's own renderer."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.error: str | None = None

    def _fail(self, problem: str) -> None:
        if self.error is None:
            self.error = problem

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TELEGRAM_TAGS:
            self._fail(f'unsupported start tag "{tag}"')
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self._fail(f'unmatched end tag "{tag}"')

    def handle_data(self, data: str) -> None:
        for char in "<>&":
            if char in data:
                self._fail(f'unescaped "{char}"')
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        named = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
        if name not in named:
            self._fail(f'unsupported entity "&{name};"')
        self.text.append(named.get(name, ""))

    def handle_charref(self, name: str) -> None:
        self.text.append(chr(int(name[1:], 16) if name.lower().startswith("x") else int(name)))

    def handle_comment(self, data: str) -> None:
        self._fail("comments are not supported")

    def unknown_decl(self, data: str) -> None:
        self._fail("declarations are not supported")


def _entities(text: str) -> list[dict[str, Any]]:
    """bot_command at the start and @mentions, with UTF-16 offsets like Telegram's."""
    entities: list[dict[str, Any]] = []
    command = re.match(r"^/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?", text)
    if command:
        entities.append({"type": "bot_command", "offset": 0, "length": _utf16(command.group(0))})
    for mention in re.finditer(r"(?<![\w@/])@[A-Za-z0-9_]{5,32}", text):
        entities.append(
            {"type": "mention", "offset": _utf16(text[: mention.start()]), "length": _utf16(mention.group(0))}
        )
    return entities
