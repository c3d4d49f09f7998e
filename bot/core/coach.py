"""The coach: from an opener to a coach card, and from two versions to a comparison.

`Coach` holds the loaded knowledge (lexicons, rules, angles, score weights, UI strings)
and is otherwise stateless: every method is a pure function of its arguments, so one
instance serves every channel and every user concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.core.analysis import OpenerAnalysis, analyse_opener
from bot.core.angles import Angles, load_angles, suggest_angles
from bot.core.detectors import DetectorPolicy, LearnedVerdict, load_detector_policy, read_opener
from bot.core.diagnosis import diagnose_opener
from bot.core.errors import FournilError
from bot.core.input_check import InputProblem, check_text, clean_text
from bot.core.language import LanguageDetector, other_script
from bot.core.lexicon import Lexicon, load_lexicons
from bot.core.models import Category, CoachCard, Comparison, Finding, PrincipleRef
from bot.core.ports import PrincipleCatalog, PrincipleSearch, UnitReading, UnitScorer
from bot.core.rules import Rule, load_rules
from bot.core.scoring import ScoreWeights, load_score_weights, score_opener
from bot.core.ui import UiStrings, load_ui
from bot.core.units import opener_units

MAX_QUESTIONS = 3
_NUDGE_CATEGORIES = {Category.PITCH, Category.MEETING_ASK, Category.SELF_FOCUS}


class InvalidOpener(FournilError):
    """The text cannot be coached; `str()` is the one-line reason in the right language."""

    def __init__(self, problem: InputProblem, message: str, language: str) -> None:
        self.problem = problem
        self.language = language
        super().__init__(message)


@dataclass(frozen=True)
class Coach:
    lexicons: dict[str, Lexicon]
    rules: tuple[Rule, ...]
    angles: Angles
    weights: ScoreWeights
    ui: dict[str, UiStrings]
    principles: PrincipleCatalog
    detector: LanguageDetector
    default_language: str = "en"
    max_chars: int = 8000
    search: PrincipleSearch | None = None
    related_limit: int = 2
    # Learned sentence detectors beside the rules (None: rules only).
    scorer: UnitScorer | None = None
    policy: DetectorPolicy | None = None

    @classmethod
    def load(
        cls,
        knowledge_dir: Path,
        prompts_dir: Path,
        principles: PrincipleCatalog,
        default_language: str = "en",
        max_chars: int = 8000,
        search: PrincipleSearch | None = None,
        scorer: UnitScorer | None = None,
    ) -> Coach:
        lexicons = load_lexicons(knowledge_dir / "rules" / "lexicons")
        languages = set(lexicons)
        policy = load_detector_policy(knowledge_dir / "detectors", languages) if scorer else None
        return cls(
            lexicons=lexicons,
            rules=load_rules(knowledge_dir / "rules", languages),
            angles=load_angles(prompts_dir / "angles", languages),
            weights=load_score_weights(knowledge_dir / "scoring.yaml"),
            ui=load_ui(prompts_dir / "ui"),
            principles=principles,
            detector=LanguageDetector(),
            default_language=default_language,
            max_chars=max_chars,
            search=search,
            scorer=scorer,
            policy=policy,
        )

    @property
    def languages(self) -> list[str]:
        return sorted(self.lexicons)

    def strings(self, lang: str | None) -> UiStrings:
        return self.ui.get(lang or self.default_language) or self.ui[self.default_language]

    def resolve_language(self, text: str, forced: str | None = None) -> str:
        """The opener's language; raises InvalidOpener for text we cannot coach."""
        text = clean_text(text)
        problem = check_text(text, self.max_chars)
        fallback = forced or self.default_language
        if problem is not None and problem.code in {"too_short", "no_words"}:
            # Chinese or Japanese has no spaces between words: a whole sentence counts as one.
            script = other_script(text)
            if script is not None:
                problem = InputProblem("other_language", {"language": script})
        if problem is not None:
            raise self._invalid(problem, fallback)
        if forced:
            return forced
        guess = self.detector.detect(text)
        if guess.other is not None:
            # On short English texts ("What's the capital of Peru?") the fast character model
            # can say German: the grammar words of our own lexicons settle it.
            counts = {lang: lex.function_word_count(text) for lang, lex in self.lexicons.items()}
            best = max(counts, key=lambda lang: counts[lang])
            if counts[best] >= 2:
                return best
            raise self._invalid(InputProblem("other_language", {"language": guess.other}), fallback)
        return guess.lang if guess.lang in self.lexicons else fallback

    def invalid_message(self, problem: InputProblem, lang: str) -> str:
        """The one-line reason, in `lang` (language names are themselves translated)."""
        ui = self.strings(lang)
        values = {
            name: value.get(ui.lang, next(iter(value.values()))) if isinstance(value, dict) else value
            for name, value in problem.values.items()
        }
        return ui.text("invalid", problem.code, **values)

    def _invalid(self, problem: InputProblem, lang: str) -> InvalidOpener:
        ui = self.strings(lang)
        return InvalidOpener(problem, self.invalid_message(problem, ui.lang), ui.lang)

    def analyse(self, text: str, lang: str) -> OpenerAnalysis:
        return analyse_opener(text, lang, self.lexicons[lang])

    def coach(self, text: str, lang: str | None = None) -> CoachCard:
        """The coach card for `text` (language detected unless given)."""
        text = clean_text(text)
        lang = self.resolve_language(text, lang)
        analysis = self.analyse(text, lang)
        reading: UnitReading | None = None
        learned: LearnedVerdict | None = None
        if self.scorer is not None and self.policy is not None:
            units = opener_units(analysis)
            reading = self.scorer.read([unit.text for unit in units])
            learned = read_opener(units, reading, self.policy, lang)
        findings = [self._kept(f) for f in diagnose_opener(analysis, self.rules, learned)]
        lexicon = self.lexicons[lang]
        ui = self.strings(lang)
        score, explanation = score_opener(analysis, findings, lexicon, ui, self.weights)
        # Angles follow from the findings and the topic of the body (greeting and sign-off,
        # where names are, left out): the same opener gets them again from a redacted copy.
        anchored = analysis.context_anchor is not None
        questions = suggest_angles(analysis.body_norm, lang, findings, anchored, self.angles, MAX_QUESTIONS)
        cited = self._principle_refs(findings, lang)
        related = self._related(text, lang, {ref.id for ref in cited}, reading)
        return CoachCard(
            language=lang,
            score=score,
            findings=findings,
            questions=questions,
            principles=cited + related,
            related=[ref.id for ref in related],
            explanation=explanation,
            buying_group_nudge=self._nudge(analysis, findings, ui),
            word_count=analysis.word_count,
            open_questions=len(analysis.open_questions),
        )

    def compare(self, before: str, after: str, lang: str | None = None) -> Comparison:
        """Before/after, both read in the language of the rewrite unless one is forced.
        Each text is checked as `coach` checks it (a German original is declined here too,
        unless a language is forced, as `coach --lang` forces it)."""
        before, after = clean_text(before), clean_text(after)
        forced = lang
        lang = self.resolve_language(after, forced)
        self.resolve_language(before, forced)  # the original must be coachable too
        return compare_cards(self.coach(before, lang), self.coach(after, lang))

    def _kept(self, finding: Finding) -> Finding:
        """The finding citing its principle by the kept id: a rule or a detector card may
        still name a principle merged into another (an alias), the card never does."""
        kept = self.principles.resolve(finding.principle)
        if kept is None or kept == finding.principle:
            return finding
        return finding.model_copy(update={"principle": kept})

    def _principle_refs(self, findings: list[Finding], lang: str) -> list[PrincipleRef]:
        refs: dict[str, PrincipleRef] = {}
        for finding in findings:
            if finding.principle in refs:
                continue
            ref = self.principles.ref(finding.principle, lang)
            if ref is not None:
                refs[finding.principle] = ref
        return list(refs.values())

    def _related(
        self, text: str, lang: str, cited: set[str], reading: UnitReading | None
    ) -> list[PrincipleRef]:
        """Up to two principles that fit the opener by meaning, beyond those the findings
        cite; the detectors' gist of the opener saves embedding it a second time."""
        if self.search is None or self.related_limit <= 0:
            return []
        refs: list[PrincipleRef] = []
        gist = reading.gist if reading is not None else None
        for hit in self.search.related(text, limit=self.related_limit + len(cited), gist=gist):
            if hit.principle in cited:
                continue
            ref = self.principles.ref(hit.principle, lang)
            if ref is not None:
                refs.append(ref)
            if len(refs) == self.related_limit:
                break
        return refs

    def _nudge(self, analysis: OpenerAnalysis, findings: list[Finding], ui: UiStrings) -> str | None:
        categories = {finding.category for finding in findings}
        lexicon = self.lexicons[analysis.lang]
        mentions_group = bool(lexicon.group_mention and lexicon.group_mention.search(analysis.body_norm))
        if categories & _NUDGE_CATEGORIES and not mentions_group:
            return ui.text("card", "buying_group")
        return None


def compare_cards(
    before: CoachCard, after: CoachCard, seen: tuple[int, list[Category]] | None = None
) -> Comparison:
    """docs/contracts.md `compare`: which categories were resolved, remain, or are new.

    `seen`: the score and categories of the card the rep was shown for the first version,
    when `before` had to be coached again from a stored (redacted) copy that may read a
    little differently: the comparison starts from what the rep saw."""
    if seen is not None:
        before = before.model_copy(update={"score": seen[0]})
    old = seen[1] if seen is not None else before.categories
    new = after.categories
    return Comparison(
        language=after.language,
        before=before,
        after=after,
        delta=after.score - before.score,
        resolved=[c for c in old if c not in new],
        remaining=[c for c in old if c in new],
        new=[c for c in new if c not in old],
    )
