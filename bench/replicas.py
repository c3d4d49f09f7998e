"""The replica drill: Fournil as a team would deploy it, disturbed on purpose, on loopback.

What runs (all on 127.0.0.1, nothing else reachable: the subprocesses load the tests'
loopback-only network guard):

- a PostgreSQL server of its own (tests/postgres_cluster.py) and a Chroma server
  (`chroma run`), both shared by
- two `fournil slack` processes in HTTP mode and two `fournil telegram` processes in
  webhook mode, each on its own port, talking to the tests' Slack Web API stub and Bot API
  stub (tests/slack/fakes.py, tests/telegram/botapi_stub.py), which record every reply.

What it does, as Slack, Telegram and a load balancer would:

1. managers schedule a drill on each platform (`/fournil drill every monday 9:30`,
   `/drill every monday 9:30`), then its slot is moved to now: the four drill clocks race;
2. conversations (DMs) split across the replicas of their platform; each rep sends an
   opener, a rewrite, a question, another question, a second rewrite, each after the
   previous answer, as a person does. A third of all events are also sent to the *other*
   replica with the same `event_id` / `update_id` while the first delivery is still
   being worked on (a platform retry racing it); a delivery that gets no 200 (refused,
   reset, timed out: Slack gives 3 s; a 503) is sent again, to the other replica first,
   as the platforms do: at once after a failure, after the claim's lease
   (`FOURNIL_CLAIM_LEASE_SECONDS`, shortened here to `LEASE_SECONDS`) after a 503, which
   says another replica claimed the event and has not finished it;
3. in the middle of the burst of rewrites, one Slack and one Telegram replica get
   `kill -9`, and are started again at once: what they were working on got no 200, so it
   is sent again, and taken over once its lease ran out;
4. Chroma is stopped for a few seconds (the questions asked then), then started again;
   each replica is probed until it answers from the index again;
5. PostgreSQL is stopped and started again while the second rewrites are sent.

Then it counts, from what the stub APIs received: events, deliveries, replies per event
(duplicates: more than one; lost: none), conversations lost (a rewrite not compared with
the opener or rewrite before it, across the kill and the restart), the events in flight on
the killed replicas and how long their answers took, scheduled drill posts per platform,
the time each disruption took to recover from, and any traceback or warning in the
replicas' logs.

Run from the repository root (about 2 minutes on a 2-core machine, up to 3 on a busy one;
CI runs it through tests/test_replicas.py):

    .venv/bin/python bench/replicas.py
    .venv/bin/python bench/replicas.py --json figures.json --conversations 24
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import text as sql  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from bot.store.sql import async_url  # noqa: E402
from tests.postgres_cluster import PostgresCluster  # noqa: E402
from tests.slack.fakes import BOT_TOKEN, SECRET, SlackStub, dm_event, event_callback, signature_headers  # noqa: E402
from tests.slack.fakes import slash_command as slack_slash_command  # noqa: E402
from tests.telegram.botapi_stub import TOKEN, BotApiStub  # noqa: E402

NETGUARD = REPO_ROOT / "tests" / "netguard"
OPENERS = REPO_ROOT / "tests" / "data" / "openers.jsonl"
WEBHOOK_SECRET = "replica-drill_secret"
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SLACK_MANAGER, SLACK_DRILL_CHANNEL = "U0MANAGER", "C0DRILL"
TELEGRAM_MANAGER, TELEGRAM_DRILL_CHAT = 9001, -1002001
QUESTIONS = (
    "How do I follow up without nagging?",
    "Why not ask for a meeting straight away?",
    "How should I follow up after a demo without nagging?",
)
# Limits that turn a hang into a failure; none is a figure.
START_LIMIT = 240.0
STEP_LIMIT = 40.0  # a reply may wait for a take-over: a lease and a retry after the kill
RECOVERY_LIMIT = 90.0
PG_DOWN_SECONDS = 1.5
CHROMA_DOWN_SECONDS = 4.0
RETRY_SHARE = 1 / 3
# The claims' lease in the replicas (FOURNIL_CLAIM_LEASE_SECONDS, 30 s by default): short,
# so an event in flight on a killed replica is taken over within the drill's patience.
LEASE_SECONDS = 8.0
# How long the platforms wait for an answer: Slack 3 s; Telegram's is not published, and
# longer than the webhook's bound (half the lease).
ANSWER_TIMEOUT = {"slack": 3.0, "telegram": 10.0}


class DrillFailure(Exception):
    """Something the drill needs did not happen (a server that does not start, a replica
    that does not answer): one line, and the logs are kept."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _clock() -> float:
    return time.monotonic()


