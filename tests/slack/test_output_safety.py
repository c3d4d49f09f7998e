"""No rep's words become a Slack link, mention or broadcast, end to end: the real app over
signed HTTP, the Web API stub, a real SQLite file (fixtures of test_team.py).

The story of the defect: a member agreed to be quoted (`/fournil share on`) and answered a
drill with a strong opener that ends in a disguised link and a broadcast; when the drill
closes, the summary quoting that answer is posted to the whole channel. It must show the
answer as typed, with no `<url|label>`, `<!channel>` or `<@U…>` in what Slack receives, in
verbatim text objects (no auto-linking), and keep it out of the fallback `text`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.coach import Coach
from tests.core_replies import mrkdwn_objects
from tests.slack.conftest import Harness, serve_slack
from tests.slack.fakes import SlackStub, all_texts, event_callback, slash_command, thread_reply
from tests.slack.test_team import C1, MANAGER, _slash, team_settings

MEMBER = "UANS2"
EVIL_LINK = "[see the plan](https://evil.example/login)"
STRONG = "Paul, since the new stores opened, how are your teams handling the busy Saturday mornings?"
# As Slack sends it: the URL it detected in <…>, the characters the rep typed as entities,
# a real @here; and as the rep typed it (what the core coaches and quotes).
ANSWER_EVENT = (
    f"{STRONG} [see the plan](<https://evil.example/login>) &lt;!channel&gt; "
    "&lt;@U123|boss&gt; &lt;https://evil.example|details&gt; <!here>"
)
ANSWER = f"{STRONG} {EVIL_LINK} <!channel> <@U123|boss> <https://evil.example|details> @here"


@pytest.fixture
async def slack(coach: Coach, tmp_path: Path, stub: SlackStub) -> AsyncIterator[Harness]:
    async with serve_slack(team_settings(tmp_path, stub), coach, stub) as harness:
        yield harness


async def test_a_shared_answer_in_a_drill_summary_is_inert(slack: Harness) -> None:
    harness, stub = slack, slack.stub
    consent = await _slash(harness, "share on", MEMBER)
    assert "Thank you" in all_texts(consent.params["blocks"])

    await harness.sender.form(slash_command("drill now", stub.response_url(), user=MANAGER, channel=C1))
    [post] = await stub.wait_for("chat.postMessage")
    ts = post.answer["ts"]
    await harness.sender.event(event_callback(thread_reply(ANSWER_EVENT, ts, user=MEMBER, channel=C1)))
    [coaching] = await stub.wait_for("chat.postEphemeral")
    await harness.sender.form(slash_command("drill close", stub.response_url(), user=MANAGER, channel=C1))
    [_, summary] = await stub.wait_for("chat.postMessage", 2)
    await harness.app.channel.drain()

    assert summary.params["channel"] == C1  # the whole channel sees it
    blocks = summary.params["blocks"]
    texts = all_texts(blocks)
    assert "Drill closed" in texts and "A strong answer" in texts  # the answer was quoted
    assert " ".join(ANSWER.split()).replace("<", "&lt;").replace(">", "&gt;") in texts  # as typed
    for call in (summary, coaching):  # the channel's summary, the member's private coaching
        objects = mrkdwn_objects(call.params["blocks"])
        assert objects and all(text.get("verbatim") is True for text in objects)
        for text in objects:
            assert not re.search(r"<(?!!date\^)", text["text"]), text["text"][:300]
        fallback = str(call.params.get("text") or "")
        assert "<" not in fallback and "evil.example" not in fallback, fallback[:300]
    assert "<https://evil.example/login|" not in texts and "<!channel>" not in texts
