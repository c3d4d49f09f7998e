"""Every figure in a principle carries a source a reader can check, or says it is a house
rule or a seed essay's claim; every source listed is cited; and the strong example passes
Fournil's own diagnosis. Small tables of text, and real files in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.knowledge.check import (
    ExampleDiagnosis,
    cited_markers,
    source_entry_problems,
    sourcing_problems,
    split_sentences,
    strong_example,
    unsourced_figures,
)
from bot.knowledge.principles import PrincipleStore, load_principle
from tests.knowledge.kb_files import SEED, write_principle

ROOT = Path(__file__).resolve().parents[2]
RACKHAM = "Neil Rackham, SPIN Selling, McGraw-Hill, 1988, chap. 2"
HUFF = "Darrell Huff, How to Lie with Statistics, W. W. Norton, 1954, pp. 43-48"


@pytest.mark.parametrize(
    ("text", "lang", "unsourced"),
    [
        ("Replies fall by half past 100 words [1].", "en", []),
        ("Replies fall by half past 100 words.", "en", ["Replies fall by half past 100 words."]),
        ("Replies fall by half past 100 words. [1] Keep it short.", "en", []),
        ("Ask one question; 2 is already too many (house rule).", "en", []),
        ("Une seule question : 2, c'est déjà trop (règle maison).", "fr", []),
        (
            "Ask one question; 2 is already too many (règle maison).",  # the other language's label
            "en",
            ["Ask one question; 2 is already too many (règle maison)."],
        ),
        ("The essay counts 6 to 7 people in a buying group (seed essay).", "en", []),
        ("L'essai compte 6 à 7 personnes dans un groupe d'achat (essai fondateur).", "fr", []),
        ("We sell B2B software and plan for Q3.", "en", []),  # no figure
        ("Rackham watched 35,000 calls, e.g. in 23 countries [1].", "en", []),
        ("W. W. Norton printed 3 editions [2].", "en", []),
        (
            "Les acheteurs lisent 3 lignes au plus [1]. En 2019, une étude a dit l'inverse.",
            "fr",
            ["En 2019, une étude a dit l'inverse."],
        ),
        ("- 30 % of replies [1]\n- 70 % of silence", "en", ["- 70 % of silence"]),
    ],
)
def test_figures_need_a_marker_or_a_label(text: str, lang: str, unsourced: list[str]) -> None:
    assert unsourced_figures(text, lang) == unsourced


def test_sentences_keep_their_trailing_marker() -> None:
    assert split_sentences("First 10 words. [1] Then more (house rule). Last one!") == [
        "First 10 words. [1]",
        "Then more (house rule).",
        "Last one!",
    ]
    assert cited_markers("as shown [2] and [1, 3]; not 4") == {1, 2, 3}


@pytest.mark.parametrize(
    ("source", "problems"),
    [
        (RACKHAM, []),
        (HUFF, []),
        ("Neil Rackham, SPIN Selling, McGraw-Hill, 1988, p. 12", []),
        ("Boomerang, 7 Tips for Getting More Responses, 2016, https://blog.boomerangapp.com/x", []),
        ("Neil Rackham, SPIN Selling, McGraw-Hill, p. 12", ["no 4-digit year"]),
        ("Neil Rackham, SPIN Selling, McGraw-Hill, 1988", ["no page (p. 12), chapter (chap. 4) or URL"]),
        ("Someone, Some Book", ["no 4-digit year", "no page (p. 12), chapter (chap. 4) or URL"]),
        (SEED, []),  # the project's own essays: cited by title
    ],
)
def test_a_source_entry_is_checkable(source: str, problems: list[str]) -> None:
    assert source_entry_problems(source) == problems


def test_a_fully_sourced_file_passes(tmp_path: Path) -> None:
    path = write_principle(
        tmp_path,
        "sample",
        sources=[RACKHAM, SEED],
        summary="Ask about the buyer's world before anything else.",
        idea="In 35,000 observed calls, questions about needs won more deals [1].",
        why="The essay puts 6 to 7 people in a buying group (seed essay). Ask 1 question (house rule).",
    )
    assert sourcing_problems(load_principle(path)) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"idea": "Replies fall by half past 100 words."},
            "section 'Idea': figure without a source: 'Replies fall by half past 100 words.' "
            "(add [n], or (house rule) if it is one)",
        ),
        (
            {"summary": "Keep it under 80 words, always."},
            "summary: figure without a source: 'Keep it under 80 words, always.' "
            "(add [n], or (house rule) if it is one)",
        ),
        (
            {"sources": [RACKHAM, HUFF], "idea": "Needs questions won more deals [1]."},
            f"sources[2]: never cited as [2] in the text: '{HUFF}'",
        ),
        (
            {"idea": "Needs questions won more deals [3]."},
            "section 'Idea': [3] cites no source (sources has 1)",
        ),
        (
            {"sources": ["Neil Rackham, SPIN Selling, chap. 2"]},
            "sources[1]: no 4-digit year: 'Neil Rackham, SPIN Selling, chap. 2'",
        ),
        (
            {"sources": [RACKHAM], "why": "The essay puts 6 to 7 people around a purchase (seed essay)."},
            "section 'Why it works': (seed essay) but no 'Seed essay:' entry in sources",
        ),
    ],
)
def test_sourcing_problems_name_file_and_field(
    tmp_path: Path, fields: dict[str, object], expected: str
) -> None:
    path = write_principle(tmp_path, "sample", **fields)  # type: ignore[arg-type]
    assert f"{path}: {expected}" in sourcing_problems(load_principle(path))


@pytest.fixture(scope="module")
def diagnosis(tmp_path_factory: pytest.TempPathFactory) -> ExampleDiagnosis:
    """The shipped rules and detectors (what `fournil coach` runs), over a small base."""
    directory = tmp_path_factory.mktemp("principles")
    write_principle(directory, "sample")
    return ExampleDiagnosis.load(ROOT / "knowledge", ROOT / "prompts", PrincipleStore.load(directory))


def test_a_strong_example_the_coach_flags_fails_naming_the_category(
    tmp_path: Path, diagnosis: ExampleDiagnosis
) -> None:
    good = write_principle(tmp_path, "good")
    flagged = write_principle(
        tmp_path,
        "flagged",
        strong="Hi Dana, we are the leading AI-powered platform for logistics. "
        "Are you free for a 15-minute demo on Thursday?",
    )
    examples = [strong_example(load_principle(path)) for path in (good, flagged)]
    assert examples[1].startswith("Hi Dana, we are") and ">" not in examples[1]
    diagnosis.prime(examples)  # both openers' sentences embedded in one batch
    assert diagnosis.problems(load_principle(good)) == []
    [line] = diagnosis.problems(load_principle(flagged))
    assert line.startswith(f"{flagged}: strong example: Fournil's own diagnosis flags it: ")
    assert "meeting_ask" in line


def test_a_strong_example_the_coach_cannot_read_is_named(tmp_path: Path, diagnosis: ExampleDiagnosis) -> None:
    path = write_principle(tmp_path, "empty", strong="🙂")
    [line] = diagnosis.problems(load_principle(path))
    assert line.startswith(f"{path}: strong example: Fournil cannot coach it: ")