# --- what a reply says --------------------------------------------------------------------


def _template(text: str) -> re.Pattern[str]:
    """One of our UI sentences with its `{fields}` as number groups."""
    parts = re.split(r"\{[^}]*\}", text)
    return re.compile(r"(-?\+?\d+)".join(re.escape(part) for part in parts))


class Reading:
    """Tells a reply's kind from its visible text, with the sentences of prompts/ui/en.yaml."""

    def __init__(self) -> None:
        ui = yaml.safe_load((REPO_ROOT / "prompts" / "ui" / "en.yaml").read_text(encoding="utf-8"))
        self.comparison = _template(ui["compare"]["scores"])
        self.card = _template(ui["card"]["score"])
        self.answer = ui["ask"]["intro"]
        self.index_down = ui["ask"]["unavailable"]
        self.not_kept = ui["flow"]["card_not_kept"]
        self.store_down = ui["flow"]["store_unavailable"]

    def kind(self, text: str) -> tuple[str, tuple[int, ...]]:
        flat = " ".join(text.split())
        if self.store_down in flat:
            return "store_unavailable", ()
        if self.not_kept in flat:
            return "card_not_kept", ()
        found = self.comparison.search(flat)
        if found:
            return "comparison", (int(found.group(1)), int(found.group(2)))
        found = self.card.search(flat)
        if found:
            return "card", (int(found.group(1)),)
        if self.index_down in flat:
            return "index_unavailable", ()
        if self.answer in flat:
            return "answer", ()
        return "other", ()


# --- the servers ---------------------------------------------------------------------------


