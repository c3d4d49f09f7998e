"""A small OpenAI-compatible chat server on 127.0.0.1 for the LLM tests: the outside world.

Fournil's real client (langchain + langchain-openai + the openai SDK + httpx) talks to it
over real HTTP. Each test says how it answers each task (second opinion, coaching note,
ask answer: the name of the structured output the request asks for) and reads back every
request it received, to check what left the process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    """How the server answers one request."""

    payload: dict[str, Any] | None = None  # the structured output, as content or tool call
    content: str | None = None  # raw message content instead (e.g. not JSON)
    status: int = 200
    body: str | None = None  # a raw HTTP body instead of a chat completion
    content_type: str = "application/json"
    delay: float = 0.0  # seconds to wait before answering (a hang, when long)
    hold: Callable[[Reply], Awaitable[None]] | None = None  # awaited before answering
    headers: dict[str, str] = field(default_factory=dict)
    usage: tuple[int, int] = (120, 40)


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def task(self) -> str:
        return task_name(self.body)

    def message(self, role: str) -> str:
        messages = self.body.get("messages", [])
        return "\n".join(str(m.get("content", "")) for m in messages if m["role"] == role)


def task_name(body: dict[str, Any]) -> str:
    """The name of the structured output a request asks for (JSON schema or tool)."""
    response_format = body.get("response_format") or {}
    if isinstance(response_format, dict) and "json_schema" in response_format:
        return str(response_format["json_schema"].get("name", ""))
    tools = body.get("tools") or []
    if tools:
        return str(tools[0]["function"]["name"])
    return ""


Script = Callable[[Received], Reply]


class StubLlm:
    def __init__(self, script: Script | dict[str, Reply]) -> None:
        self.script = script
        self.received: list[Received] = []
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reply_for(self, request: Received) -> Reply:
        if callable(self.script):
            return self.script(request)
        missing = Reply(status=404, body='{"error": {"message": "no such task"}}')
        return self.script.get(request.task) or missing

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        received = Received(request.path, body, dict(request.headers))
        self.received.append(received)
        reply = self.reply_for(received)
        if reply.hold is not None:
            await reply.hold(reply)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.body is not None or reply.status != 200:
            return web.Response(
                status=reply.status,
                text=reply.body or json.dumps({"error": {"message": "stub error", "type": "server_error"}}),
                content_type=reply.content_type,
                headers=reply.headers,
            )
        return web.json_response(completion(body, reply), headers=reply.headers)


def completion(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """A chat completion answering `request` the way it asked: tool call or content."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    finish = "stop"
    if reply.payload is not None:
        arguments = json.dumps(reply.payload, ensure_ascii=False)
        if request.get("tools"):
            name = request["tools"][0]["function"]["name"]
            message["content"] = None
            message["tool_calls"] = [
                {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
            ]
            finish = "tool_calls"
        else:
            message["content"] = arguments
    prompt, output = reply.usage
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": request.get("model", "stub"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output},
    }


@asynccontextmanager
async def running(stub: StubLlm) -> AsyncIterator[StubLlm]:
    """The stub listening on a free port of 127.0.0.1 for the duration of the block."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", stub.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stub.port = runner.addresses[0][1]
    try:
        yield stub
    finally:
        await runner.cleanup()
