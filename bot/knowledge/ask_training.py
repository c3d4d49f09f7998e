"""`fournil kb train` (its `ask` part): the question reader, rebuilt from
knowledge/ask/corpus/ and the principles' own `asks`.

Reproducible by construction, like the detectors (bot.knowledge.training): the corpus is
read in a fixed order, the folds are drawn with training.yaml's seed, the solver (lbfgs)
is deterministic, and the search scores come from an index built afresh. The weights
record a fingerprint of what they depend on (the corpus, the asks, training.yaml, this
file's code and the encoder), so `fournil kb check` can tell when they are stale.

Everything is chosen by cross-validation on the corpus only (the evaluation sets under
tests/data/ never take part): the weight of the search's scores beside the classifier's
logits (the one with the best out-of-fold top-1 accuracy), the off-topic threshold (the
lowest that refuses at most `max_ontopic_refusal` of the corpus's on-topic questions) and
the write-request threshold (the lowest that reads at most `max_question_as_write` of
the other questions as write requests). A principle's `asks` always stay in the training
folds: they are documents of the search index too, so scoring them would flatter it.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.errors import KnowledgeError
from bot.knowledge.ask_model import (
    INTENTS,
    OFFTOPIC_LABEL,
    QUESTION_LABEL,
    WEIGHTS_FILE,
    WRITE_LABEL,
    AskWeights,
    resolve,
    search_vector,
)
from bot.knowledge.detectors import word_terms
from bot.knowledge.embedder import MODEL, SentenceEmbedder
from bot.knowledge.principles import PrincipleStore
from bot.knowledge.training import WordSpace

SETTINGS_FILE = "training.yaml"
FIGURES_FILE = "figures.yaml"
_EMBED_BATCH = 256
_FIGURES_HEADER = (
    "# Written by `fournil kb train` from cross-validation on knowledge/ask/corpus/ (never\n"
    "# from the evaluation sets): out-of-fold figures of the question reader, per language.\n"
    "# The principles' `asks` are always in the training folds and never scored.\n"
)
# The search's scores for one question: (embedding, text, language) -> score per principle.
SearchScorer = Callable[[np.ndarray, str, str], Mapping[str, float]]


class AskExample(BaseModel):
    """One line of corpus/<lang>.jsonl (see knowledge/ask/README.md)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    label: str = Field(pattern=r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
    near: bool | None = None  # an off-topic question close to the job (a neighbouring one)
    note: str | None = None


@dataclass(frozen=True)
class AskUnit:
    """A labelled question: from the corpus, or a principle's `asks` (always trained on)."""

    text: str
    lang: str
    label: str  # a kept principle id, `offtopic` or `write_request`
    source: str = "corpus"  # corpus | asks
    near: bool | None = None

    @property
    def intent(self) -> str:
        return self.label if self.label in (OFFTOPIC_LABEL, WRITE_LABEL) else QUESTION_LABEL


class AskTrainingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int
    folds: int = Field(ge=2, le=20)
    regularisation_c: float = Field(gt=0)  # the principle model
    intent_c: float = Field(gt=0)  # the intent model (the gate)
    word_weight: float = Field(ge=0)
    min_term_units: int = Field(default=2, ge=1)
    search_weights: list[float] = Field(min_length=1)
    max_ontopic_refusal: float = Field(gt=0, lt=0.5)
    max_question_as_write: float = Field(gt=0, lt=0.5)
    # Situations reps put before their question ("I sell ERP to manufacturers."), per
    # language: each question is also trained with one of them in front (see
    # `context_variants`), so that an industry or a job title says nothing of the principle.
    contexts: dict[str, list[str]] = Field(default_factory=dict)


@dataclass
class AskFigures:
    """Out-of-fold figures on the corpus (per language where it says so)."""

    units: dict[str, int] = field(default_factory=dict)
    top1: dict[str, float] = field(default_factory=dict)
    top3: dict[str, float] = field(default_factory=dict)
    top1_classifier_alone: dict[str, float] = field(default_factory=dict)
    top1_search_alone: dict[str, float] = field(default_factory=dict)
    ontopic_answered: dict[str, float] = field(default_factory=dict)
    offtopic_refused_near: dict[str, float] = field(default_factory=dict)
    offtopic_refused_far: dict[str, float] = field(default_factory=dict)
    write_requests_recognised: dict[str, float] = field(default_factory=dict)
    questions_read_as_write: dict[str, float] = field(default_factory=dict)
    # The gate's trade-off: the share of off-topic questions refused when at most this
    # share of on-topic ones is ("2%": 0.87).
    offtopic_refused_at: dict[str, float] = field(default_factory=dict)
    search_weight: float = 0.0
    offtopic_threshold: float = 0.0
    write_threshold: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        def rounded(values: dict[str, float]) -> dict[str, float]:
            return {lang: round(value, 3) for lang, value in sorted(values.items())}

        return {
            "units": dict(sorted(self.units.items())),
            "search_weight": self.search_weight,
            "offtopic_threshold": round(self.offtopic_threshold, 4),
            "write_threshold": round(self.write_threshold, 4),
            "top1": rounded(self.top1),
            "top3": rounded(self.top3),
            "top1_classifier_alone": rounded(self.top1_classifier_alone),
            "top1_search_alone": rounded(self.top1_search_alone),
            "ontopic_answered": rounded(self.ontopic_answered),
            "offtopic_refused_near": rounded(self.offtopic_refused_near),
            "offtopic_refused_far": rounded(self.offtopic_refused_far),
            "write_requests_recognised": rounded(self.write_requests_recognised),
            "questions_read_as_write": rounded(self.questions_read_as_write),
            "offtopic_refused_at_ontopic_refused": {
                share: round(value, 3) for share, value in self.offtopic_refused_at.items()
            },
        }

    def lines(self) -> list[str]:
        """What `fournil kb train` prints."""
        data = self.as_dict()

        def per_language(values: dict[str, float]) -> str:
            return " / ".join(f"{lang} {value:.3f}" for lang, value in values.items()) or "-"

        lines = [
            f"ask: {sum(self.units.values())} corpus questions "
            f"({' / '.join(f'{lang} {n}' for lang, n in self.units.items())}), {self.folds_note}",
            f"  search weight {self.search_weight:g}, off-topic threshold {self.offtopic_threshold:.3f},"
            f" write-request threshold {self.write_threshold:.3f}",
        ]
        labels = {
            "top1": "right principle first",
            "top3": "right principle in the top 3",
            "top1_classifier_alone": "  first, classifier alone",
            "top1_search_alone": "  first, search alone",
            "ontopic_answered": "on-topic answered",
            "offtopic_refused_near": "off-topic refused (near)",
            "offtopic_refused_far": "off-topic refused (far)",
            "write_requests_recognised": "write requests recognised",
            "questions_read_as_write": "questions read as write requests",
        }
        for key, label in labels.items():
            lines.append(f"  {label}: {per_language(data[key])}")
        return lines

    folds_note: str = "cross-validated"


@dataclass(frozen=True)
class AskTrainingResult:
    weights: AskWeights
    figures: AskFigures


def load_ask_corpus(directory: Path, languages: set[str]) -> list[tuple[AskUnit, str]]:
    """Every line of corpus/<lang>.jsonl in file order, with where it comes from
    ("en.jsonl line 3"); labels as written (see `resolve_labels`)."""
    paths = sorted((directory / "corpus").glob("*.jsonl"))
    if not paths:
        raise KnowledgeError(directory / "corpus", "(folder)", "no corpus file (<lang>.jsonl) found")
    units: list[tuple[AskUnit, str]] = []
    seen: dict[str, tuple[str, str]] = {}
    for path in paths:
        lang = path.stem
        if lang not in languages:
            raise KnowledgeError(
                path, "file name", f"'{lang}' is not a language of the base ({', '.join(sorted(languages))})"
            )
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                example = AskExample.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                raise KnowledgeError(path, f"line {number}", f"invalid JSON ({exc.msg})") from None
            except ValidationError as exc:
                error = KnowledgeError.from_validation(path, exc)
                raise KnowledgeError(path, f"line {number}: {error.field}", error.problem) from None
            where = f"{path.name} line {number}"
            key = " ".join(example.text.lower().split())
            if key in seen:
                raise KnowledgeError(path, f"line {number}", f"same text as {seen[key][1]}")
            seen[key] = (example.label, where)
            if example.near is not None and example.label != OFFTOPIC_LABEL:
                raise KnowledgeError(
                    path, f"line {number}: near", "only an off-topic question is near or far"
                )
            units.append((AskUnit(example.text, lang, example.label, "corpus", example.near), where))
    return units


def resolve_labels(
    units: list[tuple[AskUnit, str]], known: set[str], aliases: Mapping[str, str], directory: Path
) -> list[AskUnit]:
    """Labels as kept principle ids (an old id resolves through the principles' `aliases`);
    an unknown label names its file and line."""
    resolved: list[AskUnit] = []
    for unit, where in units:
        label = unit.label
        if label not in (OFFTOPIC_LABEL, WRITE_LABEL):
            label = resolve(label, aliases)
            if label not in known:
                file, _, line = where.partition(" ")
                raise KnowledgeError(
                    directory / "corpus" / file,
                    f"{line}: label",
                    f"unknown principle '{unit.label}' (not an id or alias of knowledge/principles/)",
                )
        resolved.append(AskUnit(unit.text, unit.lang, label, unit.source, unit.near))
    return resolved


def principle_asks(store: PrincipleStore) -> list[AskUnit]:
    """The questions each principle says it answers, in its own language."""
    return [
        AskUnit(text=ask, lang=principle.lang, label=principle.id, source="asks")
        for principle in store.all()
        for ask in principle.asks
    ]


def load_ask_settings(directory: Path) -> AskTrainingSettings:
    path = directory / SETTINGS_FILE
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        return AskTrainingSettings.model_validate(raw)
    except OSError as exc:
        raise KnowledgeError(path, "file", exc.strerror or str(exc)) from None
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    except ValidationError as exc:
        raise KnowledgeError.from_validation(path, exc) from None


def ask_fingerprint(units: list[AskUnit], settings: AskTrainingSettings, search_tuning: str = "") -> str:
    """What the weights depend on: every labelled question (corpus and asks, labels as
    kept ids), the settings, this module's code, the run-time reader's, the encoder, and
    the search's tuning (knowledge/search.yaml: the scale of the scores the reader fuses)."""
    digest = hashlib.sha256()
    digest.update(MODEL.encode())
    digest.update(search_tuning.encode())
    digest.update(Path(__file__).read_bytes())
    digest.update((Path(__file__).parent / "ask_model.py").read_bytes())
    digest.update(settings.model_dump_json().encode())
    for unit in units:
        digest.update(
            json.dumps([unit.text, unit.lang, unit.label, unit.source], ensure_ascii=False).encode()
        )
    return digest.hexdigest()


def style_variants(text: str, lang: str) -> list[str]:
    """The same question in the other typing style: a question typed in a hurry (lower
    case, no final mark) also as written (a capital, a question mark), and a written one
    also as typed in a hurry. Trained on both, the reader learns what a question asks, not
    how tidily it is typed; otherwise every principle's `asks` (written tidily) would teach
    it that a tidy question is on topic."""
    stripped = " ".join(text.split())
    if stripped.endswith("?"):
        variant = stripped.lower().rstrip("?!.… ").strip()
    else:
        variant = stripped.rstrip("!.… ").strip()
        variant = variant[:1].upper() + variant[1:] + (" ?" if lang == "fr" else "?")
    return [variant] if variant and variant != stripped else []


def context_variants(units: list[AskUnit], settings: AskTrainingSettings) -> list[tuple[str, int]]:
    """Each question once more, after a situation of its language drawn with the seed
    (`contexts` of training.yaml): "We sell fleet maintenance to transport companies. how
    do i follow up without nagging". Every class gets them alike, the off-topic questions
    and the write requests too, so a selling situation never makes a question on topic."""
    import random

    draw = random.Random(settings.seed)
    variants: list[tuple[str, int]] = []
    for row, unit in enumerate(units):
        contexts = settings.contexts.get(unit.lang)
        if contexts:
            variants.append((f"{draw.choice(contexts)} {unit.text}", row))
    return variants


def embed_texts(texts: list[str], embedder: SentenceEmbedder) -> np.ndarray:
    parts = [embedder.embed(texts[i : i + _EMBED_BATCH]) for i in range(0, len(texts), _EMBED_BATCH)]
    return np.vstack(parts).astype(np.float64)


def _features(vectors: np.ndarray, space: WordSpace, terms: list[Counter[str]], word_weight: float) -> Any:
    from scipy import sparse

    return sparse.hstack([sparse.csr_matrix(vectors), space.matrix(terms) * word_weight]).tocsr()


def per_class(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """One row of coefficients per class, whose softmax is the model's probabilities: a
    two-class logistic regression keeps one row (z), which becomes (-z/2, z/2)."""
    coef, intercept = (
        np.asarray(model.coef_, dtype=np.float64),
        np.asarray(model.intercept_, dtype=np.float64),
    )
    if len(model.classes_) == 2 and coef.shape[0] == 1:
        return np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    return coef, intercept


def lowest_threshold(scores: np.ndarray, max_share: float) -> float:
    """The lowest threshold that flags at most `max_share` of `scores`, kept within
    [0.05, 0.99] (a threshold near 0 would flag everything, near 1 nothing)."""
    if scores.size == 0:
        return 0.5
    ordered = np.sort(scores)[::-1]
    allowed = int(np.floor(max_share * len(ordered)))
    # Flag the `allowed` highest: the threshold sits just above the next one.
    cut = float(ordered[allowed]) if allowed < len(ordered) else 0.0
    return float(min(max(np.nextafter(cut, 1.0), 0.05), 0.99))


def train_ask_model(
    units: list[AskUnit],
    embedder: SentenceEmbedder,
    settings: AskTrainingSettings,
    search: SearchScorer | None = None,
    progress: Callable[[str], None] | None = None,
    search_tuning: str = "",
) -> AskTrainingResult:
    """Cross-validate the fusion weight and the two thresholds on the corpus, then fit
    both models on everything (corpus and asks). `search_tuning` is the text of the
    search's settings the scores come from (fingerprinted with the weights)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    # Every question also in the other typing style (see `style_variants`): rows 0..N-1
    # are the questions themselves, the rest their variants (`origin` says of which).
    variants = [
        (text, row) for row, unit in enumerate(units) for text in style_variants(unit.text, unit.lang)
    ] + context_variants(units, settings)
    origin = np.array(list(range(len(units))) + [row for _, row in variants], dtype=np.int64)
    texts = [unit.text for unit in units] + [text for text, _ in variants]
    say(f"ask: embedding {len(units)} questions and {len(variants)} variants")
    vectors = embed_texts(texts, embedder)
    terms = [word_terms(text) for text in texts]
    principles = tuple(sorted({unit.label for unit in units if unit.intent == QUESTION_LABEL}))
    position = {pid: index for index, pid in enumerate(principles)}
    corpus = np.array([unit.source == "corpus" for unit in units])
    asked = np.flatnonzero(~corpus)
    on_topic = np.array([unit.intent == QUESTION_LABEL for unit in units])
    labels = np.array([unit.label for unit in units])
    intents = np.array([unit.intent for unit in units])
    languages = np.array([unit.lang for unit in units])
    scores = np.zeros((len(units), len(principles)))
    if search is not None:
        say("ask: search scores of the corpus questions")
        for row in np.flatnonzero(corpus & on_topic):
            unit = units[row]
            scores[row] = search_vector(
                principles, search(vectors[row].astype(np.float32), unit.text, unit.lang)
            )

    def principle_model() -> LogisticRegression:
        return LogisticRegression(C=settings.regularisation_c, max_iter=5000, solver="lbfgs")

    def intent_model() -> LogisticRegression:
        return LogisticRegression(C=settings.intent_c, class_weight="balanced", max_iter=5000, solver="lbfgs")

    rows = np.flatnonzero(corpus)
    logits = np.zeros((len(units), len(principles)))
    intent_probability = np.zeros((len(units), len(INTENTS)))
    folds = StratifiedKFold(n_splits=settings.folds, shuffle=True, random_state=settings.seed)
    all_labels, all_intents, all_on_topic = labels[origin], intents[origin], on_topic[origin]
    for fold, (train, test) in enumerate(folds.split(rows, labels[rows]), start=1):
        say(f"ask: fold {fold}/{settings.folds}")
        trained = np.zeros(len(units), dtype=bool)
        trained[rows[train]] = True
        trained[asked] = True
        fit_rows = np.flatnonzero(trained[origin])  # the training questions and their variants
        test_rows = rows[test]  # the held-out questions as typed
        # The vocabulary counts the variants too: the words of the situations put in front
        # enter it, so the models learn that they say nothing of the principle.
        space = WordSpace.fit([terms[i] for i in fit_rows], settings.min_term_units)

        def x(selection: np.ndarray, space: WordSpace = space) -> Any:
            return _features(vectors[selection], space, [terms[i] for i in selection], settings.word_weight)

        fit_on = fit_rows[all_on_topic[fit_rows]]
        model = principle_model().fit(x(fit_on), all_labels[fit_on])
        columns = [position[str(c)] for c in model.classes_]
        coef, intercept = per_class(model)
        logits[np.ix_(test_rows, columns)] = x(test_rows) @ coef.T + intercept
        missing = sorted(set(range(len(principles))) - set(columns))
        if missing:  # a principle with no question in these folds can never be predicted
            logits[np.ix_(test_rows, missing)] = -1e9
        gate = intent_model().fit(x(fit_rows), all_intents[fit_rows])
        order = [list(gate.classes_).index(name) for name in INTENTS]
        intent_probability[test_rows] = gate.predict_proba(x(test_rows))[:, order]

    evaluated = rows[on_topic[rows]]
    truth = np.array([position[str(label)] for label in labels[evaluated]])

    def ranks(weight: float) -> np.ndarray:
        return np.argsort(-(logits[evaluated] + weight * scores[evaluated]), axis=1, kind="stable")

    candidates = sorted(set(settings.search_weights)) if search is not None else [0.0]
    accuracy = {weight: float(np.mean(ranks(weight)[:, 0] == truth)) for weight in candidates}
    search_weight = max(candidates, key=lambda weight: (round(accuracy[weight], 6), -weight))
    say("ask: top-1 by search weight " + ", ".join(f"{w:g}: {a:.3f}" for w, a in accuracy.items()))
    ranked = ranks(search_weight)

    offtopic_p = intent_probability[:, INTENTS.index(OFFTOPIC_LABEL)]
    write_p = intent_probability[:, INTENTS.index(WRITE_LABEL)]
    questions = rows[intents[rows] == QUESTION_LABEL]
    not_write = rows[intents[rows] != WRITE_LABEL]
    write_threshold = lowest_threshold(write_p[not_write], settings.max_question_as_write)
    # The off-topic gate speaks only where the write-request reading did not.
    asked_questions = questions[write_p[questions] < write_threshold]
    offtopic_threshold = lowest_threshold(offtopic_p[asked_questions], settings.max_ontopic_refusal)
    is_write = write_p >= write_threshold
    refused = ~is_write & (offtopic_p >= offtopic_threshold)
    offtopic_rows = rows[intents[rows] == OFFTOPIC_LABEL]
    tradeoff: dict[str, float] = {}
    for share in (0.01, 0.02, 0.03, 0.05):
        threshold = lowest_threshold(offtopic_p[asked_questions], share)
        caught = ~is_write[offtopic_rows] & (offtopic_p[offtopic_rows] >= threshold)
        tradeoff[f"{share:.0%}"] = float(caught.mean())
        say(
            f"ask: refusing at most {share:.0%} of on-topic questions (threshold {threshold:.3f}) "
            f"refuses {caught.mean():.3f} of off-topic ones"
        )

    figures = AskFigures(
        offtopic_refused_at=tradeoff,
        search_weight=float(search_weight),
        offtopic_threshold=offtopic_threshold,
        write_threshold=write_threshold,
        folds_note=f"{settings.folds}-fold cross-validation (seed {settings.seed})",
    )
    for lang in sorted({str(value) for value in languages[rows]}):
        mine = languages == lang
        in_lang = mine[evaluated]
        figures.units[lang] = int(np.sum(mine & corpus))
        figures.top1[lang] = float(np.mean(ranked[in_lang, 0] == truth[in_lang]))
        figures.top3[lang] = float(np.mean(np.any(ranked[in_lang, :3] == truth[in_lang, None], axis=1)))
        alone = np.argmax(logits[evaluated][in_lang], axis=1)
        figures.top1_classifier_alone[lang] = float(np.mean(alone == truth[in_lang]))
        if search is not None:
            figures.top1_search_alone[lang] = float(
                np.mean(np.argmax(scores[evaluated][in_lang], axis=1) == truth[in_lang])
            )
        lang_rows = rows[languages[rows] == lang]
        asked_here = lang_rows[intents[lang_rows] == QUESTION_LABEL]
        figures.ontopic_answered[lang] = float(np.mean(~is_write[asked_here] & ~refused[asked_here]))
        for near, target in ((True, figures.offtopic_refused_near), (False, figures.offtopic_refused_far)):
            chosen = [r for r in lang_rows if intents[r] == OFFTOPIC_LABEL and bool(units[r].near) == near]
            if chosen:
                target[lang] = float(np.mean(refused[chosen]))
        writes = lang_rows[intents[lang_rows] == WRITE_LABEL]
        if writes.size:
            figures.write_requests_recognised[lang] = float(np.mean(is_write[writes]))
        figures.questions_read_as_write[lang] = float(np.mean(is_write[asked_here]))

    say("ask: fitting on every question")
    space = WordSpace.fit(terms, settings.min_term_units)
    everything = _features(vectors, space, terms, settings.word_weight)
    on_rows = np.flatnonzero(all_on_topic)
    final = principle_model().fit(everything[on_rows], all_labels[on_rows])
    order = [list(final.classes_).index(pid) for pid in principles]
    final_coef, final_intercept = per_class(final)
    coef = final_coef[order]
    gate = intent_model().fit(everything, all_intents)
    intent_order = [list(gate.classes_).index(name) for name in INTENTS]
    intent_coef = np.asarray(gate.coef_)[intent_order]
    dimensions = vectors.shape[1]
    weights = AskWeights(
        principles=principles,
        coef=np.ascontiguousarray(coef[:, :dimensions], dtype=np.float32),
        coef_words=np.ascontiguousarray(coef[:, dimensions:], dtype=np.float32),
        intercept=final_intercept.astype(np.float32)[order],
        intent_coef=np.ascontiguousarray(intent_coef[:, :dimensions], dtype=np.float32),
        intent_coef_words=np.ascontiguousarray(intent_coef[:, dimensions:], dtype=np.float32),
        intent_intercept=np.asarray(gate.intercept_, dtype=np.float32)[intent_order],
        vocabulary=space.vocabulary,
        idf=space.idf,
        word_weight=settings.word_weight,
        search_weight=float(search_weight),
        offtopic_threshold=offtopic_threshold,
        write_threshold=write_threshold,
        fingerprint=ask_fingerprint(units, settings, search_tuning),
        encoder=MODEL,
    )
    return AskTrainingResult(weights=weights, figures=figures)


def write_ask_training(result: AskTrainingResult, directory: Path) -> None:
    """The weights (npz) and the cross-validated figures (YAML, stamped with the same
    fingerprint)."""
    result.weights.save(directory / WEIGHTS_FILE)
    body = {"fingerprint": result.weights.fingerprint, **result.figures.as_dict()}
    path = directory / FIGURES_FILE
    partial = path.with_name(path.name + ".partial")
    partial.write_text(
        _FIGURES_HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    partial.replace(path)


MIN_CORPUS_QUESTIONS = 10


def search_tuning_text(knowledge_dir: Path) -> str:
    """knowledge/search.yaml as written ("" when there is none)."""
    path = knowledge_dir / "search.yaml"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def ask_units(knowledge_dir: Path, store: PrincipleStore) -> list[AskUnit]:
    """The corpus (labels resolved to kept ids) followed by every principle's `asks`."""
    directory = knowledge_dir / "ask"
    raw = load_ask_corpus(directory, store.languages)
    return resolve_labels(raw, set(store.ids), store.aliases, directory) + principle_asks(store)


def ask_problems(knowledge_dir: Path, store: PrincipleStore) -> list[str]:
    """For `fournil kb check`: the corpus, the policy, and weights trained on this very
    corpus, these asks, these settings and this code."""
    from bot.knowledge.ask_model import POLICY_FILE, AskPolicy

    directory = knowledge_dir / "ask"
    problems: list[str] = []
    try:
        units = ask_units(knowledge_dir, store)
        counts = Counter((unit.label, unit.lang) for unit in units if unit.source == "corpus")
        for pid in store.ids:
            for lang in sorted(store.languages):
                if counts[(pid, lang)] < MIN_CORPUS_QUESTIONS:
                    problems.append(
                        f"{directory / 'corpus' / (lang + '.jsonl')}: principle '{pid}' has "
                        f"{counts[(pid, lang)]} questions (at least {MIN_CORPUS_QUESTIONS} expected)"
                    )
        policy = AskPolicy.load(directory / POLICY_FILE)
        if store.resolve(policy.write_request_principle) is None:
            problems.append(
                f"{directory / POLICY_FILE}: write_request_principle: unknown principle "
                f"'{policy.write_request_principle}'"
            )
        weights = AskWeights.load(directory / WEIGHTS_FILE)
        expected = ask_fingerprint(units, load_ask_settings(directory), search_tuning_text(knowledge_dir))
        if weights.fingerprint != expected:
            problems.append(
                f"{directory / WEIGHTS_FILE}: fingerprint: trained on another corpus, other asks, "
                "settings or training code: run `fournil kb train` and commit the result"
            )
        figures = directory / FIGURES_FILE
        stamped = (yaml.safe_load(figures.read_text(encoding="utf-8")) or {}) if figures.is_file() else {}
        if not isinstance(stamped, dict) or stamped.get("fingerprint") != weights.fingerprint:
            problems.append(f"{figures}: fingerprint: not written with the weights: run `fournil kb train`")
    except KnowledgeError as exc:
        problems.append(str(exc))
    except yaml.YAMLError as exc:
        problems.append(f"{directory / FIGURES_FILE}: yaml: {str(exc).splitlines()[0]}")
    return problems


def train_from_knowledge(
    knowledge_dir: Path, embedder: SentenceEmbedder, progress: Callable[[str], None] | None = None
) -> AskTrainingResult:
    """Everything `fournil kb train` needs for `ask`, from the knowledge directory: the
    corpus, the asks, the settings, and the search's scores from an index built afresh in
    a temporary directory (so that they never depend on an index's history)."""
    import tempfile

    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from bot.knowledge.index import PrincipleIndex, SearchTuning

    store = PrincipleStore.load(knowledge_dir / "principles")
    units = ask_units(knowledge_dir, store)
    settings = load_ask_settings(knowledge_dir / "ask")
    with tempfile.TemporaryDirectory(prefix="fournil-ask-index-") as scratch:
        client = chromadb.PersistentClient(path=scratch, settings=ChromaSettings(anonymized_telemetry=False))
        try:
            if progress is not None:
                progress("ask: indexing the principles")
            index, _ = PrincipleIndex.open(
                client,
                store,
                embedder,
                tuning=SearchTuning.load(knowledge_dir / "search.yaml"),
                concepts=knowledge_dir / "concepts.yaml",
            )
            return train_ask_model(
                units,
                embedder,
                settings,
                search=index.search_scores,
                progress=progress,
                search_tuning=search_tuning_text(knowledge_dir),
            )
        finally:
            client.clear_system_cache()
