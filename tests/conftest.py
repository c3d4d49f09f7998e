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
