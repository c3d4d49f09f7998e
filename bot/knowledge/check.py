"""`fournil kb check`: validate every knowledge and prompt file, and run rule examples.

Drill and onboarding openers are run through the rules too: an exercise whose weak opener
shows none of the faults it trains would teach nothing, and nobody notices by reading it.

Collects every problem instead of stopping at the first, each naming its file (and field),
so one run tells an editor everything to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Protocol, TypeVar

from bot.core.analysis import analyse_opener
from bot.core.angles import load_angles
from bot.core.diagnosis import diagnose_opener
from bot.core.drills import DrillLibrary, load_drill
from bot.core.errors import KnowledgeError
from bot.core.lexicon import Lexicon, load_lexicons
from bot.core.models import Category
from bot.core.onboarding import OnboardingPath, load_step
from bot.core.report import load_report_strings
from bot.core.rules import Rule, load_rule, rule_paths
from bot.core.scoring import load_score_weights
from bot.core.ui import load_ui, ui_key_problems
from bot.knowledge.principles import Principle, PrincipleStore, load_principle

T = TypeVar("T")


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


def opener_trigger_problem(
    path: Path,
    opener: str,
    lang: str,
    expected: Collection[Category],
    rules: tuple[Rule, ...],
    lexicons: dict[str, Lexicon],
) -> str | None:
    """A training opener must show the faults it trains, or the exercise teaches nothing.

    None when at least one finding falls in `expected` (or the language has no lexicon,
    which the loaders report on their own).
    """
    if lang not in lexicons or not expected:
        return None
    findings = diagnose_opener(analyse_opener(opener, lang, lexicons[lang]), rules)
    found = sorted({str(f.category) for f in findings})
    if set(found) & {str(c) for c in expected}:
        return None
    return f"{path}: opener: triggers none of its categories (found: {', '.join(found) or 'nothing'})"


class _FileSet(Protocol):
    def problems(self, languages: set[str], known_principles: set[str]) -> list[str]: ...


def _exercise_problems(
    paths: list[Path],
    load: Callable[[Path], T],
    collect: Callable[[list[tuple[Path, T]]], _FileSet],
    trains: Callable[[T], tuple[str | None, str, Collection[Category]]],
    languages: set[str],
    known: set[str],
    rules: tuple[Rule, ...],
    lexicons: dict[str, Lexicon],
) -> list[str]:
    """Drills and onboarding steps alike: each file loaded on its own (one broken file
    does not hide the others), the set checked as a whole, and each weak opener run
    through the rules. `trains` gives an item's (opener, language, categories)."""
    problems: list[str] = []
    entries: list[tuple[Path, T]] = []
    for path in paths:
        try:
            entries.append((path, load(path)))
        except KnowledgeError as exc:
            problems.append(str(exc))
    try:
        problems += collect(entries).problems(languages, known)
    except KnowledgeError as exc:
        problems.append(str(exc))
    for path, item in entries:
        opener, lang, categories = trains(item)
        if opener is not None:
            problem = opener_trigger_problem(path, opener, lang, categories, rules, lexicons)
            if problem:
                problems.append(problem)
    return problems


def _files(directory: Path, pattern: str) -> list[Path]:
    return sorted(directory.glob(pattern)) if directory.is_dir() else []


def drill_problems(
    directory: Path,
    languages: set[str],
    known: set[str],
    rules: tuple[Rule, ...],
    lexicons: dict[str, Lexicon],
) -> list[str]:
    return _exercise_problems(
        _files(directory, "*.yaml"),
        load_drill,
        DrillLibrary,
        lambda drill: (drill.opener, drill.lang, drill.categories),
        languages,
        known,
        rules,
        lexicons,
    )


def onboarding_problems(
    directory: Path,
    languages: set[str],
    known: set[str],
    rules: tuple[Rule, ...],
    lexicons: dict[str, Lexicon],
) -> list[str]:
    return _exercise_problems(
        _files(directory, "*.md"),
        load_step,
        OnboardingPath,
        lambda step: (step.opener, step.lang, step.check.avoid),
        languages,
        known,
        rules,
        lexicons,
    )


def search_file_problems(knowledge_dir: Path, languages: set[str]) -> list[str]:
    """The search's own data: tuning, off-topic references and the concept glossary."""
    from bot.knowledge.concepts import ConceptGlossary
    from bot.knowledge.index import SearchTuning, offtopic_documents

    problems: list[str] = []
    checks: list[Callable[[], object]] = [
        lambda: SearchTuning.load(knowledge_dir / "search.yaml"),
        lambda: offtopic_documents(knowledge_dir / "offtopic.yaml"),
        lambda: ConceptGlossary.load(knowledge_dir / "concepts.yaml", languages),
    ]
    for check in checks:
        try:
            check()
        except KnowledgeError as exc:
            problems.append(str(exc))
    return problems


def detector_problems(knowledge_dir: Path, languages: set[str], known: set[str]) -> list[str]:
    """The learned detectors' files: card texts, thresholds, the corpus, and weights that
    were trained on this very corpus with these settings and this training code."""
    from bot.core.detectors import load_detector_policy
    from bot.knowledge.detectors import WEIGHTS_FILE, DetectorWeights
    from bot.knowledge.training import fingerprint, load_corpus, load_training_settings

    directory = knowledge_dir / "detectors"
    problems: list[str] = []
    try:
        policy = load_detector_policy(directory, languages)
        for category, card in policy.cards.items():
            if card.principle not in known:
                problems.append(
                    f"{directory / 'categories.yaml'}: {category.value}.principle: "
                    f"unknown principle '{card.principle}'"
                )
        weights = DetectorWeights.load(directory / WEIGHTS_FILE)
        if set(weights.categories) != set(policy.thresholds):
            problems.append(
                f"{directory / 'thresholds.yaml'}: categories differ from the weights': "
                "run `fournil kb train`"
            )
        expected = fingerprint(load_corpus(directory, languages), load_training_settings(directory))
        if weights.fingerprint != expected:
            problems.append(
                f"{directory / WEIGHTS_FILE}: fingerprint: trained on another corpus, settings or "
                "training code: run `fournil kb train` and commit the result"
            )
    except KnowledgeError as exc:
        problems.append(str(exc))
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

    rules: list[Rule] = []
    for path in rule_paths(knowledge_dir / "rules"):
        try:
            rule = load_rule(path, languages)
        except KnowledgeError as exc:
            problems.append(str(exc))
            continue
        rules.append(rule)
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
    try:
        load_report_strings(prompts_dir / "report")
    except KnowledgeError as exc:
        problems.append(str(exc))
    problems += search_file_problems(knowledge_dir, languages)
    problems += detector_problems(knowledge_dir, languages, known)
    problems += drill_problems(prompts_dir / "drills", languages, known, tuple(rules), lexicons)
    problems += onboarding_problems(prompts_dir / "onboarding", languages, known, tuple(rules), lexicons)
    return problems
