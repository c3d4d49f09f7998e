"""`run_telegram`, the entry point of `fournil telegram`, as its own process: settings from
the environment (token from a file), a DM answered, and a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from tests.telegram.botapi_stub import TOKEN, BotApiStub
from tests.telegram.samples import OPENER, SCORE

# The knowledge index takes up to a minute to build in an empty data dir; this test is about
# the process (settings from the environment, signals), so its coach goes without search.
PROGRAM = """
import asyncio
import bot.app
from bot.channels.telegram import run_telegram
from bot.settings import load_settings

build_coach = bot.app.build_coach
bot.app.build_coach = lambda settings, with_search=False, progress=None: build_coach(settings)
asyncio.run(run_telegram(load_settings()))
"""


async def test_the_bot_process_answers_and_stops_cleanly_on_sigterm(
    stub: BotApiStub, cli_env: dict[str, str], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    env = {**cli_env, "TELEGRAM_BOT_TOKEN_FILE": str(token_file), "TELEGRAM_API_BASE_URL": stub.base_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PROGRAM,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await stub.wait_for("deleteWebhook", limit=60)
        mark = stub.mark()
        stub.push(stub.private(501, OPENER))
        [card] = await stub.wait_for("sendMessage", after=mark, chat_id=501)
        assert SCORE.search(card.shown)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        assert TOKEN not in stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
