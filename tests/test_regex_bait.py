"""Every regular expression the bot runs, fed repetition bait.

A rep (or an attacker) can paste 8,000 quote marks; a backtracking pattern that is
quadratic on such a run freezes the event loop for every rep of the team. So each pattern
of the code, of the rules, of the lexicons, of the concept glossary and of the question
angles' topic words is run here against long runs built from its own characters. The CPU
budget below is not a speed measurement: a linear pattern needs milliseconds for all its
bait, a quadratic one needs minutes at this size, and the budget only tells the two apart
(figures: bench/regex_bait.py).

Adding a rule or a lexicon entry is a data change, and this test is what keeps such a change
from bringing back a stall: it names the file and the pattern that blew the budget.
"""

from __future__ import annotations

import importlib
import itertools
import pkgutil
import re
import re._constants as sre  # type: ignore[import-not-found]
import re._parser as sre_parse  # type: ignore[import-not-found]
import signal
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest

import bot
from bot.core.angles import load_angles
from bot.core.lexicon import load_lexicons
from bot.core.rules import load_rules
from bot.knowledge.concepts import ConceptGlossary

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
BAIT_CHARS = 24_000  # three times the opener cap (8,000): quadratic work shows as seconds
CPU_BUDGET_SECONDS = 0.5  # per run of bait; a linear pattern needs about a millisecond
# Characters that baited this project's patterns before: quote marks, asterisks, brackets,
# sentence marks, dashes, spaces and line breaks.
GENERIC = ["a", "A", "0", "-", ".", "!", "\"", "*", "[", "{", "«", "@", " ", "\n"]
_CATEGORY_SAMPLE = {
    sre.CATEGORY_DIGIT: "0",
    sre.CATEGORY_NOT_DIGIT: "a",
    sre.CATEGORY_SPACE: " ",
    sre.CATEGORY_NOT_SPACE: "a",
    sre.CATEGORY_WORD: "a",
    sre.CATEGORY_NOT_WORD: "-",
    sre.CATEGORY_LINEBREAK: "\n",
    sre.CATEGORY_NOT_LINEBREAK: "a",
}


