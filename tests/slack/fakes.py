"""A Slack of our own on 127.0.0.1, for the tests and the ack benchmark.

`SlackStub` is a real HTTP server (aiohttp) that answers the Web API methods Fournil
calls and records every call; it also receives `response_url` posts, file uploads (the
three steps of `files_upload_v2`: `files.getUploadURLExternal` hands out an upload URL on
the stub itself, the bytes are POSTed there and kept, `files.completeUploadExternal`
shares them) and serves a Socket Mode websocket (its `apps.connections.open` returns a
`ws://127.0.0.1` URL).
`SlackSender` plays Slack's side of the Events API: it signs each request (HMAC-SHA256,
v0, the way Slack does) and POSTs it to the app's real `/slack/events` endpoint.
Nothing here ever leaves the loopback interface.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

BOT_USER = "UFOURNIL"
BOT_ID = "BFOURNIL"
TEAM = "T0000TEST"
APP_ID = "A0000TEST"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-1111-2222-testtokenvalue"
APP_TOKEN = "xapp-1-A0000TEST-3333-testapptokenvalue"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.monotonic)
    answer: dict[str, Any] = field(default_factory=dict)  # what the stub answered


class SlackStub:
    """Web API + response_url sink + Socket Mode server, recording everything."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.locales: dict[str, str] = {}  # user id → Slack locale, "en-US" otherwise
        self.admins: set[str] = set()  # user ids users.info reports as workspace admins
        self.owners: set[str] = set()  # … and as workspace owners
        self.uploads: dict[str, bytes] = {}  # file id → the bytes POSTed to its upload URL
        self.fail: dict[str, str] = {}  # method → Slack error to answer with (ok: false)
        self.gates: dict[str, asyncio.Event] = {}  # method → answer only once set
        self.rate_limit: dict[str, int] = {}  # method → how many calls get a 429 first
        self.socket_acks: list[dict[str, Any]] = []
        self.socket_connected = asyncio.Event()
        self._sockets: list[web.WebSocketResponse] = []
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> SlackStub:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/link", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        for gate in self.gates.values():
            gate.set()
        for socket in self._sockets:
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "r") -> str:
        return f"http://127.0.0.1:{self.port}/respond/{name}"

    # -------------------------------------------------------------- queries

    def of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def posted(self) -> list[Call]:
        """Everything Fournil said to someone, whichever way it went."""
        said = {"chat.postMessage", "chat.postEphemeral", "response_url"}
        return [call for call in self.calls if call.method in said]

    async def wait_for(self, method: str, count: int = 1, within: float = 10.0) -> list[Call]:
        """Poll the recorded calls until `count` calls of `method` arrived (or fail)."""
        deadline = time.monotonic() + within
        while len(self.of(method)) < count:
            if time.monotonic() > deadline:
                seen = [c.method for c in self.calls]
                raise AssertionError(f"{count}× {method} expected within {within}s; calls: {seen}")
            await asyncio.sleep(0.01)
        return self.of(method)

    # -------------------------------------------------------------- Socket Mode

    async def push(self, envelope: dict[str, Any]) -> None:
        """Send an envelope to every connected Socket Mode client."""
        for socket in self._sockets:
            await socket.send_json(envelope)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_json({"type": "hello", "num_connections": 1, "debug_info": {"host": "stub"}})
        self.socket_connected.set()
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.socket_acks.append({**json.loads(message.data), "_at": time.monotonic()})
        return socket

    # -------------------------------------------------------------- HTTP

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        for key in ("blocks", "view", "files"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") or params.get("token")
        if method in self.gates:
            await self.gates[method].wait()
        call = Call(method, params, token)
        self.calls.append(call)
        if self.rate_limit.get(method, 0) > 0:
            self.rate_limit[method] -= 1
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
            )
        if method in self.fail:
            return web.json_response({"ok": False, "error": self.fail[method]})
        answer = self._answer(method, params)
        call.answer = answer
        return web.json_response(answer)

    async def _respond(self, request: web.Request) -> web.Response:
        params = await request.json()
        params["name"] = request.match_info["name"]
        if "response_url" in self.gates:
            await self.gates["response_url"].wait()
        self.calls.append(Call("response_url", params, None))
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        data = await request.read()
        self.uploads[file_id] = data
        self.calls.append(Call("upload", {"file_id": file_id, "size": len(data)}, None))
        return web.Response(text=f"OK - {len(data)}")

    def uploaded(self) -> list[tuple[dict[str, Any], bytes]]:
        """Each completed upload: the files.completeUploadExternal parameters and the bytes."""
        done = []
        for call in self.of("files.completeUploadExternal"):
            for entry in call.params.get("files") or []:
                done.append((call.params, self.uploads.get(str(entry.get("id")), b"")))
        return done

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ts = f"{1_700_000_000 + next(self._ts)}.000100"
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://stub.slack.test/",
                "team": "Stub",
                "user": "fournil",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"}
        if method == "chat.postMessage":
            channel = params.get("channel")
            return {
                "ok": True,
                "channel": channel,
                "ts": ts,
                "message": {"text": params.get("text"), "ts": ts},
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "chat.update":
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method in {"views.open", "views.publish"}:
            return {"ok": True, "view": {"id": "V0000STUB", **(params.get("view") or {})}}
        if method == "users.info":
            user = str(params.get("user"))
            found = {
                "id": user,
                "locale": self.locales.get(user, "en-US"),
                "is_admin": user in self.admins or user in self.owners,
                "is_owner": user in self.owners,
            }
            return {"ok": True, "user": found}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):08d}"
            return {
                "ok": True,
                "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
                "file_id": file_id,
            }
        if method == "files.completeUploadExternal":
            files = params.get("files") or []
            return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}
        if method == "conversations.open":
            user = str(params.get("users", "U0"))
            return {"ok": True, "channel": {"id": "D" + user[1:]}}
        return {"ok": False, "error": "unknown_method"}


