"""Reading Slack payloads on tables: message text, slash sub-commands, references."""

from __future__ import annotations

import pytest

from bot.channels.slack.payloads import (
    CardRef,
    RewriteTarget,
    dm_command,
    explain_value,
    is_manager_command,
    parse_explain_value,
    request_id,
    slack_commands,
    slack_to_plain,
    slash_intent,
    strip_leading_mention,
    team_command,
)

COMMANDS = {
    "help": ["help", "start", "aide"],
    "new": ["new", "reset", "nouveau"],
    "lang": ["lang", "language", "langue"],
    "forget": ["forget", "oublier"],
    "coach": ["coach"],
    "findings": ["findings", "all", "tout"],
    "explain": ["explain", "why", "pourquoi"],
    "drill": ["drill", "exercice"],
    "report": ["report", "rapport"],
    "onboard": ["onboard", "onboarding", "parcours"],
    "privacy": ["privacy", "confidentialite", "confidentialité"],
    "share": ["share", "partage", "partager"],
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
        ("drill now", ("flow", "/drill now")),
        ("drill now cold-call-01", ("flow", "/drill now cold-call-01")),
        ("drill every monday 9:30", ("flow", "/drill every monday 9:30")),
        ("Drill  list", ("flow", "/drill list")),
        ("drill cancel 3", ("flow", "/drill cancel 3")),
        ("drill close", ("flow", "/drill close")),
        ("drill ids", ("flow", "/drill ids")),
        ("exercice lundi 9h30", ("flow", "/exercice lundi 9h30")),
        ("report", ("flow", "/report")),
        ("report 28", ("flow", "/report 28")),
        ("rapport 7", ("flow", "/rapport 7")),
        ("onboard", ("flow", "/onboard")),
        ("onboard status", ("flow", "/onboard status")),
        ("privacy", ("flow", "/privacy")),
        ("share on", ("flow", "/share on")),
        ("share off", ("flow", "/share off")),
        (
            "Share your plans for the new depot with me, how are the routes going?",
            ("flow", "/coach Share your plans for the new depot with me, how are the routes going?"),
        ),
        (
            "Report season again: how is your finance team handling the new close calendar?",
            (
                "flow",
                "/coach Report season again: how is your finance team handling the new close calendar?",
            ),
        ),
        ("privacy matters to your buyers, right?", ("flow", "/coach privacy matters to your buyers, right?")),
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
        ("share on", "/share on"),
        ("privacy", "/privacy"),
        ("onboard", "/onboard"),
        ("parcours", "/parcours"),
        ("report 14", "/report 14"),
        ("drill now", "/drill now"),
        (
            "Share the new depot's routes with your drivers: how do they plan today?",
            "Share the new depot's routes with your drivers: how do they plan today?",
        ),
    ],
)
def test_dm_command(text: str, result: str) -> None:
    assert dm_command(text, COMMANDS) == result


@pytest.mark.parametrize(
    ("text", "manager"),
    [
        ("/drill now", True),
        ("/exercice liste", True),
        ("/report 28", True),
        ("/onboard status", True),
        ("/parcours équipe", True),
        ("/onboard", False),
        ("/share on", False),
        ("/coach drill the buyer", False),
        ("drill now", False),
    ],
)
def test_manager_commands(text: str, manager: bool) -> None:
    assert is_manager_command(text, COMMANDS) is manager


def test_team_command_is_none_for_other_text() -> None:
    assert team_command("coach Hi", COMMANDS) is None
    assert team_command("share it with me please", COMMANDS) is None


@pytest.mark.parametrize(
    ("core", "slack"),
    [
        ("/drill list shows the schedules", "/fournil drill list shows the schedules"),
        ("as in “/drill every monday 9:30”.", "as in “/fournil drill every monday 9:30”."),
        ("Usage: /report [days], e.g. /report 28", "Usage: /fournil report [days], e.g. /fournil report 28"),
        ("(/share). /forget deletes", "(/fournil share). /fournil forget deletes"),
        ("/unknown stays", "/unknown stays"),
        ("see https://acme.test/new and a/new", "see https://acme.test/new and a/new"),
        ("/fournil drill is already right", "/fournil drill is already right"),
        ("/drills/cold-call.md", "/drills/cold-call.md"),
    ],
)
def test_slack_commands(core: str, slack: str) -> None:
    assert slack_commands(core, COMMANDS) == slack


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
