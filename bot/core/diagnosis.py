"""The rules engine, and its fusion with the learned sentence detectors.

Detectors are code; what they look for and their thresholds are the rule's data. Pattern
rules read the lexicon the rule carries; counting rules (length, number of questions,
question form, I/we versus you) read `OpenerAnalysis` and the rule's `params`.

Fusion: a category is reported when a rule fires or a learned detector is confident
enough (`bot.core.detectors`). Rules keep the last word on their evidence (their match is
the most precise quote); the detectors add what no rule's wording caught.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.analysis import OpenerAnalysis, Sentence
from bot.core.detectors import LearnedVerdict
from bot.core.models import SEVERITY_ORDER, Finding, Severity
from bot.core.rules import Rule

_MAX_EXCERPT = 160


@dataclass(frozen=True)
class Hit:
    excerpt: str
    values: dict[str, object] = field(default_factory=dict)
    severity: Severity | None = None
    start: int | None = None  # where a wording rule matched (a learned detector may veto it)


Detector = Callable[[Rule, OpenerAnalysis], Hit | None]


def diagnose_opener(
    analysis: OpenerAnalysis, rules: tuple[Rule, ...], learned: LearnedVerdict | None = None
) -> list[Finding]:
    """Every finding for this opener, the most serious first, then in rule order; a learned
    finding is added when no rule found its category, and a wording rule's match is
    dropped when the detector is confident its sentence does not show the category."""
    found: list[tuple[int, int, Finding]] = []
    for order, rule in enumerate(rules):
        hit = DETECTORS[rule.detector](rule, analysis)
        if hit is None:
            continue
        if learned is not None and hit.start is not None and learned.contradicts(rule.category, hit.start):
            continue
        severity = hit.severity or rule.severity
        message = rule.message.get(analysis.lang) or rule.message["en"]
        finding = Finding(
            rule=rule.id,
            category=rule.category,
            severity=severity,
            excerpt=_clip(hit.excerpt),
            message=message.format(**hit.values) if hit.values else message,
            principle=rule.principle,
            source="rule",
            evidence=_clip(hit.excerpt),
        )
        found.append((SEVERITY_ORDER[severity], order, finding))
    by_rules = {finding.category for _, _, finding in found}
    for order, finding in enumerate(learned.findings if learned else (), start=len(rules)):
        if finding.category not in by_rules:
            found.append((SEVERITY_ORDER[finding.severity], order, finding))
    found.sort(key=lambda item: (item[0], item[1]))
    return [finding for _, _, finding in found]


def detect_lexicon(rule: Rule, analysis: OpenerAnalysis) -> Hit | None:
    unless = rule.unless.get(analysis.lang)
    per_sentence = rule.params.get("unless_scope") == "sentence"
    if unless is not None and not per_sentence and unless.search(analysis.norm):
        return None
    start, end = (0, len(analysis.text))
    if rule.scope == "body":
        start, end = analysis.body_start, analysis.body_end
    haystack = analysis.text if rule.raw else analysis.norm
    skip_specific = rule.flag("skip_if_specific")
    total = 0.0
    first: tuple[int, int] | None = None
    for regex, weight in rule.patterns.get(analysis.lang, ()):
        for match in regex.finditer(haystack, start, end):
            sentence = analysis.sentence_at(match.start())
            if sentence is not None:
                if skip_specific and analysis.specific_at(match.start()):
                    continue
                if per_sentence and unless is not None and unless.search(sentence.norm):
                    continue
            total += weight
            if first is None or match.start() < first[0]:
                first = (match.start(), match.end())
            break  # one hit per pattern: repeating a word is not more evidence
    if first is None or total < rule.param("min_weight", 1.0):
        return None
    severity: Severity | None = None
    if total >= rule.param("high_at_weight", 1e9):
        severity = "high"
    return Hit(excerpt=analysis.text[first[0] : first[1]], severity=severity, start=first[0])


def detect_word_count(rule: Rule, analysis: OpenerAnalysis) -> Hit | None:
    limit = int(rule.param("max_words", 100))
    if analysis.word_count <= limit:
        return None
    severity: Severity | None = None
    if analysis.word_count > rule.param("high_above", 1e9):
        severity = "high"
    first = analysis.sentences[0].text if analysis.sentences else analysis.text
    return Hit(
        excerpt=first,
        values={"words": analysis.word_count, "max": limit},
        severity=severity,
    )


def detect_question_count(rule: Rule, analysis: OpenerAnalysis) -> Hit | None:
    questions = analysis.questions
    count = analysis.question_count
    limit = int(rule.param("max_questions", 1))
    if count <= limit:
        return None
    severity: Severity | None = None
    if count > rule.param("high_above", 1e9):
        severity = "high"
    return Hit(
        excerpt=" … ".join(q.text for q in questions[:3]),
        values={"count": count},
        severity=severity,
    )


def detect_question_form(rule: Rule, analysis: OpenerAnalysis) -> Hit | None:
    """Closed: a question the buyer is asked expects a yes or a no."""
    closed = analysis.closed_questions
    if not closed:
        return None
    return Hit(excerpt=closed[-1].text)


def detect_no_question(rule: Rule, analysis: OpenerAnalysis) -> Hit | None:
    if analysis.questions or analysis.word_count < rule.param("min_words", 1):
        return None
    last: Sentence | None = analysis.sentences[-1] if analysis.sentences else None
    return Hit(excerpt=last.text if last else analysis.text)


def detect_pronoun_balance(rule: Rule, analysis: OpenerAnalysis) -> Hit | None:
    """I/we-centred: first person (minus uses that serve the buyer) outweighs "you"."""
    self_count = max(0, analysis.first_person - analysis.self_neutral)
    if self_count < rule.param("min_first_person", 4):
        return None
    if self_count < rule.param("ratio", 1.5) * analysis.second_person:
        return None
    first = analysis.sentences[0].text if analysis.sentences else analysis.text
    return Hit(
        excerpt=first,
        values={"self": self_count, "you": analysis.second_person},
    )


def _clip(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= _MAX_EXCERPT:
        return text
    return text[: _MAX_EXCERPT - 1].rstrip() + "…"


DETECTORS: dict[str, Detector] = {
    "lexicon": detect_lexicon,
    "word_count": detect_word_count,
    "question_count": detect_question_count,
    "question_form": detect_question_form,
    "no_question": detect_no_question,
    "pronoun_balance": detect_pronoun_balance,
}
