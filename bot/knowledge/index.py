"""The principles in Chroma, kept in step with the files by content hash, and searched by
meaning (vectors) fused with words (BM25 with French and English stemming) and with the
concepts of the craft's glossary (the same in both languages).

Each principle gives many small documents per language (head, the questions it answers,
each sentence of its idea, its examples). A principle's meaning score averages its best
documents in each language, so a question ranks the principles the same way whichever
language it is asked in.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import yaml

from bot.core.errors import IndexUnavailable, KnowledgeError
from bot.core.ports import QuestionIntent, QuestionReading, SearchHit
from bot.knowledge.ask_model import AskModel
from bot.knowledge.concepts import ConceptGlossary, ConceptRanking
from bot.knowledge.embedder import SentenceEmbedder, shared_embedder
from bot.knowledge.principles import PrincipleStore
from bot.knowledge.related import RelatedMatrix
from bot.settings import Settings

if TYPE_CHECKING:  # Chroma and bm25s load when an index is opened, not on import (~0.5 s)
    import bm25s
    import Stemmer
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

log = logging.getLogger(__name__)
COLLECTION = "fournil-principles"
OFFTOPIC_COLLECTION = "fournil-offtopic"
RELATED_CHARS = 500
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
    """How the rankings are fused and where "nothing relevant" starts (knowledge/search.yaml).

    A principle's meaning score is the mean of its best `per_principle` documents in each
    language, averaged over languages (one lucky sentence is not enough). Words add
    `bm25_weight` times the normalised BM25 score in the question's language, and
    `concept_weight` times the similarity of the concepts (knowledge/concepts.yaml) the
    question shares with the principle in any language.

    A question is answered when its best document reaches `floor`; when its `neighbours`
    nearest principles (by their best document) are, on average, closer than its as many
    nearest off-topic examples (knowledge/offtopic.yaml) by at least `offtopic_margin`
    (one neighbour alone is often a lucky phrase); and when it either names a concept of
    the craft or matches above `confident`.
    """

    bm25_weight: float = 0.05
    concept_weight: float = 0.0
    per_principle: int = 4
    floor: float = 0.3
    confident: float = 0.6
    offtopic_margin: float = 0.0
    neighbours: int = 1
    candidates: int = 250

    @classmethod
    def load(cls, path: Path) -> SearchTuning:
        if not path.is_file():
            return cls()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls(**(data.get("tuning") or {}))
        except (yaml.YAMLError, TypeError, AttributeError) as exc:
            raise KnowledgeError(path, "tuning", str(exc).replace("\n", " ")) from None


OFFTOPIC = "_offtopic"


def offtopic_documents(path: Path) -> list[IndexedDoc]:
    """Reference questions outside the method (knowledge/offtopic.yaml)."""
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise KnowledgeError(path, "(file)", "expected a mapping of language to questions")
    docs: list[IndexedDoc] = []
    for lang, questions in sorted(data.items()):
        if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
            raise KnowledgeError(path, str(lang), "expected a list of questions")
        for index, question in enumerate(questions):
            docs.append(IndexedDoc(f"{OFFTOPIC}:{lang}:{index}", OFFTOPIC, str(lang), "offtopic", question))
    return docs


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


@dataclass(frozen=True)
class IndexLocation:
    """Where the index lives, for error messages: what to name, what goes wrong with it
    in an outage, and which setting to check."""

    what: str
    failure: str
    setting: str

    @classmethod
    def server(cls, host: str, port: int, ssl: bool) -> IndexLocation:
        # Scheme, host and port only: a user or password in FOURNIL_CHROMA_URL stays out.
        url = f"{'https' if ssl else 'http'}://{host}:{port}"
        return cls(f"the Chroma server at {url}", "cannot be reached", "FOURNIL_CHROMA_URL")

    @classmethod
    def directory(cls, path: Path | str) -> IndexLocation:
        return cls(f"the index directory {path}", "cannot be used", "FOURNIL_DATA_DIR")

    @classmethod
    def of(cls, client: ClientAPI) -> IndexLocation:
        chroma = client.get_settings()
        if chroma.chroma_server_host:
            port = int(chroma.chroma_server_http_port or 8000)
            return cls.server(chroma.chroma_server_host, port, bool(chroma.chroma_server_ssl_enabled))
        return cls.directory(chroma.persist_directory)


_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")
# What embedded Chroma reports (as a ChromaError) when its files are out of reach: a
# read-only or full disk, a damaged database. Any other ChromaError is not an outage.
_FILE_TROUBLE = re.compile(
    r"readonly database|read-only|unable to open database|disk i/o error|database or disk is full"
    r"|no space left|permission denied|file is not a database|malformed",
    re.IGNORECASE,
)
_CHROMA_PREFIX = re.compile(r"^error returned from database:\s*(\(code: \d+\)\s*)?", re.IGNORECASE)


def outage_reason(exc: BaseException) -> str | None:
    """Why Chroma cannot be used when `exc` is an outage (the server unreachable or
    dropping the connection, the index's files out of reach), else None: any other error
    is a bug and is not hidden. Chroma wraps a refused connection in a ValueError, so the
    causes are followed a few steps."""
    import httpx
    from chromadb.errors import ChromaError

    current: BaseException | None = exc
    for _ in range(4):
        if current is None:
            return None
        lines = str(current).strip().splitlines()
        first = lines[0] if lines else ""
        if isinstance(current, httpx.TransportError | OSError):
            if isinstance(current, OSError) and current.strerror:
                reason = current.strerror
            else:
                reason = _ERRNO.sub("", first)
            return (reason or type(current).__name__).rstrip(".").lower()
        if isinstance(current, ChromaError) and _FILE_TROUBLE.search(first):
            return _CHROMA_PREFIX.sub("", first).rstrip(".").lower()
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def chroma_errors(location: IndexLocation) -> Iterator[None]:
    """Turns an outage of the index at `location` into `IndexUnavailable` (one line that
    names the server or directory and the setting to check); other errors pass."""
    try:
        yield
    except IndexUnavailable:
        raise
    except Exception as exc:
        reason = outage_reason(exc)
        if reason is None:
            raise
        problem = f"{location.what} {location.failure} ({reason})"
        raise IndexUnavailable(problem, location.setting) from exc


def chroma_client(settings: Settings) -> ClientAPI:
    """Embedded Chroma in the data dir, or a Chroma server at FOURNIL_CHROMA_URL.

    Raises `IndexUnavailable` when the server cannot be reached or the index directory
    cannot be created."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    # Registers "fournil-use-m3" before any collection is reopened from its configuration.
    import bot.knowledge.chroma_embedding  # noqa: F401

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        host = url.hostname or "127.0.0.1"
        port = url.port or (443 if url.scheme == "https" else 8000)
        ssl = url.scheme == "https"
        with chroma_errors(IndexLocation.server(host, port, ssl)):
            return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=chroma_settings)
    path = settings.data_dir / "chroma"
    with chroma_errors(IndexLocation.directory(path)):
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


