"""The craft's vocabulary in both languages (knowledge/concepts.yaml), as a word ranking
that does not depend on the language a question is asked in.

BM25 compares a French question with French documents only, so the same question asked
in English is ranked on other words and can land on another principle. Mapping words to
shared concept ids ("relancer", "follow up" and "chase" all become `follow-up`) gives a
lexical score that is the same for both versions of a question. Adding a synonym or a
language is a change to the data file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.core.errors import KnowledgeError
from bot.core.yaml_text import load_yaml

log = logging.getLogger(__name__)
_CONCEPT_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class ConceptGlossary:
    """One compiled pattern per concept and language, matched on whole words."""

    patterns: dict[str, tuple[tuple[str, re.Pattern[str]], ...]]
    digest: str = ""

    @classmethod
    def load(cls, path: Path, languages: Iterable[str] = ()) -> ConceptGlossary:
        """Every concept must name its words in each of `languages`: a concept missing in
        one language would pull questions in the other one only."""
        if not path.is_file():
            return cls({})
        source = path.read_text(encoding="utf-8")
        try:
            data = load_yaml(source) or {}
        except yaml.YAMLError as exc:
            raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
        concepts = data.get("concepts") if isinstance(data, dict) else None
        if not isinstance(concepts, dict) or not concepts:
            raise KnowledgeError(path, "concepts", "expected a mapping of concept id to words per language")
        wanted = set(languages)
        per_lang: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        for concept, words in concepts.items():
            field = f"concepts.{concept}"
            if not isinstance(concept, str) or not _CONCEPT_ID.fullmatch(concept):
                raise KnowledgeError(path, field, "ids are lowercase words joined by hyphens")
            if not isinstance(words, dict):
                raise KnowledgeError(path, field, "expected words per language (en: [...], fr: [...])")
            missing = sorted(wanted - set(words))
            if missing:
                raise KnowledgeError(path, field, f"no words for {', '.join(missing)}")
            for lang, items in words.items():
                if not (isinstance(items, list) and items and all(isinstance(i, str) and i for i in items)):
                    raise KnowledgeError(path, f"{field}.{lang}", "expected a non-empty list of words")
                try:
                    pattern = re.compile(rf"(?<!\w)(?:{'|'.join(items)})(?![\w-])", re.IGNORECASE)
                except re.error as exc:
                    raise KnowledgeError(path, f"{field}.{lang}", f"bad pattern: {exc}") from None
                per_lang.setdefault(str(lang), []).append((concept, pattern))
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
        return cls({lang: tuple(items) for lang, items in per_lang.items()}, digest)

    @property
    def languages(self) -> set[str]:
        return set(self.patterns)

    def concepts(self, text: str, lang: str) -> Counter[str]:
        """How many times each concept occurs in `text` (a language without words: none)."""
        found = Counter[str]()
        text = text.replace("\u2019", "'")  # the glossary writes apostrophes straight
        for concept, pattern in self.patterns.get(lang, ()):
            hits = len(pattern.findall(text))
            if hits:
                found[concept] = hits
        return found


class ConceptRanking:
    """Principles scored by the concepts a question shares with them (TF-IDF, cosine).

    A principle's profile gathers its documents in every language, so the French and the
    English version of a question meet the same profile.
    """

    def __init__(self, glossary: ConceptGlossary, counts: dict[str, Counter[str]]) -> None:
        self._glossary = glossary
        spread = Counter[str]()
        for profile in counts.values():
            spread.update(profile.keys())
        total = len(counts)
        # A concept every principle mentions tells them apart no better than a stopword.
        self._idf = {c: math.log((1 + total) / (1 + n)) for c, n in spread.items()}
        self._profiles: dict[str, dict[str, float]] = {}
        for principle, profile in counts.items():
            weights = {c: (1 + math.log(n)) * self._idf[c] for c, n in profile.items() if self._idf[c] > 0}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            self._profiles[principle] = {c: w / norm for c, w in weights.items()}

    @classmethod
    def build(
        cls,
        glossary: ConceptGlossary,
        documents: Iterable[tuple[str, str, str]],
        cache: Path | None = None,
    ) -> ConceptRanking:
        """Count each principle's concepts in its (principle, language, text) documents.

        Matching some 200 patterns over the whole base takes about a second, which a start
        where nothing changed should not pay: the counts are kept in `cache`, keyed by the
        glossary and the documents, and recounted when either changes.
        """
        documents = sorted(documents)
        key = hashlib.sha256(glossary.digest.encode("utf-8"))
        for principle, lang, text in documents:
            key.update(f"\0{principle}\0{lang}\0{text}".encode())
        counts = _read_counts(cache, key.hexdigest()) if cache is not None else None
        if counts is None:
            counts = {}
            for principle, lang, text in documents:
                counts.setdefault(principle, Counter()).update(glossary.concepts(text, lang))
            if cache is not None:
                _write_counts(cache, key.hexdigest(), counts)
        return cls(glossary, counts)

    def concepts(self, text: str, lang: str) -> Counter[str]:
        """The concepts `text` names (none: it does not speak of the craft)."""
        return self._glossary.concepts(text, lang)

    def scores(self, text: str, lang: str) -> dict[str, float]:
        return self.scores_of(self.concepts(text, lang))

    def scores_of(self, found: Iterable[str]) -> dict[str, float]:
        """Cosine between a question's concepts and each principle's (0 to 1)."""
        query = {c: self._idf.get(c, 0.0) for c in found}
        norm = math.sqrt(sum(w * w for w in query.values()))
        if norm == 0:
            return {}
        result: dict[str, float] = {}
        for principle, profile in self._profiles.items():
            score = sum(w * profile.get(c, 0.0) for c, w in query.items()) / norm
            if score > 0:
                result[principle] = score
        return result


def _read_counts(path: Path, key: str) -> dict[str, Counter[str]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        return {principle: Counter(counts) for principle, counts in data["counts"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, stale or damaged: count again


def _write_counts(path: Path, key: str, counts: dict[str, Counter[str]]) -> None:
    """Write to a temporary file and rename, so a crash never leaves half a cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"key": key, "counts": counts}), encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        log.warning("concept counts not cached at %s: %s", path, exc)
