"""`fournil kb check`: validate every knowledge and prompt file, and run rule examples.

Drill and onboarding openers are run through the rules too: an exercise whose weak opener
shows none of the faults it trains would teach nothing, and nobody notices by reading it.
Each principle's strong example is run through Fournil's own diagnosis (rules and learned
detectors, as `fournil coach` runs it): a model the coach itself flags teaches the opposite
of the lesson. Figures must carry a source (`sourcing_problems`), and every principle id
written anywhere (rules, detector cards, angles, drills, onboarding, `related`, the
evaluation sets) must resolve, as an id or as the alias of a merged principle.

Collects every problem instead of stopping at the first, each naming its file (and field),
so one run tells an editor everything to fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np

from bot.core.analysis import analyse_opener
from bot.core.angles import load_angles
from bot.core.buyers import check_buyer_sheets
from bot.core.coach import Coach, InvalidOpener
from bot.core.diagnosis import diagnose_opener
from bot.core.drills import DrillLibrary, load_drill
from bot.core.errors import FournilError, KnowledgeError
from bot.core.input_check import clean_text
from bot.core.lexicon import Lexicon, load_lexicons
from bot.core.models import Category
from bot.core.onboarding import OnboardingPath, load_step
from bot.core.report import load_report_strings
from bot.core.rules import Rule, load_rule, rule_paths
from bot.core.scoring import load_score_weights
from bot.core.ui import load_ui, ui_key_problems
from bot.core.units import opener_units
from bot.knowledge.principles import Principle, PrincipleStore, load_principle
from bot.llm.prompts import load_llm_prompts

if TYPE_CHECKING:
    from bot.knowledge.embedder import SentenceEmbedder

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
                    f"{directory / 'categories.yaml'}: {category.value}.principle: {_unknown(card.principle)}"
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


# --- Figures and sources -------------------------------------------------------------------
# The convention (the lead's, for every principle file): in the summary, `## Idea` and
# `## Why it works`, a sentence with a figure carries a marker [n] (n: 1-based index into
# `sources`), or says it is a house rule, or a claim of a seed essay (then listed among the
# sources). Every source is cited by its [n], and can be checked: a year, and a page,
# chapter or URL (a seed essay of the project needs neither).

SEED_ESSAY = "Seed essay:"
HOUSE_RULE = {"en": "(house rule)", "fr": "(règle maison)"}
SEED_CLAIM = {"en": "(seed essay)", "fr": "(essai fondateur)"}
_LABELS = tuple(HOUSE_RULE.values()) + tuple(SEED_CLAIM.values())
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_LABEL = re.compile("|".join(re.escape(label) for label in _LABELS), re.IGNORECASE)
# A digit not glued to a letter before it: "30 %", "3x", "2019" are figures; "B2B", "Q3" are not.
_FIGURE = re.compile(r"(?<![^\W\d_])\d")
_YEAR = re.compile(r"(?<!\d)(?:1[5-9]\d\d|20\d\d)(?!\d)")
_LOCATOR = re.compile(r"(?:\bpp?\.|\bchap\.|\bch\.|\bchapter|\bchapitre)\s*\d|https?://\S", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<![.!?…])[.!?…]+[\"'»”’)]{0,4}(?=\s)|\n")  # from a run's first mark: linear
# A marker or label written just after the full stop still belongs to that sentence.
_TRAILING = re.compile(rf"[ \t]{{0,8}}(?:{_MARKER.pattern}|{_LABEL.pattern})", re.IGNORECASE)
_ABBREVIATIONS = {"p", "pp", "e.g", "i.e", "etc", "chap", "ch", "cf", "vs", "ex", "fig", "vol"}
_ABBREVIATIONS |= {"dr", "mr", "mrs", "ms"}


def split_sentences(text: str) -> list[str]:
    """Sentences and list items, with the markers written after a full stop kept with it;
    abbreviations (p., e.g., chap.) and initials (W. W. Norton) do not end a sentence."""
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() <= start:
            continue
        end = match.end()
        if match.group() != "\n":
            last = re.search(r"(\S+)$", text[start : match.start()])
            word = last.group(1).lstrip("(«\"'").lower() if last else ""
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
            while trailing := _TRAILING.match(text, end):
                end = trailing.end()
        sentences.append(text[start:end].strip())
        start = end
    sentences.append(text[start:].strip())
    return [sentence for sentence in sentences if sentence]


def cited_markers(text: str) -> set[int]:
    """The source numbers cited in a text: [2] and [1, 3] alike."""
    return {int(n) for match in _MARKER.finditer(text) for n in re.split(r"\s*,\s*", match.group(1))}


def has_figure(sentence: str) -> bool:
    return bool(_FIGURE.search(_LABEL.sub(" ", _MARKER.sub(" ", sentence))))


def unsourced_figures(text: str, lang: str) -> list[str]:
    """The sentences of `text` with a figure and neither a marker [n] nor the language's
    house-rule or seed-essay label."""
    labels = tuple(label.lower() for label in (HOUSE_RULE.get(lang), SEED_CLAIM.get(lang)) if label)
    return [
        sentence
        for sentence in split_sentences(text)
        if has_figure(sentence)
        and not _MARKER.search(sentence)
        and not any(label in sentence.lower() for label in labels)
    ]


def source_entry_problems(source: str) -> list[str]:
    """What keeps one `sources` entry from being checked (empty: it can be)."""
    if source.strip().startswith(SEED_ESSAY):
        return []
    problems: list[str] = []
    if not _YEAR.search(source):
        problems.append("no 4-digit year")
    if not _LOCATOR.search(source):
        problems.append("no page (p. 12), chapter (chap. 4) or URL")
    return problems


def _short(text: str, limit: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def sourcing_problems(principle: Principle) -> list[str]:
    """One line per figure without a source, marker out of range, uncited source and
    uncheckable source entry, each naming the file and the field."""
    path, lang, sources = principle.path, principle.lang, principle.sources
    problems: list[str] = []
    checked = [("summary", principle.summary)]
    checked += [(f"section '{heading}'", text) for heading, text in principle.sections[:2]]
    for field, text in checked:
        for sentence in unsourced_figures(text, lang):
            problems.append(
                f"{path}: {field}: figure without a source: {_short(sentence)!r} "
                f"(add [n], or {HOUSE_RULE.get(lang, HOUSE_RULE['en'])} if it is one)"
            )
    everything = [("summary", principle.summary)]
    everything += [(f"section '{heading}'", text) for heading, text in principle.sections]
    seeds = [n for n, source in enumerate(sources, start=1) if source.strip().startswith(SEED_ESSAY)]
    cited: set[int] = set()
    seed_label = SEED_CLAIM.get(lang, SEED_CLAIM["en"]).lower()
    for field, text in everything:
        markers = cited_markers(text)
        cited |= markers
        for n in sorted(m for m in markers if not 1 <= m <= len(sources)):
            problems.append(f"{path}: {field}: [{n}] cites no source (sources has {len(sources)})")
        if seed_label in text.lower():
            if not seeds:
                problems.append(f"{path}: {field}: {seed_label} but no '{SEED_ESSAY}' entry in sources")
            elif len(seeds) == 1:  # the label names the one seed essay unambiguously
                cited.add(seeds[0])
    for n, source in enumerate(sources, start=1):
        if n not in cited:
            problems.append(f"{path}: sources[{n}]: never cited as [{n}] in the text: {_short(source, 80)!r}")
        for reason in source_entry_problems(source):
            problems.append(f"{path}: sources[{n}]: {reason}: {_short(source, 80)!r}")
    return problems


# --- Strong examples through Fournil's own diagnosis ---------------------------------------


def strong_example(principle: Principle) -> str:
    """The `## Strong example` quote as a rep would paste it (without the `>` marks)."""
    if len(principle.sections) < 4:
        return ""
    lines = principle.sections[3][1].splitlines()
    return "\n".join(re.sub(r"^\s*>\s?", "", line) for line in lines).strip()


class UnitCache:
    """A `SentenceEmbedder` that embeds many openers' sentences in one batch (`prime`) and
    then answers each opener's call from memory; a sentence it was not primed with is
    embedded on the spot. The encoder is the shared one: loaded once per process."""

    def __init__(self, embedder: SentenceEmbedder | None = None) -> None:
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}

    def _base(self) -> SentenceEmbedder:
        if self._embedder is None:
            from bot.knowledge.embedder import shared_embedder

            self._embedder = shared_embedder()
        return self._embedder

    def prime(self, texts: Iterable[str]) -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            for text, vector in zip(missing, self._base().embed(missing), strict=True):
                self._vectors[text] = vector

    def embed(self, texts: list[str]) -> np.ndarray:
        self.prime(texts)
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        return np.stack([self._vectors[text] for text in texts])


class ExampleDiagnosis:
    """The coach `fournil coach` runs (rules and learned detectors, language detected),
    built from one knowledge base, to read the principles' strong examples."""

    def __init__(self, coach: Coach, cache: UnitCache) -> None:
        self.coach = coach
        self._cache = cache

    @classmethod
    def load(cls, knowledge_dir: Path, prompts_dir: Path, catalog: PrincipleStore) -> ExampleDiagnosis:
        """Raises KnowledgeError when the rules, lexicons or prompts do not load; without
        usable detector weights (reported on their own) the rules alone run."""
        from bot.knowledge.detectors import LearnedDetectors

        cache = UnitCache()
        try:
            scorer: LearnedDetectors | None = LearnedDetectors.load(knowledge_dir / "detectors", cache)
        except KnowledgeError:
            scorer = None
        return cls(Coach.load(knowledge_dir, prompts_dir, catalog, scorer=scorer), cache)

    def prime(self, texts: Iterable[str]) -> None:
        """Embeds every sentence the coach will read in these texts, in one batch."""
        if self.coach.scorer is None:
            return
        units: list[str] = []
        for text in texts:
            try:
                text = clean_text(text)
                analysis = self.coach.analyse(text, self.coach.resolve_language(text))
            except InvalidOpener:
                continue
            units += [unit.text for unit in opener_units(analysis)]
        self._cache.prime(units)

    def problems(self, principle: Principle) -> list[str]:
        """One line naming the finding categories when the diagnosis flags the strong
        example, or saying why it cannot be coached at all."""
        text = strong_example(principle)
        try:
            card = self.coach.coach(text)
        except InvalidOpener as invalid:
            return [f"{principle.path}: strong example: Fournil cannot coach it: {invalid}"]
        if not card.findings:
            return []
        found = ", ".join(f"{f.category.value} ({f.rule}: {_short(f.evidence, 50)!r})" for f in card.findings)
        return [f"{principle.path}: strong example: Fournil's own diagnosis flags it: {found}"]


