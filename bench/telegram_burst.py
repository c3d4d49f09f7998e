"""Burst benchmark for the Telegram bot: N users each send an opener at the same moment.

What it runs: the real bot (`build_application` + `run_application`, the code of
`fournil telegram`, with its rate limiter and per-chat ordering) over a fresh SQLite store,
against the tests' stub Bot API server (`tests/telegram/botapi_stub.py`) on 127.0.0.1,
by long polling (default) or by webhook (`--mode webhook`, updates POSTed to /telegram).

The coach is the production one, with the knowledge index (related principles on every
card; `--no-search` leaves it out), warmed up before the bot starts serving, as
`fournil telegram` does; the first run in an empty data dir builds the index, which
`start_up_s` shows (`--data-dir DIR` keeps it between runs; the conversation store is
always fresh).

What it prints:

- start-up: from building the coach to serving (index opened, models loaded);
- three DMs one at a time first: the time from the update being available to the card being
  answered by the API, and whether the card has `NN/100` and a question;
- the burst: `--users` (default 200) private chats, one opener each, all queued at once
  (openers from tests/data/openers.jsonl, both languages): time until every user has a
  card, per-user latency p50/p95/max, messages lost (users without a card), duplicates,
  cards without `NN/100` or a question;
- flood limits, measured on the arrival times the API saw for every sendMessage and
  editMessageText: the most messages in any sliding 1-second window (Telegram: about 30),
  the shortest gap between two messages in one chat (about 1 s), the most messages to one
  group in any 60-second window (20; the burst is DMs, so 0 unless `--group` is given), and
  how many typing actions were sent or skipped.

Run from the repository root (not part of the test suite):

    .venv/bin/python bench/telegram_burst.py
    .venv/bin/python bench/telegram_burst.py --users 500 --mode webhook
    .venv/bin/python bench/telegram_burst.py --group 25   # also 25 mentions in one group
    .venv/bin/python bench/telegram_burst.py --data-dir /tmp/fournil-bench   # reuse the index
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import os
import platform
import re
import socket
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402

from bot.app import (  # noqa: E402
    build_coach,
    open_flow,
    warm_up,
)
from bot.channels.telegram import build_application, run_application  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from tests.telegram.botapi_stub import BOT_USERNAME, TOKEN, BotApiStub, Call  # noqa: E402

SCORE = re.compile(r"\b\d{1,3}/100\b")
MESSAGE_METHODS = ("sendMessage", "editMessageText")
SECRET = "bench-secret"
GROUP_ID = -100_900


def openers(count: int) -> list[str]:
    rows = [json.loads(line) for line in (REPO_ROOT / "tests/data/openers.jsonl").read_text().splitlines()]
    texts = [row["text"] for row in rows if row.get("text")]
    return [texts[index % len(texts)] for index in range(count)]


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most events in any half-open window [t, t + window)."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def good_card(call: Call) -> bool:
    return bool(SCORE.search(call.shown)) and any(line.startswith("→ ") for line in call.shown.splitlines())


async def deliver(stub: BotApiStub, updates: list[dict[str, Any]], mode: str, port: int) -> None:
    if mode == "polling":
        for update in updates:
            stub.push(update)
        return
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with aiohttp.ClientSession() as session:

        async def post(update: dict[str, Any]) -> None:
            url = f"http://127.0.0.1:{port}/telegram"
            async with session.post(url, json=update, headers=headers) as reply:
                assert reply.status == 200, reply.status

        await asyncio.gather(*(post(update) for update in updates))


async def run(users: int, mode: str, group: int, search: bool, data_dir: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = data_dir or scratch
        async with BotApiStub() as stub:
            port = 0
            overrides: dict[str, Any] = {}
            if mode == "webhook":
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", 0))
                    port = probe.getsockname()[1]
                overrides = {
                    "telegram_webhook_url": "https://bench.example/telegram",
                    "telegram_webhook_secret": SECRET,
                    "host": "127.0.0.1",
                    "port": port,
                }
            settings = load_settings(
                data_dir=Path(data_dir),
                database_url=f"sqlite+aiosqlite:///{Path(scratch) / 'fournil.db'}",  # always a fresh store
                telegram_bot_token=TOKEN,
                telegram_api_base_url=stub.base_url,
                **{"telegram_webhook_url": None, "telegram_webhook_secret": None, **overrides},
            )
            began = time.perf_counter()
            coach = build_coach(settings, with_search=search)
            async with open_flow(settings, coach) as flow:
                application = build_application(settings, flow)
                stop = asyncio.Event()
                task = asyncio.create_task(
                    run_application(
                        application, settings, stop, poll_timeout=10, before_start=lambda: warm_up(flow)
                    )
                )
                await stub.wait_for("setWebhook" if mode == "webhook" else "deleteWebhook", limit=600)
                start_up = time.perf_counter() - began

                # One DM at a time (the first one pays for the language detector's start).
                single: list[float] = []
                single_ok = True
                for attempt in range(3):
                    user = 10 + attempt
                    mark, start = stub.mark(), time.perf_counter()
                    await deliver(stub, [stub.private(user, openers(1)[0])], mode, port)
                    [card] = await stub.wait_for("sendMessage", after=mark, chat_id=user, limit=30)
                    single.append(time.perf_counter() - start)
                    single_ok = single_ok and good_card(card)

                # The burst.
                texts = openers(users)
                first_user = 1_000_000
                updates = [stub.private(first_user + n, text) for n, text in enumerate(texts)]
                group_updates = [
                    stub.message(GROUP_ID, 5_000 + n, f"@{BOT_USERNAME} {text}")
                    for n, text in enumerate(openers(group))
                ]
                mark, start = stub.mark(), time.perf_counter()
                await deliver(stub, updates + group_updates, mode, port)
                expected = users + group
                await stub.wait_for(
                    "sendMessage",
                    after=mark,
                    count=expected,
                    where=lambda call: (call.chat_id or 0) >= first_user or call.chat_id == GROUP_ID,
                    limit=300 + 4 * group,
                )
                elapsed = time.perf_counter() - start
                stop.set()
                await task

            return {
                "mode": mode,
                "users": users,
                "group_mentions": group,
                "knowledge_search": search,
                "start_up_s": round(start_up, 1),
                "single_dm_s": [round(value, 3) for value in single],
                "single_dm_card_ok": single_ok,
                "burst_all_answered_s": round(elapsed, 2),
                **analyse(stub.calls, mark, start, range(first_user, first_user + users)),
                "typing_sent": len(stub.of("sendChatAction")),
                "typing_skipped": users + group + len(single) - len(stub.of("sendChatAction")),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            }


def analyse(calls: Sequence[Call], mark: int, start: float, dm_chats: range) -> dict[str, Any]:
    """Latency and completeness of the burst, and the flood limits over the whole run, on
    the times the API saw each message arrive."""
    messages = [call for call in calls if call.method in MESSAGE_METHODS and call.chat_id is not None]
    per_chat: dict[int, list[Call]] = defaultdict(list)
    for call in messages:
        assert call.chat_id is not None
        per_chat[call.chat_id].append(call)
    burst = {chat: [call for call in per_chat.get(chat, []) if call.at >= start] for chat in dm_chats}
    latencies = [answers[0].at - start for answers in burst.values() if answers]
    gaps = [
        later.at - earlier.at for chat in per_chat.values() for earlier, later in itertools.pairwise(chat)
    ]
    group_times = [call.at for call in messages if call.chat_id is not None and call.chat_id < 0]
    return {
        "burst_latency_p50_s": round(percentile(latencies, 0.5), 2),
        "burst_latency_p95_s": round(percentile(latencies, 0.95), 2),
        "burst_latency_max_s": round(max(latencies), 2),
        "lost": sum(1 for answers in burst.values() if not answers),
        "duplicates": sum(1 for answers in burst.values() if len(answers) > 1),
        "cards_without_score_or_question": sum(
            1 for answers in burst.values() for call in answers if not good_card(call)
        ),
        "failed_api_calls": sum(1 for call in calls[mark:] if call.error),
        "max_messages_in_any_1s": max_in_window([call.at for call in messages], 1.0),
        "min_gap_in_one_chat_s": round(min(gaps), 3) if gaps else None,
        "max_group_messages_in_any_60s": max_in_window(group_times, 60.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--mode", choices=["polling", "webhook"], default="polling")
    parser.add_argument("--group", type=int, default=0, help="also this many mentions in one group")
    parser.add_argument(
        "--no-search", action="store_true", help="coach without the knowledge index (related principles)"
    )
    parser.add_argument(
        "--data-dir", help="keep the store and the index here (default: a temporary directory)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run(args.users, args.mode, args.group, not args.no_search, args.data_dir))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:34} {value}")


if __name__ == "__main__":
    main()
