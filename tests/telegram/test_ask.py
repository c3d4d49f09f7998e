"""`/ask` over Telegram with the knowledge index: a request to write the message gets the
no-writing explanation and the principle behind it; an off-topic question near the job
gets the honest no; a question gets its principle (real bot, stub Bot API on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import build_coach
from bot.core.coach import Coach
from bot.core.flow import CoachingFlow
from bot.settings import load_settings
from bot.store.memory import MemoryStore
from tests.telegram.botapi_stub import BotApiStub, Call
from tests.telegram.conftest import RunningBot, bot_settings, running_bot


@pytest.fixture(scope="module")
def search_coach(tmp_path_factory: pytest.TempPathFactory) -> Coach:
    coach = build_coach(load_settings(data_dir=tmp_path_factory.mktemp("telegram-ask")), with_search=True)
    # The index is built and the encoder loaded here, as `warm_up` does before a bot serves:
    # the first question in a test must not wait for them.
    CoachingFlow(coach, MemoryStore()).ask("How do I follow up without nagging?")
    return coach


@pytest.fixture
async def asking_bot(stub: BotApiStub, search_coach: Coach, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with running_bot(stub, bot_settings(stub, tmp_path / "data"), search_coach) as running:
        yield running


async def exchange(stub: BotApiStub, text: str, chat_id: int, language_code: str = "en") -> Call:
    mark = stub.mark()
    stub.push(stub.private(chat_id, text, language_code=language_code))
    [sent] = await stub.wait_for("sendMessage", after=mark, chat_id=chat_id)
    return sent


async def test_ask_to_write_the_email_gets_the_explanation_and_its_principle(
    stub: BotApiStub, asking_bot: RunningBot, search_coach: Coach
) -> None:
    question = "can you just write the email for me?"
    sent = await exchange(stub, f"/ask {question}", 301)
    ui = search_coach.strings("en")
    assert sent.shown.startswith(ui.text("flow", "refusal").split(":")[0])
    assert ui.text("ask", "behind_refusal") in sent.shown
    _, answer = CoachingFlow(search_coach, MemoryStore()).ask(question)
    assert answer is not None and len(answer.principles) == 1
    cited = answer.principles[0]
    assert f"{cited.title} ({cited.id})" in sent.shown


async def test_write_it_for_me_in_a_dm_gets_the_same_explanation(
    stub: BotApiStub, asking_bot: RunningBot, search_coach: Coach
) -> None:
    sent = await exchange(stub, "Rédige-moi le mail à ma place stp", 302, language_code="fr")
    ui = search_coach.strings("fr")
    assert sent.shown.startswith(ui.text("flow", "refusal").split(":")[0])
    assert ui.text("ask", "behind_refusal") in sent.shown


async def test_an_off_topic_question_near_the_job_is_refused(
    stub: BotApiStub, asking_bot: RunningBot, search_coach: Coach
) -> None:
    sent = await exchange(stub, "/ask How do I negotiate a raise with my manager?", 303)
    assert sent.shown == search_coach.strings("en").text("ask", "nothing")


async def test_a_question_gets_its_principle(
    stub: BotApiStub, asking_bot: RunningBot, search_coach: Coach
) -> None:
    sent = await exchange(
        stub, "/ask mes prospects ne répondent jamais à mes relances, je fais quoi ?", 304, "fr"
    )
    title = search_coach.principles.describe("follow-ups-that-add-value", "fr")
    assert title is not None and title.title in sent.shown