# ------------------------------------------------------------------ signing and sending


def signature_headers(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's request signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Sent:
    status: int
    body: str
    at: float


class SlackSender:
    """Slack's side of HTTP mode: signed POSTs to the app's `/slack/events`."""

    def __init__(self, url: str, secret: str = SECRET) -> None:
        self.url = url
        self.secret = secret
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    async def post_raw(self, body: str, content_type: str, headers: dict[str, str]) -> Sent:
        all_headers = {"Content-Type": content_type, **headers}
        async with self.session.post(self.url, data=body.encode(), headers=all_headers) as response:
            text = await response.text()
            return Sent(response.status, text, time.monotonic())

    async def event(self, body: dict[str, Any], retry: int | None = None) -> Sent:
        raw = json.dumps(body)
        headers = signature_headers(self.secret, raw)
        if retry is not None:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post_raw(raw, "application/json", headers)

    async def form(self, fields: dict[str, str]) -> Sent:
        raw = urlencode(fields)
        return await self.post_raw(
            raw, "application/x-www-form-urlencoded", signature_headers(self.secret, raw)
        )

    async def interactive(self, payload: dict[str, Any]) -> Sent:
        return await self.form({"payload": json.dumps(payload)})


# ------------------------------------------------------------------ payloads


def new_ts() -> str:
    return f"{time.time():.6f}"


def event_callback(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "api_app_id": APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
    }


def dm_event(text: str, user: str = "U0000REP1", channel: str = "D0000REP1", **extra: Any) -> dict[str, Any]:
    ts = new_ts()
    return {
        "type": "message",
        "channel_type": "im",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        **extra,
    }


def mention_event(
    text: str, user: str = "U0000REP1", channel: str = "C0000TEAM", thread_ts: str | None = None
) -> dict[str, Any]:
    ts = new_ts()
    event = {"type": "app_mention", "channel": channel, "user": user, "text": text, "ts": ts, "event_ts": ts}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def thread_reply(
    text: str, thread_ts: str, user: str = "U0000REP1", channel: str = "C0000TEAM", **extra: Any
) -> dict[str, Any]:
    """A member's reply in a channel thread (event `message.channels`)."""
    ts = new_ts()
    return {
        "type": "message",
        "channel_type": "channel",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "thread_ts": thread_ts,
        "event_ts": ts,
        **extra,
    }


def slash_command(
    text: str, response_url: str, user: str = "U0000REP1", channel: str = "C0000TEAM"
) -> dict[str, str]:
    return {
        "token": "legacy-verification-token",
        "team_id": TEAM,
        "team_domain": "stub",
        "channel_id": channel,
        "channel_name": "sales",
        "user_id": user,
        "user_name": "rep",
        "command": "/fournil",
        "text": text,
        "api_app_id": APP_ID,
        "response_url": response_url,
        "trigger_id": f"{uuid.uuid4().int % 10**12}.trigger",
    }


def message_shortcut(
    text: str, response_url: str, user: str = "U0000REP1", channel: str = "C0000TEAM"
) -> dict[str, Any]:
    return {
        "type": "message_action",
        "callback_id": "fournil_coach_message",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.trigger",
        "action_ts": new_ts(),
        "team": {"id": TEAM, "domain": "stub"},
        "user": {"id": user, "name": "rep"},
        "channel": {"id": channel, "name": "sales"},
        "message": {"type": "message", "user": "U0000OTHER", "text": text, "ts": new_ts()},
        "response_url": response_url,
        "token": "legacy-verification-token",
    }


def block_action(
    action_id: str,
    value: str,
    *,
    user: str = "U0000REP1",
    channel: str = "D0000REP1",
    response_url: str = "",
    ephemeral: bool = False,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    message_ts = new_ts()
    payload: dict[str, Any] = {
        "type": "block_actions",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.trigger",
        "team": {"id": TEAM, "domain": "stub"},
        "user": {"id": user, "name": "rep", "team_id": TEAM},
        "api_app_id": APP_ID,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": ephemeral,
        },
        "channel": {"id": channel, "name": "directmessage" if channel.startswith("D") else "sales"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "action_ts": new_ts(),
            }
        ],
    }
    if not ephemeral:
        message: dict[str, Any] = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "ts": message_ts}
        if thread_ts:
            message["thread_ts"] = thread_ts
        payload["message"] = message
    return payload


def view_submission(view: dict[str, Any], text: str, user: str = "U0000REP1") -> dict[str, Any]:
    """What Slack sends when the rep presses the modal's submit button, built from the
    view Fournil opened (its callback id, metadata and input ids)."""
    block = view["blocks"][0]
    state = {block["block_id"]: {block["element"]["action_id"]: {"type": "plain_text_input", "value": text}}}
    return {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "stub"},
        "user": {"id": user, "name": "rep", "team_id": TEAM},
        "api_app_id": APP_ID,
        "trigger_id": f"{uuid.uuid4().int % 10**12}.trigger",
        "view": {
            "id": "V0000STUB",
            "type": "modal",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {"values": state},
            "blocks": view["blocks"],
        },
    }


def all_texts(blocks: list[dict[str, Any]]) -> str:
    """Every visible string of a block list, to search a rendered message."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return "\n".join(out)


def find_button(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any]:
    for block in blocks:
        elements = block.get("elements", []) if block.get("type") == "actions" else []
        accessory = [block["accessory"]] if "accessory" in block else []
        for element in [*elements, *accessory]:
            if element.get("action_id") == action_id:
                return dict(element)
    raise AssertionError(f"no {action_id} button in the message")
