"""The principles in Chroma, kept in step with the files by content hash, and searched by
meaning (vectors) fused with words (BM25 with French and English stemming).

Each principle gives two documents per language: its head (title, summary, tags) and its
body (idea, why it works). A principle's vector score is the best of its documents in
either language, which is what lets a French question find an English-only nuance.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import bm25s
import chromadb
import numpy as np
import Stemmer
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings

from bot.core.ports import SearchHit
from bot.knowledge.embedder import FournilEmbeddingFunction, SentenceEmbedder, shared_embedder
from bot.knowledge.principles import PrincipleStore
from bot.settings import Settings

log = logging.getLogger(__name__)
COLLECTION = "fournil-principles"
_STEMMERS = {"fr": "french", "en": "english"}
_STOPWORDS = {"fr": "fr", "en": "en"}
_SENTENCES = re.compile(r"(?<=[.!?…])\s+")


@dataclass(frozen=True)
class IndexedDoc:
    id: str
    principle: str
    lang: str
    part: str
    text: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class SyncStats:
    added: int
    updated: int
    removed: int
    unchanged: int


@dataclass(frozen=True)
class SearchTuning:
    """How the two rankings are fused and where "nothing relevant" starts."""

    bm25_weight: float = 0.12
    floor: float = 0.32  # best cosine similarity below this: no principle covers it
    candidates: int = 30


def principle_documents(store: PrincipleStore) -> list[IndexedDoc]:
    """Small documents match short questions best: the head (title, summary, tags), the
    questions the principle answers (`asks`), each sentence of the idea and of why it
    works, and the two examples whole (so an opener finds the principles its own kind of
    wording illustrates)."""
    docs: list[IndexedDoc] = []
    for principle in store.all():
        key = f"{principle.id}:{principle.lang}"
        head = f"{principle.title}. {principle.summary} {' '.join(principle.tags)}"
        docs.append(IndexedDoc(f"{key}:head", principle.id, principle.lang, "head", head))
        for ask_index, ask in enumerate(principle.asks):
            docs.append(IndexedDoc(f"{key}:ask{ask_index}", principle.id, principle.lang, "ask", ask))
        for section_index, (_, text) in enumerate(principle.sections):
            if section_index < 2:
                parts = [s for s in _SENTENCES.split(" ".join(text.split())) if len(s.split()) >= 4]
            else:
                parts = [" ".join(text.replace(">", " ").split())]
            for part_index, part in enumerate(parts):
                doc_id = f"{key}:s{section_index}.{part_index}"
                docs.append(IndexedDoc(doc_id, principle.id, principle.lang, f"s{section_index}", part))
    return docs


def chroma_client(settings: Settings) -> ClientAPI:
    """Embedded Chroma in the data dir, or a Chroma server at FOURNIL_CHROMA_URL."""
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "127.0.0.1",
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    path = settings.data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class PrincipleIndex:
    """Implements the core's `PrincipleSearch` port."""

    def __init__(
        self,
        collection: Collection,
        docs: list[IndexedDoc],
        embedder: SentenceEmbedder,
        tuning: SearchTuning | None = None,
    ) -> None:
        self._collection = collection
        self._docs = docs
        self._embedder = embedder
        self._tuning = tuning or SearchTuning()
        self._bm25: dict[str, tuple[bm25s.BM25, list[IndexedDoc], Stemmer.Stemmer]] = {}
        for lang in sorted({doc.lang for doc in docs}):
            subset = [doc for doc in docs if doc.lang == lang]
            stemmer = Stemmer.Stemmer(_STEMMERS.get(lang, "english"))
            tokens = bm25s.tokenize(
                [doc.text for doc in subset],
                stopwords=_STOPWORDS.get(lang, "en"),
                stemmer=stemmer,
                show_progress=False,
            )
            retriever = bm25s.BM25()
            retriever.index(tokens, show_progress=False)
            self._bm25[lang] = (retriever, subset, stemmer)

    @classmethod
    def open(
        cls,
        client: ClientAPI,
        store: PrincipleStore,
        embedder: SentenceEmbedder | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[PrincipleIndex, SyncStats]:
        """Open the collection and bring it in step with the files (only what changed)."""
        embedder = embedder or shared_embedder()
        collection = client.get_or_create_collection(
            COLLECTION,
            embedding_function=FournilEmbeddingFunction(embedder),  # type: ignore[arg-type]
            configuration={"hnsw": {"space": "cosine"}},
        )
        docs = principle_documents(store)
        stats = sync_collection(collection, docs, embedder, progress)
        return cls(collection, docs, embedder), stats

    def search(self, text: str, lang: str, limit: int = 3) -> list[SearchHit]:
        """Principles that answer `text`, best first; empty when none is relevant."""
        if not text.strip():
            return []
        query = self._embedder.embed([text])
        result = self._collection.query(
            query_embeddings=query,
            n_results=min(self._tuning.candidates, len(self._docs)),
            include=["metadatas", "distances"],
        )
        vector: dict[str, float] = {}
        metadatas = (result.get("metadatas") or [[]])[0]
        distances = (result.get("distances") or [[]])[0]
        for metadata, distance in zip(metadatas, distances, strict=False):
            principle = str(metadata["principle"])
            vector[principle] = max(vector.get(principle, -1.0), 1.0 - float(distance))
        if not vector or max(vector.values()) < self._tuning.floor:
            return []
        lexical = self._bm25_scores(text, lang)
        fused = {
            pid: similarity + self._tuning.bm25_weight * lexical.get(pid, 0.0)
            for pid, similarity in vector.items()
        }
        ranked = sorted(fused.items(), key=lambda item: item[1], reverse=True)[:limit]
        return [
            SearchHit(principle=pid, score=round(score, 4), similarity=round(vector[pid], 4))
            for pid, score in ranked
        ]

    def _bm25_scores(self, text: str, lang: str) -> dict[str, float]:
        entry = self._bm25.get(lang)
        if entry is None:
            return {}
        retriever, subset, stemmer = entry
        tokens = bm25s.tokenize(
            [text], stopwords=_STOPWORDS.get(lang, "en"), stemmer=stemmer, show_progress=False
        )
        if not tokens.vocab:
            return {}
        documents, scores = retriever.retrieve(
            tokens, k=min(10, len(subset)), show_progress=False, n_threads=1
        )
        best: dict[str, float] = {}
        top = float(np.max(scores)) if scores.size else 0.0
        if top <= 0:
            return {}
        for index, score in zip(documents[0], scores[0], strict=False):
            principle = subset[int(index)].principle
            best[principle] = max(best.get(principle, 0.0), float(score) / top)
        return best


def sync_collection(
    collection: Collection,
    docs: list[IndexedDoc],
    embedder: SentenceEmbedder,
    progress: Callable[[int, int], None] | None = None,
) -> SyncStats:
    existing = collection.get(include=["metadatas"])
    known: dict[str, str] = {}
    for doc_id, metadata in zip(existing["ids"], existing.get("metadatas") or [], strict=False):
        known[doc_id] = str((metadata or {}).get("digest", ""))
    wanted = {doc.id: doc for doc in docs}
    stale = [doc_id for doc_id in known if doc_id not in wanted]
    todo = [doc for doc in docs if known.get(doc.id) != doc.digest]
    if stale:
        collection.delete(ids=stale)
    batch = 32
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        vectors = embedder.embed([doc.text for doc in chunk])
        metadatas: list[Any] = [
            {"principle": doc.principle, "lang": doc.lang, "part": doc.part, "digest": doc.digest}
            for doc in chunk
        ]
        collection.upsert(
            ids=[doc.id for doc in chunk],
            embeddings=vectors,
            documents=[doc.text for doc in chunk],
            metadatas=metadatas,
        )
        if progress is not None:
            progress(min(start + batch, len(todo)), len(todo))
    added = sum(1 for doc in todo if doc.id not in known)
    return SyncStats(
        added=added,
        updated=len(todo) - added,
        removed=len(stale),
        unchanged=len(docs) - len(todo),
    )
