"""Question angles follow from the opener's findings and topic, are the same wherever the
opener is coached, and are open questions in the opener's language (prompts/angles/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.core.analysis import question_form
from bot.core.angles import choose_angles, load_angles
from bot.core.coach import Coach
from bot.core.errors import KnowledgeError
from bot.core.flow import CoachingFlow
from bot.core.lexicon import load_lexicons
from bot.core.models import Category, ConversationKey, IncomingMessage, ReplyKind
from bot.core.redact import redact

ROOT = Path(__file__).resolve().parent.parent
LEXICONS = load_lexicons(ROOT / "knowledge" / "rules" / "lexicons")
ANGLES = load_angles(ROOT / "prompts" / "angles", set(LEXICONS))
STEMS = [
    pytest.param(lang, stem.text, id=f"{angle.id}-{lang}-{index}")
    for angle in ANGLES
    for lang, stems in sorted(angle.stems.items())
    for index, stem in enumerate(stems)
]
EITHER_OR = {"en": re.compile(r"\bor\b", re.IGNORECASE), "fr": re.compile(r"\bou\b", re.IGNORECASE)}

PITCH = (
    "Hi Dana, Shiftly is the leading AI-powered scheduling platform for retailers. Our customers "
    "cut overtime by 30% in the first month. What do you think?"
)
MEETING = "Hi Dana, would you have 15 minutes next Tuesday for a quick call?"
FR_PITCH = (
    "Bonjour Paul, notre solution de facturation électronique automatise vos relances et réduit "
    "vos impayés de 30 %. Qu'en pensez-vous ?"
)
FR_MEETING = "Bonjour Marie, seriez-vous disponible jeudi pour un court échange de vingt minutes ?"


@pytest.mark.parametrize(("lang", "stem"), STEMS)
def test_every_stem_is_an_open_question(lang: str, stem: str) -> None:
    """Read by the project's own question-form reader, never an either/or, and a stem the
    rep completes (a "…"), never a whole message."""
    lexicon = LEXICONS[lang]
    assert question_form(stem, lexicon) == "open", stem
    assert question_form(stem.rstrip(" ?"), lexicon) == "open", stem
    assert not EITHER_OR[lang].search(stem), f"either/or: {stem}"
    assert lexicon.choice is None or not lexicon.choice.search(stem), f"either/or: {stem}"
    assert "…" in stem and stem.endswith("?")


def test_every_category_has_an_angle_and_every_angle_a_general_stem() -> None:
    addressed = {category for angle in ANGLES for category in angle.addresses}
    assert addressed == set(Category)
    for angle in ANGLES:
        for lang in LEXICONS:
            assert any(not stem.topics for stem in angle.stems[lang]), f"{angle.id}: {lang}"


@pytest.mark.parametrize(
    "opener",
    [
        PITCH,
        MEETING,
        FR_PITCH,
        FR_MEETING,
        "Why did you pick Lisbon over Porto?",
        "Hi Sarah, reach me at tom@datacorp.io or +1 415 555 0134. Are you free Tuesday for a call?",
        "Bonjour Mme Garnier, mon collègue Ophélie Martin m'a parlé de vous. Avez-vous un outil de paie ?",
    ],
)
def test_same_opener_same_angles_even_from_its_redacted_copy(coach: Coach, opener: str) -> None:
    """What the card shows is what /findings shows: the conversation keeps only a redacted
    copy of the opener and coaches it again."""
    card = coach.coach(opener)
    assert len(card.questions) == 3
    assert coach.coach(opener).questions == card.questions
    assert coach.coach(redact(opener), card.language).questions == card.questions


@pytest.mark.parametrize(
    "typed",
    [
        "Hi Sarah, reach me at tom@datacorp.io or +1 415 555 0134. Are you free Tuesday for a call?",
        # With a hash of the text choosing the stems, this one's /findings showed other angles.
        "Bonjour Mme Garnier, mon collègue Ophélie Martin m'a parlé de vous. Avez-vous un outil de paie ?",
    ],
)
async def test_findings_command_shows_the_cards_angles(flow: CoachingFlow, typed: str) -> None:
    key = ConversationKey(channel="test", user_id="angles", conversation_id="c1")
    first = await flow.handle(IncomingMessage(key=key, text=typed))
    again = await flow.handle(IncomingMessage(key=key, text="/findings"))
    assert first.card is not None and again.card is not None
    assert again.kind == ReplyKind.CARD and again.all_findings
    assert again.card.questions == first.card.questions


@pytest.mark.parametrize(
    ("pitch", "meeting"),
    [(PITCH, MEETING), (FR_PITCH, FR_MEETING)],
    ids=["en", "fr"],
)
def test_a_pitch_and_a_meeting_ask_get_the_angles_of_their_findings(
    coach: Coach, pitch: str, meeting: str
) -> None:
    cards = {}
    for name, opener, expected_first in (
        ("pitch", pitch, Category.PITCH),
        ("meeting", meeting, Category.MEETING_ASK),
    ):
        card = coach.coach(opener)
        assert card.categories[0] == expected_first, (name, card.categories)
        analysis = coach.analyse(opener, card.language)
        choices = choose_angles(
            analysis.body_norm, card.language, card.findings, analysis.context_anchor is not None, ANGLES
        )
        assert [choice.stem for choice in choices] == card.questions
        # The first angle answers the most serious finding, and answers it best of all angles.
        first = choices[0]
        assert first.serves == expected_first
        assert first.angle.rank_for(expected_first) == 0
        for choice in choices:
            if choice.serves is not None:
                assert choice.serves in card.categories and choice.serves in choice.angle.addresses
        cards[name] = (card, [choice.angle.id for choice in choices])
    assert cards["pitch"][1][0] == "impact"
    assert cards["meeting"][1][0] == "priorities"
    assert cards["pitch"][0].questions != cards["meeting"][0].questions


@pytest.mark.parametrize(
    ("opener", "lang"),
    [
        (FR_PITCH, "fr"),
        (FR_MEETING, "fr"),
        ("Pourquoi avez-vous choisi Lisbonne plutôt que Porto ?", "fr"),
        (PITCH, "en"),
        ("Why did you pick Lisbon over Porto?", "en"),
    ],
)
def test_angles_come_in_the_openers_language(coach: Coach, opener: str, lang: str) -> None:
    card = coach.coach(opener)
    assert card.language == lang
    own = {stem.text for angle in ANGLES for stem in angle.stems[lang]}
    assert card.questions and set(card.questions) <= own


@pytest.mark.parametrize(
    ("first", "second", "topic_first", "topic_second"),
    [
        (
            "Are you hiring new drivers for the spring?",
            "Are you still paying supplier invoices by hand?",
            "hiring",
            "finance",
        ),
        (
            "Recrutez-vous de nouveaux chauffeurs pour le printemps ?",
            "Saisissez-vous encore les factures fournisseurs à la main ?",
            "hiring",
            "finance",
        ),
    ],
    ids=["en", "fr"],
)
def test_the_openers_topic_picks_the_stems(
    coach: Coach, first: str, second: str, topic_first: str, topic_second: str
) -> None:
    """Same findings (a closed question), different topics: different stems, each tied to
    its opener's topic."""
    one, two = coach.coach(first), coach.coach(second)
    assert one.categories == two.categories == [Category.CLOSED_QUESTION]
    for card, topic in ((one, topic_first), (two, topic_second)):
        tied = {stem.text for angle in ANGLES for stem in angle.stems[card.language] if topic in stem.topics}
        assert card.questions and set(card.questions) <= tied, (topic, card.questions)
    assert not set(one.questions) & set(two.questions)


