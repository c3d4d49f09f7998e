"""Chroma's view of Fournil's encoder, registered as an embedding function.

Chroma's default embedder downloads a model at first use, which fails offline, so
Fournil registers its own embedding function with Chroma: a collection then records
"fournil-use-m3" in its configuration and reopens with the same embedder in a new
process, or against a Chroma server. Imported by the index only (importing Chroma takes
about 0.4 s, which a card without the index does not pay).
"""

from __future__ import annotations

from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from bot.knowledge.embedder import MODEL, SentenceEmbedder, shared_embedder


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
