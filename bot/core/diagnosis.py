"""The rules engine, and its fusion with the learned sentence detectors.

Detectors are code; what they look for and their thresholds are the rule's data. Pattern
rules read the lexicon the rule carries; counting rules (length, number of questions,
question form, I/we versus you) read `OpenerAnalysis` and the rule's `params`.

Fusion: a category is reported when a rule fires or a learned detector is confident
enough (`bot.core.detectors`). Rules keep the last word on their evidence (their match is
the most precise quote); the detectors add what no rule's wording caught.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.analysis import OpenerAnalysis, Sentence
from bot.core.detectors import LearnedVerdict
from bot.core.models import SEVERITY_ORDER, Category, Finding, Severity
from bot.core.rules import Rule
from bot.core.units import Unit

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
    finding is added when no rule found its category.

    Two rule flags let context overrule words. `model_confirms`: the rule's words also open
    innocent sentences, so its match is dropped when the detector is confident the sentence
    is clean. `unless_news`: a reminder ("following up on my note") is no pressure when
    another sentence brings something concrete that is not the seller talking."""
    hits = _rule_hits(analysis, rules, learned)
    seller = [at for _, rule, hit in hits if rule.flag("unless_news") and (at := hit.start) is not None]
    seller += _seller_offsets(hits, learned)
    found: list[tuple[int, int, Finding]] = []
    excused: list[tuple[Category, int]] = []  # reminders that came with news
    for order, rule, hit in hits:
        if (
            rule.flag("unless_news")
            and hit.start is not None
            and _brings_news(analysis, hit.start, hit.start + len(hit.excerpt), seller)
        ):
            excused.append((rule.category, hit.start))
            continue
        finding = _rule_finding(rule, hit, analysis.lang)
        found.append((SEVERITY_ORDER[finding.severity], order, finding))
    if learned is not None:
        covered = {finding.category for _, _, finding in found}
        reminders = tuple(rule for rule in rules if rule.flag("unless_news"))
        for order, finding in _learned_additions(analysis, learned, covered, excused, reminders, seller):
            found.append((SEVERITY_ORDER[finding.severity], len(rules) + order, finding))
    found.sort(key=lambda item: (item[0], item[1]))
    return [finding for _, _, finding in found]


def _rule_hits(
    analysis: OpenerAnalysis, rules: tuple[Rule, ...], learned: LearnedVerdict | None
) -> list[tuple[int, Rule, Hit]]:
    """Each rule's hit, with its order, unless the detector overrules a rule that asks it to."""
    hits: list[tuple[int, Rule, Hit]] = []
    for order, rule in enumerate(rules):
        hit = DETECTORS[rule.detector](rule, analysis)
        if hit is None:
            continue
        if (
            learned is not None
            and hit.start is not None
            and rule.flag("model_confirms")
            and learned.contradicts(rule.category, hit.start)
        ):
            continue
        hits.append((order, rule, hit))
    return hits


def _rule_finding(rule: Rule, hit: Hit, lang: str) -> Finding:
    message = rule.message.get(lang) or rule.message["en"]
    return Finding(
        rule=rule.id,
        category=rule.category,
        severity=hit.severity or rule.severity,
        excerpt=_clip(hit.excerpt),
        message=message.format(**hit.values) if hit.values else message,
        principle=rule.principle,
        source="rule",
        evidence=_clip(hit.excerpt),
    )


def _learned_additions(
    analysis: OpenerAnalysis,
    learned: LearnedVerdict,
    covered: set[Category],
    excused: list[tuple[Category, int]],
    reminders: tuple[Rule, ...],
    seller: list[int],
) -> list[tuple[int, Finding]]:
    """The detectors' findings in categories no rule reported, except a reminder that comes
    with news (the rule's words in the unit, news elsewhere) and, where the category asks
    for it, praise of something named."""
    additions: list[tuple[int, Finding]] = []
    for order, (finding, unit) in enumerate(zip(learned.findings, learned.evidence, strict=True)):
        if finding.category in covered or any(
            category == finding.category and unit.start <= at < unit.end for category, at in excused
        ):
            continue
        if any(
            rule.category == finding.category
            and _matches_in(rule, analysis, unit)
            and _brings_news(analysis, unit.start, unit.end, seller)
            for rule in reminders
        ):
            continue
        if finding.category == Category.CLOSED_QUESTION and (
            _checks_identity(analysis, unit) or _reads_open(analysis, unit)
        ):
            continue
        if learned.policy.cards[finding.category].skip_if_specific and _names_something(
            analysis, unit, learned, finding.category
        ):
            continue
        additions.append((order, finding))
    return additions


def _checks_identity(analysis: OpenerAnalysis, unit: Unit) -> bool:
    """The unit is a call opener's "is that Mr. Obi?": a check of who answered, no question."""
    sentence = analysis.sentence_at(unit.start)
    return sentence is not None and sentence.identity_check


