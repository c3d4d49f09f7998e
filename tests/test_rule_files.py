"""Every rule, principle, angle and UI file, one test each, failures naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.angles import load_angles
from bot.core.coach import Coach
from bot.core.lexicon import load_lexicons
from bot.core.rules import load_rule, rule_paths
from bot.core.ui import load_ui, ui_key_problems
from bot.knowledge.check import check_knowledge, rule_example_problems
from bot.knowledge.principles import PrincipleStore, load_principle

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
PROMPTS = ROOT / "prompts"
LEXICONS = load_lexicons(KNOWLEDGE / "rules" / "lexicons")
RULE_FILES = rule_paths(KNOWLEDGE / "rules")
PRINCIPLE_FILES = sorted((KNOWLEDGE / "principles").glob("*.md"))


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_examples(path: Path) -> None:
    """Each rule's `trigger` examples fire it and its `pass` examples do not."""
    rule = load_rule(path, set(LEXICONS))
    problems = rule_example_problems(rule, LEXICONS)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_cites_known_principle_and_covers_languages(path: Path) -> None:
    rule = load_rule(path, set(LEXICONS))
    store = PrincipleStore.load(KNOWLEDGE / "principles")
    assert rule.principle in store.ids, f"{path.name}: unknown principle {rule.principle}"
    assert {e.lang for e in rule.examples.trigger} == set(LEXICONS), (
        f"{path.name}: trigger examples per language"
    )
    assert {e.lang for e in rule.examples.pass_} == set(LEXICONS), f"{path.name}: pass examples per language"


@pytest.mark.parametrize("path", PRINCIPLE_FILES, ids=lambda p: p.name)
def test_principle_file(path: Path) -> None:
    principle = load_principle(path)
    assert principle.summary and principle.sources, path.name


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
