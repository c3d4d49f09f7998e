"""Shared fixtures: real objects only (the real knowledge base, a real SQLite file).

Every test runs with outbound network blocked except loopback (see netguard/), in this
process and in the `fournil` subprocesses the CLI tests start.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NETGUARD = Path(__file__).resolve().parent / "netguard"
sys.path.insert(0, str(NETGUARD))
import sitecustomize  # type: ignore[import-not-found]  # noqa: E402,F401  (installs the loopback-only guard in this process)

from bot.app import build_coach  # noqa: E402
from bot.core.coach import Coach  # noqa: E402
from bot.core.flow import CoachingFlow  # noqa: E402
from bot.settings import Settings, load_settings  # noqa: E402
from bot.store.sql import SqlStore  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def private_matplotlib_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """matplotlib's font cache for this session, in pytest's own temp dir (inherited by the
    `fournil` subprocesses): the tests write nothing to the home or the system temp dir."""
    previous = os.environ.get("MPLCONFIGDIR")
    os.environ["MPLCONFIGDIR"] = str(tmp_path_factory.mktemp("matplotlib"))
    yield
    if previous is None:
        os.environ.pop("MPLCONFIGDIR", None)
    else:
        os.environ["MPLCONFIGDIR"] = previous


@pytest.fixture(autouse=True)
def environment_left_as_found() -> Iterator[None]:
    """A test that changes Fournil's settings or matplotlib's directory in the environment
    must put them back (monkeypatch does): a variable left behind changes every later test
    and subprocess (an MPLCONFIGDIR left pointing at the system temp dir once filled it
    with a font cache)."""
    before = _watched_environment()
    yield
    after = _watched_environment()
    changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    assert not changed, f"environment variables left changed by this test: {changed}"


def _watched_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if key == "MPLCONFIGDIR" or key.startswith(("FOURNIL_", "SLACK_", "TELEGRAM_"))
    }


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(data_dir=Path("unused-data-dir"))


@pytest.fixture(scope="session")
def coach(settings: Settings) -> Coach:
    return build_coach(settings)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'fournil.db'}"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SqlStore]:
    opened = await SqlStore.open(db_url)
    yield opened
    await opened.close()


@pytest.fixture
def flow(coach: Coach, store: SqlStore) -> CoachingFlow:
    return CoachingFlow(coach, store)


@pytest.fixture(scope="session")
def cli_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir for the CLI tests, so the principle index is built once, not per test."""
    return tmp_path_factory.mktemp("cli-data")


@pytest.fixture
def cli_env(cli_data_dir: Path) -> Iterator[dict[str, str]]:
    """Environment for `fournil` subprocesses: data dir, network guard, no .env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FOURNIL_", "TELEGRAM_", "SLACK_"))}
    env["FOURNIL_DATA_DIR"] = str(cli_data_dir)
    env["PYTHONPATH"] = str(NETGUARD)
    env["COLUMNS"] = "100"
    yield env
