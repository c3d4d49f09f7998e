"""The LLM wired in (FOURNIL_LLM): the command line, the conversation flow, the store, the
Telegram and Slack bots, logs and metrics, each against the OpenAI-compatible stub on
127.0.0.1 through the real langchain client, and each without an LLM too (nothing changes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import open_flow
from bot.core.coach import Coach
from bot.core.flow import CoachingFlow, complete
from bot.core.models import Category, ConversationKey, IncomingMessage, Reply, ReplyKind
from bot.logs import setup_logging
from bot.store.sql import SqlStore
from tests.llm.conftest import CLAIMS, GOOD_NOTES, OPENERS, PRIVATE, LlmFactory, good_script
from tests.llm.stub_server import Received, StubLlm, running
from tests.llm.stub_server import Reply as LlmReply
from tests.slack.conftest import serve_slack, slack_test_settings
from tests.slack.fakes import SlackStub, all_texts, dm_event, event_callback, slash_command
from tests.telegram.botapi_stub import BotApiStub
from tests.telegram.conftest import bot_settings, running_bot

ROOT = Path(__file__).resolve().parents[2]
MODEL = "openai:stub-model"
LANGS = ["en", "fr"]
# The modules an LLM brings in; none of them may be imported when no LLM is configured.
LLM_MODULES = ("langchain", "langchain_core", "langchain_openai", "langsmith", "openai")
REWRITES = {
    "en": "Sarah, when a shipment between Lille and Lyon runs late, who on your team hears of it first?",
    "fr": "Marie, quand une livraison entre Lille et Lyon prend du retard, qui l'apprend en premier ?",
}


def note(lang: str) -> str:
    return str(GOOD_NOTES[lang]["note"])


def with_llm(env: dict[str, str], stub: StubLlm, **extra: str) -> dict[str, str]:
    return {**env, "FOURNIL_LLM": MODEL, "FOURNIL_LLM_BASE_URL": stub.base_url, **extra}


async def fournil(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`fournil ARGS` in a subprocess while this test's event loop serves the stub."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(300):  # a hang becomes a failure; nothing measures time
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def embedded_json(coach: Coach, text: str) -> dict[str, Any]:
    return coach.coach(text).model_dump(mode="json")


# --- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_coach_json_carries_the_llms_part_and_the_embedded_score(
    lang: str, coach: Coach, cli_env: dict[str, str]
) -> None:
    async with running(StubLlm(good_script(lang))) as stub:
        code, out, err = await fournil(
            with_llm(cli_env, stub), "coach", "--json", "--no-search", OPENERS[lang]
        )
    assert code == 0, err
    data = json.loads(out)
    embedded = embedded_json(coach, OPENERS[lang])
    assert data["llm"] == {"status": "used", "model": MODEL, "reason": None}
    assert data["note"] == note(lang)
    assert data["score"] == embedded["score"]  # an LLM opinion never moves the score
    assert data["findings"][: len(embedded["findings"])] == embedded["findings"]
    [added] = [f for f in data["findings"] if f["source"] == "llm"]
    assert added["category"] == "unproven_claim" and added["evidence"] == CLAIMS[lang]
    assert data["questions"][:2] == GOOD_NOTES[lang]["questions"] and len(data["questions"]) == 3
    assert sorted(r.task for r in stub.received) == ["coaching_note", "second_opinion"]
    for request in stub.received:  # redacted before it left
        assert not any(private in json.dumps(request.body, ensure_ascii=False) for private in PRIVATE[lang])


async def test_the_coach_command_prints_one_card_with_the_note(coach: Coach, cli_env: dict[str, str]) -> None:
    async with running(StubLlm(good_script("fr"))) as stub:
        code, out, err = await fournil(with_llm(cli_env, stub), "coach", "--no-search", OPENERS["fr"])
    assert code == 0, err
    ui = coach.strings("fr")
    assert out.count(ui.text("card", "title")) == 1  # one result: the card with its LLM part
    assert ui.text("card", "note") in out and "Que savez-vous déjà" in out
    assert ui.category(Category.UNPROVEN_CLAIM) in out


async def test_a_batch_gets_the_llms_part_on_every_line(
    coach: Coach, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Every line in one event loop: the model's HTTP client outlives the first line."""

    def by_language(request: Received) -> LlmReply:
        lang = "fr" if "Bonjour" in request.message("user") else "en"
        return good_script(lang)[request.task]

    batch = tmp_path / "openers.jsonl"
    lines = [json.dumps({"text": OPENERS[lang]}, ensure_ascii=False) for lang in ("en", "fr", "en")]
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    async with running(StubLlm(by_language)) as stub:
        code, out, err = await fournil(with_llm(cli_env, stub), "coach", "--batch", str(batch), "--json")
    assert code == 0, err
    cards = [json.loads(line) for line in out.splitlines()]
    assert [card["language"] for card in cards] == ["en", "fr", "en"]
    assert [card["llm"]["status"] for card in cards] == ["used"] * 3
    assert [card["note"] for card in cards] == [note("en"), note("fr"), note("en")]
    assert len(stub.received) == 6


