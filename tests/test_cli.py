"""`fournil` as a user runs it: real subprocesses, network blocked, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

FOURNIL = [sys.executable, "-m", "bot"]


def run(
    args: list[str], env: dict[str, str], stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*FOURNIL, *args], input=stdin, env=env, capture_output=True, timeout=120)


def test_example_card(cli_env: dict[str, str]) -> None:
    result = run(["coach", "--example"], cli_env)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "/100" in out and "Pitch" in out


def test_json_from_stdin_in_french(cli_env: dict[str, str]) -> None:
    text = "Bonjour, seriez-vous disponible pour une démo de notre plateforme jeudi ?"
    result = run(["coach", "--json", "-"], cli_env, stdin=text.encode())
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    assert card["language"] == "fr" and 0 <= card["score"] <= 100
    assert {f["category"] for f in card["findings"]} >= {"meeting_ask", "pitch"}


def test_batch_jsonl_keeps_order_and_reports_bad_lines(cli_env: dict[str, str], tmp_path: Path) -> None:
    batch = tmp_path / "seq.jsonl"
    batch.write_text(
        "\n".join(
            [
                json.dumps({"text": "Hi Ann, are you open to a quick call next week?"}),
                "{not json",
                json.dumps({"text": "Bonjour Anne, comment préparez-vous l'audit de mars ?", "lang": "fr"}),
                json.dumps({"text": "😀"}),
            ]
        ),
        encoding="utf-8",
    )
    result = run(["coach", "--batch", str(batch), "--json"], cli_env)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [("error" in line) for line in lines] == [False, True, False, True]
    assert lines[0]["language"] == "en" and lines[2]["language"] == "fr"


def test_compare_json(cli_env: dict[str, str]) -> None:
    result = run(
        [
            "compare",
            "--json",
            "Are you open to a demo of our platform?",
            "How is your team planning the Q3 audit?",
        ],
        cli_env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"language", "before", "after", "delta", "resolved", "remaining", "new"}
    assert data["delta"] > 0 and "meeting_ask" in data["resolved"]


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"   ",
        b"\x00\x01\x02\xff\xfe binary",
        "😀🔥🚀".encode(),
        b"https://example.com/landing",
        b"a" * 100_000,
        "Hola Juan, ¿cómo gestionan hoy la logística de su almacén en Madrid?".encode(),
    ],
    ids=["empty", "blank", "binary", "emoji", "url", "100kB", "spanish"],
)
def test_bad_input_one_line_exit_2(cli_env: dict[str, str], payload: bytes) -> None:
    result = run(["coach", "-"], cli_env, stdin=payload)
    assert result.returncode == 2
    err = result.stderr.decode()
    assert err.count("\n") == 1 and "Traceback" not in err


def test_chat_state_survives_a_killed_process(cli_env: dict[str, str]) -> None:
    opener = b"Hi Sarah, we are a leading provider of analytics. Would you be open to a 15-minute call?\n\n"
    first = subprocess.Popen(
        [*FOURNIL, "chat", "--user", "ann"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=cli_env
    )
    assert first.stdin is not None and first.stdout is not None
    first.stdin.write(opener)
    first.stdin.flush()
    seen = b""
    while b"/100" not in seen:
        chunk = first.stdout.readline()
        assert chunk, "chat ended before printing a card"
        seen += chunk
    first.kill()  # no clean shutdown
    first.wait(timeout=30)
    rewrite = (
        b"Hi Sarah, since the Lyon site opened, how are you splitting picking between the two warehouses?\n\n"
    )
    second = run(["chat", "--user", "ann"], cli_env, stdin=rewrite)
    assert second.returncode == 0, second.stderr
    assert "Before / after" in second.stdout.decode()


def test_kb_check_and_list(cli_env: dict[str, str]) -> None:
    assert run(["kb", "check"], cli_env).returncode == 0
    listed = run(["kb", "list"], cli_env).stdout.decode()
    assert "open-questions" in listed


def test_kb_check_names_a_broken_file_and_field(cli_env: dict[str, str], tmp_path: Path) -> None:
    import shutil

    root = Path(__file__).resolve().parent.parent
    knowledge = tmp_path / "knowledge"
    shutil.copytree(root / "knowledge", knowledge)
    broken = knowledge / "principles" / "brevity.en.md"
    broken.write_text(broken.read_text(encoding="utf-8").replace("title:", "titel:", 1), encoding="utf-8")
    env = dict(cli_env, FOURNIL_KNOWLEDGE_DIR=str(knowledge))
    result = run(["kb", "check"], env)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "brevity.en.md" in err and "title" in err and "Traceback" not in err


def test_eval_meets_the_bar(cli_env: dict[str, str]) -> None:
    result = run(["--no-search", "eval", "--strict"], cli_env)
    assert result.returncode == 0, result.stdout.decode()[-2000:]
