"""Slack ack benchmark: how fast `fournil slack` (HTTP mode) acknowledges a burst of
signed requests, and whether every card is delivered exactly once.

Two processes, as in production:

- this one plays Slack: it runs the Web API stub of the tests (`tests/slack/fakes.py`,
  127.0.0.1) and fires signed Events API requests (HMAC v0) at the app;
- a child process runs the real `run_slack` in HTTP mode on 127.0.0.1 (own SQLite file in
  a temporary directory; the coach without the knowledge search, which cards don't use).

After a warm-up (one opener, so the auth.test cache and the first card are paid for),
each round fires `--requests` DM openers at once (default 50, distinct reps, openers
from `tests/data/openers.jsonl`), plus `--retries` re-sends of some of them with
`X-Slack-Retry-Num: 1` and the same `event_id`, the way Slack retries. Measured:

- ack: from just before the POST to its complete HTTP response, per request, in ms;
- card: from just before the POST to the stub recording the card (`chat.postMessage`);
- delivered once: cards per event after the round has settled (expected: exactly 1 for
  every original event, 0 extra for the retries).

Percentiles are nearest-rank over every request of every round. Nothing leaves 127.0.0.1.

    .venv/bin/python bench/slack_ack.py
    .venv/bin/python bench/slack_ack.py --requests 50 --rounds 5 --retries 10 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import platform
import random
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.slack.fakes import (  # noqa: E402
    BOT_TOKEN,
    SECRET,
    SlackSender,
    SlackStub,
    dm_event,
    event_callback,
)

OPENERS = REPO_ROOT / "tests" / "data" / "openers.jsonl"
TARGET_P99_MS = 300.0


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(api_base_url: str, port: int, data_dir: str) -> None:
    """The child process: the real `fournil slack` entry point, HTTP mode."""
    import logging

    from bot.app import build_coach
    from bot.channels.slack import run_slack
    from bot.settings import load_settings

    logging.basicConfig(level=logging.WARNING)
    settings = load_settings(
        data_dir=Path(data_dir),
        database_url=None,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SECRET,
        slack_app_token=None,
        slack_app_token_file=None,
        slack_api_base_url=api_base_url,
        host="127.0.0.1",
        port=port,
        log_level="WARNING",
    )
    asyncio.run(run_slack(settings, coach=build_coach(settings)))


def _openers() -> list[str]:
    texts = []
    for line in OPENERS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            texts.append(str(json.loads(line)["text"]))
    return texts


async def _wait_healthy(
    url: str, process: multiprocessing.process.BaseProcess, within: float = 120.0
) -> float:
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() - started < within:
            if not process.is_alive():
                raise SystemExit(f"the Slack app exited during start-up (code {process.exitcode})")
            try:
                async with session.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise SystemExit("the Slack app did not become healthy in time")


async def _round(
    sender: SlackSender,
    stub: SlackStub,
    openers: list[str],
    round_no: int,
    requests: int,
    retries: int,
    rng: random.Random,
) -> dict[str, Any]:
    bodies = []
    for i in range(requests):
        user, channel = f"U{round_no:03d}{i:05d}", f"D{round_no:03d}{i:05d}"
        bodies.append(event_callback(dm_event(rng.choice(openers), user=user, channel=channel)))
    retried = rng.sample(bodies, min(retries, len(bodies)))
    sends = [(body, None) for body in bodies] + [(body, 1) for body in retried]
    rng.shuffle(sends)
    posted_before = len(stub.of("chat.postMessage"))
    sent_at: dict[str, float] = {}

    async def fire(body: dict[str, Any], retry: int | None) -> tuple[float, int]:
        start = time.monotonic()
        if retry is None:
            sent_at[body["event"]["channel"]] = start
        reply = await sender.event(body, retry=retry)
        return (reply.at - start) * 1000, reply.status

    results = await asyncio.gather(*(fire(body, retry) for body, retry in sends))
    with contextlib.suppress(AssertionError):  # missing cards are counted below
        await stub.wait_for("chat.postMessage", posted_before + requests, within=60)
    await asyncio.sleep(1.0)  # settle: a duplicate would arrive now
    cards = stub.of("chat.postMessage")[posted_before:]
    per_channel = Counter(str(call.params.get("channel")) for call in cards)
    card_ms = sorted(
        (call.at - sent_at[channel]) * 1000
        for call in cards
        if (channel := str(call.params.get("channel"))) in sent_at
    )
    return {
        "ack_ms": [ms for ms, _ in results],
        "statuses": Counter(status for _, status in results),
        "card_ms": card_ms,
        "events": requests,
        "retries": len(retried),
        "delivered_once": sum(1 for body in bodies if per_channel[body["event"]["channel"]] == 1),
        "missing": sum(1 for body in bodies if per_channel[body["event"]["channel"]] == 0),
        "duplicates": sum(count - 1 for count in per_channel.values() if count > 1),
        "round_max_ack_ms": max(ms for ms, _ in results),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    stub = await SlackStub().start()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="fournil-slack-bench-") as data_dir:
        process = context.Process(target=_serve, args=(stub.base_url, port, data_dir), daemon=True)
        process.start()
        sender = SlackSender(f"{url}/slack/events")
        # One connection per concurrent request, as Slack opens them.
        await sender.session.close()
        sender.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        try:
            startup_s = await _wait_healthy(url, process)
            rng = random.Random(args.seed)
            openers = _openers()
            await sender.event(event_callback(dm_event(openers[0], user="UWARMUP", channel="DWARMUP")))
            await stub.wait_for("chat.postMessage", within=60)
            rounds = [
                await _round(sender, stub, openers, n, args.requests, args.retries, rng)
                for n in range(1, args.rounds + 1)
            ]
        finally:
            await sender.close()
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)  # run_slack drains and exits
            process.join(30)
            await stub.close()
    acks = sorted(ms for r in rounds for ms in r["ack_ms"])
    cards = sorted(ms for r in rounds for ms in r["card_ms"])
    statuses: Counter[int] = Counter()
    for r in rounds:
        statuses.update(r["statuses"])
    return {
        "machine": f"{platform.processor() or platform.machine()} | {os.cpu_count()} cores | "
        f"Python {platform.python_implementation()} {platform.python_version()}",
        "startup_s": round(startup_s, 2),
        "rounds": args.rounds,
        "concurrent": args.requests + args.retries,
        "requests": len(acks),
        "http_status": dict(statuses),
        "ack_ms": {
            "p50": round(percentile(acks, 50), 1),
            "p95": round(percentile(acks, 95), 1),
            "p99": round(percentile(acks, 99), 1),
            "max": round(acks[-1], 1),
        },
        "ack_max_per_round_ms": [round(r["round_max_ack_ms"], 1) for r in rounds],
        "card_ms": {
            "p50": round(percentile(cards, 50), 1),
            "p95": round(percentile(cards, 95), 1),
            "max": round(cards[-1], 1) if cards else None,
        },
        "events": sum(r["events"] for r in rounds),
        "retries_sent": sum(r["retries"] for r in rounds),
        "delivered_once": sum(r["delivered_once"] for r in rounds),
        "missing": sum(r["missing"] for r in rounds),
        "duplicates": sum(r["duplicates"] for r in rounds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=50, help="concurrent openers per round")
    parser.add_argument("--retries", type=int, default=10, help="retried duplicates per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    ack, card = result["ack_ms"], result["card_ms"]
    verdict = "OK" if ack["p99"] <= TARGET_P99_MS else "OVER TARGET"
    print("slack ack benchmark (HTTP mode, signed Events API requests, 127.0.0.1)")
    print(f"  machine   {result['machine']}")
    print(f"  start-up  {result['startup_s']} s to /healthz (coach, store, warm-up, auth.test)")
    print(
        f"  load      {result['rounds']} rounds × {result['concurrent']} concurrent "
        f"({result['concurrent'] - args.retries} openers + {args.retries} retries), "
        f"{result['requests']} requests, HTTP {result['http_status']}"
    )
    print(
        f"  ack       p50 {ack['p50']} ms  p95 {ack['p95']} ms  p99 {ack['p99']} ms  max {ack['max']} ms"
        f"  (target p99 ≤ {TARGET_P99_MS:.0f} ms: {verdict})"
    )
    print(f"            max per round: {result['ack_max_per_round_ms']} ms")
    print(f"  card      p50 {card['p50']} ms  p95 {card['p95']} ms  max {card['max']} ms (POST → card)")
    print(
        f"  delivered {result['delivered_once']}/{result['events']} events exactly once, "
        f"{result['missing']} missing, {result['duplicates']} duplicates "
        f"({result['retries_sent']} retries sent)"
    )


if __name__ == "__main__":
    main()
