"""A rep pastes an opener and gets a coach card; then compares a rewrite."""

from __future__ import annotations

import pytest

from bot.core.analysis import question_form
from bot.core.coach import Coach, InvalidOpener
from bot.core.models import Category

WEAK_EN = (
    "Hi Sarah, I'm Tom from DataCorp. We are a leading provider of AI-powered analytics "
    "solutions. Would you be open to a 15-minute call next week to see a demo?"
)
STRONG_EN = (
    "Hi Sarah, I saw that Northwind is opening a second warehouse in Lyon next spring. "
    "How are you planning to split picking between the two sites?"
)
WEAK_FR = (
    "Bonjour Marie, je me permets de vous contacter car notre solution innovante aide les PME "
    "à réduire leurs coûts de 30 %. Seriez-vous disponible pour une démo jeudi ?"
)
STRONG_FR = (
    "Bonjour Marie, j’ai vu que votre usine de Chartres recrute douze techniciens de maintenance. "
    "Comment organisez-vous leur intégration pendant les premières semaines ?"
)


def test_weak_opener_gets_findings_low_score_and_principles(coach: Coach) -> None:
    card = coach.coach(WEAK_EN)
    assert card.language == "en"
    assert {Category.PITCH, Category.MEETING_ASK, Category.CLOSED_QUESTION} <= set(card.categories)
    assert card.score < 40
    cited = {f.principle for f in card.findings}
    assert cited == {p.id for p in card.principles}
    assert all(p.title for p in card.principles)
    assert card.buying_group_nudge


def test_strong_opener_lands_clearly_above_weak(coach: Coach) -> None:
    strong, weak = coach.coach(STRONG_EN), coach.coach(WEAK_EN)
    assert strong.findings == []
    assert strong.score >= 80
    assert strong.score - weak.score >= 40
    reasons = " ".join(line.reason for line in strong.explanation)
    assert "open question" in reasons


def test_french_opener_gets_a_french_card(coach: Coach) -> None:
    card = coach.coach(WEAK_FR)
    assert card.language == "fr"
    assert {Category.SELF_FOCUS, Category.MEETING_ASK, Category.CLOSED_QUESTION} <= set(card.categories)
    assert all("?" in q for q in card.questions)
    assert any(word in card.findings[0].message for word in ("l'acheteur", "vous", "votre"))
    strong = coach.coach(STRONG_FR)
    assert strong.language == "fr" and strong.findings == [] and strong.score >= 80


def test_language_can_be_forced(coach: Coach) -> None:
    assert coach.coach(STRONG_EN, "fr").language == "fr"


def test_json_contract_of_the_card(coach: Coach) -> None:
    data = coach.coach(WEAK_EN).model_dump(mode="json")
    assert set(data) == {"language", "score", "findings", "questions", "principles", "llm", "note"}
    # No LLM configured: said so, and nothing of one on the card (docs/contracts.md).
    assert data["llm"] == {"status": "off", "model": None, "reason": None} and data["note"] is None
    assert set(data["findings"][0]) == {
        "rule",
        "category",
        "severity",
        "excerpt",
        "message",
        "principle",
        "source",
        "evidence",
        "confidence",
    }
    assert set(data["principles"][0]) == {"id", "title"}
    assert data["findings"][0]["severity"] in {"high", "medium", "low"}
    for finding in data["findings"]:
        assert finding["source"] in {"rule", "model"}
        assert finding["evidence"] and finding["evidence"].rstrip("…") in " ".join(WEAK_EN.split())
        assert (finding["confidence"] is None) == (finding["source"] == "rule")


@pytest.mark.parametrize("text", [WEAK_EN, STRONG_EN, WEAK_FR, STRONG_FR])
def test_questions_are_stems_never_a_message(coach: Coach, text: str) -> None:
    card = coach.coach(text)
    assert 2 <= len(card.questions) <= 3
    for stem in card.questions:
        assert "…" in stem and stem.endswith("?")
        assert len(stem.split()) <= 15
        lowered = stem.lower()
        assert not lowered.startswith(("hi", "hello", "bonjour", "dear"))
        assert "regards" not in lowered and "cordialement" not in lowered


def test_excerpt_quotes_the_reps_own_words(coach: Coach) -> None:
    """Every excerpt is a piece of the opener as typed (curly apostrophes included), not a
    normalised copy; "…" only marks where a long quote was cut."""
    typed = (
        "Bonjour Marie, nous sommes le leader de l’analyse prédictive. "
        "Seriez-vous d’accord pour un appel de 15 minutes ?"
    )
    card = coach.coach(typed)
    assert len(card.findings) >= 3
    for finding in card.findings:
        parts = [part.strip() for part in finding.excerpt.split("…") if part.strip()]
        assert parts, finding
        for part in parts:
            assert part in typed, (finding.rule, finding.excerpt)
    assert any("’" in finding.excerpt for finding in card.findings)


def test_compare_reports_resolved_remaining_and_new(coach: Coach) -> None:
    rewrite = (
        "Hi Sarah, your post on churn cohorts made me think about renewals. "
        "How is your team deciding which accounts get a call before renewal?"
    )
    comparison = coach.compare(WEAK_EN, rewrite)
    assert comparison.delta == comparison.after.score - comparison.before.score
    assert comparison.delta > 30
    assert Category.MEETING_ASK in comparison.resolved
    assert comparison.new == []
    worse = coach.compare(STRONG_EN, WEAK_EN)
    assert worse.delta < 0 and Category.PITCH in worse.new