def _reads_open(analysis: OpenerAnalysis, unit: Unit) -> bool:
    """The question's own clause starts with a question word ("…, comment l'équipe suit-elle
    les recrutements ?"): open by its form, whatever a detector trained on whole sentences
    makes of the long lead-in before it."""
    sentence = analysis.sentence_at(unit.start)
    return sentence is not None and sentence.is_question and all(part == "open" for part in sentence.parts)


def _matches_in(rule: Rule, analysis: OpenerAnalysis, unit: Unit) -> bool:
    patterns = rule.patterns.get(analysis.lang, ())
    return any(regex.search(analysis.norm, unit.start, unit.end) for regex, _ in patterns)


# A sentence showing one of these is the seller talking (their offer, their claims, their
# deadline, their wish for a slot), never news about the buyer's world.
_NOT_NEWS = (
    Category.PITCH,
    Category.UNPROVEN_CLAIM,
    Category.PRESSURE,
    Category.MEETING_ASK,
    Category.SELF_FOCUS,
    Category.FAKE_PERSONALIZATION,
)


def _seller_offsets(hits: list[tuple[int, Rule, Hit]], learned: LearnedVerdict | None) -> list[int]:
    """Where the opener talks about the seller: rule matches and units a detector flags in
    those categories."""
    offsets = [hit.start for _, rule, hit in hits if rule.category in _NOT_NEWS and hit.start is not None]
    if learned is not None:
        offsets += [unit.start for unit in learned.flagged_units(_NOT_NEWS)]
    return offsets


_SHORT_PRAISE_WORDS = 10
_DIGIT = re.compile(r"\d")
_ANNOUNCES = re.compile(r"[:—–]\s")


def _names_something(
    analysis: OpenerAnalysis, unit: Unit, learned: LearnedVerdict, category: Category
) -> bool:
    """The unit's sentence is specific, or the unit is short praise right after a sentence
    that states a fact about the buyer ("…won the water board's grant. Congratulations.")
    and is not praise itself."""
    if analysis.specific_at(unit.start):
        return True
    if len(unit.text.split()) > _SHORT_PRAISE_WORDS:
        return False
    before = [s for s in analysis.sentences if s.end <= unit.start]
    if not before:
        return False
    previous = before[-1]
    praised = any(previous.start <= u.start < previous.end for u in learned.flagged_units((category,)))
    return not praised and (previous.specific or _concrete(previous.text))


def _concrete(text: str) -> bool:
    """A figure, or a name in the middle of the sentence (a capitalised word that is not
    its first): "saw that Greenfields won the water board's grant"."""
    if _DIGIT.search(text):
        return True
    words = text.split()[1:]
    return any(len(word) > 1 and word[0].isupper() and not word.startswith(("I'", "I’")) for word in words)


def _brings_news(analysis: OpenerAnalysis, start: int, end: int, seller: list[int]) -> bool:
    """Something concrete (a figure, a quotation, a topic) outside the reminder that is
    neither a question nor the seller talking: another sentence, or what follows the
    reminder in its own sentence ("following up with a number: OpenView's 2023 …")."""
    for sentence in analysis.sentences:
        if sentence.is_question or any(sentence.start <= at < sentence.end for at in seller if at != start):
            continue
        if sentence.start <= start < sentence.end:
            # Only what the reminder announces after a colon or a dash counts: "my email of
            # the 12th" is no news.
            announced = _ANNOUNCES.search(analysis.text, end, sentence.end)
            if (
                announced is not None
                and _DIGIT.search(analysis.text, announced.end(), sentence.end)
                and not any(announced.end() <= at < sentence.end for at in seller)
            ):
                return True
            continue
        if sentence.specific:
            return True
    return False


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
    # `questions_only`: the words count only in a question the opener asks ("why did you…?",
    # not "I see why you chose…"); `skip_quoted`: never inside a quotation (the title of
    # the buyer's talk is their words, not the rep's question).
    questions_only = rule.flag("questions_only")
    quoted = _quoted_spans(analysis.norm) if rule.flag("skip_quoted") else ()
    total = 0.0
    first: tuple[int, int] | None = None
    for regex, weight in rule.patterns.get(analysis.lang, ()):
        for match in regex.finditer(haystack, start, end):
            if any(q_start <= match.start() < q_end for q_start, q_end in quoted):
                continue
            sentence = analysis.sentence_at(match.start())
            if questions_only and (sentence is None or not sentence.is_question):
                continue
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


# A quotation in the normalised text (« », “ ” are '"' there); bounded, so a run of quote
# marks is read once.
_QUOTATION = re.compile(r'"[^"\n]{1,300}"')


def _quoted_spans(norm: str) -> tuple[tuple[int, int], ...]:
    return tuple((match.start(), match.end()) for match in _QUOTATION.finditer(norm))


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
