"""Arbitrary text never breaks the coach: no exception, the score stays within 0-100."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.coach import Coach, InvalidOpener
from bot.core.flow import CoachingFlow
from bot.core.models import ReplyKind
from bot.store.memory import MemoryStore

WORDS = st.sampled_from(
    [
        "you",
        "your",
        "we",
        "our",
        "platform",
        "call",
        "15",
        "minutes",
        "?",
        "Avez-vous",
        "comment",
        "vous",
        "notre",
        "démo",
        "{first_name}",
        "[Company]",
        "«",
        "»",
        "\u202f?",
        "😀",
        "how",
        "What",
        "guaranteed",
        "300%",
        "just",
        "following",
        "up",
        "\n",
        "Hi",
        "Bonjour",
        ",",
        ".",
        "!",
        "est-ce",
        "que",
    ]
)
TEXTS = st.one_of(st.text(max_size=400), st.lists(WORDS, max_size=60).map(" ".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS)
def test_diagnosis_never_raises_and_score_is_bounded(coach: Coach, text: str) -> None:
    try:
        card = coach.coach(text)
    except InvalidOpener as invalid:
        assert str(invalid) and "\n" not in str(invalid)
        return
    assert 0 <= card.score <= 100
    assert len(card.questions) >= 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS)
def test_flow_always_answers(coach: Coach, text: str) -> None:
    flow = CoachingFlow(coach, MemoryStore())
    reply = flow.coach_text(text)
    assert reply.text
    if reply.kind == ReplyKind.CARD:
        assert reply.card is not None and 0 <= reply.card.score <= 100
