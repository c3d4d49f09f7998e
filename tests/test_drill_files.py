"""Every drill and onboarding file, one test each, failures naming the file; plus the loaders'
error messages, drill choice and the onboarding check."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.core.drills import Drill, DrillLibrary, load_drill
from bot.core.errors import KnowledgeError
from bot.core.lexicon import load_lexicons
from bot.core.models import Category
from bot.core.onboarding import OnboardingPath, OnboardingStep, StepCheck, check_passed, load_step
from bot.core.rules import load_rules
from bot.knowledge.check import drill_problems, opener_trigger_problem
from bot.knowledge.principles import PrincipleStore

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
DRILLS = ROOT / "prompts" / "drills"
ONBOARDING = ROOT / "prompts" / "onboarding"
LEXICONS = load_lexicons(KNOWLEDGE / "rules" / "lexicons")
LANGUAGES = set(LEXICONS)
RULES = load_rules(KNOWLEDGE / "rules", LANGUAGES)
# Kept ids and their aliases, from the principle files that load (those that do not fail
# their own test in test_rule_files.py).
KNOWN = PrincipleStore(PrincipleStore.load_each(KNOWLEDGE / "principles")[0]).names
DRILL_FILES = sorted(DRILLS.glob("*.yaml"))
ONBOARDING_FILES = sorted(ONBOARDING.glob("*.md"))
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


def _concerning(problems: list[str], path: Path) -> list[str]:
    return [problem for problem in problems if problem.startswith(f"{path}:")]


def _found_categories(opener: str, lang: str) -> set[str]:
    from bot.core.analysis import analyse_opener
    from bot.core.diagnosis import diagnose_opener

    return {str(f.category) for f in diagnose_opener(analyse_opener(opener, lang, LEXICONS[lang]), RULES)}


@pytest.mark.parametrize("path", DRILL_FILES + ONBOARDING_FILES, ids=lambda p: p.name)
def test_prompt_file(path: Path) -> None:
    """Loads, has its translations and known principles, and its opener shows what it trains."""
    if path.suffix == ".yaml":
        drill = load_drill(path)
        problems = _concerning(DrillLibrary.load(DRILLS).problems(LANGUAGES, KNOWN), path)
        assert not problems, "\n".join(problems)
        if drill.opener is not None:
            problem = opener_trigger_problem(
                path, drill.opener, drill.lang, drill.categories, RULES, LEXICONS
            )
            assert problem is None, problem
            # Stricter than `kb check` for the shipped drills: every trained category shows.
            missing = {str(c) for c in drill.categories} - _found_categories(drill.opener, drill.lang)
            assert not missing, f"{path.name}: opener does not show {sorted(missing)}"
    else:
        step = load_step(path)
        problems = _concerning(OnboardingPath.load(ONBOARDING).problems(LANGUAGES, KNOWN), path)
        assert not problems, "\n".join(problems)
        problem = opener_trigger_problem(path, step.opener, step.lang, step.check.avoid, RULES, LEXICONS)
        assert problem is None, problem
        assert step.check.avoid, f"{path.name}: check.avoid is empty"
        assert 55 <= step.check.min_score <= 70, f"{path.name}: min_score {step.check.min_score}"
        words = len(_WORD.findall(step.lesson))
        assert 60 <= words <= 140, f"{path.name}: lesson has {words} words (60-140)"


def test_drill_collection_covers_every_category_and_level() -> None:
    library = DrillLibrary.load(DRILLS)
    assert len(library.ids()) >= 16
    for lang in LANGUAGES:
        drills = library.for_language(lang)
        assert {c for d in drills for c in d.categories} == set(Category), lang
        assert {d.level for d in drills} == {1, 2, 3}, lang
    assert library.problems(LANGUAGES, KNOWN) == []


def test_onboarding_path_is_nine_steps_in_every_language() -> None:
    path = OnboardingPath.load(ONBOARDING)
    assert len(path) == 9
    for lang in LANGUAGES:
        assert [s.step for s in path.steps(lang)] == list(range(1, 10)), lang
    first = path.step(1, "en")
    assert first is not None and first.principle == "markets-are-conversations"
    assert path.step(10, "en") is None
    assert path.problems(LANGUAGES, KNOWN) == []


# --- broken files -------------------------------------------------------------------------

GOOD_DRILL: dict[str, Any] = {
    "id": "sample-drill",
    "lang": "en",
    "title": "A sample drill",
    "level": 2,
    "categories": ["pressure"],
    "principles": ["trust-not-pressure"],
    "buyer": "Operations director at a regional carrier",
    "context": "You wrote twice without an answer; the carrier opened a depot since.",
    "opener": "Just bumping this to the top of your inbox.",
    "instruction": "Rework it into one open question about the new depot.",
    "good_answer": ["It mentions the depot.", "It asks one open question."],
}


def _write_drill(directory: Path, data: dict[str, Any], name: str = "sample-drill.en.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_good_sample_drill_loads(tmp_path: Path) -> None:
    drill = load_drill(_write_drill(tmp_path, GOOD_DRILL))
    assert drill.categories == [Category.PRESSURE]


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize(
    ("data", "name", "field"),
    [
        (_without(GOOD_DRILL, "instruction"), "sample-drill.en.yaml", "instruction"),
        ({**GOOD_DRILL, "lang": "fr"}, "sample-drill.en.yaml", "lang"),
        ({**GOOD_DRILL, "id": "other-drill"}, "sample-drill.en.yaml", "id"),
        ({**GOOD_DRILL, "level": 4}, "sample-drill.en.yaml", "level"),
        ({**GOOD_DRILL, "categories": ["shouting"]}, "sample-drill.en.yaml", "categories.0"),
        ({**GOOD_DRILL, "categories": []}, "sample-drill.en.yaml", "categories"),
        ({**GOOD_DRILL, "good_answer": ["Only one point."]}, "sample-drill.en.yaml", "good_answer"),
        ({**GOOD_DRILL, "opener": "  "}, "sample-drill.en.yaml", "opener"),
        ({**GOOD_DRILL, "colour": "red"}, "sample-drill.en.yaml", "colour"),
        (GOOD_DRILL, "sample-drill.yaml", "(file name)"),
    ],
)
def test_broken_drill_names_file_and_field(
    tmp_path: Path, data: dict[str, Any], name: str, field: str
) -> None:
    path = _write_drill(tmp_path, data, name)
    with pytest.raises(KnowledgeError) as caught:
        load_drill(path)
    assert caught.value.path == path
    assert caught.value.field == field
    assert str(path) in str(caught.value) and field in str(caught.value)


def test_bad_yaml_drill_names_file(tmp_path: Path) -> None:
    path = tmp_path / "sample-drill.en.yaml"
    path.write_text("id: sample-drill\ncategories: [pressure\n", encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        DrillLibrary.load(tmp_path)
    assert caught.value.path == path and caught.value.field == "yaml"


def test_missing_or_empty_drill_directory_is_an_empty_library(tmp_path: Path) -> None:
    assert len(DrillLibrary.load(tmp_path / "absent")) == 0
    assert DrillLibrary.load(tmp_path).ids() == []


def test_duplicate_drill_is_refused() -> None:
    drill = Drill.model_validate(GOOD_DRILL)
    with pytest.raises(KnowledgeError, match="duplicate"):
        DrillLibrary([(Path("a/sample-drill.en.yaml"), drill), (Path("b/sample-drill.en.yaml"), drill)])


def test_drill_problems_name_the_file(tmp_path: Path) -> None:
    path = _write_drill(tmp_path, {**GOOD_DRILL, "principles": ["no-such-principle"]})
    problems = DrillLibrary.load(tmp_path).problems({"en", "fr"}, KNOWN)
    assert f"{path}: missing translation 'fr'" in problems
    assert f"{path}: principles: unknown principle 'no-such-principle'" in problems
    fr = _write_drill(tmp_path, {**GOOD_DRILL, "lang": "fr", "level": 3}, "sample-drill.fr.yaml")
    problems = DrillLibrary.load(tmp_path).problems({"en", "fr"}, KNOWN)
    assert not any("missing translation" in p for p in problems)
    assert f"{fr}: level: differs from {path.name}" in problems


def test_opener_that_shows_none_of_its_categories_is_reported(tmp_path: Path) -> None:
    harmless = "Your new depot opened near the port. How are you planning the routes from it?"
    path = _write_drill(tmp_path, {**GOOD_DRILL, "opener": harmless})
    _write_drill(tmp_path, {**GOOD_DRILL, "lang": "fr", "opener": None}, "sample-drill.fr.yaml")
    problems = drill_problems(tmp_path, LANGUAGES, KNOWN, RULES, LEXICONS)
    assert problems == [f"{path}: opener: triggers none of its categories (found: nothing)"]
    _write_drill(tmp_path, GOOD_DRILL)
    assert drill_problems(tmp_path, LANGUAGES, KNOWN, RULES, LEXICONS) == []


# --- choose -------------------------------------------------------------------------------


def _library() -> DrillLibrary:
    return DrillLibrary(_library_entries())


def _library_entries() -> list[tuple[Path, Drill]]:
    entries: list[tuple[Path, Drill]] = []
    for drill_id, lang, level in [
        ("alpha", "en", 1),
        ("beta", "en", 1),
        ("gamma", "en", 2),
        ("delta", "en", 3),
        ("alpha", "fr", 1),
        ("epsilon", "fr", 2),
    ]:
        drill = Drill.model_validate({**GOOD_DRILL, "id": drill_id, "lang": lang, "level": level})
        entries.append((Path(f"{drill_id}.{lang}.yaml"), drill))
    return entries


def test_choose_honours_language_and_level() -> None:
    library, rng = _library(), random.Random(7)
    assert library.ids() == ["alpha", "beta", "delta", "epsilon", "gamma"]
    assert {library.choose("fr", rng).id for _ in range(50)} == {"alpha", "epsilon"}  # type: ignore[union-attr]
    assert {library.choose("en", rng, level=1).id for _ in range(50)} == {"alpha", "beta"}  # type: ignore[union-attr]
    picked = library.choose("fr", rng, level=2)
    assert picked is not None and (picked.id, picked.lang) == ("epsilon", "fr")
    assert library.choose("fr", rng, level=3) is None
    assert library.choose("de", rng) is None


def test_choose_prefers_drills_not_recently_posted() -> None:
    library, rng = _library(), random.Random(3)
    assert {library.choose("en", rng, exclude={"alpha", "gamma"}).id for _ in range(50)} == {  # type: ignore[union-attr]
        "beta",
        "delta",
    }
    assert {library.choose("en", rng, level=1, exclude=["alpha"]).id for _ in range(20)} == {"beta"}  # type: ignore[union-attr]
    # Everything was posted recently: repeat one rather than post nothing.
    again = library.choose("en", rng, level=1, exclude={"alpha", "beta"})
    assert again is not None and again.id in {"alpha", "beta"}


def test_choose_is_reproducible_with_a_seed() -> None:
    def picks(library: DrillLibrary, seed: int) -> list[str]:
        rng = random.Random(seed)
        return [library.choose("en", rng).id for _ in range(30)]  # type: ignore[union-attr]

    library = _library()
    assert picks(library, 11) == picks(library, 11)  # the same seed, the same drills
    assert len(set(picks(library, 11))) > 1  # drawn from the seeded generator, not fixed
    assert len({tuple(picks(library, seed)) for seed in range(5)}) > 1  # the seed matters
    # and whatever order the files were read in (candidates are sorted before drawing)
    shuffled = DrillLibrary(list(reversed(_library_entries())))
    assert picks(shuffled, 11) == picks(library, 11)


# --- onboarding ---------------------------------------------------------------------------

GOOD_STEP = """---
id: 01-sample-step
step: 1
lang: en
title: A sample step
principle: open-questions
exercise: Rework this opener into one open question.
opener: "Are you interested in a quick demo of our platform?"
check:
  min_score: 60
  avoid: [closed_question]
