"""`fournil` as a user runs it: real subprocesses, network blocked, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

FOURNIL = [sys.executable, "-m", "bot"]
WEAK_FR = "Bonjour Marie, nous sommes le leader de l'analyse. Seriez-vous disponible jeudi pour une démo ?"


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


# --- every command and surface ----------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _ui(lang: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "prompts" / "ui" / f"{lang}.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _one_line(result: subprocess.CompletedProcess[bytes]) -> str:
    err = result.stderr.decode()
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_no_search_is_accepted_after_the_command_name(cli_env: dict[str, str]) -> None:
    after = run(["coach", "--no-search", "--json", "--example"], cli_env)
    assert after.returncode == 0, after.stderr
    before = run(["--no-search", "coach", "--json", "--example"], cli_env)
    assert json.loads(after.stdout) == json.loads(before.stdout)
    assert json.loads(after.stdout)["principles"] == json.loads(before.stdout)["principles"]
    for args in (["ask", "--no-search"], ["--no-search", "ask"]):
        asked = run([*args, "How do I follow up without nagging?"], cli_env)
        assert asked.returncode == 2
        assert _one_line(asked) == _ui("en")["ask"]["search_off"]  # turned off, not an outage
    french = run(["ask", "--no-search", "Comment relancer un prospect sans le harceler ?"], cli_env)
    assert _one_line(french) == _ui("fr")["ask"]["search_off"]
    for command in (["compare", "--no-search", "A b c d.", "A b c e."], ["kb", "list", "--no-search"]):
        assert "No such option" not in run(command, cli_env).stderr.decode(), command


def test_one_shot_commands_point_at_the_command_line(cli_env: dict[str, str]) -> None:
    """`fournil coach` cannot receive a rewrite or /findings: its card says what to run
    instead (chat wording stays in the chat)."""
    wide = dict(cli_env, COLUMNS="400")  # no wrapping: sentences stay whole
    card = run(["--no-search", "coach", "--example"], wide)
    assert card.returncode == 0, card.stderr
    out = card.stdout.decode()
    chat, one_shot = _ui("en")["card"], _ui("en")["one_shot"]
    findings = len(
        json.loads(run(["--no-search", "coach", "--json", "--example"], cli_env).stdout)["findings"]
    )
    assert findings > 3  # some are hidden: the card says how to see them
    assert chat["more_findings"].format(count=findings - 3) not in out
    assert one_shot["card.more_findings"].format(count=findings - 3) in out
    assert chat["invitation"] not in out and one_shot["card.invitation"] in out

    french = run(["--no-search", "compare", "--lang", "fr", WEAK_FR, WEAK_FR + " Merci."], wide)
    assert french.returncode == 0, french.stderr
    assert _ui("fr")["one_shot"]["card.invitation"] in french.stdout.decode()

    answer = run(["ask", "--json", "How do I follow up without nagging?"], cli_env)
    assert answer.returncode == 0, answer.stderr
    text = json.loads(answer.stdout)["answer"]
    assert "/coach" not in text and text.endswith(one_shot["ask.outro"])


def test_chat_keeps_each_line_of_help_and_privacy(cli_env: dict[str, str]) -> None:
    """The help and privacy texts are written a line per command or point: the terminal
    keeps those lines, and a sentence after a list is not folded into its last bullet."""
    talk = b"/help\n/lang fr\n/privacy\n"
    result = run(["--no-search", "chat", "--user", "lines"], dict(cli_env, COLUMNS="300"), stdin=talk)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    for expected in _ui("en")["flow"]["help"].strip().splitlines():
        assert any(line.rstrip() == expected for line in lines), expected
    privacy = _ui("fr")["team"]["privacy"].strip().splitlines()
    for expected in (privacy[-2], privacy[-1]):  # after the bullets: paragraphs of their own
        start = expected.format(days=90)[:40]
        assert any(line.startswith(start) for line in lines), (start, lines)


def test_a_png_on_stdin_is_declined_as_binary(cli_env: dict[str, str]) -> None:
    image = (ROOT / "docs" / "report-example.png").read_bytes()
    assert len(image) > 8000  # longer than an opener may be: still "binary", not "too long"
    result = run(["--no-search", "coach", "-"], cli_env, stdin=image)
    assert result.returncode == 2
    assert _one_line(result) == _ui("en")["invalid"]["binary"]


def test_compare_declines_what_coach_declines(cli_env: dict[str, str]) -> None:
    german = "Hallo Herr Müller, wie organisieren Sie heute die Wartung Ihrer Pressen im Werk Ulm?"
    english = "Hi Mr Müller, how is your team organising the maintenance of the presses in Ulm today?"
    coached = run(["--no-search", "coach", german], cli_env)
    assert coached.returncode == 2
    for args in ([german, english], [english, german]):
        compared = run(["--no-search", "compare", *args], cli_env)
        assert compared.returncode == 2, args
        assert _one_line(compared) == _one_line(coached)


@pytest.mark.parametrize("option", [["--example"], ["--batch", "openers.txt"]])
def test_coach_refuses_a_text_it_would_ignore(cli_env: dict[str, str], option: list[str]) -> None:
    result = run(["--no-search", "coach", *option, "--json", "Are you free for a call next week?"], cli_env)
    assert result.returncode == 2 and result.stdout == b""
    assert "takes no TEXT" in _one_line(result)


def test_configuration_problems_are_one_line_with_one_exit_code(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    missing = run(["slack"], cli_env)
    unreadable = run(["slack"], dict(cli_env, SLACK_BOT_TOKEN_FILE=str(tmp_path / "no-such-token")))
    assert missing.returncode == unreadable.returncode == 1
    assert _one_line(missing).startswith("SLACK_BOT_TOKEN is not set")
    line = _one_line(unreadable)
    assert line.startswith("configuration: SLACK_BOT_TOKEN_FILE: cannot read ")
    assert ": :" not in line and "Value error" not in line
    assert line.endswith("(SLACK_BOT_TOKEN_FILE is set in the environment)")