def test_an_opener_on_no_topic_gets_general_stems(coach: Coach) -> None:
    card = coach.coach("Why did you pick Lisbon over Porto?")
    general = {stem.text for angle in ANGLES for stem in angle.stems["en"] if not stem.topics}
    assert set(card.questions) <= general


@pytest.mark.parametrize(
    ("opener", "lang"),
    [
        ("Why did you pick Lisbon over Porto?", "en"),
        ("Pourquoi avez-vous choisi Lisbonne plutôt que Porto ?", "fr"),
        ("Pourquoi vous avez quitté Nantes pour Rennes ?", "fr"),
    ],
)
def test_a_why_about_their_choice_is_a_light_finding_with_its_angle(
    coach: Coach, opener: str, lang: str
) -> None:
    card = coach.coach(opener)
    assert card.categories == [Category.WHY_QUESTION]
    why = card.findings[0]
    assert why.severity == "low" and why.principle == "open-questions" and why.source == "rule"
    assert card.ends_as_real_question  # open, unlike a closed question
    # Light: the low penalty, once, in the card's reasons.
    penalties = [line.points for line in card.explanation if line.points < 0]
    assert penalties == [-coach.weights.penalty["low"]]
    # Its angle comes first: what made the choice right, asked so the buyer explains it.
    what_made_it = next(angle for angle in ANGLES if angle.id == "what-made-it")
    assert card.questions[0] in {stem.text for stem in what_made_it.stems[lang]}


@pytest.mark.parametrize(
    "opener",
    [
        "What made Lisbon the right choice over Porto?",
        "Qu'est-ce qui faisait de Lisbonne le bon choix face à Porto ?",
        'Your talk "Why did you build it yourself?" stayed with me. What did the room push back on?',
        "That's why you opened Rennes, I guess: how is hiring going there?",
        "C'est pourquoi vous avez ouvert Rennes, j'imagine : comment se passe le recrutement ?",
        "I can see why you picked Lisbon. How are you hiring there?",
    ],
)
def test_a_why_that_is_not_about_their_choice_is_not_flagged(coach: Coach, opener: str) -> None:
    assert Category.WHY_QUESTION not in coach.coach(opener).categories


def test_a_stem_tied_to_an_unknown_topic_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "angles"
    (directory / "topics").mkdir(parents=True)
    for lang in LEXICONS:
        (directory / "topics" / f"{lang}.yaml").write_text(
            f"lang: {lang}\ntopics:\n  hiring: [recruit\\w*]\n", encoding="utf-8"
        )
    stems = "\n".join(
        f'  {lang}:\n    - "How … ?"\n    - {{text: "What … ?", topics: [payroll]}}'
        for lang in sorted(LEXICONS)
    )
    (directory / "one.yaml").write_text(
        f"id: one\nkind: one\nprinciple: open-questions\nstems:\n{stems}\n", encoding="utf-8"
    )
    with pytest.raises(KnowledgeError, match=r"one\.yaml: stems\.\w+: .*unknown topic\(s\) payroll"):
        load_angles(directory, set(LEXICONS))