---
A short lesson.
"""


def _write_step(directory: Path, text: str, name: str = "01-sample-step.en.md") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_sample_step_loads(tmp_path: Path) -> None:
    step = load_step(_write_step(tmp_path, GOOD_STEP))
    assert step.check == StepCheck(min_score=60, avoid=[Category.CLOSED_QUESTION], require_question=True)
    assert step.lesson == "A short lesson."


@pytest.mark.parametrize(
    ("broken", "name", "field"),
    [
        (GOOD_STEP.replace("title: A sample step\n", ""), "01-sample-step.en.md", "title"),
        (GOOD_STEP.replace("  min_score: 60\n", ""), "01-sample-step.en.md", "check.min_score"),
        (GOOD_STEP.replace("min_score: 60", "min_score: 120"), "01-sample-step.en.md", "check.min_score"),
        (GOOD_STEP.replace("[closed_question]", "[rudeness]"), "01-sample-step.en.md", "check.avoid.0"),
        (GOOD_STEP.replace("A short lesson.\n", ""), "01-sample-step.en.md", "lesson"),
        (GOOD_STEP.replace("lang: en", "lang: fr"), "01-sample-step.en.md", "lang"),
        (GOOD_STEP.replace("step: 1", "step: 2"), "01-sample-step.en.md", "step"),
        (GOOD_STEP.replace("id: 01-sample-step", "id: sample-step"), "sample-step.en.md", "id"),
        (
            GOOD_STEP.replace("avoid: [closed_question]", "avoid: [closed_question"),
            "01-sample-step.en.md",
            "front matter",
        ),
        ("no front matter at all", "01-sample-step.en.md", "front matter"),
    ],
)
def test_broken_step_names_file_and_field(tmp_path: Path, broken: str, name: str, field: str) -> None:
    path = _write_step(tmp_path, broken, name)
    with pytest.raises(KnowledgeError) as caught:
        OnboardingPath.load(tmp_path)
    assert caught.value.path == path
    assert caught.value.field == field
    assert str(path) in str(caught.value)


def test_onboarding_problems_name_gaps_and_translations(tmp_path: Path) -> None:
    _write_step(tmp_path, GOOD_STEP)
    third = GOOD_STEP.replace("01-sample-step", "03-third-step").replace("step: 1", "step: 3")
    third_path = _write_step(
        tmp_path, third.replace("open-questions", "no-such-principle"), "03-third-step.en.md"
    )
    path = OnboardingPath.load(tmp_path)
    assert len(path) == 2 and [s.step for s in path.steps("en")] == [1, 3]
    problems = path.problems({"en", "fr"}, KNOWN)
    assert f"{tmp_path / '01-sample-step.en.md'}: missing translation 'fr'" in problems
    assert any(p.startswith(f"{third_path}: step: 3 should be 2") for p in problems), problems
    assert f"{third_path}: principle: unknown principle 'no-such-principle'" in problems
    assert len(OnboardingPath.load(tmp_path / "absent")) == 0


def test_check_passed_returns_the_unmet_criteria() -> None:
    check = StepCheck(min_score=60, avoid=[Category.MEETING_ASK, Category.PITCH])
    assert check_passed(check, 75, [], has_question=True) == []
    assert check_passed(check, 60, ["jargon"], has_question=True) == []
    assert check_passed(check, 59, [], has_question=True) == ["score"]
    assert check_passed(check, 80, [Category.PITCH, "jargon"], has_question=True) == ["avoid:pitch"]
    assert check_passed(check, 10, ["pitch", "meeting_ask"], has_question=False) == [
        "score",
        "avoid:meeting_ask",
        "avoid:pitch",
        "question",
    ]
    lenient = StepCheck(min_score=0, require_question=False)
    assert check_passed(lenient, 0, ["pitch"], has_question=False) == []


def test_step_model_is_frozen() -> None:
    step = OnboardingStep(
        id="01-x-y",
        step=1,
        lang="en",
        title="Title",
        principle="open-questions",
        exercise="Rework this opener.",
        opener="Are you free on Tuesday?",
        check=StepCheck(min_score=60),
        lesson="Text.",
    )
    with pytest.raises(Exception, match="frozen"):
        step.title = "Other"  # type: ignore[misc]
