"""Run by test_client.py in its own process, with LangSmith tracing turned on in the
environment (langsmith caches what it reads there, so this stays out of the test process):
one structured call through `LlmClient`, or through langchain directly (`--plain`, the
control), and the paths a LangSmith endpoint on 127.0.0.1 received, printed as JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from aiohttp import web

from bot.llm.client import LlmClient
from bot.settings import load_settings
from tests.llm.stub_server import Reply, StubLlm, running

SCHEMA = {
    "title": "probe",
    "description": "A probe.",
    "type": "object",
    "properties": {"a": {"type": "string"}},
    "required": ["a"],
}


async def main(plain: bool) -> list[str]:
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    os.environ.update(
        LANGSMITH_TRACING="true",
        LANGSMITH_ENDPOINT=f"http://127.0.0.1:{runner.addresses[0][1]}",
        LANGSMITH_API_KEY="lsv2-probe",
    )
    async with running(StubLlm(lambda _: Reply(payload={"a": "b"}))) as stub:
        settings = load_settings(data_dir=Path("unused"), llm="openai:probe", llm_base_url=stub.base_url)
        client = LlmClient.from_settings(settings)
        assert client is not None
        if plain:
            from langchain_core.messages import HumanMessage

            await client.model.with_structured_output(SCHEMA).ainvoke([HumanMessage("the opener")])
        else:
            await client.structured(SCHEMA, "system", "the opener")
        for _ in range(40):  # the tracer sends from a background thread
            if hits:
                break
            await asyncio.sleep(0.05)
    await runner.cleanup()
    return hits


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main("--plain" in sys.argv))), flush=True)
    os._exit(0)  # do not wait for langsmith's background flush to a server that is gone
