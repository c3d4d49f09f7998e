"""The knowledge index on a Chroma server that goes away and comes back.

While Chroma is down, cards are made without related principles, questions get the
"not available right now" answer, the outage is logged once, and nothing waits on the
server; after the back-off, the next request opens the index again. A real `chroma run`
server on 127.0.0.1 is stopped and started again mid-test; the back-off runs on a clock
the test moves, so nothing sleeps 30 s.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import LazySearch, ResilientFlow, load_principles
from bot.core.coach import Coach
from bot.core.errors import IndexUnavailable
from bot.core.models import ReplyKind
from bot.knowledge.index import chroma_client
from bot.settings import Settings, load_settings
from bot.store.memory import MemoryStore

OPENER = "Hi Sarah, we are a leading provider of analytics. Would you be open to a 15-minute call?"
QUESTION = "Comment relancer sans harceler ?"
RETRY = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChromaServer:
    """`chroma run` on 127.0.0.1, stopped and started again on the same port and data."""

    def __init__(self, path: Path) -> None:
        self.binary = Path(sys.executable).parent / "chroma"
        self.path = path
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [str(self.binary), *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.skip(f"chroma run exited with {self.process.returncode} (port {self.port})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        pytest.skip("chroma run did not start listening within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[ChromaServer]:
    server = ChromaServer(tmp_path / "server")
    if not server.binary.exists():
        pytest.skip("the chroma CLI is not installed next to this Python")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _with_search(coach: Coach, settings: Settings, clock: Clock) -> tuple[Coach, LazySearch]:
    search = LazySearch(settings, load_principles(settings), None, retry_after=RETRY, clock=clock)
    return replace(coach, search=search), search


def _outage_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.app" and r.levelno == logging.WARNING]


def test_server_stopped_and_started_again(
    chroma: ChromaServer, coach: Coach, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.app")
    settings = load_settings(data_dir=tmp_path / "data", chroma_url=chroma.url)
    clock = Clock()
    indexed, search = _with_search(coach, settings, clock)
    flow = ResilientFlow(indexed, MemoryStore())
    plain = coach.coach(OPENER)  # the coach without any index

    up = indexed.coach(OPENER)
    assert up.related and up.findings == plain.findings and up.score == plain.score
    reply, answer = flow.ask(QUESTION)
    assert reply.kind == ReplyKind.ANSWER and answer is not None and answer.principles

    chroma.stop()
    for _ in range(3):
        down = indexed.coach(OPENER)
        # The card itself needs no index; its related principles come from the documents'
        # embeddings read at the first card, or are left out once the index is dropped.
        assert down.findings == plain.findings and down.score == plain.score
        assert down.related in ([], up.related)
        reply, answer = flow.ask(QUESTION)
        assert (reply.kind, reply.text, answer) == (
            ReplyKind.NOTICE,
            indexed.strings("fr").text("ask", "unavailable"),
            None,
        )
        with pytest.raises(IndexUnavailable) as raised:
            search.search(QUESTION, "fr")
        assert chroma.url in str(raised.value) and str(raised.value).endswith("check FOURNIL_CHROMA_URL")
    warnings = _outage_warnings(caplog)
    assert len(warnings) == 1 and chroma.url in warnings[0], warnings

    chroma.start()
    assert indexed.coach(OPENER).related == []  # still backing off: no request waits on a retry
    clock.advance(RETRY + 1)
    back = indexed.coach(OPENER)
    assert back.related == up.related and search.outage is None
    reply, answer = flow.ask(QUESTION)
    assert reply.kind == ReplyKind.ANSWER and answer is not None and answer.principles
    assert "knowledge index available again" in caplog.text
    assert len(_outage_warnings(caplog)) == 1


class HangUpServer:
    """Accepts connections on 127.0.0.1 and closes them at once, counting them: a server
    that is there but not serving, and a way to see when the index is tried again."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def hang_up() -> Iterator[HangUpServer]:
    server = HangUpServer()
    yield server
    server.close()


def test_backs_off_then_tries_again(
    hang_up: HangUpServer, coach: Coach, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(data_dir=tmp_path / "data", chroma_url=hang_up.url)
    clock = Clock()
    indexed, search = _with_search(coach, settings, clock)
    assert indexed.coach(OPENER).related == []
    tried = hang_up.connections
    assert tried >= 1 and search.outage is not None
    for _ in range(5):
        assert indexed.coach(OPENER).related == []
        with pytest.raises(IndexUnavailable):
            search.search(QUESTION, "fr")
    assert hang_up.connections == tried  # within the back-off nothing reaches the server
    clock.advance(RETRY + 1)
    assert indexed.coach(OPENER).related == []
    assert hang_up.connections > tried  # tried again, once the back-off is over
    assert len(_outage_warnings(caplog)) == 1


def test_unreachable_port(coach: Coach, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    settings = load_settings(data_dir=tmp_path / "data", chroma_url=url)
    with pytest.raises(IndexUnavailable) as raised:
        chroma_client(settings)
    assert str(raised.value) == (
        f"the knowledge index is unavailable right now: the Chroma server at {url} cannot be "
        "reached (connection refused); check FOURNIL_CHROMA_URL"
    )
    indexed, _ = _with_search(coach, settings, Clock())
    assert indexed.coach(OPENER) == coach.coach(OPENER)
    reply, _ = ResilientFlow(indexed, MemoryStore()).ask("How do I follow up without nagging?")
    assert reply.text == indexed.strings("en").text("ask", "unavailable")
    assert len(_outage_warnings(caplog)) == 1