@pytest.mark.parametrize(
    ("reason", "answer", "seconds"),
    [
        ("http_error", LlmReply(status=500), "5"),
        ("timeout", LlmReply(payload={"findings": []}, delay=30), "0.5"),
        ("malformed", LlmReply(content="Sure! Here is my analysis, not JSON."), "5"),
    ],
)
async def test_a_failing_llm_gives_the_embedded_card_and_says_why(
    reason: str, answer: LlmReply, seconds: str, coach: Coach, cli_env: dict[str, str]
) -> None:
    async with running(StubLlm(lambda _: answer)) as stub:
        env = with_llm(cli_env, stub, FOURNIL_LLM_TIMEOUT=seconds)
        code, out, err = await fournil(env, "coach", "--json", "--no-search", OPENERS["en"])
    assert code == 0, err
    data = json.loads(out)
    assert data["llm"] == {"status": "fallback", "model": MODEL, "reason": reason}
    assert data["note"] is None
    assert {**data, "llm": None} == {**embedded_json(coach, OPENERS["en"]), "llm": None}
    assert len(stub.received) == 2  # it was asked, and the card went out without it


_PROBE = """
import json, sys
from bot.cli import main
sys.argv = ["fournil", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {modules!r})))
"""


@pytest.mark.parametrize(
    ("llm_set", "args"),
    [
        (False, ["coach", "--json", "--no-search"]),
        (True, ["--no-llm", "coach", "--json", "--no-search"]),
        (True, ["coach", "--json", "--no-search", "--no-llm"]),
    ],
    ids=["unset", "no-llm-before", "no-llm-after"],
)
async def test_without_an_llm_nothing_changes_and_langchain_is_never_imported(
    llm_set: bool, args: list[str], coach: Coach, cli_env: dict[str, str]
) -> None:
    async with running(StubLlm(good_script("en"))) as stub:
        env = with_llm(cli_env, stub) if llm_set else cli_env
        probe = _PROBE.format(modules=set(LLM_MODULES))
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            probe,
            *args,
            OPENERS["en"],
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(300):
            raw_out, raw_err = await process.communicate()
    assert process.returncode == 0, raw_err.decode()
    card_line, modules_line = raw_out.decode().strip().splitlines()
    card = json.loads(card_line)
    assert card == embedded_json(coach, OPENERS["en"])
    assert card["llm"] == {"status": "off", "model": None, "reason": None} and card["note"] is None
    assert json.loads(modules_line) == []
    assert stub.received == []  # nothing was sent anywhere


async def test_an_llm_setting_that_cannot_work_stops_with_one_line(cli_env: dict[str, str]) -> None:
    code, out, err = await fournil({**cli_env, "FOURNIL_LLM": "gpt-4"}, "coach", "--no-search", OPENERS["en"])
    assert code == 1 and out == ""
    [line] = err.strip().splitlines()
    assert "FOURNIL_LLM" in line and "provider:model" in line and "Traceback" not in err


