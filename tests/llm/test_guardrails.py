"""Each guardrail on a table of texts, French and English: what passes and what does not."""

from __future__ import annotations

import pytest

from bot.core.coach import Coach
from bot.core.models import Category
from bot.llm.guardrails import (
    MessageShape,
    as_stem,
    citations_allowed,
    in_language,
    known_category,
    note_problem,
    reads_as_message,
    verbatim_span,
)
from bot.llm.second_opinion import RULE, merge_findings


@pytest.fixture(scope="module")
def shape(coach: Coach) -> MessageShape:
    return MessageShape.from_lexicons(coach.lexicons)


MESSAGE_LIKE = [
    ("Hi Sarah, how are you handling late shipments today?", True),
    ("Hello,\nwhat does your team track?", True),
    ("Bonjour Marie, comment gérez-vous les retards ?", True),
    ("Ask yourself what Marie's team does today. « Bonjour Marie, je voulais vous présenter »", True),
    ("What does Sarah's team do today when a shipment is late?\n\nBest regards,\nTom", True),
    ("Qu'est-ce qui bloque son équipe aujourd'hui ?\nCordialement", True),
    (
        "Our platform helps logistics teams reduce late shipments by thirty percent within the first "
        "quarter, and we would be glad to walk you through the results our customers have seen so far.",
        True,
    ),
    (
        "Notre plateforme aide les équipes logistiques à réduire les retards de trente pour cent dès le "
        "premier trimestre, et nous serions ravis de vous présenter les résultats que nos clients "
        "ont déjà obtenus.",
        True,
    ),
    ("What do you know about how Sarah's team learns that a shipment is late?", False),
    ("Your opener talks about your platform. What do you know about their week?", False),
    ("Votre accroche parle de vous. Que savez-vous de sa semaine ?", False),
    ("Best way to find out: what does her team measure today?", False),
    (
        "What do you know about how Sarah's team learns that a shipment between Lille and Lyon is "
        "running late, who hears about it first, and what they do in the hour after they find out?",
        False,
    ),
]


@pytest.mark.parametrize(("text", "expected"), MESSAGE_LIKE)
def test_reads_as_message(text: str, expected: bool, shape: MessageShape) -> None:
    assert reads_as_message(text, shape) is expected


LANGUAGE = [
    ("How is your team handling … today?", "en", True),
    ("How is your team handling … today?", "fr", False),
    ("Comment votre équipe gère-t-elle … aujourd'hui ?", "fr", True),
    ("Comment votre équipe gère-t-elle … aujourd'hui ?", "en", False),
    ("Comment gérez-vous le onboarding … ?", "fr", True),  # lingua says English; the grammar words say French
    ("Quel KPI suivez-vous pour … ?", "fr", True),
    ("Which KPI do you track for … ?", "en", True),
    ("¿Cómo gestiona su equipo los retrasos de las entregas hoy en día?", "en", False),
    ("Wie geht Ihr Team heute mit verspäteten Lieferungen um?", "fr", False),
    ("… ?", "en", False),
]


@pytest.mark.parametrize(("text", "lang", "expected"), LANGUAGE)
def test_in_language(text: str, lang: str, expected: bool, coach: Coach) -> None:
    assert in_language(text, lang, coach.detector, coach.lexicons) is expected


STEMS = [
    ("How is your team handling … today?", "How is your team handling … today?"),
    ("How is your team handling ... today?", "How is your team handling … today?"),
    ("Que se passe-t-il chez vous quand … déraille ?", "Que se passe-t-il chez vous quand … déraille ?"),
    ("What changed for your team since …", None),  # not a question
    ("Is … handled by your team, or by a partner?", None),  # an either/or
    ("Est-ce … votre équipe qui gère, ou bien un prestataire ?", None),
    ("  Comment  gérez-vous …   aujourd'hui ?  ", "Comment gérez-vous … aujourd'hui ?"),
    ("How is your team handling late shipments today?", None),  # no gap: a finished question
    ("Comment gérez-vous les retards aujourd'hui ?", None),
    ("Hi Sarah, how is your team handling … today?", None),
    ("We cut delays by 30 %. How do you handle … today?", None),  # two sentences
    ("How do you handle …? And who decides …?", None),
    ("What " + "really " * 30 + "matters about … ?", None),
]


