"""The learned sentence detectors at run time: one logistic regression per category over
the multilingual sentence embedding and the sentence's words, read from a small
non-executable weights file.

The embedding carries the meaning across wordings and languages; the words (TF-IDF of
single words and pairs, accents and case folded) carry what an embedding blurs: tense
("good to meet you" is not a meeting ask), a source named beside a figure.

`fournil kb train` (bot.knowledge.training) writes the weights; this module only reads
them (`numpy.load` with `allow_pickle=False`: a weights file can hold numbers and
strings, never code) and scores an opener's units in one batched embedding call.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from bot.core.errors import KnowledgeError
from bot.core.models import Category
from bot.core.ports import UnitReading
from bot.knowledge.embedder import MODEL, SentenceEmbedder, shared_embedder

WEIGHTS_FILE = "weights.npz"
_TOKEN = re.compile(r"\w\w+")  # two or more word characters: linear-time
_APOSTROPHES = str.maketrans({"’": " ", "'": " ", "‘": " ", "ʼ": " "})


def word_terms(text: str) -> Counter[str]:
    """Single words and pairs of neighbouring words, lower-cased and without accents."""
    folded = unicodedata.normalize("NFKD", text.lower().translate(_APOSTROPHES))
    plain = "".join(ch for ch in folded if not unicodedata.combining(ch))
    tokens = _TOKEN.findall(plain)
    terms: Counter[str] = Counter(tokens)
    terms.update(f"{a} {b}" for a, b in pairwise(tokens))
    return terms


def term_weights(terms: Counter[str], vocabulary: dict[str, int], idf: np.ndarray) -> dict[int, float]:
    """Sub-linear TF-IDF of the known terms, L2-normalised (scikit-learn's TfidfVectorizer
    with sublinear_tf=True computes the same)."""
    weights = {
        vocabulary[term]: (1.0 + math.log(count)) * float(idf[vocabulary[term]])
        for term, count in terms.items()
        if term in vocabulary
    }
    norm = math.sqrt(sum(value * value for value in weights.values()))
    return {index: value / norm for index, value in weights.items()} if norm > 0 else {}


@dataclass(frozen=True)
class DetectorWeights:
    """One linear classifier per category: probability = sigmoid(embedding · coef + intercept)."""

    categories: tuple[Category, ...]
    coef: np.ndarray  # (categories, embedding dimensions), float32
    intercept: np.ndarray  # (categories,), float32
    fingerprint: str  # of the corpus, training settings and training code (see training.py)
    encoder: str
    vocabulary: tuple[str, ...] = ()  # word terms, in column order
    idf: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    coef_words: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))

    def save(self, path: Path) -> None:
        """Written atomically: a crash mid-write never leaves half a weights file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as handle:
            np.savez_compressed(
                handle,
                categories=np.array([c.value for c in self.categories]),
                coef=self.coef.astype(np.float32),
                intercept=self.intercept.astype(np.float32),
                fingerprint=np.array(self.fingerprint),
                encoder=np.array(self.encoder),
                vocabulary=np.array(self.vocabulary, dtype=np.str_),
                idf=self.idf.astype(np.float32),
                coef_words=self.coef_words.astype(np.float32),
            )
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> DetectorWeights:
        try:
            with np.load(path, allow_pickle=False) as data:
                categories = tuple(Category(str(name)) for name in data["categories"])
                coef = np.asarray(data["coef"], dtype=np.float32)
                intercept = np.asarray(data["intercept"], dtype=np.float32)
                fingerprint = str(data["fingerprint"])
                encoder = str(data["encoder"])
                vocabulary = tuple(str(term) for term in data["vocabulary"])
                idf = np.asarray(data["idf"], dtype=np.float32)
                coef_words = np.asarray(data["coef_words"], dtype=np.float32)
        except FileNotFoundError:
            raise KnowledgeError(path, "file", "no weights: run `fournil kb train`") from None
        except (OSError, KeyError, ValueError) as exc:
            raise KnowledgeError(path, "weights", f"unreadable ({exc}); run `fournil kb train`") from None
        if coef.ndim != 2 or coef.shape[0] != len(categories) or intercept.shape != (len(categories),):
            raise KnowledgeError(path, "coef", "shapes do not match the categories; run `fournil kb train`")
        if idf.shape != (len(vocabulary),) or coef_words.shape != (len(categories), len(vocabulary)):
            raise KnowledgeError(path, "vocabulary", "shapes do not match; run `fournil kb train`")
        if encoder != MODEL:
            raise KnowledgeError(
                path, "encoder", f"trained on {encoder}, not {MODEL}: run `fournil kb train`"
            )
        return cls(categories, coef, intercept, fingerprint, encoder, vocabulary, idf, coef_words)


class LearnedDetectors:
    """Implements the core's `UnitScorer`: probabilities per unit and the opener's gist."""

    def __init__(self, weights: DetectorWeights, embedder: SentenceEmbedder | None = None) -> None:
        self._weights = weights
        self._embedder = embedder
        self._coef_t = np.ascontiguousarray(weights.coef.T)
        self._vocabulary = {term: index for index, term in enumerate(weights.vocabulary)}
        self._words_t = np.ascontiguousarray(weights.coef_words.T)  # (terms, categories)

    @classmethod
    def load(cls, directory: Path, embedder: SentenceEmbedder | None = None) -> LearnedDetectors:
        return cls(DetectorWeights.load(directory / WEIGHTS_FILE), embedder)

    @property
    def categories(self) -> tuple[Category, ...]:
        return self._weights.categories

    @property
    def weights(self) -> DetectorWeights:
        return self._weights

    def read(self, units: Sequence[str]) -> UnitReading:
        if not units:
            return UnitReading(probabilities=())
        if self._embedder is None:
            self._embedder = shared_embedder()  # loaded on the first opener, then shared
        vectors = self._embedder.embed(list(units))
        logits = vectors @ self._coef_t + self._weights.intercept
        for row, text in enumerate(units):
            weights = term_weights(word_terms(text), self._vocabulary, self._weights.idf)
            if weights:
                columns = np.fromiter(weights.keys(), dtype=np.int64, count=len(weights))
                values = np.fromiter(weights.values(), dtype=np.float32, count=len(weights))
                logits[row] += values @ self._words_t[columns]
        probabilities = sigmoid(logits)
        gist = vectors.mean(axis=0)
        norm = float(np.linalg.norm(gist))
        categories = self._weights.categories
        return UnitReading(
            probabilities=tuple(
                {category: float(p) for category, p in zip(categories, row, strict=True)}
                for row in probabilities
            ),
            gist=(gist / norm).astype(np.float32) if norm > 0 else None,
        )


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Logistic probabilities; the same formula as scikit-learn's
    `LogisticRegression.predict_proba` for the positive class."""
    result: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
    return result
