"""A card's related principles: every principle document's embedding in one matrix, and a
copy of it on disk so a one-shot `fournil coach` finds them without opening Chroma.

The matrix is read from the index (the embeddings Chroma holds after bringing it in step
with the files); the copy in the data dir is keyed by a fingerprint of the documents the
files give now (each document's id and content hash) and of the encoder. A changed
knowledge base changes the fingerprint: the copy is then ignored, the index is opened and
brought in step as before, and the copy is written again from it. So a card found from
the copy has the very related principles the index would give (same vectors, same sums).

Importing this module costs numpy only: no Chroma, no bm25s.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.knowledge.embedder import MODEL

log = logging.getLogger(__name__)
# Bumped when the file's layout changes (an old copy is then ignored, never misread).
_LAYOUT = "related-matrix-1"


def documents_fingerprint(documents: Iterable[tuple[str, str]]) -> str:
    """Of the indexed documents as (id, content digest) pairs, in any order, and of the
    encoder that embeds them."""
    key = hashlib.sha256(f"{_LAYOUT}\0{MODEL}".encode())
    for doc_id, digest in sorted(documents):
        key.update(f"\0{doc_id}\0{digest}".encode())
    return key.hexdigest()


@dataclass(frozen=True)
class RelatedMatrix:
    """The documents' embeddings (one row each), the principle of each row (an index into
    `names`) and the principles' names, sorted."""

    vectors: np.ndarray
    rows: np.ndarray
    names: tuple[str, ...]

    @classmethod
    def of(cls, ids: Sequence[str], embeddings: Any) -> RelatedMatrix:
        """From the ids and embeddings Chroma returns (a document id starts with its
        principle: `<principle>:<lang>:<part>`)."""
        vectors = np.asarray(embeddings, dtype=np.float32).reshape(len(ids), -1)
        principles = [doc_id.split(":", 1)[0] for doc_id in ids]
        position = {name: i for i, name in enumerate(sorted(set(principles)))}
        rows = np.array([position[principle] for principle in principles], dtype=np.int64)
        return cls(vectors, rows, tuple(position))

    def nearest(self, gist: np.ndarray) -> list[tuple[str, float]]:
        """Principles by their closest document to an opener's gist, best first (ties in
        name order)."""
        similarity = self.vectors @ gist.astype(np.float32)
        best = np.full(len(self.names), -1.0, dtype=np.float32)
        np.maximum.at(best, self.rows, similarity)
        order = np.argsort(-best, kind="stable")
        return [(self.names[i], float(best[i])) for i in order]

    def save(self, path: Path, fingerprint: str) -> bool:
        """Writes a temporary file and renames it, so a crash never leaves half a copy.
        False (and one warning) when the data dir cannot be written: the copy only saves
        time."""
        temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(
                temporary,
                fingerprint=np.array(fingerprint),
                vectors=self.vectors,
                rows=self.rows,
                names=np.array(self.names, dtype=np.str_),
            )
            temporary.replace(path)
        except OSError as exc:
            log.warning("related principles not cached at %s: %s", path, exc)
            temporary.unlink(missing_ok=True)
            return False
        return True

    @classmethod
    def load(cls, path: Path, fingerprint: str) -> RelatedMatrix | None:
        """The copy at `path` when it was written for `fingerprint`; None when it is
        missing, stale or damaged (the index is then opened instead)."""
        try:
            with np.load(path, allow_pickle=False) as stored:
                if str(stored["fingerprint"]) != fingerprint:
                    return None
                vectors = np.asarray(stored["vectors"], dtype=np.float32)
                rows = np.asarray(stored["rows"], dtype=np.int64)
                names = tuple(str(name) for name in stored["names"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        if vectors.ndim != 2 or rows.shape != (len(vectors),) or (len(rows) and rows.max() >= len(names)):
            return None
        return cls(vectors, rows, names)


def stored_fingerprint(path: Path) -> str | None:
    """The fingerprint the copy at `path` was written for (None: no usable copy); reads
    that field only."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return str(stored["fingerprint"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
