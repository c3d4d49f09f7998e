"""`ask` answers written by the LLM from the retrieved principles, through the stub server."""

from __future__ import annotations

import json

import pytest

from bot.core.coach import Coach
from bot.core.ports import PrincipleText
from tests.llm.conftest import LlmFactory
from tests.llm.stub_server import Reply

RETRIEVED = ["open-questions", "interest-before-meeting"]
QUESTIONS = {
    "en": "How do I ask for a meeting with paul.martin@acme.fr without sounding pushy? "
    "He gave me +33 6 12 34 56 78",
    "fr": "Comment demander un rendez-vous à paul.martin@acme.fr sans forcer ? "
    "Il m'a donné le 06 12 34 56 78",
}
ANSWERS = {
    "en": "Earn the meeting first: ask an open question about their situation (open-questions), and "
    "suggest a call only once they have shown interest (interest-before-meeting).",
    "fr": "Méritez d'abord le rendez-vous : posez une question ouverte sur sa situation (open-questions), et "
    "proposez un échange seulement quand il a montré de l'intérêt (interest-before-meeting).",
}


def principles(coach: Coach, lang: str) -> list[PrincipleText]:
    found = [coach.principles.describe(pid, lang) for pid in RETRIEVED]
    assert all(p is not None for p in found)
    return [p for p in found if p is not None]


@pytest.mark.parametrize("lang", ["en", "fr"])
async def test_an_answer_cites_the_principles_found(lang: str, coach: Coach, llm: LlmFactory) -> None:
    reply = Reply(payload={"answer": ANSWERS[lang], "principles": RETRIEVED})
    async with llm({"ask_answer": reply}) as (llm_coach, stub):
        outcome = await llm_coach.answer(QUESTIONS[lang], principles(coach, lang), lang)
    assert outcome.status.status == "used" and outcome.notice is None
    assert outcome.value is not None
    assert outcome.value.text == ANSWERS[lang] and outcome.value.cited == RETRIEVED
    [request] = stub.received
    data = json.loads(request.message("user"))
    assert [p["id"] for p in data["principles"]] == RETRIEVED
    assert data["principles"][0]["summary"] == principles(coach, lang)[0].summary
    body = json.dumps(request.body, ensure_ascii=False)
    for private in ("paul.martin@acme.fr", "06 12 34 56 78", "6 12 34 56 78"):
        assert private not in body
    assert "[email]" in data["question"] and "[phone]" in data["question"]
    schema = request.body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["principles"]["items"]["enum"] == RETRIEVED


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            {"answer": ANSWERS["en"], "principles": ["open-questions", "cold-calls-and-voicemail"]},
            "unknown_citation",
        ),
        (
            {"answer": ANSWERS["en"] + " See also (trust-not-pressure).", "principles": RETRIEVED},
            "unknown_citation",
        ),
        ({"answer": ANSWERS["en"], "principles": []}, "unknown_citation"),
        ({"answer": ANSWERS["fr"], "principles": RETRIEVED}, "wrong_language"),
        (
            {
                "answer": "Here is what you could send:\n\nHi Paul,\n"
                "Would you be open to a quick call on Thursday?\nBest regards,\nTom",
                "principles": RETRIEVED,
            },
            "message_like",
        ),
        ({"answer": "", "principles": RETRIEVED}, "malformed"),
        ({"text": ANSWERS["en"]}, "malformed"),
    ],
    ids=["uncited-id", "inline-id", "no-citation", "french", "email", "empty", "wrong-shape"],
)
async def test_an_answer_that_fails_a_check_is_not_shown(
    payload: dict[str, object], reason: str, coach: Coach, llm: LlmFactory
) -> None:
    async with llm({"ask_answer": Reply(payload=payload)}) as (llm_coach, _):
        outcome = await llm_coach.answer(QUESTIONS["en"], principles(coach, "en"), "en")
    assert outcome.value is None
    assert outcome.status.status == "fallback" and outcome.status.reason == reason
    assert outcome.notice is not None and outcome.notice.startswith("the LLM part was skipped: ")


async def test_no_principle_no_call(llm: LlmFactory) -> None:
    """An off-topic question is refused by the search before any call: nothing to ground
    an answer on, so nothing is sent."""
    async with llm({"ask_answer": Reply(payload={"answer": "…", "principles": []})}) as (llm_coach, stub):
        outcome = await llm_coach.answer("What's the capital of Peru?", [], "en")
    assert outcome.value is None and outcome.status.status == "fallback" and outcome.status.reason is None
    assert stub.received == []


async def test_a_server_error_on_ask_falls_back(coach: Coach, llm: LlmFactory) -> None:
    async with llm({"ask_answer": Reply(status=502)}) as (llm_coach, _):
        outcome = await llm_coach.answer(QUESTIONS["fr"], principles(coach, "fr"), "fr")
    assert outcome.value is None and outcome.status.reason == "http_error"
    assert outcome.notice == "la partie LLM a été écartée : le serveur LLM a répondu par une erreur"