@pytest.mark.parametrize(("text", "expected"), STEMS)
def test_as_stem(text: str, expected: str | None, shape: MessageShape) -> None:
    assert as_stem(text, shape) == expected


NOTES = [
    ("What do you already know about how Sarah's team learns that a shipment is late?", None),
    ("Que savez-vous déjà de la façon dont son équipe apprend un retard ? Qui le paie ?", None),
    ("Your opener is about you. Think about her week.", "not_socratic"),
    ("Votre accroche parle de vous.", "not_socratic"),
    ("Hi Sarah, what does your team track?", "message_like"),
    ("One. Two. Three. What does she track?", "message_like"),  # more than three sentences
]


@pytest.mark.parametrize(("text", "expected"), NOTES)
def test_note_problem(text: str, expected: str | None, shape: MessageShape) -> None:
    assert note_problem(text, shape) == expected


OPENER = "Bonjour [name], nous aidons les équipes comme la vôtre… Seriez-vous dispo jeudi ? C’est l’idéal."
EVIDENCE = [
    ("nous aidons les équipes comme la vôtre", "nous aidons les équipes comme la vôtre"),
    ("Nous aidons  les équipes", "nous aidons les équipes"),  # case and spacing retyped
    ("« Seriez-vous dispo jeudi ? »", "Seriez-vous dispo jeudi ?"),  # quoted by the model
    ("c'est l'idéal", "C’est l’idéal"),  # straight apostrophes for curly ones
    ("la vôtre... Seriez-vous", "la vôtre… Seriez-vous"),
    ("nous aidons les PME comme la vôtre", None),  # a paraphrase
    ("we help teams like yours", None),  # a translation
    ("Bonjour Marie, nous aidons les équipes", None),  # the name the model never saw
    ("", None),
    ("…", None),
]


@pytest.mark.parametrize(("quote", "expected"), EVIDENCE)
def test_verbatim_span(quote: str, expected: str | None) -> None:
    assert verbatim_span(quote, OPENER) == expected


ALLOWED = [Category.PITCH, Category.PRESSURE, Category.UNPROVEN_CLAIM]
CATEGORIES = [
    ("pitch", Category.PITCH),
    (" Pressure ", Category.PRESSURE),
    ("unproven_claim", Category.UNPROVEN_CLAIM),
    ("too_long", None),  # in the vocabulary, but counted by rules: not the model's to say
    ("synergy", None),
    ("pitch, pressure", None),
    ("", None),
]


@pytest.mark.parametrize(("name", "expected"), CATEGORIES)
def test_known_category(name: str, expected: Category | None) -> None:
    assert known_category(name, ALLOWED) == expected


CITATIONS = [
    (["open-questions"], "Ask what or how.", True),
    (["open-questions", "brevity"], "Ask what or how (open-questions), briefly (brevity).", True),
    (["open-questions"], "Ask what or how, see [trust-not-pressure].", False),
    (["trust-not-pressure"], "Ask what or how.", False),
    ([], "Ask what or how.", False),
    (["open-questions"], "Ask what or how (and follow up) — why not?", True),
]


@pytest.mark.parametrize(("cited", "answer", "expected"), CITATIONS)
def test_citations_allowed(cited: list[str], answer: str, expected: bool) -> None:
    assert citations_allowed(cited, answer, ["open-questions", "brevity"]) is expected


def test_merge_keeps_the_embedded_findings_and_adds_only_new_categories(coach: Coach) -> None:
    card = coach.coach("We are the leading platform for logistics teams. Can we book a demo on Thursday?")
    assert Category.PITCH in card.categories
    llm = [
        card.findings[0].model_copy(update={"source": "llm", "rule": RULE, "message": "LLM's own words"}),
        card.findings[0].model_copy(update={"source": "llm", "rule": RULE, "category": Category.PRESSURE}),
        card.findings[0].model_copy(update={"source": "llm", "rule": RULE, "category": Category.PRESSURE}),
    ]
    merged = merge_findings(card.findings, llm)
    assert merged[: len(card.findings)] == card.findings
    assert [f.category for f in merged[len(card.findings) :]] == [Category.PRESSURE]
    assert len({(f.category, f.source) for f in merged if f.source == "llm"}) == 1
    assert merge_findings(card.findings, []) == card.findings