def strong_example_problems(
    principles: Sequence[Principle], knowledge_dir: Path, prompts_dir: Path, catalog: PrincipleStore
) -> list[str]:
    try:
        diagnosis = ExampleDiagnosis.load(knowledge_dir, prompts_dir, catalog)
    except FournilError as exc:
        return [f"{knowledge_dir / 'principles'}: strong examples: not checked ({exc})"]
    diagnosis.prime(strong_example(principle) for principle in principles)
    return [line for principle in principles for line in diagnosis.problems(principle)]


# --- Principle ids written anywhere --------------------------------------------------------


def evaluation_id_problems(data_dir: Path, catalog: PrincipleStore) -> list[str]:
    """The `expected` principle ids of the question sets (tests/data/questions*.jsonl),
    which `fournil eval` scores: each must resolve, as an id or an alias. (The openers'
    sets expect finding categories, not principles.)"""
    from bot.evaluation import load_questions

    problems: list[str] = []
    for path in _files(data_dir, "questions*.jsonl"):
        try:
            questions = load_questions(path)
        except FournilError as exc:
            problems.append(str(exc))
            continue
        for item in questions:
            for pid in item.expected:
                if catalog.resolve(pid) is None:
                    problems.append(
                        f"{path}: {item.id}: expected: unknown principle '{pid}' (neither an id nor an alias)"
                    )
    return problems


