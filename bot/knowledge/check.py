"""`fournil kb check`: validate every knowledge and prompt file, and run rule examples.

Collects every problem instead of stopping at the first, each naming its file (and field),
so one run tells an editor everything to fix.
"""

from __future__ import annotations

from pathlib import Path

from bot.core.analysis import analyse_opener
from bot.core.angles import load_angles
from bot.core.diagnosis import diagnose_opener
from bot.core.errors import KnowledgeError
from bot.core.lexicon import Lexicon, load_lexicons
from bot.core.rules import Rule, load_rule, rule_paths
from bot.core.scoring import load_score_weights
from bot.core.ui import load_ui, ui_key_problems
from bot.knowledge.principles import Principle, PrincipleStore, load_principle


def rule_example_problems(rule: Rule, lexicons: dict[str, Lexicon]) -> list[str]:
    """A rule's own examples: each `trigger` must fire it, each `pass` must not."""
    problems: list[str] = []
    for expected, examples in ((True, rule.examples.trigger), (False, rule.examples.pass_)):
        for example in examples:
            analysis = analyse_opener(example.text, example.lang, lexicons[example.lang])
            fired = any(f.rule == rule.id for f in diagnose_opener(analysis, (rule,)))
            if fired != expected:
                verb = "should trigger but does not" if expected else "should pass but triggers"
                problems.append(f"{rule.path}: examples: {verb}: [{example.lang}] {example.text!r}")
    return problems


def check_knowledge(knowledge_dir: Path, prompts_dir: Path) -> list[str]:
    problems: list[str] = []
    try:
        lexicons = load_lexicons(knowledge_dir / "rules" / "lexicons")
    except KnowledgeError as exc:
        return [str(exc)]
    languages = set(lexicons)

    principles: list[Principle] = []
    for path in sorted((knowledge_dir / "principles").glob("*.md")):
        try:
            principles.append(load_principle(path))
        except KnowledgeError as exc:
            problems.append(str(exc))
    try:
        store = PrincipleStore(principles)
        problems += store.problems(languages)
        known = set(store.ids)
    except KnowledgeError as exc:
        problems.append(str(exc))
        known = {p.id for p in principles}

    for path in rule_paths(knowledge_dir / "rules"):
        try:
            rule = load_rule(path, languages)
        except KnowledgeError as exc:
            problems.append(str(exc))
            continue
        if rule.principle not in known:
            problems.append(f"{path}: principle: unknown principle '{rule.principle}'")
        problems += rule_example_problems(rule, lexicons)

    try:
        for angle in load_angles(prompts_dir / "angles", languages):
            if angle.principle not in known:
                problems.append(f"angle '{angle.id}': principle: unknown '{angle.principle}'")
    except KnowledgeError as exc:
        problems.append(str(exc))
    try:
        ui = load_ui(prompts_dir / "ui")
        problems += ui_key_problems(ui)
        for lang in sorted(languages - set(ui)):
            problems.append(f"{prompts_dir / 'ui'}: missing {lang}.yaml")
    except KnowledgeError as exc:
        problems.append(str(exc))
    try:
        load_score_weights(knowledge_dir / "scoring.yaml")
    except KnowledgeError as exc:
        problems.append(str(exc))
    return problems
