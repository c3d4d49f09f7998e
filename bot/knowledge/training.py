"""`fournil kb train`: the learned sentence detectors, rebuilt from the labelled corpus.

Reproducible by construction: the corpus is read in a fixed order, the folds are drawn
with the seed of training.yaml, and the solver (lbfgs) is deterministic. The weights
record a fingerprint of everything they depend on (the corpus, training.yaml, this file's
code and the encoder), so a test can tell when they are stale.

Each category's threshold comes from cross-validation on the corpus only: the lowest
out-of-fold probability at which precision reaches `min_precision`. The evaluation sets
under tests/data/ never take part.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.detectors import LEARNED_CATEGORIES, CategoryThreshold
from bot.core.errors import KnowledgeError
from bot.core.models import Category
from bot.knowledge.detectors import WEIGHTS_FILE, DetectorWeights, term_weights, word_terms
from bot.knowledge.embedder import MODEL, SentenceEmbedder

THRESHOLDS_FILE = "thresholds.yaml"
SETTINGS_FILE = "training.yaml"
_EMBED_BATCH = 256
_THRESHOLDS_HEADER = (
    "# Written by `fournil kb train` from cross-validation on knowledge/detectors/corpus/\n"
    "# (never from the evaluation sets). Each category's threshold is the lowest out-of-fold\n"
    "# probability at which its precision reaches training.yaml's min_precision; the cv_*\n"
    "# figures are the out-of-fold precision, recall and ROC AUC at that threshold.\n"
)


class CorpusUnit(BaseModel):
    """One labelled sentence of corpus/*.jsonl (see knowledge/detectors/README.md)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    lang: str = Field(pattern="^[a-z]{2}$")
    labels: list[Category]
    channel: str | None = None
    note: str | None = None

    @field_validator("labels")
    @classmethod
    def _learned_only(cls, labels: list[Category]) -> list[Category]:
        counted = [label.value for label in labels if label not in LEARNED_CATEGORIES]
        if counted:
            raise ValueError(f"{', '.join(counted)} is counted by a rule, not learned: leave it out")
        return labels


class TrainingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int
    folds: int = Field(ge=2, le=20)
    regularisation_c: float = Field(gt=0)
    min_precision: float = Field(gt=0, le=1)
    min_positives: int = Field(ge=2)
    # A word term (single word or pair) enters the vocabulary when this many units use it.
    min_term_units: int = Field(default=2, ge=1)
    # The share of the corpus's positive units (out of fold) a veto may lose: a wording
    # rule is overruled below the probability that only this share of positives falls under.
    veto_recall_loss: float | None = Field(default=None, ge=0, lt=0.5)


@dataclass(frozen=True)
class TrainingResult:
    weights: DetectorWeights
    thresholds: dict[Category, CategoryThreshold]
    units: int


def load_corpus(directory: Path, languages: set[str] | None = None) -> list[CorpusUnit]:
    """Every unit of corpus/*.jsonl in file order; a bad line names its file and line."""
    units: list[CorpusUnit] = []
    paths = sorted((directory / "corpus").glob("*.jsonl"))
    if not paths:
        raise KnowledgeError(directory / "corpus", "(folder)", "no corpus file (*.jsonl) found")
    seen: dict[str, tuple[Path, int, frozenset[Category]]] = {}
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                unit = CorpusUnit.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                raise KnowledgeError(path, f"line {number}", f"invalid JSON ({exc.msg})") from None
            except ValidationError as exc:
                error = KnowledgeError.from_validation(path, exc)
                raise KnowledgeError(path, f"line {number}: {error.field}", error.problem) from None
            if languages is not None and unit.lang not in languages:
                raise KnowledgeError(path, f"line {number}: lang", f"unknown language '{unit.lang}'")
            key = " ".join(unit.text.lower().split())
            labels = frozenset(unit.labels)
            if key in seen and seen[key][2] != labels:
                other, other_line, _ = seen[key]
                raise KnowledgeError(
                    path,
                    f"line {number}",
                    f"same text as {other.name} line {other_line} with other labels",
                )
            seen.setdefault(key, (path, number, labels))
            units.append(unit)
    return units


def load_training_settings(directory: Path) -> TrainingSettings:
    path = directory / SETTINGS_FILE
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        return TrainingSettings.model_validate(raw)
    except OSError as exc:
        raise KnowledgeError(path, "file", exc.strerror or str(exc)) from None
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    except ValidationError as exc:
        raise KnowledgeError.from_validation(path, exc) from None


def fingerprint(units: list[CorpusUnit], settings: TrainingSettings) -> str:
    """What the weights depend on: the labelled units, the settings, this module's code and
    the encoder. Notes and channels do not change what is learned and are left out."""
    digest = hashlib.sha256()
    digest.update(MODEL.encode())
    digest.update(Path(__file__).read_bytes())
    digest.update(settings.model_dump_json().encode())
    for unit in units:
        labels = sorted(label.value for label in unit.labels)
        digest.update(json.dumps([unit.text, unit.lang, labels], ensure_ascii=False).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class WordSpace:
    """The word terms the detectors read, with their inverse document frequencies."""

    vocabulary: tuple[str, ...]
    idf: np.ndarray

    @classmethod
    def fit(cls, terms: list[Counter[str]], min_units: int) -> WordSpace:
        document_frequency: Counter[str] = Counter()
        for counts in terms:
            document_frequency.update(counts.keys())
        vocabulary = tuple(sorted(t for t, df in document_frequency.items() if df >= min_units))
        n = len(terms)
        # scikit-learn's smooth idf: ln((1 + n) / (1 + df)) + 1
        idf = np.array(
            [math.log((1 + n) / (1 + document_frequency[t])) + 1.0 for t in vocabulary], dtype=np.float32
        )
        return cls(vocabulary, idf)

    def matrix(self, terms: list[Counter[str]]) -> Any:
        from scipy import sparse

        index = {term: column for column, term in enumerate(self.vocabulary)}
        rows: list[int] = []
        columns: list[int] = []
        values: list[float] = []
        for row, counts in enumerate(terms):
            for column, value in term_weights(counts, index, self.idf).items():
                rows.append(row)
                columns.append(column)
                values.append(value)
        return sparse.csr_matrix((values, (rows, columns)), shape=(len(terms), len(self.vocabulary)))


def features(vectors: np.ndarray, words: Any) -> Any:
    """The embedding beside the word terms, as one sparse matrix."""
    from scipy import sparse

    return sparse.hstack([sparse.csr_matrix(vectors), words]).tocsr()


def embed_corpus(units: list[CorpusUnit], embedder: SentenceEmbedder) -> np.ndarray:
    texts = [unit.text for unit in units]
    parts = [embedder.embed(texts[i : i + _EMBED_BATCH]) for i in range(0, len(texts), _EMBED_BATCH)]
    return np.vstack(parts).astype(np.float64)


def train_detectors(
    units: list[CorpusUnit],
    embedder: SentenceEmbedder,
    settings: TrainingSettings,
    progress: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Cross-validate each category to set its threshold, then fit it on the whole corpus."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    say(f"embedding {len(units)} units")
    vectors = embed_corpus(units, embedder)
    terms = [word_terms(unit.text) for unit in units]
    space = WordSpace.fit(terms, settings.min_term_units)
    everything = features(vectors, space.matrix(terms))
    dimensions = vectors.shape[1]
    categories: list[Category] = []
    coefs: list[np.ndarray] = []
    intercepts: list[float] = []
    thresholds: dict[Category, CategoryThreshold] = {}
    for category in LEARNED_CATEGORIES:
        target = np.array([category in unit.labels for unit in units], dtype=np.int64)
        positives = int(target.sum())
        if positives < settings.min_positives or positives > len(units) - settings.folds:
            say(f"{category.value}: {positives} positive units, not learned (rules only)")
            continue

        def model() -> LogisticRegression:
            return LogisticRegression(
                C=settings.regularisation_c, class_weight="balanced", max_iter=5000, solver="lbfgs"
            )

        out_of_fold = np.zeros(len(units))
        folds = StratifiedKFold(n_splits=settings.folds, shuffle=True, random_state=settings.seed)
        for train, test in folds.split(vectors, target):
            # The vocabulary is learned on the training folds only, as at run time.
            fold_space = WordSpace.fit([terms[i] for i in train], settings.min_term_units)
            train_x = features(vectors[train], fold_space.matrix([terms[i] for i in train]))
            test_x = features(vectors[test], fold_space.matrix([terms[i] for i in test]))
            out_of_fold[test] = model().fit(train_x, target[train]).predict_proba(test_x)[:, 1]
        threshold, precision, recall = choose_threshold(out_of_fold, target, settings.min_precision)
        veto = None
        if settings.veto_recall_loss:
            veto = round(float(np.quantile(out_of_fold[target == 1], settings.veto_recall_loss)), 4)
        thresholds[category] = CategoryThreshold(
            threshold=round(threshold, 4),
            cv_precision=round(precision, 3),
            cv_recall=round(recall, 3),
            cv_auc=round(float(roc_auc_score(target, out_of_fold)), 3),
            positives=positives,
            negatives=len(units) - positives,
            veto_below=veto,
        )
        final = model().fit(everything, target)
        categories.append(category)
        coefs.append(final.coef_[0])
        intercepts.append(float(final.intercept_[0]))
        say(f"{category.value}: threshold {threshold:.3f}, cv precision {precision:.2f} recall {recall:.2f}")
    stacked = np.array(coefs, dtype=np.float32).reshape(len(categories), dimensions + len(space.vocabulary))
    weights = DetectorWeights(
        categories=tuple(categories),
        coef=np.ascontiguousarray(stacked[:, :dimensions]),
        intercept=np.array(intercepts, dtype=np.float32),
        fingerprint=fingerprint(units, settings),
        encoder=MODEL,
        vocabulary=space.vocabulary,
        idf=space.idf,
        coef_words=np.ascontiguousarray(stacked[:, dimensions:]),
    )
    return TrainingResult(weights=weights, thresholds=thresholds, units=len(units))


def choose_threshold(
    scores: np.ndarray, target: np.ndarray, min_precision: float
) -> tuple[float, float, float]:
    """The lowest threshold whose precision reaches `min_precision` (best recall at that
    bar); if none does, the one with the best precision. Returns (threshold, precision,
    recall)."""
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    hits = np.cumsum(target[order])
    flagged = np.arange(1, len(ranked) + 1)
    precision = hits / flagged
    recall = hits / max(1, int(target.sum()))
    # Only cut between distinct scores: a threshold flags every unit with that score.
    last_of_value = np.append(ranked[1:] != ranked[:-1], True)
    candidates = np.flatnonzero(last_of_value)
    reaching = candidates[precision[candidates] >= min_precision]
    index = int(reaching[-1]) if reaching.size else int(candidates[np.argmax(precision[candidates])])
    threshold = float(max(ranked[index], 1e-4))
    return threshold, float(precision[index]), float(recall[index])


def write_training(result: TrainingResult, directory: Path) -> None:
    """The weights (npz) and the thresholds with their cross-validated figures (YAML)."""
    result.weights.save(directory / WEIGHTS_FILE)
    body = {
        category.value: threshold.model_dump(exclude_none=True)
        for category, threshold in result.thresholds.items()
    }
    path = directory / THRESHOLDS_FILE
    partial = path.with_name(path.name + ".partial")
    partial.write_text(
        _THRESHOLDS_HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    partial.replace(path)
