"""Reading Slack payloads on tables: message text, slash sub-commands, references."""

from __future__ import annotations

import pytest

from bot.channels.slack.payloads import (
    CardRef,
    RewriteTarget,
    dm_command,
    explain_value,
    parse_explain_value,
    request_id,
    slack_to_plain,
    slash_intent,
    strip_leading_mention,
)

COMMANDS = {
    "help": ["help", "start", "aide"],
    "new": ["new", "reset", "nouveau"],
    "lang": ["lang", "language", "langue"],
    "forget": ["forget", "oublier"],
    "coach": ["coach"],
    "findings": ["findings", "all", "tout"],
    "explain": ["explain", "why", "pourquoi"],
}


@pytest.mark.parametrize(
    ("slack_text", "plain"),
    [
        ("Hi Sarah &amp; team", "Hi Sarah & team"),
        ("a &lt;b&gt; c", "a <b> c"),
        ("<@UFOURNIL> hello", " hello"),
        ("<@U0OTHER> hello", "@someone hello"),
        ("<@U0OTHER|marie> hello", "@marie hello"),
        ("see <https://acme.test/path?a=1&amp;b=2>", "see https://acme.test/path?a=1&b=2"),
        ("see <https://acme.test|acme.test>", "see acme.test"),
        ("mail <mailto:a@b.test|a@b.test>", "mail a@b.test"),
        ("in <#C123|sales>", "in #sales"),
        ("<!here> quick one", "@here quick one"),
        ("<!subteam^S1|@sales-team> hi", "@sales-team hi"),
        ("<!date^1712345678^{date}|Apr 5>", "Apr 5"),
        ("« Comment gérez-vous… ? »", "« Comment gérez-vous… ? »"),
        ("", ""),
        (None, ""),
    ],
)
def test_slack_to_plain(slack_text: str | None, plain: str) -> None:
    assert slack_to_plain(slack_text, bot_user_id="UFOURNIL") == plain


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        ("<@UFOURNIL> coach this", "coach this"),
        ("<@UFOURNIL>: coach this", "coach this"),
        ("  <@UFOURNIL|fournil>, hi", "hi"),
        ("coach this <@UFOURNIL>", "coach this <@UFOURNIL>"),
    ],
)
def test_strip_leading_mention(text: str, stripped: str) -> None:
    assert strip_leading_mention(text) == stripped


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("", ("flow", "/help")),
        ("   ", ("flow", "/help")),
        ("help", ("flow", "/help")),
        ("aide", ("flow", "/aide")),
        (
            "coach Hi Sarah, how are you handling returns?",
            ("flow", "/coach Hi Sarah, how are you handling returns?"),
        ),
        ("COACH Hi", ("flow", "/coach Hi")),
        ("ask how do I follow up?", ("ask", "how do I follow up?")),
        ("question comment relancer ?", ("ask", "comment relancer ?")),
        ("lang fr", ("flow", "/lang fr")),
        ("new", ("flow", "/new")),
        ("forget", ("flow", "/forget")),
        ("findings", ("flow", "/findings")),
        ("explain open-questions", ("flow", "/explain open-questions")),
        (
            "New quarter, new priorities: how is your team planning?",
            ("flow", "/coach New quarter, new priorities: how is your team planning?"),
        ),
        ("Hi Sarah, we are a leader.", ("flow", "/coach Hi Sarah, we are a leader.")),
    ],
)
def test_slash_intent(text: str, intent: tuple[str, str]) -> None:
    assert slash_intent(text, COMMANDS) == intent


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("help", "/help"),
        ("Aide ?", "/help"),
        ("?", "/help"),
        ("help me with this opener", "help me with this opener"),
    ],
)
def test_dm_command(text: str, result: str) -> None:
    assert dm_command(text, COMMANDS) == result


def test_references_round_trip_and_reject_garbage() -> None:
    ref = CardRef(conversation="C1:1712345678.000100", owner="U1", lang="fr")
    assert CardRef.decode(ref.encode()) == ref
    target = RewriteTarget(conversation="D1", owner="U1", channel="D1")
    assert RewriteTarget.decode(target.encode()) == target
    assert "ru" not in target.encode()  # unset fields are not carried
    for garbage in (None, "", "{", '{"c": 1}', "[]"):
        assert CardRef.decode(garbage) is None
        assert RewriteTarget.decode(garbage) is None


def test_explain_values() -> None:
    assert parse_explain_value(explain_value("fr", "open-questions")) == ("fr", "open-questions")
    assert parse_explain_value("open-questions") == ("en", "open-questions")
    assert parse_explain_value(None) == ("en", "")


def test_request_id_prefers_slack_ids() -> None:
    assert request_id({"event_id": "Ev1", "trigger_id": "t"}) == "Ev1"
    assert request_id({"trigger_id": "123.456"}) == "123.456"
    assert request_id({}).startswith("fournil-")