def principle_file_problems(
    path: Path, catalog: PrincipleStore, diagnosis: ExampleDiagnosis | None
) -> list[str]:
    """Everything `kb check` says about one principle file: it loads, it has its
    translations, its `related` ids and aliases resolve, its figures have sources, and (with
    a diagnosis) its strong example passes Fournil's own diagnosis."""
    try:
        principle = load_principle(path)
    except KnowledgeError as exc:
        return [str(exc)]
    problems = [
        f"{path}: missing translation '{lang}'"
        for lang in sorted(catalog.languages - catalog.translations(principle.id))
    ]
    problems += catalog.related_problems(principle) + catalog.alias_problems(path)
    problems += sourcing_problems(principle)
    if diagnosis is not None:
        problems += diagnosis.problems(principle)
    return problems


def _unknown(pid: str) -> str:
    return f"unknown principle '{pid}' (neither an id nor an alias)"


def check_knowledge(knowledge_dir: Path, prompts_dir: Path, data_dir: Path | None = None) -> list[str]:
    """Every problem of the knowledge base, one line each. `data_dir` holds the evaluation
    sets (default: tests/data beside the knowledge directory, when there is one)."""
    problems: list[str] = []
    try:
        lexicons = load_lexicons(knowledge_dir / "rules" / "lexicons")
    except KnowledgeError as exc:
        return [str(exc)]
    languages = set(lexicons)

    principles, errors = PrincipleStore.load_each(knowledge_dir / "principles")
    problems += [str(exc) for exc in errors]
    try:
        store: PrincipleStore | None = PrincipleStore(principles)
    except KnowledgeError as exc:
        problems.append(str(exc))
        store = None
    if store is not None:
        problems += store.problems(languages)
        known = store.names
    else:
        known = {p.id for p in principles} | {alias for p in principles for alias in p.aliases}
    for principle in principles:
        problems += sourcing_problems(principle)

    rules: list[Rule] = []
    for path in rule_paths(knowledge_dir / "rules"):
        try:
            rule = load_rule(path, languages)
        except KnowledgeError as exc:
            problems.append(str(exc))
            continue
        rules.append(rule)
        if rule.principle not in known:
            problems.append(f"{path}: principle: {_unknown(rule.principle)}")
        problems += rule_example_problems(rule, lexicons)

    try:
        for angle in load_angles(prompts_dir / "angles", languages):
            if angle.principle not in known:
                problems.append(
                    f"{prompts_dir / 'angles'}: angle '{angle.id}': principle: {_unknown(angle.principle)}"
                )
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
    try:
        llm_prompts = load_llm_prompts(prompts_dir / "llm")  # what FOURNIL_LLM is told
        for lang in sorted(languages - set(llm_prompts)):
            problems.append(f"{prompts_dir / 'llm'}: missing {lang}.yaml")
    except KnowledgeError as exc:
        problems.append(str(exc))
    problems += search_file_problems(knowledge_dir, languages)
    problems += detector_problems(knowledge_dir, languages, known)
    problems += drill_problems(prompts_dir / "drills", languages, known, tuple(rules), lexicons)
    problems += onboarding_problems(prompts_dir / "onboarding", languages, known, tuple(rules), lexicons)
    problems += check_buyer_sheets(prompts_dir, tuple(sorted(languages)))
    if store is not None:
        problems += evaluation_id_problems(data_dir or knowledge_dir.parent / "tests" / "data", store)
        problems += strong_example_problems(principles, knowledge_dir, prompts_dir, store)
    return problems