def _answer_citing_the_first(request: Received) -> LlmReply:
    """An answer in the question's language citing the first principle it was given."""
    data = json.loads(request.message("user"))
    first = data["principles"][0]["id"]
    texts = {
        "en": "Bring something new each time: a question about what changed on their side since "
        "your last message, rather than a reminder that you wrote before.",
        "fr": "Apportez quelque chose de neuf à chaque fois : une question sur ce qui a changé "
        "chez eux depuis votre dernier message, plutôt qu'un rappel de votre relance.",
    }
    return LlmReply(payload={"answer": texts[data["language"]], "principles": [first]})


@pytest.mark.parametrize(
    ("lang", "question"),
    [("en", "How do I follow up without nagging?"), ("fr", "Comment relancer sans harceler ?")],
)
async def test_ask_json_answers_from_the_retrieved_principles(
    lang: str, question: str, cli_env: dict[str, str]
) -> None:
    async with running(StubLlm(_answer_citing_the_first)) as stub:
        code, out, err = await fournil(with_llm(cli_env, stub), "ask", "--json", question)
    assert code == 0, err
    data = json.loads(out)
    assert data["llm"] == {"status": "used", "model": MODEL, "reason": None}
    assert data["kind"] == "answer" and data["language"] == lang
    [request] = stub.received
    sent = json.loads(request.message("user"))
    assert [p["id"] for p in data["principles"]] == [sent["principles"][0]["id"]]
    assert data["answer"].startswith(("Bring something new", "Apportez quelque chose"))


@pytest.mark.parametrize(
    "question", ["What's the weather going to be in Lyon tomorrow?", "can you just write the email for me?"]
)
async def test_ask_refuses_before_any_call(question: str, cli_env: dict[str, str]) -> None:
    async with running(StubLlm(_answer_citing_the_first)) as stub:
        code, out, err = await fournil(with_llm(cli_env, stub), "ask", "--json", question)
    assert code == 0, err
    data = json.loads(out)
    assert data["kind"] in {"offtopic", "write_request"}
    assert data["llm"]["status"] == "off"  # not asked: the gate answered
    assert stub.received == []


# --- the conversation flow and the store --------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
async def test_the_store_keeps_the_embedded_card_and_compares_embedded_cards(
    lang: str, coach: Coach, store: SqlStore, llm: LlmFactory
) -> None:
    key = ConversationKey(channel="terminal", user_id="rep", conversation_id="c1")
    async with llm(good_script(lang)) as (llm_coach, stub):
        flow = CoachingFlow(coach, store, llm=llm_coach)
        first = await flow.handle(IncomingMessage(key=key, text=OPENERS[lang]))
        assert first.card is not None and first.card.note is None and first.follow_up is not None
        assert stub.received == []  # the embedded card goes out before any call
        shown = await complete(first)
        second = await flow.handle(IncomingMessage(key=key, text=REWRITES[lang]))
        compared = await complete(second)
    embedded = coach.coach(OPENERS[lang])
    assert shown.follow_up is None and shown.card is not None and shown.llm == shown.card.llm
    assert shown.card.llm.status == "used" and shown.card.note == note(lang)
    assert Category.UNPROVEN_CLAIM in shown.card.categories
    assert note(lang) in shown.text and shown.kind == ReplyKind.CARD
    rewrite, opener = await store.recent_cards("terminal", "rep", 10)
    assert not opener.is_rewrite and opener.score == embedded.score
    assert opener.categories == [str(c) for c in embedded.categories]
    assert "unproven_claim" not in opener.categories
    assert rewrite.categories == [str(c) for c in coach.coach(REWRITES[lang]).categories]
    # The comparison's figures come from the embedded cards; only its new version's card
    # gets the LLM's part.
    assert second.comparison is not None and compared.comparison is not None
    figures = ("delta", "resolved", "remaining", "new")
    assert [getattr(compared.comparison, f) for f in figures] == [
        getattr(second.comparison, f) for f in figures
    ]
    assert second.comparison.before.score == embedded.score
    assert compared.comparison.after.note == note(lang)
    assert compared.card == compared.comparison.after and note(lang) in compared.text