@dataclass
class MeaningScores:
    """The candidates' similarities per principle and language, in decreasing order.

    A principle is scored in each language of the base separately and the languages are
    averaged. A French question sits closer to every French document than to any
    English one; pooling the best documents across languages lets that shift pick the
    principle whose French wording happens to be closest, so the same question asked in
    English would get another. Averaging per language cancels the shift: every principle
    gets it equally.
    """

    by_language: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    lowest: float = 1.0

    def add(self, principle: str, lang: str, similarity: float) -> None:
        self.by_language.setdefault((principle, lang), []).append(similarity)
        self.best[principle] = max(self.best.get(principle, -1.0), similarity)
        self.lowest = min(self.lowest, similarity)

    def score(self, principle: str, languages: tuple[str, ...], per_principle: int) -> float:
        """Mean of the best `per_principle` similarities in each language, averaged over
        languages; documents beyond the candidates count as the lowest candidate."""
        total = 0.0
        for lang in languages:
            top = self.by_language.get((principle, lang), [])[:per_principle]
            top = top + [self.lowest] * (per_principle - len(top))
            total += sum(top) / per_principle
        return total / len(languages)


class PrincipleIndex:
    """Implements the core's `PrincipleSearch` port."""

    def __init__(
        self,
        collection: Collection,
        docs: list[IndexedDoc],
        embedder: SentenceEmbedder,
        tuning: SearchTuning | None = None,
        offtopic: Collection | None = None,
        glossary: ConceptGlossary | None = None,
        concept_cache: Path | None = None,
        location: IndexLocation | None = None,
        ask_model: AskModel | None = None,
    ) -> None:
        import bm25s
        import Stemmer

        self._collection = collection
        # The learned question reader (knowledge/ask/); without it, questions are gated by
        # the search's own floor, off-topic examples and concepts.
        self._ask = ask_model
        # The documents' embeddings, their principle (row index into the names) and the
        # names, read on the first card (`_nearest_by_gist`).
        self._matrix: RelatedMatrix | None = None
        self._matrix_lock = threading.Lock()
        # Every document's embedding and (principle, language), for exact scores in training.
        self._exact: tuple[np.ndarray, list[tuple[str, ...]]] | None = None
        self._location = location or IndexLocation("the index", "cannot be used", "FOURNIL_CHROMA_URL")
        self._offtopic = offtopic
        self._docs = docs
        self._embedder = embedder
        self._tuning = tuning or SearchTuning()
        self._languages = tuple(sorted({doc.lang for doc in docs}))
        texts: dict[tuple[str, str], list[str]] = {}
        for doc in docs:
            texts.setdefault((doc.principle, doc.lang), []).append(doc.text)
        self._concepts = ConceptRanking.build(
            glossary or ConceptGlossary({}),
            ((principle, lang, "\n".join(parts)) for (principle, lang), parts in texts.items()),
            cache=concept_cache,
        )
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
        offtopic: Path | None = None,
        tuning: SearchTuning | None = None,
        concepts: Path | None = None,
        concept_cache: Path | None = None,
        ask_model: AskModel | None = None,
    ) -> tuple[PrincipleIndex, SyncStats]:
        """Open the collection and bring it in step with the files (only what changed).
        Raises `IndexUnavailable` when Chroma cannot be reached or its files cannot be used."""
        from bot.knowledge.chroma_embedding import FournilEmbeddingFunction

        embedder = embedder or shared_embedder()
        location = IndexLocation.of(client)

        def collection_named(name: str) -> Collection:
            return client.get_or_create_collection(
                name,
                embedding_function=FournilEmbeddingFunction(embedder),  # type: ignore[arg-type]
                configuration={"hnsw": {"space": "cosine"}},
            )

        docs = principle_documents(store)
        references = offtopic_documents(offtopic) if offtopic is not None else []
        with chroma_errors(location):
            collection = collection_named(COLLECTION)
            stats = sync_collection(collection, docs, embedder, progress)
            offtopic_collection = collection_named(OFFTOPIC_COLLECTION) if references else None
            if offtopic_collection is not None:
                sync_collection(offtopic_collection, references, embedder)
        glossary = ConceptGlossary.load(concepts, store.languages) if concepts is not None else None
        index = cls(
            collection,
            docs,
            embedder,
            tuning,
            offtopic=offtopic_collection,
            glossary=glossary,
            concept_cache=concept_cache,
            location=location,
            ask_model=ask_model,
        )
        return index, stats

    def search(self, text: str, lang: str, limit: int = 3) -> list[SearchHit]:
        """Principles that answer `text`, best first; empty when none is relevant (an
        off-topic question, or a request to write the message).
        Raises `IndexUnavailable` when Chroma cannot be reached."""
        reading = self.read_question(text, lang, limit)
        return reading.hits if reading.intent == QuestionIntent.ANSWER else []

    def read_question(self, text: str, lang: str, limit: int = 3) -> QuestionReading:
        """The question's intent and principles, from one embedding of it: the search's
        scores, fused with the learned reader's when there is one (knowledge/ask/).
        Raises `IndexUnavailable` when Chroma cannot be reached."""
        if not text.strip():
            return QuestionReading(intent=QuestionIntent.OFFTOPIC)
        query = self._embedder.embed([text])
        with chroma_errors(self._location):
            meaning, fused = self._scores(query, text, lang)
            if self._ask is None:
                return self._gated(query, text, lang, meaning, fused, limit)
        prediction = self._ask.read(query[0], text, fused)
        writing = self._ask.behind_write_request(prediction)
        if prediction.intent == QuestionIntent.ANSWER:
            cited = self._ask.cited(prediction, limit)
        elif prediction.intent == QuestionIntent.WRITE_REQUEST:
            cited = [(writing, dict(prediction.ranked).get(writing, 0.0))]
        else:
            cited = []
        hits = [
            SearchHit(principle=pid, score=round(p, 4), similarity=round(meaning.best.get(pid, 0.0), 4))
            for pid, p in cited
        ]
        return QuestionReading(intent=prediction.intent, hits=hits, writing=writing)

    def search_scores(self, vector: np.ndarray, text: str, lang: str) -> dict[str, float]:
        """The search's fused score of every principle it reached, for a question already
        embedded (what `kb train` fuses the classifier with). The nearest documents are
        found exactly, over every document's stored embedding, where a query finds them
        approximately (HNSW): the same scores, and the same on every run of training."""
        with chroma_errors(self._location):
            _, fused = self._scores(vector.reshape(1, -1), text, lang, exact=True)
        return fused

    def _scores(
        self, query: np.ndarray, text: str, lang: str, exact: bool = False
    ) -> tuple[MeaningScores, dict[str, float]]:
        """Meaning (Chroma), words (BM25) and concepts, fused per principle."""
        tuning = self._tuning
        if exact:
            meaning = self._meaning_exact(query[0], tuning.candidates)
        else:
            meaning = self._meaning(query, tuning.candidates)
        if not meaning.best:
            return meaning, {}
        lexical = self._bm25_scores(text, lang)
        concepts = self._concepts.scores(text, lang) if tuning.concept_weight else {}
        fused = {
            pid: meaning.score(pid, self._languages, tuning.per_principle)
            + tuning.bm25_weight * lexical.get(pid, 0.0)
            + tuning.concept_weight * concepts.get(pid, 0.0)
            for pid in meaning.best
        }
        return meaning, fused

    def _gated(
        self,
        query: np.ndarray,
        text: str,
        lang: str,
        meaning: MeaningScores,
        fused: dict[str, float],
        limit: int,
    ) -> QuestionReading:
        """The search's own gate, without a learned reader: a floor on the best document,
        the nearest off-topic examples, and the concepts of the craft."""
        tuning = self._tuning
        refused = QuestionReading(intent=QuestionIntent.OFFTOPIC)
        if not meaning.best:
            return refused
        nearest = sorted(meaning.best.values(), reverse=True)
        best = nearest[0]
        if best < tuning.floor:
            return refused
        principles_near = sum(nearest[: tuning.neighbours]) / len(nearest[: tuning.neighbours])
        offtopic_near = self._nearest_offtopic(query, tuning.neighbours)
        if principles_near < offtopic_near + tuning.offtopic_margin:
            return refused
        if best < tuning.confident and not self._concepts.concepts(text, lang):
            return refused
        ranked = sorted(fused.items(), key=lambda item: item[1], reverse=True)[:limit]
        hits = [
            SearchHit(principle=pid, score=round(score, 4), similarity=round(meaning.best[pid], 4))
            for pid, score in ranked
        ]
        return QuestionReading(intent=QuestionIntent.ANSWER, hits=hits)

    def related(self, text: str, limit: int = 2, gist: np.ndarray | None = None) -> list[SearchHit]:
        """Raises `IndexUnavailable` when Chroma cannot be reached (`LazySearch`, which the
        coach holds, turns that into no related principles)."""
        if not text.strip():
            return []
        if gist is not None:
            ranked = self._nearest_by_gist(gist)
        else:
            # The gist of an opener is in its first lines; embedding a 200-word wall costs 5x more.
            query = self._embedder.embed([text[:RELATED_CHARS]])
            with chroma_errors(self._location):
                meaning = self._meaning(query, candidates=24)
            ranked = sorted(meaning.best.items(), key=lambda item: item[1], reverse=True)
        return [
            SearchHit(principle=pid, score=round(similarity, 4), similarity=round(similarity, 4))
            for pid, similarity in ranked[:limit]
        ]

    def _nearest_by_gist(self, gist: np.ndarray) -> list[tuple[str, float]]:
        """Principles by their closest document to an opener's gist, best first.

        On a card's hot path: the documents' embeddings are read from Chroma once, then
        every card is one matrix product here (0.2 ms for ~2,000 documents, where a Chroma
        query costs ~2.6 ms), exact, and no longer depends on the server being up."""
        return self.related_matrix().nearest(gist)

    def related_matrix(self) -> RelatedMatrix:
        """Every document's embedding as Chroma holds it, read once (what `related` ranks
        with, and what a one-shot card reads from its copy in the data dir)."""
        with self._matrix_lock:
            if self._matrix is None:
                with chroma_errors(self._location):
                    stored = self._collection.get(include=["embeddings"])
                self._matrix = RelatedMatrix.of(stored["ids"], stored["embeddings"])
            return self._matrix

    def _meaning(self, query: np.ndarray, candidates: int) -> MeaningScores:
        """Cosine similarities of the nearest documents, grouped by principle and language."""
        # Only distances are fetched: principle and language are the first parts of the
        # document id, and fetching metadata for hundreds of candidates costs more than
        # the search.
        result = self._collection.query(
            query_embeddings=query,
            n_results=min(candidates, len(self._docs)),
            include=["distances"],
        )
        ids = result.get("ids", [[]])[0]
        distances = (result.get("distances") or [[]])[0]
        meaning = MeaningScores()
        for doc_id, distance in zip(ids, distances, strict=False):
            principle, lang, _ = doc_id.split(":", 2)
            meaning.add(principle, lang, 1.0 - float(distance))
        return meaning

    def _meaning_exact(self, query: np.ndarray, candidates: int) -> MeaningScores:
        """`_meaning` computed over every stored embedding (read from Chroma once)."""
        if self._exact is None:
            stored = self._collection.get(include=["embeddings"])
            ids = stored["ids"]
            vectors = np.asarray(stored["embeddings"], dtype=np.float32).reshape(len(ids), -1)
            keys = [tuple(doc_id.split(":", 2)[:2]) for doc_id in ids]
            order = sorted(range(len(ids)), key=lambda i: ids[i])  # independent of storage order
            self._exact = (vectors[order], [keys[i] for i in order])
        vectors, keys = self._exact
        similarity = vectors @ query.astype(np.float32)
        nearest = np.argsort(-similarity, kind="stable")[: min(candidates, len(keys))]
        meaning = MeaningScores()
        for index in nearest:
            principle, lang = keys[int(index)]
            meaning.add(principle, lang, float(similarity[index]))
        return meaning

    def _nearest_offtopic(self, query: np.ndarray, neighbours: int) -> float:
        """Mean similarity of the nearest off-topic examples (-1 without any)."""
        if self._offtopic is None:
            return -1.0
        result = self._offtopic.query(query_embeddings=query, n_results=neighbours, include=["distances"])
        distances = (result.get("distances") or [[]])[0]
        if not distances:
            return -1.0
        return sum(1.0 - float(d) for d in distances) / len(distances)

    def _bm25_scores(self, text: str, lang: str) -> dict[str, float]:
        import bm25s

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
    # Similar lengths in a batch waste less padding in the encoder.
    todo = sorted((doc for doc in docs if known.get(doc.id) != doc.digest), key=lambda d: len(d.text))
    if stale:
        collection.delete(ids=stale)
    batch = 128
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
