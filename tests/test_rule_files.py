"""Every rule, principle, angle and UI file, one test each, failures naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.angles import load_angles
from bot.core.coach import Coach
from bot.core.lexicon import load_lexicons
from bot.core.rules import load_rule, rule_paths
from bot.core.ui import load_ui, ui_key_problems
from bot.knowledge.check import (
    ExampleDiagnosis,
    check_knowledge,
    principle_file_problems,
    rule_example_problems,
    strong_example,
)
from bot.knowledge.principles import PrincipleStore

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
PROMPTS = ROOT / "prompts"
LEXICONS = load_lexicons(KNOWLEDGE / "rules" / "lexicons")
RULE_FILES = rule_paths(KNOWLEDGE / "rules")
PRINCIPLE_FILES = sorted((KNOWLEDGE / "principles").glob("*.md"))


@pytest.fixture(scope="module")
def principle_store() -> PrincipleStore:
    """The principles that load (a file that does not fails its own test, not all of them)."""
    return PrincipleStore(PrincipleStore.load_each(KNOWLEDGE / "principles")[0])


@pytest.fixture(scope="module")
def diagnosis(principle_store: PrincipleStore) -> ExampleDiagnosis:
    """What `fournil coach` runs, rules and learned detectors; every strong example's
    sentences embedded in one batch."""
    found = ExampleDiagnosis.load(KNOWLEDGE, PROMPTS, principle_store)
    found.prime(strong_example(principle) for principle in principle_store.all())
    return found


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_examples(path: Path) -> None:
    """Each rule's `trigger` examples fire it and its `pass` examples do not."""
    rule = load_rule(path, set(LEXICONS))
    problems = rule_example_problems(rule, LEXICONS)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_cites_known_principle_and_covers_languages(path: Path, principle_store: PrincipleStore) -> None:
    rule = load_rule(path, set(LEXICONS))
    assert principle_store.resolve(rule.principle) is not None, (
        f"{path.name}: unknown principle {rule.principle} (neither an id nor an alias)"
    )
    assert {e.lang for e in rule.examples.trigger} == set(LEXICONS), (
        f"{path.name}: trigger examples per language"
    )
    assert {e.lang for e in rule.examples.pass_} == set(LEXICONS), f"{path.name}: pass examples per language"


@pytest.mark.parametrize("path", PRINCIPLE_FILES, ids=lambda p: p.name)
def test_principle_file(path: Path, principle_store: PrincipleStore, diagnosis: ExampleDiagnosis) -> None:
    """Loads; its `related` ids and aliases resolve without collision; every figure has a
    source, every source is cited and checkable; Fournil's own diagnosis finds nothing in
    its strong example. Each problem is one line naming this file."""
    problems = principle_file_problems(path, principle_store, diagnosis)
    assert not problems, "\n".join(problems)


def test_every_category_is_covered_in_both_languages() -> None:
    from bot.core.models import Category

    rules = [load_rule(p, set(LEXICONS)) for p in RULE_FILES]
    assert {r.category for r in rules} == set(Category)


def test_angles_and_ui_are_complete() -> None:
    angles = load_angles(PROMPTS / "angles", set(LEXICONS))
    assert {a.kind for a in angles} >= {
        "trigger_event",
        "current_process",
        "impact",
        "priorities",
        "buying_group",
    }
    assert not ui_key_problems(load_ui(PROMPTS / "ui"))


def test_kb_check_is_clean() -> None:
    assert check_knowledge(KNOWLEDGE, PROMPTS) == []


def test_coach_loads_the_same_knowledge(coach: Coach) -> None:
    assert len(coach.rules) == len(RULE_FILES)