async def test_a_skipped_llm_part_is_said_on_the_card(coach: Coach, store: SqlStore, llm: LlmFactory) -> None:
    key = ConversationKey(channel="terminal", user_id="rep", conversation_id="c2")
    async with llm(lambda _: LlmReply(status=429)) as (llm_coach, _):
        flow = CoachingFlow(coach, store, llm=llm_coach)
        shown = await complete(await flow.handle(IncomingMessage(key=key, text=OPENERS["fr"])))
    assert shown.card is not None
    assert shown.card.llm.status == "fallback" and shown.card.llm.reason == "rate_limited"
    assert shown.card.findings == coach.coach(OPENERS["fr"]).findings
    assert shown.card.notice is not None and "limite" in shown.card.notice  # in the card's language
    assert f"({shown.card.notice})" in shown.text


# --- the bots: the embedded card first, then the same message edited -----------------------


def held_script(lang: str, held: asyncio.Event) -> dict[str, LlmReply]:
    """The good answers, given only once `held` is set."""

    async def hold(_: LlmReply) -> None:
        await held.wait()

    return {task: LlmReply(payload=reply.payload, hold=hold) for task, reply in good_script(lang).items()}


@pytest.mark.parametrize("lang", LANGS)
async def test_telegram_posts_the_card_then_edits_it_with_the_note(
    lang: str, coach: Coach, tmp_path: Path
) -> None:
    ui = coach.strings(lang)
    held = asyncio.Event()
    async with running(StubLlm(held_script(lang, held))) as llm_stub, BotApiStub() as telegram:
        settings = bot_settings(telegram, tmp_path / "data", llm=MODEL, llm_base_url=llm_stub.base_url)
        async with running_bot(telegram, settings, coach):
            mark = telegram.mark()
            telegram.push(telegram.private(301, OPENERS[lang], language_code=lang))
            [card] = await telegram.wait_for("sendMessage", after=mark, chat_id=301)  # the LLM still held
            # The chat is not held up by the model: /help is answered meanwhile.
            telegram.push(telegram.private(301, "/help", language_code=lang))
            [_, help_] = await telegram.wait_for("sendMessage", after=mark, chat_id=301, count=2)
            assert telegram.of("editMessageText", after=mark) == []
            held.set()
            [edit] = await telegram.wait_for("editMessageText", after=mark, chat_id=301)
    assert telegram.calls.index(help_) < telegram.calls.index(edit)
    assert edit.params["message_id"] == card.result["message_id"]  # the same message
    assert ui.text("card", "note") not in card.shown and note(lang) not in card.shown
    assert ui.text("card", "note") in edit.shown and note(lang) in edit.shown
    assert ui.category(Category.UNPROVEN_CLAIM) in edit.shown
    assert card.shown.splitlines()[0] == edit.shown.splitlines()[0]  # the same score
    assert str(edit.buttons[-1]["callback_data"]) == "r"  # "I rewrote it" is still there


async def test_slack_acks_posts_the_card_then_updates_it_with_the_note(coach: Coach, tmp_path: Path) -> None:
    held = asyncio.Event()
    script = held_script("en", held)
    slack = await SlackStub().start()
    try:
        async with running(StubLlm(script)) as llm_stub:
            settings = slack_test_settings(
                tmp_path / "data", slack, llm=MODEL, llm_base_url=llm_stub.base_url
            )
            async with serve_slack(settings, coach, slack) as harness:
                sent = await harness.sender.event(event_callback(dm_event(OPENERS["en"])))
                assert (sent.status, sent.body) == (200, "")  # acked while the LLM is held
                [post] = await slack.wait_for("chat.postMessage")  # the embedded card, LLM still held
                assert slack.of("chat.update") == []
                held.set()
                [update] = await slack.wait_for("chat.update")
    finally:
        await slack.close()
    said = note("en")
    assert (update.params["channel"], update.params["ts"]) == (post.answer["channel"], post.answer["ts"])
    assert said not in all_texts(post.params["blocks"])
    texts = all_texts(update.params["blocks"])
    assert said.split("?")[0] in texts and coach.strings("en").text("card", "note") in texts
    assert update.params["text"] == post.params["text"]  # the score line, unchanged


