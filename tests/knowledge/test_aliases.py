"""A principle merged into another keeps its old id as an alias: every lookup (cards, rules,
drills, "why?" buttons on cards sent before the merge, evaluation sets) finds the kept
principle, what is shown carries the kept id, and `kb check` names any id that nothing
resolves, or an alias two principles claim, in one line with the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from bot.channels.telegram.callbacks import explain_data, parse_callback
from bot.core.coach import Coach
from bot.core.drills import DrillLibrary
from bot.core.flow import CoachingFlow
from bot.core.models import Category, ReplyKind
from bot.evaluation import kept_ids
from bot.knowledge.check import check_knowledge, principle_file_problems
from bot.knowledge.principles import PrincipleStore
from bot.store.memory import MemoryStore
from tests.knowledge.kb_files import write_pair, write_principle

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = {"en", "fr"}
KEPT = "markets-are-conversations"
OLD = ("dialogue-not-monologue", "informed-buyers")


@pytest.fixture
def principles_dir(tmp_path: Path) -> Path:
    """Two principles; the first absorbed two old ones; the second links to an old id."""
    directory = tmp_path / "knowledge" / "principles"
    write_pair(directory, KEPT, aliases=OLD)
    write_pair(directory, "brevity", related=["informed-buyers"])
    return directory


@pytest.fixture
def store(principles_dir: Path) -> PrincipleStore:
    return PrincipleStore.load(principles_dir)


def test_an_alias_resolves_to_the_kept_principle_in_every_lookup(store: PrincipleStore) -> None:
    assert store.ids == ["brevity", KEPT]  # aliases are not principles of their own
    assert store.names == {"brevity", KEPT, *OLD}
    assert [store.resolve(pid) for pid in (KEPT, *OLD, "brevity", "no-such-id")] == [
        KEPT,
        KEPT,
        KEPT,
        "brevity",
        None,
    ]
    ref = store.ref("dialogue-not-monologue", "fr")
    assert ref is not None and ref.id == KEPT and ref.title == f"Sample {KEPT}"
    text = store.describe("informed-buyers", "en")
    assert text is not None and (text.id, text.lang) == (KEPT, "en")
    assert store.describe("no-such-id", "en") is None
    assert store.problems(LANGUAGES) == []  # `related: [informed-buyers]` resolves


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        # an alias that is a kept id: the other principle's, or its own
        (["brevity"], [], "aliases: 'brevity' is the id of brevity.en.md, not an old id"),
        ([KEPT], [], f"aliases: '{KEPT}' is its own id, not an old id"),
        # one old id claimed by two principles
        (
            ["use-silence"],
            ["use-silence"],
            "aliases: 'use-silence' is also claimed by brevity.en.md, brevity.fr.md",
        ),
    ],
)
def test_alias_collisions_name_the_file(
    tmp_path: Path, first: list[str], second: list[str], expected: str
) -> None:
    write_pair(tmp_path, KEPT, aliases=first)
    write_pair(tmp_path, "brevity", aliases=second)
    store = PrincipleStore.load(tmp_path)
    problems = store.problems(LANGUAGES)
    assert f"{tmp_path / f'{KEPT}.en.md'}: {expected}" in problems
    assert f"{tmp_path / f'{KEPT}.fr.md'}: {expected}" in problems
    assert not set(first) & set(store.aliases)  # a disputed alias resolves to no one


def test_translations_with_different_aliases_are_reported(tmp_path: Path) -> None:
    write_principle(tmp_path, KEPT, "en", aliases=OLD)
    write_principle(tmp_path, KEPT, "fr", aliases=OLD[:1])
    store = PrincipleStore.load(tmp_path)
    assert store.problems(LANGUAGES) == [f"{tmp_path / f'{KEPT}.fr.md'}: aliases: differ from {KEPT}.en.md"]
    assert store.resolve(OLD[1]) == KEPT  # the union still resolves


def test_a_dangling_related_id_is_one_line_naming_the_file(tmp_path: Path) -> None:
    write_pair(tmp_path, KEPT, aliases=OLD)
    en, fr = write_pair(tmp_path, "brevity", related=["use-silence"])
    store = PrincipleStore.load(tmp_path)
    lines = [
        f"{path}: related: unknown principle 'use-silence' (neither an id nor an alias)" for path in (en, fr)
    ]
    assert store.problems(LANGUAGES) == lines
    # The per-file check (one test per shipped principle) says the same about that file only,
    # and names a missing translation.
    assert principle_file_problems(en, store, None) == lines[:1]
    fr.unlink()
    alone = PrincipleStore.load(tmp_path)
    assert principle_file_problems(en, alone, None) == [f"{en}: missing translation 'fr'", lines[0]]


def _write_drill(directory: Path, lang: str, principles: list[str]) -> Path:
    data = {
        "id": "yes-or-no",
        "lang": lang,
        "title": "The yes-or-no question",
        "level": 1,
        "categories": ["closed_question"],
        "principles": principles,
        "buyer": "Head of finance operations at a regional bank",
        "context": "The bank moves its branches onto a new core banking system this year.",
        "opener": "Hello Marc, are you interested in automating your month-end reconciliation?",
        "instruction": "Turn this yes/no question into one open question about their month-end.",
        "good_answer": ["Starts with how or what.", "Keeps the migration as the reason."],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"yes-or-no.{lang}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_an_old_id_in_a_drill_resolves_and_a_dangling_one_is_named(
    store: PrincipleStore, tmp_path: Path
) -> None:
    drills = tmp_path / "drills"
    for lang in sorted(LANGUAGES):
        _write_drill(drills, lang, ["dialogue-not-monologue", "brevity"])
    assert DrillLibrary.load(drills).problems(LANGUAGES, store.names) == []
    broken = _write_drill(drills, "en", ["dialogue-not-monologue", "no-such-id"])
    _write_drill(drills, "fr", ["dialogue-not-monologue", "no-such-id"])
    problems = DrillLibrary.load(drills).problems(LANGUAGES, store.names)
    assert f"{broken}: principles: unknown principle 'no-such-id'" in problems
    assert not [line for line in problems if "dialogue-not-monologue" in line]


def test_evaluation_sets_score_old_ids_as_the_kept_one(store: PrincipleStore) -> None:
    assert kept_ids(["informed-buyers", KEPT, "brevity", "no-such-id"], store) == [
        KEPT,
        "brevity",
        "no-such-id",  # stays as written: a miss, and `kb check` names it
    ]


def _knowledge_with_rule_on_an_old_id(tmp_path: Path, principles_dir: Path) -> Path:
    """The shipped rules, lexicons and detectors, the sample principles, and the no-question
    rule citing an old id (as rules written before a merge do)."""
    knowledge = principles_dir.parent
    shutil.copytree(ROOT / "knowledge" / "rules", knowledge / "rules")
    for name in ("detectors", "scoring.yaml", "search.yaml", "offtopic.yaml", "concepts.yaml"):
        (knowledge / name).symlink_to(ROOT / "knowledge" / name)
    rule = knowledge / "rules" / "no-question.yaml"
    data = yaml.safe_load(rule.read_text(encoding="utf-8"))
    data["principle"] = "dialogue-not-monologue"
    rule.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return knowledge


def test_card_and_a_stored_why_button_show_the_kept_id(
    tmp_path: Path, principles_dir: Path, store: PrincipleStore
) -> None:
    knowledge = _knowledge_with_rule_on_an_old_id(tmp_path, principles_dir)
    coach = Coach.load(knowledge, ROOT / "prompts", store)
    card = coach.coach("Hi Dana, we help logistics teams plan their night shifts across sites.")
    cited = [f.principle for f in card.findings if f.category == Category.NO_QUESTION]
    assert cited == [KEPT]
    assert KEPT in [ref.id for ref in card.principles]
    assert not {f.principle for f in card.findings} & set(OLD)

    # A "why?" button on a card sent before the merge carries the old id.
    button = parse_callback(explain_data("fr", "informed-buyers"))
    assert button is not None and button.principle == "informed-buyers" and button.lang
    reply = CoachingFlow(coach, MemoryStore()).explain(button.principle, button.lang)
    assert reply.kind == ReplyKind.PRINCIPLE and f"Sample {KEPT}" in reply.text


def test_kb_check_resolves_old_ids_and_names_dangling_ones(tmp_path: Path, principles_dir: Path) -> None:
    knowledge = _knowledge_with_rule_on_an_old_id(tmp_path, principles_dir)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for name in ("ui", "report", "angles"):
        (prompts / name).symlink_to(ROOT / "prompts" / name)
    (prompts / "onboarding").mkdir()
    for lang in sorted(LANGUAGES):
        _write_drill(prompts / "drills", lang, ["informed-buyers"])
    dangling = write_principle(principles_dir, "brevity", "en", related=["no-such-id"])
    data = tmp_path / "data"
    data.mkdir()
    questions = data / "questions_sample.jsonl"
    rows = [
        {
            "id": "q1-en",
            "lang": "en",
            "question": "How do I start a conversation?",
            "expected": ["informed-buyers"],
        },
        {"id": "q2-en", "lang": "en", "question": "How long should it be?", "expected": ["brevity-rules"]},
    ]
    questions.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    problems = check_knowledge(knowledge, prompts, data_dir=data)

    unknown = "unknown principle '{}' (neither an id nor an alias)"
    assert f"{dangling}: related: {unknown.format('no-such-id')}" in problems
    assert f"{questions}: q2-en: expected: {unknown.format('brevity-rules')}" in problems
    old_ids = [line for line in problems if any(f"'{old}'" in line for old in OLD)]
    assert old_ids == []  # the rule, the drills, the question set: all resolved
    # The shipped rules cite principles this small base lacks: named, one line each.
    assert f"{knowledge / 'rules' / 'too-long.yaml'}: principle: {unknown.format('brevity')}" not in problems
    assert any(
        line.startswith(f"{knowledge / 'rules'}") and "principle: unknown" in line for line in problems
    )
