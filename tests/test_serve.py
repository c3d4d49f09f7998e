"""`fournil serve` as an operator runs it: a process answering /healthz and /metrics on
loopback, stopped by SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


@pytest.fixture
def served(cli_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    port = _free_port()
    env = {
        **cli_env,
        "FOURNIL_HOST": "127.0.0.1",
        "FOURNIL_PORT": str(port),
        "FOURNIL_DATA_DIR": str(tmp_path),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"fournil serve exited: {process.stderr.read() if process.stderr else ''}")
        try:
            _get(f"http://127.0.0.1:{port}/healthz")
            break
        except OSError:
            time.sleep(0.2)
    process.port = port  # type: ignore[attr-defined]
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_health_and_metrics_then_a_clean_stop(served: subprocess.Popen[str]) -> None:
    port = served.port  # type: ignore[attr-defined]
    status, body = _get(f"http://127.0.0.1:{port}/healthz")
    assert status == 200 and '"status": "ok"' in body
    status, metrics = _get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    assert "fournil_cards_24h 0.0" in metrics
    principles = re.search(r"^fournil_principles (\d+)\.0$", metrics, re.MULTILINE)
    drills = re.search(r"^fournil_drills (\d+)\.0$", metrics, re.MULTILINE)
    shipped = {path.name.split(".")[0] for path in (ROOT / "knowledge" / "principles").glob("*.md")}
    assert principles is not None and int(principles.group(1)) == len(shipped)
    assert drills is not None and int(drills.group(1)) >= 15
    assert "process_resident_memory_bytes" in metrics
    served.send_signal(signal.SIGTERM)
    assert served.wait(timeout=20) == 0
    assert "Traceback" not in (served.stderr.read() if served.stderr else "")
