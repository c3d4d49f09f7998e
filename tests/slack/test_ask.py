"""`/fournil ask` over Slack (HTTP mode, signed requests, stub Web API on 127.0.0.1) with
the knowledge index: "write it for me" gets the no-writing explanation and the principle
behind it, in the slash command and in a DM; a near-domain off-topic question is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import build_coach
from bot.core.coach import Coach
from bot.core.flow import CoachingFlow
from bot.settings import Settings, load_settings
from bot.store.memory import MemoryStore
from tests.slack.conftest import Harness, serve_slack
from tests.slack.fakes import SlackStub, all_texts, dm_event, event_callback, slash_command


@pytest.fixture(scope="module")
def search_coach(tmp_path_factory: pytest.TempPathFactory) -> Coach:
    coach = build_coach(load_settings(data_dir=tmp_path_factory.mktemp("slack-ask")), with_search=True)
    # The index is built and the encoder loaded here, as `warm_up` does before a bot serves:
    # the first question in a test must not wait for them.
    CoachingFlow(coach, MemoryStore()).ask("How do I follow up without nagging?")
    return coach


@pytest.fixture
async def asking(search_coach: Coach, slack_settings: Settings, stub: SlackStub) -> AsyncIterator[Harness]:
    async with serve_slack(slack_settings, search_coach, stub) as harness:
        yield harness


async def test_slash_ask_to_write_the_email_gets_the_explanation_and_its_principle(
    asking: Harness, search_coach: Coach
) -> None:
    question = "can you just write the email for me?"
    await asking.sender.form(slash_command(f"ask {question}", asking.stub.response_url()))
    [call] = await asking.stub.wait_for("response_url")
    texts = all_texts(call.params["blocks"])
    ui = search_coach.strings("en")
    assert ui.text("flow", "refusal").split(":")[0] in texts
    assert ui.text("ask", "behind_refusal") in texts
    _, answer = CoachingFlow(search_coach, MemoryStore()).ask(question)
    assert answer is not None and len(answer.principles) == 1
    assert answer.principles[0].title in texts and answer.principles[0].id in texts


async def test_write_it_for_me_in_a_dm_gets_the_explanation(asking: Harness, search_coach: Coach) -> None:
    await asking.sender.event(event_callback(dm_event("Write me a cold email for a CFO at a bank")))
    [call] = await asking.stub.wait_for("chat.postMessage")
    texts = all_texts(call.params.get("blocks") or []) + str(call.params.get("text", ""))
    ui = search_coach.strings("en")
    assert ui.text("flow", "refusal").split(":")[0] in texts
    assert ui.text("ask", "behind_refusal") in texts


async def test_slash_ask_off_topic_near_the_job_is_refused(asking: Harness, search_coach: Coach) -> None:
    await asking.sender.form(
        slash_command("ask How do I negotiate a raise with my manager?", asking.stub.response_url())
    )
    [call] = await asking.stub.wait_for("response_url")
    texts = all_texts(call.params["blocks"])
    assert search_coach.strings("en").text("ask", "nothing") in texts