@pytest.mark.parametrize(
    ("text", "lang", "form"),
    [
        ("Given the new rules, how are you adapting", "en", "open"),
        ("Are you open to a quick call", "en", "closed"),
        ("Would next Tuesday or Wednesday work for you", "en", "closed"),
        ("Is the harder part requalifying the parts, or rebuilding the lanes", "en", "open"),
        ("Curious how you're handling onboarding", "en", "open"),
        ("Comment gérez-vous le recrutement", "fr", "open"),
        ("Qu'avez-vous essayé en premier", "fr", "open"),
        ("Qu’est-ce qui vous freine", "fr", "open"),
        ("Avez-vous déjà pensé à externaliser", "fr", "closed"),
        ("Est-ce que vous seriez dispo jeudi", "fr", "closed"),
        ("Vous êtes dispo jeudi", "fr", "closed"),
        ("Tu es dispo quand", "fr", "open"),
        ("Dans quelle mesure cela vous impacte", "fr", "open"),
        ("Et vous, comment faites-vous", "fr", "open"),
    ],
)
def test_question_form(coach: Coach, text: str, lang: str, form: str) -> None:
    assert question_form(text.lower().replace("’", "'"), coach.lexicons[lang]) == form


def test_french_typography_nbsp_and_guillemets(coach: Coach) -> None:
    card = coach.coach(
        "Bonjour Paul, votre tribune « Le fret de nuit » m’a marqué. Qu’est-ce qui a changé depuis\u202f?"
    )
    assert card.language == "fr"
    assert Category.NO_QUESTION not in card.categories
    assert Category.CLOSED_QUESTION not in card.categories


def test_subtle_cases_are_not_flagged(coach: Coach) -> None:
    peers = coach.coach(
        "Many CFOs I talk with say the new lease rules doubled their close time. "
        "How is it landing for your team this quarter?"
    )
    assert Category.SELF_FOCUS not in peers.categories
    news = coach.coach(
        "Following up because the new EU packaging regulation was published on Monday. "
        "How is your team reading the reuse targets?"
    )
    assert Category.PRESSURE not in news.categories
    nagging = coach.coach("Just following up on my previous email. Did you get a chance to read it?")
    assert Category.PRESSURE in nagging.categories


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("😀🚀🔥", "no_words"),
        ("https://example.com/offer", "only_url"),
        ("hi", "too_short"),
        ("\x00\x01binary\x02", "binary"),
        ("a" * 9000, "too_big"),
        ("Hallo Herr Becker, wie organisieren Sie heute die Logistik in Ihrem Lager?", "other_language"),
    ],
)
def test_bad_input_is_declined_with_a_reason(coach: Coach, text: str, code: str) -> None:
    with pytest.raises(InvalidOpener) as caught:
        coach.coach(text)
    assert caught.value.problem.code == code
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "lang", "greeting"),
    [
        ("Hi Sarah, how are you planning the winter routes?", "en", "Hi Sarah,"),
        ("Dear Dr. Smith, how does your ward plan night shifts?", "en", "Dear Dr. Smith,"),
        ("Hey Dana 🙌 Huge fan of your profile and your amazing journey!", "en", "Hey Dana"),
        ("Hi Sarah how are you planning the winter routes?", "en", "Hi Sarah"),
        ("Hi Tom — how do you keep stale admin accounts from coming back?", "en", "Hi Tom —"),
        ("Bonjour Madame Martin, comment planifiez-vous les tournées ?", "fr", "Bonjour Madame Martin,"),
        ("Salut Léa 👋 ton post sur les ruptures m'a parlé", "fr", "Salut Léa"),
    ],
)
def test_the_greeting_stops_at_the_name(coach: Coach, text: str, lang: str, greeting: str) -> None:
    """A greeting without a comma must not swallow the start of the message, where a
    finding may hide ("Hey Dana 🙌 Huge fan of your profile…" is flattery)."""
    assert coach.analyse(text, lang).greeting == greeting


def test_flattery_right_after_an_unpunctuated_greeting_is_seen(coach: Coach) -> None:
    card = coach.coach("Hey Dana 🙌 Huge fan of your profile and your amazing journey!", "en")
    assert Category.FAKE_PERSONALIZATION in card.categories


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("Hi, is that Mr. Obi? It's Hannah from Tillcraft. What will you watch on the rollout?", False),
        ("Is that Sarah? How are your planners splitting the routes this winter?", False),
        ("Bonjour, je suis bien au service informatique ? Comment gérez-vous les pannes ?", False),
        ("Bonjour, c'est bien Madame Henry ? Comment gérez-vous les abonnés absents ?", False),
        ("Is that a priority for you this year? What are you working on?", True),
        ("C'est bien ça ? Comment gérez-vous les commandes ?", True),
        ("Vous êtes bien équipés ? Comment gérez-vous les commandes ?", True),
    ],
)
def test_a_call_openers_check_of_who_answered_is_no_question(coach: Coach, text: str, asks: bool) -> None:
    """On the phone, "is that Mr. Obi?" checks who picked up; it asks the buyer nothing."""
    categories = {c.value for c in coach.coach(text).categories}
    assert ("closed_question" in categories) is asks
    assert ("stacked_questions" in categories) is asks