class ChromaServer:
    def __init__(self, root: Path) -> None:
        self.binary = Path(sys.executable).parent / "chroma"
        self.path = root / "chroma"
        self.log = root / "chroma.log"
        self.port = _free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(self.binary), "run", "--path", str(self.path), "--host", "127.0.0.1",
                "--port", str(self.port), stdout=log, stderr=log,
            )  # fmt: skip
        deadline = _clock() + START_LIMIT
        while _clock() < deadline:
            if self.process.returncode is not None:
                raise DrillFailure(f"chroma run exited with {self.process.returncode}; see {self.log}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            await asyncio.sleep(0.1)
        raise DrillFailure("chroma run did not listen in time")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
        self.process = None


@dataclass
class Replica:
    name: str
    channel: str  # "slack" | "telegram"
    port: int
    env: dict[str, str]
    logs: Path
    process: asyncio.subprocess.Process | None = None
    runs: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"{self.url}/slack/events" if self.channel == "slack" else f"{self.url}/telegram"

    @property
    def log_files(self) -> list[Path]:
        return sorted(self.logs.glob(f"{self.name}.*.log"))

    async def start(self) -> None:
        self.runs += 1
        log_path = self.logs / f"{self.name}.{self.runs}.log"
        with log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", self.channel,
                env=self.env, cwd=str(self.logs), stdout=log, stderr=log,
            )  # fmt: skip

    async def healthy(self, session: aiohttp.ClientSession) -> float:
        """Seconds from now until /healthz answers 200."""
        started = _clock()
        while _clock() - started < START_LIMIT:
            assert self.process is not None
            if self.process.returncode is not None:
                tail = self.log_files[-1].read_text(errors="replace")[-3000:]
                raise DrillFailure(f"{self.name} exited with {self.process.returncode}:\n{tail}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with session.get(f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return _clock() - started
            await asyncio.sleep(0.1)
        raise DrillFailure(f"{self.name} did not become healthy in time")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


# --- conversations and events ------------------------------------------------------------


@dataclass
class Seen:
    at: float
    kind: str
    numbers: tuple[int, ...]


@dataclass
class Delivery:
    replica: str
    sent_at: float
    at: float  # when its answer came (or the connection failed)
    status: int | None  # None: no HTTP answer (refused, reset, timed out)
    retry: bool


@dataclass
class Event:
    ident: str
    conversation: Conversation
    step: str
    sent_at: float
    deliveries: list[Delivery] = field(default_factory=list)
    reply: Seen | None = None


@dataclass
class Conversation:
    channel: str
    user: str
    chat: str  # Slack DM channel id, Telegram chat id
    home: int  # the replica its deliveries go to first
    replies: list[Seen] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    probe: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Drill:
    def __init__(self, root: Path, conversations: int, seed: int) -> None:
        self.root = root
        self.count = conversations
        self.rng = random.Random(seed)
        self.reading = Reading()
        self.slack = SlackStub()
        self.telegram = BotApiStub()
        self.replicas: dict[str, list[Replica]] = {"slack": [], "telegram": []}
        self.conversations: list[Conversation] = []
        self.by_chat: dict[tuple[str, str], Conversation] = {}
        self.marks: dict[str, float] = {}
        self.figures: dict[str, Any] = {}
        self.killed: list[Replica] = []
        openers = [json.loads(line) for line in OPENERS.read_text(encoding="utf-8").splitlines() if line]
        self.weak = [o["text"] for o in openers if o["lang"] == "en" and o["quality"] == "weak"]
        self.strong = [o["text"] for o in openers if o["lang"] == "en" and o["quality"] == "strong"]
        self._scanned = {"slack": 0, "telegram": 0}
        self.session: aiohttp.ClientSession | None = None
        self.delivering: set[asyncio.Task[None]] = set()

    # --- infrastructure ------------------------------------------------------------------

    def _env(self, channel: str, port: int, database: str, chroma: str, data: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FOURNIL_", "SLACK_", "TELEGRAM_"))}
        env |= {
            "PYTHONPATH": str(NETGUARD),
            "MPLCONFIGDIR": str(self.root / "matplotlib"),
            "FOURNIL_DATA_DIR": str(data),
            "FOURNIL_DATABASE_URL": database,
            "FOURNIL_CHROMA_URL": chroma,
            "FOURNIL_HOST": "127.0.0.1",
            "FOURNIL_PORT": str(port),
            "FOURNIL_CLOCK_SECONDS": "1",
            "FOURNIL_MANAGERS": f"slack:{SLACK_MANAGER},telegram:{TELEGRAM_MANAGER}",
            "FOURNIL_LANGUAGE": "en",
            "FOURNIL_LOG_LEVEL": "INFO",
            "FOURNIL_CLAIM_LEASE_SECONDS": str(LEASE_SECONDS),
        }
        if channel == "slack":
            env |= {
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_BASE_URL": self.slack.base_url,
            }
        else:
            env |= {
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE_URL": self.telegram.base_url,
                "TELEGRAM_WEBHOOK_URL": "https://fournil.example/telegram",
                "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            }
        return env

    async def _index(self, env: dict[str, str]) -> None:
        """The principle index built once on the Chroma server, before the replicas open it
        (as a deployment's first `fournil kb index`)."""
        with (self.root / "kb-index.log").open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "kb",
                "index",
                env=env,
                cwd=str(self.root),
                stdout=log,
                stderr=log,
            )
            if await process.wait() != 0:
                raise DrillFailure(f"fournil kb index failed; see {self.root / 'kb-index.log'}")

    # --- delivering, as the platforms do -------------------------------------------------

    async def _post(self, replica: Replica, payload: str, retry: bool) -> int | None:
        assert self.session is not None
        if replica.channel == "slack":
            headers = {"Content-Type": "application/json", **signature_headers(SECRET, payload)}
            if retry:
                headers |= {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        else:
            headers = {"Content-Type": "application/json", TELEGRAM_SECRET_HEADER: WEBHOOK_SECRET}
        try:
            async with self.session.post(
                replica.endpoint,
                data=payload.encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=ANSWER_TIMEOUT[replica.channel]),
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None

    async def _deliver(
        self, event: Event, payload: str, duplicate: bool, only: Replica | None = None
    ) -> None:
        conv = event.conversation
        pair = self.replicas[conv.channel]
        first, other = (only, only) if only else (pair[conv.home], pair[1 - conv.home])
        racing: list[asyncio.Task[None]] = []
        if duplicate:  # a platform retry racing the first delivery, to the other replica
            racing.append(asyncio.create_task(self._send_until_200(event, payload, other, first, 0.3)))
        await self._send_until_200(event, payload, first, other, 0.0, retry=False)
        await asyncio.gather(*racing)

    async def _send_until_200(
        self, event: Event, payload: str, target: Replica, other: Replica, within: float, retry: bool = True
    ) -> None:
        """Sent to `target` (after up to `within` s), then again until it gets a 200, as a
        platform does (the balancer picks the other replica first): at once after a
        failure, after a lease after a 503 (another replica has the claim)."""
        if within:
            await asyncio.sleep(self.rng.uniform(0.0, within))
        for attempt in range(20):
            again, sent_at = retry or attempt > 0, _clock()
            status = await self._post(target, payload, retry=again)
            event.deliveries.append(Delivery(target.name, sent_at, _clock(), status, retry=again))
            if status == 200:
                return
            await asyncio.sleep(LEASE_SECONDS + 1.0 if status == 503 else 0.2)
            target, other = other, target

    def _payload(self, conv: Conversation, text: str) -> tuple[str, str]:
        if conv.channel == "slack":
            body = event_callback(dm_event(text, user=conv.user, channel=conv.chat))
            return str(body["event_id"]), json.dumps(body)
        update = self.telegram.private(int(conv.chat), text)
        return str(update["update_id"]), json.dumps(update)

    async def say(self, conv: Conversation, step: str, text: str, only: Replica | None = None) -> Event:
        """One message of a rep, delivered (and maybe retried), then its answer awaited."""
        ident, payload = self._payload(conv, text)
        event = Event(ident, conv, step, _clock())
        conv.events.append(event)
        expected = len(conv.replies) + 1
        duplicate = only is None and self.rng.random() < RETRY_SHARE
        delivering = asyncio.create_task(self._deliver(event, payload, duplicate, only))
        # The rep's next message waits for this answer, not for the platform's retries.
        self.delivering.add(delivering)
        delivering.add_done_callback(self.delivering.discard)
        try:
            async with asyncio.timeout(STEP_LIMIT):
                while True:
                    conv.changed.clear()
                    if len(conv.replies) >= expected:
                        break
                    await conv.changed.wait()
            event.reply = conv.replies[expected - 1]
        except TimeoutError:
            pass
        return event

    # --- reading what the stubs received -------------------------------------------------

    async def _scan_forever(self) -> None:
        while True:
            self._scan()
            await asyncio.sleep(0.02)

    def _scan(self) -> None:
        calls = self.slack.calls
        while self._scanned["slack"] < len(calls):
            call = calls[self._scanned["slack"]]
            self._scanned["slack"] += 1
            if call.method == "chat.postMessage":
                self._seen(
                    "slack", str(call.params.get("channel")), str(call.params.get("text", "")), call.at
                )
        tcalls = self.telegram.calls
        while self._scanned["telegram"] < len(tcalls) and tcalls[self._scanned["telegram"]].done:
            tcall = tcalls[self._scanned["telegram"]]
            self._scanned["telegram"] += 1
            if tcall.method == "sendMessage" and tcall.error is None:
                self._seen("telegram", str(tcall.chat_id), tcall.shown, _clock())

    def _seen(self, channel: str, chat: str, text: str, at: float) -> None:
        conv = self.by_chat.get((channel, chat))
        if conv is None:
            return
        kind, numbers = self.reading.kind(text)
        conv.replies.append(Seen(at, kind, numbers))
        conv.changed.set()

    def _conversation(self, channel: str, n: int, home: int, probe: bool = False) -> Conversation:
        if channel == "slack":
            user = f"U{'P' if probe else 'R'}{n:07d}"
            conv = Conversation(channel, user, "D" + user[1:], home, probe=probe)
        else:
            user = str((800_000 if probe else 700_000) + n)
            conv = Conversation(channel, user, user, home, probe=probe)
        self.by_chat[(channel, conv.chat)] = conv
        if not probe:
            self.conversations.append(conv)
        return conv

    # --- the drill -----------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        began = _clock()
        await self.slack.start()
        await self.telegram.start()
        scanner = asyncio.create_task(self._scan_forever())
        cluster: PostgresCluster | None = None
        chroma = ChromaServer(self.root)
        self.session = aiohttp.ClientSession()
        try:
            cluster = PostgresCluster()
            data = self.root / "data"

            async def postgres() -> str:
                assert cluster is not None
                await asyncio.to_thread(cluster.init)
                return await asyncio.to_thread(cluster.create_database, "fournil")

            async def build_index() -> None:  # needs no database: `kb index` only reads the files
                await chroma.start()
                await self._index(self._env("slack", 0, "", chroma.url, data))

            database, _ = await asyncio.gather(postgres(), build_index())
            for channel in ("slack", "telegram"):
                for index in range(2):
                    port = _free_port()
                    env = self._env(channel, port, database, chroma.url, data)
                    self.replicas[channel].append(
                        Replica(f"{channel}-{index}", channel, port, env, self.root)
                    )
            everyone = [r for pair in self.replicas.values() for r in pair]
            for replica in everyone:
                await replica.start()
            await asyncio.gather(*(r.healthy(self.session) for r in everyone))
            self.marks["ready"] = _clock()
            self.figures["start_up_s"] = round(self.marks["ready"] - began, 1)

            drill_posts = await self._schedule_drills(database)
            await self._conversations_phase()
            await self._chroma_and_postgres(chroma, cluster)
            async with asyncio.timeout(STEP_LIMIT):  # the platforms' last retries
                await asyncio.gather(*self.delivering)
            await asyncio.sleep(2.0)  # anything late (a duplicate) arrives now
            self._scan()
            self._count(drill_posts)
            self.figures["total_s"] = round(_clock() - began, 1)
            self.figures["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
            return self.figures
        finally:
            scanner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scanner
            for replica in [r for pair in self.replicas.values() for r in pair]:
                await replica.stop()
            await chroma.stop()
            if cluster is not None:
                await asyncio.to_thread(cluster.destroy)
            await self.session.close()
            await self.slack.close()
            await self.telegram.close()
            self._logs()

    async def _schedule_drills(self, database: str) -> Callable[[], dict[str, int]]:
        """A manager on each platform schedules a weekly drill; its slot is then moved to
        now, so the four drill clocks (two per platform) race to post it."""
        assert self.session is not None
        slack = self.replicas["slack"][0]
        form = slack_slash_command(
            "drill every monday 9:30",
            self.slack.response_url("schedule"),
            user=SLACK_MANAGER,
            channel=SLACK_DRILL_CHANNEL,
        )
        raw = urlencode(form)
        headers = {"Content-Type": "application/x-www-form-urlencoded", **signature_headers(SECRET, raw)}
        async with self.session.post(slack.endpoint, data=raw.encode(), headers=headers) as response:
            if response.status != 200:
                raise DrillFailure(f"the Slack schedule command got HTTP {response.status}")
        mark = self.telegram.mark()
        update = self.telegram.message(TELEGRAM_DRILL_CHAT, TELEGRAM_MANAGER, "/drill every monday 9:30")
        if await self._post(self.replicas["telegram"][1], json.dumps(update), retry=False) != 200:
            raise DrillFailure("the Telegram schedule command was not accepted")
        try:
            await self.slack.wait_for("response_url", within=STEP_LIMIT)
            chat = TELEGRAM_DRILL_CHAT
            await self.telegram.wait_for("sendMessage", after=mark, chat_id=chat, limit=STEP_LIMIT)
        except (AssertionError, TimeoutError) as exc:
            raise DrillFailure("a manager's drill schedule got no answer") from exc
        after = self.telegram.mark()
        engine = create_async_engine(async_url(database))
        try:
            async with engine.begin() as conn:
                moved = await conn.execute(
                    sql("UPDATE drill_schedules SET next_run_at = :now"), {"now": datetime.now(UTC)}
                )
        finally:
            await engine.dispose()
        if moved.rowcount != 2:
            raise DrillFailure(f"expected two drill schedules, found {moved.rowcount}")
        self.marks["drill_due"] = _clock()

        def posts() -> dict[str, int]:
            slack_posts = [
                c for c in self.slack.of("chat.postMessage") if c.params.get("channel") == SLACK_DRILL_CHANNEL
            ]
            telegram_posts = self.telegram.of("sendMessage", after=after, chat_id=TELEGRAM_DRILL_CHAT)
            return {"slack": len(slack_posts), "telegram": len(telegram_posts)}

        for _ in range(int(STEP_LIMIT / 0.1)):
            if min(posts().values()) >= 1:
                break
            await asyncio.sleep(0.1)
        return posts

    async def _conversations_phase(self) -> None:
        """Openers, then the burst of rewrites and questions with the kill in the middle."""
        for channel in ("slack", "telegram"):
            for n in range(self.count):
                self._conversation(channel, n, home=n % 2)
        convs = self.conversations
        await asyncio.gather(
            *(self.say(c, "opener", self.weak[i % len(self.weak)]) for i, c in enumerate(convs))
        )

        rewrites_answered = Counter[str]()
        target = max(1, int(0.4 * len(convs)))
        kill_now = asyncio.Event()

        async def burst(conv: Conversation, i: int) -> None:
            event = await self.say(conv, "rewrite", self.strong[i % len(self.strong)])
            if event.reply is not None:
                rewrites_answered["all"] += 1
                if rewrites_answered["all"] >= target:
                    kill_now.set()
            await self.say(conv, "question", QUESTIONS[i % len(QUESTIONS)])

        async def kill_and_restart() -> None:
            await kill_now.wait()
            # The mark is reached as a reply arrives: killing right then would always catch
            # the replica that sent it between its reply and its claim marked done (the
            # one moment where at-least-once answers twice). A crash picks no such moment.
            await asyncio.sleep(self.rng.uniform(0.1, 0.6))
            victims = [self.replicas["slack"][0], self.replicas["telegram"][0]]
            self.marks["kill"] = _clock()
            for victim in victims:
                victim.kill()
            self.killed = victims
            for victim in victims:
                assert victim.process is not None
                await victim.process.wait()
            restarted = _clock()
            for victim in victims:
                await victim.start()
            assert self.session is not None
            healthy = await asyncio.gather(*(v.healthy(self.session) for v in victims))
            self.figures["kill"] = {
                "replicas": [v.name for v in victims],
                "back_healthy_s": {
                    v.name: round(s + (restarted - self.marks["kill"]), 1)
                    for v, s in zip(victims, healthy, strict=True)
                },
            }
            # The restarted replicas answer again (a probe each, sent to them only).
            firsts: dict[str, float] = {}
            for victim in victims:
                probe = self._conversation(victim.channel, 90 + len(firsts), home=0, probe=True)
                answered = await self.say(probe, "probe", QUESTIONS[0], only=victim)
                if answered.reply is None:
                    raise DrillFailure(f"{victim.name} does not answer after its restart")
                firsts[victim.name] = round(answered.reply.at - self.marks["kill"], 1)
            self.figures["kill"]["back_answering_s"] = firsts

        killer = asyncio.create_task(kill_and_restart())
        await asyncio.gather(*(burst(c, i) for i, c in enumerate(convs)))
        if not kill_now.is_set():
            kill_now.set()  # too few answers to reach the mark: kill now rather than never
        await killer

    async def _chroma_and_postgres(self, chroma: ChromaServer, cluster: PostgresCluster) -> None:
        convs = self.conversations
        await chroma.stop()
        self.marks["chroma_down"] = _clock()
        asks = await asyncio.gather(*(self.say(c, "question_no_index", QUESTIONS[1]) for c in convs))
        rest = CHROMA_DOWN_SECONDS - (_clock() - self.marks["chroma_down"])
        if rest > 0:
            await asyncio.sleep(rest)
        await chroma.start()
        self.marks["chroma_up"] = _clock()
        recovered: dict[str, float] = {}
        replicas = [r for pair in self.replicas.values() for r in pair]

        async def probe(replica: Replica, n: int) -> None:
            conv = self._conversation(replica.channel, 100 + n, home=0, probe=True)
            deadline = self.marks["chroma_up"] + RECOVERY_LIMIT
            while _clock() < deadline:
                event = await self.say(conv, "index_probe", QUESTIONS[2], only=replica)
                if event.reply is not None and event.reply.kind == "answer":
                    recovered[replica.name] = round(event.reply.at - self.marks["chroma_up"], 1)
                    return
                await asyncio.sleep(1.0)
            raise DrillFailure(f"{replica.name} did not answer from the index again")

        probes = asyncio.gather(*(probe(r, n) for n, r in enumerate(replicas)))

        # PostgreSQL restarted while the second rewrites are sent.
        await asyncio.to_thread(cluster.stop)
        self.marks["pg_down"] = _clock()

        async def second_rewrite(conv: Conversation, i: int) -> Event:
            return await self.say(conv, "rewrite_2", self.strong[(i + 7) % len(self.strong)])

        rewrites = asyncio.gather(*(second_rewrite(c, i) for i, c in enumerate(convs)))
        await asyncio.sleep(PG_DOWN_SECONDS)
        await asyncio.to_thread(cluster.start)
        self.marks["pg_up"] = _clock()
        during = await rewrites
        await probes
        answered = [e.reply.at for e in during if e.reply is not None]
        self.figures["chroma"] = {
            "down_s": round(self.marks["chroma_up"] - self.marks["chroma_down"], 1),
            "questions_while_down": dict(Counter(e.reply.kind if e.reply else "lost" for e in asks)),
            "answers_from_index_again_after_s": recovered,
        }
        self.figures["postgres"] = {
            "down_s": round(self.marks["pg_up"] - self.marks["pg_down"], 1),
            "events_while_down": len(during),
            "replies": dict(Counter(e.reply.kind if e.reply else "lost" for e in during)),
            "all_answered_after_restart_s": round(max(answered) - self.marks["pg_up"], 1)
            if answered
            else None,
        }

    # --- figures -------------------------------------------------------------------------

    def _count(self, drill_posts: Callable[[], dict[str, int]]) -> None:
        everyone = self.conversations + [c for c in self.by_chat.values() if c.probe]
        events = [e for c in everyone for e in c.events]
        answered = [e for e in events if e.reply is not None]
        duplicates = sum(
            max(0, len(c.replies) - sum(e.reply is not None for e in c.events)) for c in everyone
        )
        kill_at = self.marks.get("kill", float("inf"))
        victims = {v.name for v in self.killed}
        lost = [e for e in events if e.reply is None]
        # Cut by the kill: a delivery the killed replicas had taken and not answered (their
        # work on it, claim included, died with them), sent again by the platform.
        cut = [
            e
            for e in events
            if any(
                d.replica in victims and d.status is None and d.sent_at < kill_at <= d.at
                for d in e.deliveries
            )
        ]
        cut_answered = [e.reply.at - kill_at for e in cut if e.reply is not None]
        # … of which the killed replica had already replied to: if it died before marking
        # the event done (the time of one database write), the retry answers it again. The
        # one duplicate at-least-once cannot rule out: counted apart.
        in_doubt = {id(e) for e in cut if e.reply is not None and e.reply.at < kill_at}

        def extra(c: Conversation) -> int:
            return max(0, len(c.replies) - sum(e.reply is not None for e in c.events))

        doubtful = sum(extra(c) for c in everyone if any(id(e) in in_doubt for e in c.events))
        busy = sum(1 for e in events for d in e.deliveries if d.status == 503)
        # A conversation is lost when a rewrite answered after the kill or the restart is not
        # compared with the version before it (the opener, or the first rewrite).
        lost_conversations = 0
        checked = 0
        for conv in self.conversations:
            by_step = {e.step: e for e in conv.events}
            pairs = [("opener", "rewrite"), ("rewrite", "rewrite_2")]
            for before, after in pairs:
                first, second = by_step.get(before), by_step.get(after)
                if first is None or second is None or first.reply is None or second.reply is None:
                    continue
                shown = first.reply.numbers[-1:] if first.reply.numbers else ()
                checked += 1
                if second.reply.kind != "comparison" or second.reply.numbers[:1] != shown:
                    lost_conversations += 1
        zero = self.marks.get("kill", self.marks["ready"])

        def story(e: Event) -> dict[str, Any]:
            return {
                "event": e.ident,
                "channel": e.conversation.channel,
                "step": e.step,
                "sent_s_after_kill": round(e.sent_at - zero, 2),
                "deliveries": [
                    f"{d.replica}:{d.status}@{d.sent_at - zero:+.2f}s..{d.at - zero:+.2f}s"
                    f"{' retry' if d.retry else ''}"
                    for d in e.deliveries
                ],
                "reply": f"{e.reply.kind}@{e.reply.at - zero:+.2f}s" if e.reply else None,
            }

        self.figures["lost_events"] = [story(e) for e in lost]
        self.figures["duplicated_conversations"] = [
            {
                "chat": c.chat,
                "replies": [f"{r.kind}{list(r.numbers)}@{r.at - zero:+.2f}s" for r in c.replies],
                "events": [story(e) for e in c.events],
            }
            for c in everyone
            if len(c.replies) > sum(e.reply is not None for e in c.events)
        ]
        retried = sum(1 for e in events for d in e.deliveries if d.retry)
        redirected = sum(1 for e in events if e.deliveries and e.deliveries[0].status != 200)
        self.figures |= {
            "conversations": len(self.conversations),
            "events": len(events),
            "events_by_channel": dict(Counter(e.conversation.channel for e in events)),
            "deliveries": sum(len(e.deliveries) for e in events),
            "retries_sent": retried,
            "redirected_after_a_failed_delivery": redirected,
            "answered_503_claimed_elsewhere": busy,
            "answered": len(answered),
            "duplicates": duplicates,
            "lost": len(lost),
            "cut_by_kill": len(cut),
            "cut_by_kill_answered": len(cut_answered),
            "cut_by_kill_answered_within_s": round(max(cut_answered), 1) if cut_answered else None,
            "cut_by_kill_after_their_reply": len(in_doubt),
            "duplicates_after_a_reply_cut_by_kill": doubtful,
            "duplicates_otherwise": duplicates - doubtful,
            "rewrites_checked": checked,
            "conversations_lost": lost_conversations,
            "replies_by_kind": dict(Counter(e.reply.kind for e in answered if e.reply is not None)),
            "scheduled_drill_posts": drill_posts(),
        }

    def _logs(self) -> None:
        tracebacks: dict[str, int] = {}
        warnings: dict[str, list[str]] = {}
        for log in sorted(self.root.glob("*-*.*.log")):
            text = log.read_text(errors="replace")
            tracebacks[log.name] = text.count("Traceback (most recent call last)")
            found = [line[:240] for line in text.splitlines() if " WARNING " in line or " ERROR " in line]
            if found:
                warnings[log.name] = found
        self.figures["tracebacks"] = sum(tracebacks.values())
        self.figures["warnings"] = warnings


def report(figures: dict[str, Any]) -> str:
    f = figures
    kill, chroma, pg = f.get("kill", {}), f.get("chroma", {}), f.get("postgres", {})
    back = ", ".join(f"{name} {s} s" for name, s in kill.get("back_answering_s", {}).items())
    recovered = chroma.get("answers_from_index_again_after_s", {})
    slowest = max(recovered.values()) if recovered else None
    warnings = sum(len(lines) for lines in f["warnings"].values())
    lines = [
        "replica drill: 2 `fournil slack` (HTTP) + 2 `fournil telegram` (webhook), PostgreSQL, Chroma; "
        f"{f.get('machine')}",
        f"start-up (PostgreSQL, Chroma, index, 4 replicas): {f.get('start_up_s')} s; "
        f"total {f.get('total_s')} s",
        f"events: {f['events']} {f['events_by_channel']}, {f['conversations']} conversations; "
        f"{f['deliveries']} deliveries, of which {f['retries_sent']} retries "
        f"({f['redirected_after_a_failed_delivery']} events after a failed first delivery, "
        f"{f['answered_503_claimed_elsewhere']} deliveries answered 503: claimed by the other replica)",
        f"answered: {f['answered']}; duplicates: {f['duplicates']}; lost: {f['lost']}",
        f"in flight on the killed replicas: {f['cut_by_kill']} events, {f['cut_by_kill_answered']} "
        f"answered after a retry, the last {f['cut_by_kill_answered_within_s']} s after the kill "
        f"(lease {LEASE_SECONDS:g} s); {f['cut_by_kill_after_their_reply']} of them replied to just "
        f"before the kill, of which {f['duplicates_after_a_reply_cut_by_kill']} answered again (killed "
        "between the reply and its done mark); duplicates otherwise: "
        f"{f['duplicates_otherwise']}",
        f"conversations lost: {f['conversations_lost']} ({f['rewrites_checked']} rewrites compared with the "
        "version before, across the kill and the PostgreSQL restart)",
        f"scheduled drill posts: {f['scheduled_drill_posts']}",
        f"kill -9 of {', '.join(kill.get('replicas', []))}: healthy again after "
        f"{kill.get('back_healthy_s')} s, answering after {back}",
        f"Chroma down {chroma.get('down_s')} s: questions then {chroma.get('questions_while_down')}; "
        f"answers from the index again {slowest} s after it was back (slowest replica; retried every 30 s)",
        f"PostgreSQL restarted (down {pg.get('down_s')} s): {pg.get('events_while_down')} rewrites sent "
        f"then, replies {pg.get('replies')}, the last answered "
        f"{pg.get('all_answered_after_restart_s')} s after it was back",
        f"tracebacks in the replicas' logs: {f['tracebacks']}; warning and error lines: {warnings}",
    ]
    return "\n".join(lines)


async def amain(args: argparse.Namespace) -> int:
    missing = PostgresCluster.missing()
    if missing:
        print(f"replica drill skipped: {missing}", file=sys.stderr)
        return 3
    if not (Path(sys.executable).parent / "chroma").exists():
        print("replica drill skipped: the chroma CLI is not installed next to this Python", file=sys.stderr)
        return 3
    root = Path(tempfile.mkdtemp(prefix="fournil-replicas-"))
    try:
        figures = await Drill(root, args.conversations, args.seed).run()
    except DrillFailure as failure:
        print(f"replica drill failed: {failure}\nlogs kept in {root}", file=sys.stderr)
        return 1
    if args.keep:
        print(f"logs kept in {root}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return figures_out(figures, args.json)


def figures_out(figures: dict[str, Any], path: str | None) -> int:
    print(report(figures))
    if path:
        Path(path).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--conversations", type=int, default=16, help="conversations per platform (default 16)"
    )
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (replica logs)")
    return asyncio.run(amain(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
