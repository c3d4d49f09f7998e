"""The learned sentence detectors at run time: one logistic regression per category over
the multilingual sentence embedding, read from a small non-executable weights file.

`fournil kb train` (bot.knowledge.training) writes the weights; this module only reads
them (`numpy.load` with `allow_pickle=False`: a weights file can hold numbers and
strings, never code) and scores an opener's units in one batched embedding call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.core.errors import KnowledgeError
from bot.core.models import Category
from bot.core.ports import UnitReading
from bot.knowledge.embedder import MODEL, SentenceEmbedder, shared_embedder

WEIGHTS_FILE = "weights.npz"


@dataclass(frozen=True)
class DetectorWeights:
    """One linear classifier per category: probability = sigmoid(embedding · coef + intercept)."""

    categories: tuple[Category, ...]
    coef: np.ndarray  # (categories, dimensions), float32
    intercept: np.ndarray  # (categories,), float32
    fingerprint: str  # of the corpus, training settings and training code (see training.py)
    encoder: str

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
        except FileNotFoundError:
            raise KnowledgeError(path, "file", "no weights: run `fournil kb train`") from None
        except (OSError, KeyError, ValueError) as exc:
            raise KnowledgeError(path, "weights", f"unreadable ({exc}); run `fournil kb train`") from None
        if coef.ndim != 2 or coef.shape[0] != len(categories) or intercept.shape != (len(categories),):
            raise KnowledgeError(path, "coef", "shapes do not match the categories; run `fournil kb train`")
        if encoder != MODEL:
            raise KnowledgeError(
                path, "encoder", f"trained on {encoder}, not {MODEL}: run `fournil kb train`"
            )
        return cls(categories, coef, intercept, fingerprint, encoder)


class LearnedDetectors:
    """Implements the core's `UnitScorer`: probabilities per unit and the opener's gist."""

    def __init__(self, weights: DetectorWeights, embedder: SentenceEmbedder | None = None) -> None:
        self._weights = weights
        self._embedder = embedder
        self._coef_t = np.ascontiguousarray(weights.coef.T)

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
        probabilities = unit_probabilities(vectors, self._coef_t, self._weights.intercept)
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


def unit_probabilities(vectors: np.ndarray, coef_t: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """Logistic probabilities, (units, categories); the same formula as scikit-learn's
    `LogisticRegression.predict_proba` for the positive class."""
    logits = vectors @ coef_t + intercept
    result: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
    return result