def _patterns_in(value: Any, name: str, depth: int = 0) -> Iterator[tuple[str, re.Pattern[str]]]:
    """Patterns held by a module global, a loaded rule or lexicon, however nested."""
    if depth > 4:
        return
    if isinstance(value, re.Pattern):
        if isinstance(value.pattern, str):
            yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _patterns_in(item, f"{name}[{key}]", depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            yield from _patterns_in(item, f"{name}[{index}]", depth + 1)
    elif is_dataclass(value) and not isinstance(value, type):
        for field in fields(value):
            yield from _patterns_in(getattr(value, field.name), f"{name}.{field.name}", depth + 1)
    elif hasattr(value, "__dict__") and type(value).__module__.startswith("bot."):
        for key, item in vars(value).items():
            yield from _patterns_in(item, f"{name}.{key}", depth + 1)


def _code_patterns() -> Iterator[tuple[str, re.Pattern[str]]]:
    for module in pkgutil.walk_packages(bot.__path__, "bot."):
        if module.name.endswith("__main__") or ".migrations" in module.name:
            continue
        loaded = importlib.import_module(module.name)
        for key, value in vars(loaded).items():
            if isinstance(value, (re.Pattern, list, tuple, dict)):
                yield from _patterns_in(value, f"{module.name}.{key}")


def _data_patterns() -> Iterator[tuple[str, re.Pattern[str]]]:
    lexicons = load_lexicons(KNOWLEDGE / "rules" / "lexicons")
    for lang, lexicon in lexicons.items():
        yield from _patterns_in(lexicon, f"knowledge/rules/lexicons/{lang}.yaml")
    for rule in load_rules(KNOWLEDGE / "rules", set(lexicons)):
        yield from _patterns_in(rule, f"knowledge/rules/{rule.id}.yaml")
    yield from _patterns_in(ConceptGlossary.load(KNOWLEDGE / "concepts.yaml"), "knowledge/concepts.yaml")
    # The question angles' topic words read the whole body of every opener.
    for lang, topics in load_angles(ROOT / "prompts" / "angles", set(lexicons)).topics.items():
        yield from _patterns_in(topics, f"prompts/angles/topics/{lang}.yaml")


def _all_patterns() -> dict[str, re.Pattern[str]]:
    found: dict[str, re.Pattern[str]] = {}
    seen: set[tuple[str, int]] = set()
    for name, pattern in [*_code_patterns(), *_data_patterns()]:
        if (pattern.pattern, pattern.flags) not in seen:
            seen.add((pattern.pattern, pattern.flags))
            found[name] = pattern
    return found


def _characters(parsed: Any) -> Iterator[str]:
    """One sample character for each literal and class of a parsed pattern, in order."""
    for op, value in parsed:
        if op is sre.LITERAL:
            yield chr(value)
        elif op is sre.IN:
            for item_op, item in value:
                if item_op is sre.LITERAL:
                    yield chr(item)
                elif item_op is sre.RANGE:
                    yield chr(item[0])
                elif item_op is sre.CATEGORY:
                    yield _CATEGORY_SAMPLE.get(item, "a")
        elif op is sre.NOT_LITERAL:
            yield "a" if value != ord("a") else "b"
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            yield from _characters(value[2])
        elif op is sre.SUBPATTERN:
            yield from _characters(value[3])
        elif op is sre.ATOMIC_GROUP:
            yield from _characters(value)
        elif op is sre.BRANCH:
            for branch in value[1]:
                yield from _characters(branch)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            yield from _characters(value[1])


def bait_for(pattern: re.Pattern[str]) -> list[str]:
    """Long runs of the pattern's own characters, alone, in pairs and as its whole alphabet,
    plus runs of the characters that baited this project's patterns before (quotes,
    asterisks, `0-`, `!?.`)."""
    own = list(dict.fromkeys(_characters(sre_parse.parse(pattern.pattern, pattern.flags))))[:12]
    units = list(dict.fromkeys([*own, *GENERIC]))
    units += [a + b for a, b in itertools.pairwise(own)]
    units += ["".join(own), "0-", "!?.", "a ", "Aa ", "A-", "0,", "a@"]
    return [(unit * (BAIT_CHARS // len(unit) + 1))[:BAIT_CHARS] for unit in dict.fromkeys(units) if unit]


class OverBudget(Exception):
    pass


def _over_budget(_signum: int, _frame: object) -> None:
    raise OverBudget


PATTERNS = _all_patterns()


def test_the_scan_finds_the_patterns_of_code_rules_lexicons_and_concepts() -> None:
    names = list(PATTERNS)
    assert any(name.startswith("bot.core.redact.") for name in names)
    assert any(name.startswith("knowledge/rules/lexicons/fr.yaml") for name in names)
    assert any(name.startswith("knowledge/rules/meeting-ask-time.yaml") for name in names)
    assert any(name.startswith("knowledge/concepts.yaml") for name in names)
    assert any(name.startswith("prompts/angles/topics/fr.yaml") for name in names)
    assert len(names) > 100


def test_bait_is_built_from_the_pattern_own_characters() -> None:
    bait = bait_for(re.compile(r"x(?:y\d)+z"))
    assert any(run.startswith("xy0zxy0z") for run in bait)  # the pattern's alphabet, repeated
    assert any(run.startswith("y0y0y0") for run in bait)  # a pair of its characters
    assert any(set(run) == {"0"} for run in bait)
    assert all(len(run) == BAIT_CHARS for run in bait)


def test_the_budget_catches_a_quadratic_pattern() -> None:
    """The guard itself can fail: a classic backtracking trap blows the budget."""
    with pytest.raises(OverBudget):
        _run_with_budget(re.compile(r"(?:a|aa)+b"), bait_for(re.compile(r"(?:a|aa)+b"))[:3])


def _run_with_budget(pattern: re.Pattern[str], bait: list[str]) -> None:
    """Scans each run as `finditer`/`sub` do, each within the CPU budget; `OverBudget`
    carries the run that blew it."""
    previous = signal.signal(signal.SIGPROF, _over_budget)
    try:
        for run in bait:
            signal.setitimer(signal.ITIMER_PROF, CPU_BUDGET_SECONDS)
            try:
                for _ in pattern.finditer(run):
                    pass
            except OverBudget as exc:
                raise OverBudget(run[:12]) from exc
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
    finally:
        signal.signal(signal.SIGPROF, previous)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_survives_repetition_bait(name: str) -> None:
    pattern = PATTERNS[name]
    try:
        _run_with_budget(pattern, bait_for(pattern))
    except OverBudget as exc:
        pytest.fail(
            f"{name}: /{pattern.pattern[:120]}/ backtracks on a long run of {exc.args[0]!r}…;"
            " bound its repeats"
        )