async def test_a_slack_slash_command_card_is_replaced_through_its_response_url(
    coach: Coach, tmp_path: Path
) -> None:
    slack = await SlackStub().start()
    try:
        async with running(StubLlm(good_script("fr"))) as llm_stub:
            settings = slack_test_settings(
                tmp_path / "data", slack, llm=MODEL, llm_base_url=llm_stub.base_url
            )
            async with serve_slack(settings, coach, slack) as harness:
                await harness.sender.form(slash_command(f"coach {OPENERS['fr']}", slack.response_url()))
                first, second = await slack.wait_for("response_url", count=2)
    finally:
        await slack.close()
    assert first.params["replace_original"] is False and second.params["replace_original"] is True
    assert "Que savez-vous déjà" not in all_texts(first.params["blocks"])
    assert "Que savez-vous déjà" in all_texts(second.params["blocks"])


# --- logs and metrics ---------------------------------------------------------------------


@pytest.fixture
def real_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    names = [*LLM_MODULES, "anthropic", "httpx", "httpx2", "httpcore", "httpcore2", "alembic", "bm25s"]
    names += ["chromadb", "urllib3"]
    names += ["aiosqlite", "sqlalchemy"]
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_at_debug_no_llm_request_reaches_the_log(
    coach: Coach, llm: LlmFactory, real_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG")
    async with llm(good_script("en")) as (llm_coach, stub):
        card = await llm_coach.enrich(coach.coach(OPENERS["en"]), OPENERS["en"])
    assert card.llm.status == "used" and len(stub.received) == 2
    written = capsys.readouterr().err
    assert CLAIMS["en"] not in written and "[email]" not in written  # no request body
    assert "httpcore" not in written  # every connection step, at DEBUG
    for name in ("openai", "anthropic", "langchain", "langsmith", "httpx"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_fournil_serve_exports_the_llm_figures(cli_env: dict[str, str], tmp_path: Path) -> None:
    port = _free_port()
    async with running(StubLlm(good_script("en"))) as stub:
        env = with_llm(cli_env, stub, FOURNIL_HOST="127.0.0.1", FOURNIL_PORT=str(port))
        env["FOURNIL_DATA_DIR"] = str(tmp_path)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            body = ""
            async with asyncio.timeout(120):  # until it listens (or a hang fails the test)
                while process.returncode is None and not body:
                    try:
                        body = await asyncio.to_thread(_metrics, port)
                    except OSError:
                        await asyncio.sleep(0.2)
        finally:
            process.terminate()
            await process.wait()
    assert "# TYPE fournil_llm_calls_total counter" in body
    assert "# TYPE fournil_llm_latency_seconds histogram" in body


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


async def test_open_flow_builds_the_llm_only_when_it_is_set(coach: Coach, tmp_path: Path) -> None:
    from bot.settings import load_settings

    async with running(StubLlm(good_script("en"))) as stub:
        on = load_settings(data_dir=tmp_path / "on", llm=MODEL, llm_base_url=stub.base_url)
        async with open_flow(on, coach) as flow:
            assert flow.llm is not None and flow.llm.model == MODEL
        async with open_flow(load_settings(data_dir=tmp_path / "off"), coach) as flow:
            assert flow.llm is None
            reply: Reply = await flow.handle(
                IncomingMessage(
                    key=ConversationKey(channel="t", user_id="u", conversation_id="c"), text=OPENERS["en"]
                )
            )
            assert reply.follow_up is None and reply.card is not None and reply.card.llm.status == "off"
    assert stub.received == []


# --- kb check ------------------------------------------------------------------------------


def test_kb_check_names_a_broken_or_missing_llm_prompt_file(tmp_path: Path) -> None:
    import shutil

    from bot.knowledge.check import check_knowledge

    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    broken = prompts / "llm" / "fr.yaml"
    broken.write_text(broken.read_text(encoding="utf-8").replace("  timeout:", "  temps:"), encoding="utf-8")
    problems = check_knowledge(ROOT / "knowledge", prompts)
    [problem] = [p for p in problems if "llm" in p]
    assert problem.startswith(f"{broken}: reasons.temps")  # the file and the field
    broken.unlink()
    problems = check_knowledge(ROOT / "knowledge", prompts)
    assert [p for p in problems if "llm" in p] == [f"{prompts / 'llm'}: missing fr.yaml"]
