"""Fixtures of the LLM tests: the real coach, the real langchain client, a stub server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.core.coach import Coach
from bot.llm import LlmCoach, LlmMetrics
from bot.settings import load_settings
from tests.llm.stub_server import Reply, Script, StubLlm, running

# A weak-ish opener per language, with an email, a phone and a greeting name to redact,
# and words the embedded coach reads as a pitch (so an LLM "pitch" is a duplicate).
OPENERS = {
    "en": (
        "Hi Sarah, we help teams like yours move faster. How are you handling late shipments "
        "between Lille and Lyon today? Tom, tom.baker@acme-logistics.com, +1 415 555 0132"
    ),
    "fr": (
        "Bonjour Marie, nous aidons les équipes comme la vôtre à aller plus vite. Comment gérez-vous "
        "les retards de livraison entre Lille et Lyon aujourd'hui ? Paul, paul.martin@acme.fr, 06 12 34 56 78"
    ),
}
CLAIMS = {"en": "we help teams like yours move faster", "fr": "nous aidons les équipes comme la vôtre"}
PRIVATE = {
    "en": ["Sarah", "tom.baker@acme-logistics.com", "415 555 0132", "4155550132"],
    "fr": ["Marie", "paul.martin@acme.fr", "06 12 34 56 78", "0612345678"],
}
GOOD_NOTES = {
    "en": {
        "note": "What do you already know about how Sarah's team learns that a shipment is late? "
        "Which of those delays costs her the most?",
        "questions": [
            "How does your team find out that a shipment between … is running late?",
            "What happens on your side when a delivery to … slips by a day?",
        ],
    },
    "fr": {
        "note": "Que savez-vous déjà de la façon dont l'équipe de Marie apprend "
        "qu'une livraison est en retard ? "
        "Lequel de ces retards lui coûte le plus ?",
        "questions": [
            "Comment votre équipe apprend-elle qu'une livraison entre … prend du retard ?",
            "Que se passe-t-il chez vous quand une livraison à … glisse d'un jour ?",
        ],
    },
}


def good_opinion(lang: str) -> dict[str, Any]:
    return {
        "findings": [
            {"category": "pitch", "evidence": CLAIMS[lang]},  # the card has it already
            {"category": "unproven_claim", "evidence": CLAIMS[lang]},
            {"category": "jargon", "evidence": "our revolutionary AI-powered platform"},  # not in the opener
            {"category": "synergy", "evidence": CLAIMS[lang]},  # not a category
        ]
    }


def good_script(lang: str) -> dict[str, Reply]:
    return {
        "second_opinion": Reply(payload=good_opinion(lang)),
        "coaching_note": Reply(payload=GOOD_NOTES[lang]),
    }


LlmFactory = Callable[..., AbstractAsyncContextManager[tuple[LlmCoach, StubLlm]]]


@pytest.fixture
def llm(coach: Coach) -> LlmFactory:
    """`async with llm(script, llm_timeout=…) as (llm_coach, stub)`: a stub server on
    127.0.0.1 and an LlmCoach built from settings pointing at it, as a deployment would."""

    @asynccontextmanager
    async def make(
        script: Script | dict[str, Reply], metrics: LlmMetrics | None = None, **overrides: Any
    ) -> AsyncIterator[tuple[LlmCoach, StubLlm]]:
        async with running(StubLlm(script)) as stub:
            values: dict[str, Any] = {
                "data_dir": Path("unused-data-dir"),
                "llm": "openai:stub-model",
                "llm_base_url": stub.base_url,
                "llm_timeout": 5.0,
            }
            values.update(overrides)
            llm_coach = LlmCoach.from_settings(load_settings(**values), coach, metrics)
            assert llm_coach is not None
            yield llm_coach, stub

    return make
