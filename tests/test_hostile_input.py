"""Text a real client sends, or an attacker: broken emoji halves, other scripts, digits that
are not ASCII, and runs of characters that bait backtracking regular expressions. Each gets
a helpful answer, never a stack trace. (How long the bait takes is measured in
bench/detector_hostile.py, never asserted here.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.analysis import analyse_opener
from bot.core.coach import Coach, InvalidOpener
from bot.core.flow import CoachingFlow
from bot.core.input_check import clean_text
from bot.core.models import ConversationKey, IncomingMessage, ReplyKind
from bot.core.redact import redact
from tests.test_team import MANAGER, said, team_flow  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
OPENER = "Hi Sarah, how are your planners splitting dispatch between the two depots{} since the move?"


@pytest.mark.parametrize(
    "broken",
    ["\ud83d", "\ude00", "\udc80\udcff", "\ud83d\ud83d", "\ud83d\ude00"],
    ids=["high half", "low half", "undecodable bytes", "two high halves", "a whole pair"],
)
def test_half_an_emoji_is_coached_not_a_crash(coach: Coach, broken: str) -> None:
    card = coach.coach(OPENER.format(broken))
    assert card.language == "en" and 0 <= card.score <= 100
    for finding in card.findings:
        finding.evidence.encode("utf-8")  # nothing unencodable reaches a channel


def test_a_whole_surrogate_pair_becomes_its_emoji() -> None:
    assert clean_text("ok \ud83d\ude00") == "ok 😀"
    assert clean_text("ok \ud83d") == "ok \ufffd"
    assert clean_text("plain") == "plain"


async def test_the_conversation_survives_a_broken_emoji(flow: CoachingFlow) -> None:
    key = ConversationKey(channel="telegram", user_id="u1", conversation_id="c1")
    reply = await flow.handle(IncomingMessage(key=key, text=OPENER.format("\ud83d")))
    assert reply.kind is ReplyKind.CARD
    rewrite = await flow.handle(IncomingMessage(key=key, text=OPENER.format("\ude00 and why")))
    assert rewrite.kind is ReplyKind.COMPARISON  # the opener was stored, surrogate and all


def test_fournil_coach_reads_undecodable_bytes_from_the_command_line(cli_env: dict[str, str]) -> None:
    argument = b"Hi Sarah, how are your planners \xff\xfe splitting dispatch between the depots?"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--no-search", "coach", "--json", argument],
        env=cli_env,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "en", "fr"),
    [
        ("مرحبا سارة، كيف تتعامل مع الشحن في موقع رينو اليوم؟", "Arabic", "arabe"),
        ("שלום שרה, איך הצוות שלך מתכנן את המעבר למחסן החדש?", "Hebrew", "hébreu"),
        ("Здравствуйте, Сара! Как ваша команда планирует переезд склада?", "Cyrillic", "cyrillique"),
        ("你好，我们是一家领先的物流软件公司，您下周有空通话吗？", "Chinese", "chinois"),
        ("こんにちは、物流の件でご連絡しました。", "Japanese", "japonais"),
        ("안녕하세요, 물류 센터 이전 계획은 어떻게 되시나요?", "Korean", "coréen"),
    ],
)
def test_an_opener_in_another_script_is_declined_by_name(coach: Coach, text: str, en: str, fr: str) -> None:
    with pytest.raises(InvalidOpener) as english:
        coach.coach(text)
    assert english.value.problem.code == "other_language" and en in str(english.value)
    french = coach.invalid_message(english.value.problem, "fr")
    assert fr in french


def test_a_foreign_name_inside_an_english_opener_is_still_coached(coach: Coach) -> None:
    card = coach.coach(
        "Hi Olga, saw that Газпром нефть opened the Omsk site. How is your team planning the move?"
    )
    assert card.language == "en"


@pytest.mark.parametrize(
    "command", ["/report ²", "/report ³", "/report ٣", "/drill cancel ³", "/drill cancel ²²"]
)
async def test_digits_that_are_not_ascii_get_the_usage(team_flow: CoachingFlow, command: str) -> None:  # noqa: F811
    reply = await team_flow.handle(said(MANAGER, command))
    assert reply.kind is ReplyKind.NOTICE and "/" in reply.text


async def test_a_huge_schedule_number_is_unknown_not_an_overflow(team_flow: CoachingFlow) -> None:  # noqa: F811
    reply = await team_flow.handle(said(MANAGER, "/drill cancel 99999999999999999999999"))
    assert reply.kind is ReplyKind.NOTICE


BAIT = ['"', "*", "'", "«", "_", ">", "!?.", "…", "0-", "0 ", "06 ", "+3", "[[", "Hi ", "@a."]


@pytest.mark.parametrize("unit", BAIT)
def test_redaction_after_repetition_bait_still_hides_the_prospect(unit: str) -> None:
    """However much bait comes first (and however much of it the parsing budget reads), the
    real number and email after it are hidden, and redacting again changes nothing."""
    text = unit * (7900 // len(unit)) + "\nCall Sarah on 06 12 34 56 78 or sarah@acme.fr"
    once = redact(text)
    assert "06 12 34 56 78" not in once and "sarah@acme.fr" not in once
    assert redact(once) == once


@pytest.mark.parametrize("unit", BAIT)
def test_the_analysis_reads_repetition_bait(coach: Coach, unit: str) -> None:
    analysis = analyse_opener(unit * (8000 // len(unit)), "en", coach.lexicons["en"])
    assert all(sentence.text for sentence in analysis.sentences)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(codec=None, categories=None), max_size=400))
def test_any_unicode_is_coached_or_declined(coach: Coach, text: str) -> None:
    """Surrogates, RTL marks, zero-width and combining characters included."""
    try:
        card = coach.coach(text)
    except InvalidOpener as invalid:
        assert str(invalid)
    else:
        assert 0 <= card.score <= 100
