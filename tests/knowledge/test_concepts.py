"""The concept glossary: the same question asked in French and in English meets the same
concepts, so its word ranking does not depend on the language."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.errors import KnowledgeError
from bot.knowledge.check import check_knowledge
from bot.knowledge.concepts import ConceptGlossary, ConceptRanking

ROOT = Path(__file__).resolve().parents[2]
GLOSSARY = ROOT / "knowledge" / "concepts.yaml"


@pytest.fixture(scope="module")
def glossary() -> ConceptGlossary:
    return ConceptGlossary.load(GLOSSARY, {"en", "fr"})


@pytest.mark.parametrize(
    ("english", "french", "concept"),
    [
        ("How do I follow up without nagging?", "Comment relancer sans harceler ?", "follow-up"),
        ("Can I ask for a meeting in my first email?", "Un rendez-vous dès le premier mail ?", "meeting-ask"),
        ("Three people sign off on the purchase", "Trois personnes valident l’achat", "decision-maker"),
        ("The prospect ghosted me after the demo", "Le prospect ne répond plus depuis la démo", "no-reply"),
    ],
)
def test_a_question_meets_the_same_concept_in_both_languages(
    glossary: ConceptGlossary, english: str, french: str, concept: str
) -> None:
    assert concept in glossary.concepts(english, "en")
    assert concept in glossary.concepts(french, "fr")


@pytest.mark.parametrize(
    ("text", "lang", "concept"),
    [
        ("Il répond souvent le soir.", "fr", "listening"),
        ("Une vision claire du marché.", "fr", "video"),
        ("N'hésitez pas à me contacter.", "fr", "objection"),
        ("Don't hesitate to reach out.", "en", "objection"),
        ("Je relis ton mail.", "fr", "tone-style"),
        ("Le groupe d'achat se réunit lundi.", "fr", "company-organisation"),
        ("Merci pour la mise en relation.", "fr", "relationship"),
    ],
)
def test_look_alike_words_do_not_meet_a_concept(
    glossary: ConceptGlossary, text: str, lang: str, concept: str
) -> None:
    """ "souvent" is not a memory, "n'hésitez pas" is no objection, "ton mail" is no tone."""
    assert concept not in glossary.concepts(text, lang)


def test_both_versions_of_a_question_rank_principles_alike(glossary: ConceptGlossary) -> None:
    ranking = ConceptRanking.build(
        glossary,
        [
            ("follow-ups", "en", "A follow-up should bring something new, not just check in."),
            ("follow-ups", "fr", "Une relance doit apporter du neuf."),
            ("meetings", "en", "Ask for interest before asking for a meeting."),
            ("meetings", "fr", "Demandez l'intérêt avant le rendez-vous."),
        ],
    )
    english = ranking.scores("How should I chase a prospect who went quiet?", "en")
    french = ranking.scores("Comment relancer un prospect qui ne répond plus ?", "fr")
    assert max(english, key=english.__getitem__) == max(french, key=french.__getitem__) == "follow-ups"


def test_a_concept_every_principle_shares_does_not_rank(glossary: ConceptGlossary) -> None:
    ranking = ConceptRanking.build(
        glossary,
        [("a", "en", "a question about the buyer"), ("b", "en", "another question for the buyer")],
    )
    assert ranking.scores("a question", "en") == {}


def test_text_without_craft_words_meets_no_concept(glossary: ConceptGlossary) -> None:
    assert glossary.concepts("", "en") == {}
    assert glossary.concepts("🙂🙂🙂", "fr") == {}
    assert glossary.concepts("follow up", "de") == {}  # a language without words


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("concepts:\n  follow-up:\n    en: ['follow[- ]?ups?']\n", "concepts.follow-up"),
        ("concepts:\n  follow-up:\n    en: ['(unclosed']\n    fr: ['relance']\n", "concepts.follow-up.en"),
        ("concepts:\n  Follow_Up:\n    en: ['x']\n    fr: ['y']\n", "concepts.Follow_Up"),
        ("concepts:\n  follow-up:\n    en: []\n    fr: ['relance']\n", "concepts.follow-up.en"),
        ("concepts: [1, 2]\n", "concepts"),
        ("concepts:\n  follow-up: {en: [x\n", "yaml"),
    ],
)
def test_broken_glossary_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "concepts.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        ConceptGlossary.load(path, {"en", "fr"})
    assert str(path) in str(caught.value) and field in str(caught.value)


def test_kb_check_reports_a_broken_glossary(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    for part in ("principles", "rules", "detectors"):
        (knowledge / part).symlink_to(ROOT / "knowledge" / part)
    for name in ("scoring.yaml", "search.yaml", "offtopic.yaml"):
        (knowledge / name).symlink_to(ROOT / "knowledge" / name)
    (knowledge / "concepts.yaml").write_text("concepts:\n  follow-up:\n    en: ['chase']\n", encoding="utf-8")
    problems = check_knowledge(knowledge, ROOT / "prompts")
    assert problems == [f"{knowledge / 'concepts.yaml'}: concepts.follow-up: no words for fr"]


def test_counts_are_cached_and_recounted_when_the_base_changes(
    glossary: ConceptGlossary, tmp_path: Path
) -> None:
    cache = tmp_path / "data" / "concept-counts.json"
    documents = [
        ("follow-ups", "en", "A follow-up should bring news."),
        ("meetings", "fr", "Le rendez-vous."),
    ]
    first = ConceptRanking.build(glossary, documents, cache=cache)
    assert cache.is_file()
    stored = cache.read_text(encoding="utf-8")
    again = ConceptRanking.build(glossary, list(reversed(documents)), cache=cache)  # order is irrelevant
    assert cache.read_text(encoding="utf-8") == stored
    assert again.scores("how do I follow up?", "en") == first.scores("how do I follow up?", "en")

    changed = [
        ("follow-ups", "en", "Bring something."),
        ("meetings", "fr", "Une relance, puis le rendez-vous."),
    ]
    ranking = ConceptRanking.build(glossary, changed, cache=cache)
    assert cache.read_text(encoding="utf-8") != stored
    assert "meetings" in ranking.scores("comment relancer ?", "fr")


def test_a_damaged_cache_is_recounted(glossary: ConceptGlossary, tmp_path: Path) -> None:
    cache = tmp_path / "concept-counts.json"
    cache.write_bytes(b"\x00{not json")
    documents = [("follow-ups", "fr", "Une relance utile."), ("meetings", "fr", "Le rendez-vous.")]
    ranking = ConceptRanking.build(glossary, documents, cache=cache)
    assert list(ranking.scores("relancer", "fr")) == ["follow-ups"]
    assert cache.read_text(encoding="utf-8").startswith('{"key"')
