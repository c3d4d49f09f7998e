"""What an operator sees when something outside Fournil fails: the knowledge index's Chroma
server unreachable, a data dir that cannot be written, a damaged SQLite file, a database
server down. Cards go on without the index; everything else fails with one line that says
what is wrong and which setting or path to check, exit code 1, never a traceback.

Real `fournil` subprocesses, network blocked except loopback; "unreachable" is a closed
port on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.test_cli import FOURNIL, run

ROOT = Path(__file__).resolve().parent.parent
OPENERS = [
    "Hi Sarah, we are a leading provider of analytics. Would you be open to a 15-minute call?",
    "Bonjour Marie, seriez-vous disponible jeudi pour une démo de notre plateforme ?",
    "Hi Tom, how is your team handling the picking backlog since the Lyon site opened?",
]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ui(lang: str, section: str, key: str) -> str:
    data = yaml.safe_load((ROOT / "prompts" / "ui" / f"{lang}.yaml").read_text(encoding="utf-8"))
    return str(data[section][key])


def _one_line(err: str) -> str:
    """The whole of stderr, which must be a single line."""
    assert "Traceback" not in err and "internal error" not in err, err
    assert err.count("\n") == 1, err
    return err.strip()


def _warnings(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if " WARNING " in line]


@pytest.fixture
def no_chroma(cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """FOURNIL_CHROMA_URL at a port where nothing listens, in a fresh data dir."""
    return dict(
        cli_env,
        FOURNIL_DATA_DIR=str(tmp_path / "data"),
        FOURNIL_CHROMA_URL=f"http://127.0.0.1:{_closed_port()}",
    )


# --- the knowledge index is down --------------------------------------------------------


def test_coach_without_chroma_gives_cards_and_warns_once(no_chroma: dict[str, str], tmp_path: Path) -> None:
    batch = tmp_path / "openers.txt"
    batch.write_text("\n".join(OPENERS), encoding="utf-8")
    result = run(["coach", "--batch", str(batch), "--json"], no_chroma)
    assert result.returncode == 0, result.stderr
    cards = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(cards) == 3 and all("score" in card for card in cards)
    assert {f["category"] for f in cards[0]["findings"]} >= {"meeting_ask"}  # rules still run
    # The very cards a coach without the index makes: no related principles, nothing else lost.
    without_index = run(["--no-search", "coach", "--batch", str(batch), "--json"], no_chroma)
    assert cards == [json.loads(line) for line in without_index.stdout.decode().splitlines()]
    warnings = _warnings(result.stderr.decode())
    assert len(warnings) == 1, warnings  # once, not per card
    assert no_chroma["FOURNIL_CHROMA_URL"] in warnings[0] and "FOURNIL_CHROMA_URL" in warnings[0]


def test_ask_without_chroma_is_one_line_exit_1(no_chroma: dict[str, str]) -> None:
    result = run(["ask", "how do I follow up without nagging?"], no_chroma)
    assert result.returncode == 1
    line = _one_line(result.stderr.decode())
    assert line.startswith("the knowledge index is unavailable right now")
    assert no_chroma["FOURNIL_CHROMA_URL"] in line
    assert line.endswith("check FOURNIL_CHROMA_URL (FOURNIL_CHROMA_URL is set in the environment)")
    assert result.stdout == b""


def test_chat_without_chroma_coaches_and_declines_questions(no_chroma: dict[str, str]) -> None:
    talk = f"{OPENERS[0]}\n\n/ask how do I follow up without nagging?\n\n/new\n\n{OPENERS[2]}\n\n"
    result = run(["chat", "--user", "ann"], no_chroma, stdin=talk.encode())
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.decode().split())
    assert out.count("/100") == 2  # both openers coached
    assert " ".join(_ui("en", "ask", "unavailable").split()) in out
    assert len(_warnings(result.stderr.decode())) == 1


# --- the store: data dir and database ----------------------------------------------------


@pytest.fixture
def damaged_db(cli_env: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], Path]:
    data = tmp_path / "data"
    data.mkdir()
    database = data / "fournil.db"
    database.write_bytes(b"this is not a database\n" + bytes(range(256)) * 16)
    return dict(cli_env, FOURNIL_DATA_DIR=str(data)), database


@pytest.mark.parametrize("command", [["report"], ["chat"], ["forget", "ann"]])
def test_damaged_sqlite_file_names_the_file_and_the_setting(
    damaged_db: tuple[dict[str, str], Path], command: list[str]
) -> None:
    env, database = damaged_db
    result = run(["--no-search", *command], env, stdin=f"{OPENERS[0]}\n\n".encode())
    assert result.returncode == 1
    line = _one_line(result.stderr.decode())
    assert str(database) in line and "not a database" in line and "FOURNIL_DATA_DIR" in line


def test_data_dir_that_cannot_be_created(cli_env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    env = dict(cli_env, FOURNIL_DATA_DIR=str(blocker / "data"))
    for command in (["report"], ["chat"]):
        result = run(["--no-search", *command], env, stdin=b"")
        assert result.returncode == 1
        line = _one_line(result.stderr.decode())
        assert f"the data directory {blocker / 'data'} cannot be created" in line
        assert "FOURNIL_DATA_DIR" in line


def _without_write_rights() -> list[str]:
    """A prefix that runs a command without the right to write where its user may not: as
    root (who may write anywhere), in a user namespace where root's files are not its own."""
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("running as root without `unshare`: a read-only directory cannot be made")
    probe = subprocess.run([unshare, "-U", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"running as root and `unshare -U` is not permitted here: {probe.stderr.decode()[:200]}")
    return [unshare, "-U"]


@pytest.fixture
def read_only_data(
    cli_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[dict[str, str], Path, list[str]]]:
    """A data dir with a good database, all read-only (as after a bad mount or chown)."""
    prefix = _without_write_rights()
    data = tmp_path / "data"
    env = dict(cli_env, FOURNIL_DATA_DIR=str(data))
    created = run(["forget", "nobody"], env)  # creates and migrates the database
    assert created.returncode == 0, created.stderr
    paths = [data, *data.iterdir()]
    for path in paths:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    probe = subprocess.run([*prefix, "touch", str(data / "probe")], capture_output=True, timeout=30)
    if probe.returncode == 0:
        pytest.skip("this user can write to a read-only directory here")
    try:
        yield env, data, prefix
    finally:
        for path in paths:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.mark.parametrize("command", [["report"], ["chat"]])
def test_read_only_data_dir_names_the_setting(
    read_only_data: tuple[dict[str, str], Path, list[str]], command: list[str]
) -> None:
    env, data, prefix = read_only_data
    result = subprocess.run(
        [*prefix, *FOURNIL, "--no-search", *command],
        input=f"{OPENERS[0]}\n\n".encode(),
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout
    line = _one_line(result.stderr.decode())
    assert str(data / "fournil.db") in line and "readonly" in line
    assert f"FOURNIL_DATA_DIR ({data})" in line and "writable" in line


def test_read_only_data_dir_still_coaches_without_the_index(
    read_only_data: tuple[dict[str, str], Path, list[str]],
) -> None:
    env, data, prefix = read_only_data
    result = subprocess.run(
        [*prefix, *FOURNIL, "coach", "--json", OPENERS[0]], env=env, capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["score"] >= 0
    warnings = _warnings(result.stderr.decode())
    assert len(warnings) == 1 and str(data / "chroma") in warnings[0] and "FOURNIL_DATA_DIR" in warnings[0]


def test_database_server_down_names_the_url_without_its_password(cli_env: dict[str, str]) -> None:
    port = _closed_port()
    env = dict(cli_env, FOURNIL_DATABASE_URL=f"postgresql://fournil:s3cret@127.0.0.1:{port}/fournil")
    result = run(["report"], env)
    assert result.returncode == 1
    line = _one_line(result.stderr.decode())
    assert f"postgresql://fournil:***@127.0.0.1:{port}/fournil" in line and "s3cret" not in line
    assert line.endswith("check FOURNIL_DATABASE_URL (FOURNIL_DATABASE_URL is set in the environment)")


# --- where a setting came from --------------------------------------------------------------


def _run_in(
    directory: Path, args: list[str], env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*FOURNIL, *args], input=stdin, env=env, cwd=directory, capture_output=True, timeout=120
    )


def test_a_setting_from_a_dotenv_file_names_that_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    """A `.env` left in the working directory is the first thing to suspect: the line says so."""
    port = _closed_port()
    (tmp_path / ".env").write_text(
        f"FOURNIL_DATABASE_URL=postgresql://fournil:s3cret@127.0.0.1:{port}/fournil\n", encoding="utf-8"
    )
    result = _run_in(tmp_path, ["report"], cli_env)
    assert result.returncode == 1
    line = _one_line(result.stderr.decode())
    assert f"127.0.0.1:{port}" in line and "s3cret" not in line
    dotenv = (tmp_path / ".env").resolve()
    assert line.endswith(f"check FOURNIL_DATABASE_URL (FOURNIL_DATABASE_URL is set in {dotenv})")

    (tmp_path / ".env").write_text(f"FOURNIL_CHROMA_URL=http://127.0.0.1:{port}\n", encoding="utf-8")
    coached = _run_in(tmp_path, ["coach", "--json", OPENERS[0]], cli_env)
    assert coached.returncode == 0, coached.stderr
    [warning] = _warnings(coached.stderr.decode())
    assert f"(FOURNIL_CHROMA_URL is set in {dotenv})" in warning


def test_a_bad_value_in_a_dotenv_file_names_the_setting_and_the_file(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("FOURNIL_PORT=three thousand\n", encoding="utf-8")
    result = _run_in(tmp_path, ["--no-search", "coach", "--json", OPENERS[0]], cli_env)
    assert result.returncode == 1
    line = _one_line(result.stderr.decode())
    assert line.startswith("configuration: FOURNIL_PORT: ")
    assert line.endswith(f"(FOURNIL_PORT is set in {(tmp_path / '.env').resolve()})")


def test_the_deployment_env_file_does_not_reach_the_command_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The README's compose step puts the example settings in deploy/.env; even copied to a
    working directory's .env by mistake, they leave `coach` and `chat` working on this
    machine (no container-only PostgreSQL or Chroma address is set by default)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "cp deploy/example.env deploy/.env" in readme
    shutil.copy(ROOT / "deploy" / "example.env", tmp_path / ".env")
    env = dict(cli_env, FOURNIL_DATA_DIR=str(tmp_path / "data"))
    coached = _run_in(tmp_path, ["--no-search", "coach", "--json", OPENERS[0]], env)
    assert coached.returncode == 0, coached.stderr
    chatted = _run_in(
        tmp_path, ["--no-search", "chat", "--user", "ann"], env, stdin=f"{OPENERS[0]}\n\n".encode()
    )
    assert chatted.returncode == 0, chatted.stderr
    assert "/100" in chatted.stdout.decode()
