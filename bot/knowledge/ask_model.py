"""How `ask` reads a question, learned from data: which principle answers it, whether it is
about the method at all, and whether it asks Fournil to write the message.

Two linear models over the question's one embedding (the multilingual encoder the search
already uses) and its words (TF-IDF of single words and pairs, accents and case folded):

- the principle model, a multinomial logistic regression over the principles, whose
  logits are fused with the knowledge search's scores (meaning, BM25, concepts) by one
  weight chosen by cross-validation;
- the intent model, a multinomial logistic regression over question / off-topic / write
  request: the gate. A question is refused when its off-topic probability reaches the
  threshold cross-validation set, and read as a write request when that probability does.

`fournil kb train` (bot.knowledge.ask_training) writes the weights from
knowledge/ask/corpus/ and the principles' `asks`; this module only reads them (numpy with
`allow_pickle=False`: numbers and strings, never code). knowledge/ask/policy.yaml says
which principle a write request is answered with when it names no topic of its own. Ids
are read through the principles' `aliases`, so weights trained before a merge still
cite kept ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.errors import KnowledgeError
from bot.core.ports import QuestionIntent
from bot.knowledge.detectors import term_weights, word_terms
from bot.knowledge.embedder import MODEL
from bot.knowledge.principles import PrincipleStore

WEIGHTS_FILE = "weights.npz"
POLICY_FILE = "policy.yaml"
OFFTOPIC_LABEL = "offtopic"
WRITE_LABEL = "write_request"
QUESTION_LABEL = "question"
# The intent model's classes, in this order in the weights.
INTENTS = (QUESTION_LABEL, OFFTOPIC_LABEL, WRITE_LABEL)


class AskPolicy(BaseModel):
    """knowledge/ask/policy.yaml: how a reading becomes an answer (not learned)."""

    model_config = ConfigDict(extra="forbid")
    # The principle behind Fournil's refusal to write the message, cited when the
    # request names no topic the principle model is sure of.
    write_request_principle: str
    # A write request about a topic ("write my follow-up") cites that topic's principle
    # when the principle model gives it at least this probability.
    topic_min_probability: float = Field(default=0.8, ge=0, le=1)
    # An answer cites its best principle, and the next ones (up to three) when their
    # probability reaches this share of the best one's.
    also_min_share: float = Field(default=0.25, ge=0, le=1)

    @classmethod
    def load(cls, path: Path) -> AskPolicy:
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls.model_validate(raw)
        except OSError as exc:
            raise KnowledgeError(path, "file", exc.strerror or str(exc)) from None
        except yaml.YAMLError as exc:
            raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
        except ValidationError as exc:
            raise KnowledgeError.from_validation(path, exc) from None


def resolve(principle_id: str, aliases: Mapping[str, str]) -> str:
    """The kept id of `principle_id` (itself when it is no alias); follows chains."""
    seen = {principle_id}
    while principle_id in aliases:
        principle_id = aliases[principle_id]
        if principle_id in seen:
            break
        seen.add(principle_id)
    return principle_id


@dataclass(frozen=True)
class AskWeights:
    """The two models' coefficients over [embedding, word terms], and the fusion and gate
    settings cross-validation chose."""

    principles: tuple[str, ...]
    coef: np.ndarray  # (principles, embedding dimensions)
    coef_words: np.ndarray  # (principles, terms)
    intercept: np.ndarray  # (principles,)
    intent_coef: np.ndarray  # (intents, embedding dimensions)
    intent_coef_words: np.ndarray  # (intents, terms)
    intent_intercept: np.ndarray  # (intents,)
    vocabulary: tuple[str, ...]
    idf: np.ndarray  # (terms,)
    word_weight: float  # scale of the word block beside the (unit-length) embedding
    search_weight: float  # fused logits = principle logits + this x the search's score
    offtopic_threshold: float
    write_threshold: float
    fingerprint: str  # of the corpus, the asks, training.yaml and the training code
    encoder: str
    intents: tuple[str, ...] = INTENTS

    def save(self, path: Path) -> None:
        """Written atomically: a crash mid-write never leaves half a weights file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as handle:
            np.savez_compressed(
                handle,
                principles=np.array(self.principles, dtype=np.str_),
                coef=self.coef.astype(np.float32),
                coef_words=self.coef_words.astype(np.float32),
                intercept=self.intercept.astype(np.float32),
                intents=np.array(self.intents, dtype=np.str_),
                intent_coef=self.intent_coef.astype(np.float32),
                intent_coef_words=self.intent_coef_words.astype(np.float32),
                intent_intercept=self.intent_intercept.astype(np.float32),
                vocabulary=np.array(self.vocabulary, dtype=np.str_),
                idf=self.idf.astype(np.float32),
                settings=np.array(
                    [self.word_weight, self.search_weight, self.offtopic_threshold, self.write_threshold],
                    dtype=np.float64,
                ),
                fingerprint=np.array(self.fingerprint),
                encoder=np.array(self.encoder),
            )
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> AskWeights:
        try:
            with np.load(path, allow_pickle=False) as data:
                settings = np.asarray(data["settings"], dtype=np.float64)
                weights = cls(
                    principles=tuple(str(p) for p in data["principles"]),
                    coef=np.asarray(data["coef"], dtype=np.float32),
                    coef_words=np.asarray(data["coef_words"], dtype=np.float32),
                    intercept=np.asarray(data["intercept"], dtype=np.float32),
                    intents=tuple(str(i) for i in data["intents"]),
                    intent_coef=np.asarray(data["intent_coef"], dtype=np.float32),
                    intent_coef_words=np.asarray(data["intent_coef_words"], dtype=np.float32),
                    intent_intercept=np.asarray(data["intent_intercept"], dtype=np.float32),
                    vocabulary=tuple(str(t) for t in data["vocabulary"]),
                    idf=np.asarray(data["idf"], dtype=np.float32),
                    word_weight=float(settings[0]),
                    search_weight=float(settings[1]),
                    offtopic_threshold=float(settings[2]),
                    write_threshold=float(settings[3]),
                    fingerprint=str(data["fingerprint"]),
                    encoder=str(data["encoder"]),
                )
        except FileNotFoundError:
            raise KnowledgeError(path, "file", "no weights: run `fournil kb train`") from None
        except (OSError, KeyError, ValueError, IndexError) as exc:
            raise KnowledgeError(path, "weights", f"unreadable ({exc}); run `fournil kb train`") from None
        weights.check_shapes(path)
        if weights.encoder != MODEL:
            raise KnowledgeError(
                path, "encoder", f"trained on {weights.encoder}, not {MODEL}: run `fournil kb train`"
            )
        return weights

    def check_shapes(self, path: Path) -> None:
        terms = len(self.vocabulary)
        principles, intents = len(self.principles), len(self.intents)
        dimensions = self.coef.shape[1] if self.coef.ndim == 2 else -1
        expected = {
            "coef": (self.coef.shape, (principles, dimensions)),
            "coef_words": (self.coef_words.shape, (principles, terms)),
            "intercept": (self.intercept.shape, (principles,)),
            "intent_coef": (self.intent_coef.shape, (intents, dimensions)),
            "intent_coef_words": (self.intent_coef_words.shape, (intents, terms)),
            "intent_intercept": (self.intent_intercept.shape, (intents,)),
            "idf": (self.idf.shape, (terms,)),
        }
        for name, (shape, wanted) in expected.items():
            if shape != wanted:
                raise KnowledgeError(path, name, f"shape {shape}, expected {wanted}: run `fournil kb train`")
        if set(self.intents) != set(INTENTS):
            raise KnowledgeError(path, "intents", f"expected {', '.join(INTENTS)}: run `fournil kb train`")


@dataclass(frozen=True)
class AskPrediction:
    """The learned reading of one question."""

    intent: QuestionIntent
    ranked: tuple[tuple[str, float], ...]  # principle id, fused probability; best first
    offtopic: float  # the intent model's probabilities
    write_request: float


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax; the same probabilities as scikit-learn's multinomial
    `LogisticRegression.predict_proba`."""
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / np.sum(exp, axis=-1, keepdims=True)
    return result


class AskModel:
    """Reads a question from its embedding, its words and the search's scores."""

    def __init__(
        self,
        weights: AskWeights,
        policy: AskPolicy,
        aliases: Mapping[str, str] | None = None,
        known: set[str] | None = None,
    ) -> None:
        self.weights = weights
        self.policy = policy
        self._aliases = dict(aliases or {})
        # The weights' classes under their kept ids; a class no principle answers to any
        # more (removed, or stale weights) is left out of the ranking.
        self._kept = tuple(resolve(pid, self._aliases) for pid in weights.principles)
        self._usable = np.array([known is None or pid in known for pid in self._kept], dtype=bool)
        self._vocabulary = {term: index for index, term in enumerate(weights.vocabulary)}
        self._coef_t = np.ascontiguousarray(weights.coef.T)
        self._words_t = np.ascontiguousarray(weights.coef_words.T)
        self._intent_t = np.ascontiguousarray(weights.intent_coef.T)
        self._intent_words_t = np.ascontiguousarray(weights.intent_coef_words.T)
        self._offtopic = weights.intents.index(OFFTOPIC_LABEL)
        self._write = weights.intents.index(WRITE_LABEL)
        self.write_principle = resolve(policy.write_request_principle, self._aliases)

    @classmethod
    def load(cls, directory: Path, store: PrincipleStore) -> AskModel:
        """The weights and policy of `directory`, read against the principles as they are
        (an id merged into another resolves through its `aliases`)."""
        return cls(
            AskWeights.load(directory / WEIGHTS_FILE),
            AskPolicy.load(directory / POLICY_FILE),
            store.aliases,
            set(store.ids),
        )

    def resolve(self, principle_id: str) -> str:
        return resolve(principle_id, self._aliases)

    def logits(self, vector: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The principle and intent logits of one question (before fusion)."""
        embedding = vector.astype(np.float32)
        principle = embedding @ self._coef_t + self.weights.intercept
        intent = embedding @ self._intent_t + self.weights.intent_intercept
        words = term_weights(word_terms(text), self._vocabulary, self.weights.idf)
        if words:
            columns = np.fromiter(words.keys(), dtype=np.int64, count=len(words))
            values = np.fromiter(words.values(), dtype=np.float32, count=len(words))
            values *= self.weights.word_weight
            principle = principle + values @ self._words_t[columns]
            intent = intent + values @ self._intent_words_t[columns]
        return principle, intent

    def read(self, vector: np.ndarray, text: str, search: Mapping[str, float]) -> AskPrediction:
        principle_logits, intent_logits = self.logits(vector, text)
        intent = softmax(intent_logits.astype(np.float64))
        fused = principle_logits.astype(np.float64) + self.weights.search_weight * search_vector(
            self._kept, search
        )
        probabilities = softmax(fused)
        merged: dict[str, float] = {}
        for pid, probability, usable in zip(self._kept, probabilities, self._usable, strict=True):
            if usable:
                merged[pid] = merged.get(pid, 0.0) + float(probability)
        ranked = tuple(sorted(merged.items(), key=lambda item: (-item[1], item[0])))
        offtopic, write = float(intent[self._offtopic]), float(intent[self._write])
        if write >= self.weights.write_threshold:
            verdict = QuestionIntent.WRITE_REQUEST
        elif offtopic >= self.weights.offtopic_threshold or not ranked:
            verdict = QuestionIntent.OFFTOPIC
        else:
            verdict = QuestionIntent.ANSWER
        return AskPrediction(intent=verdict, ranked=ranked, offtopic=offtopic, write_request=write)

    def cited(self, prediction: AskPrediction, limit: int) -> list[tuple[str, float]]:
        """The principles an answer cites: the best, and the next ones close enough to it."""
        if not prediction.ranked:
            return []
        best = prediction.ranked[0][1]
        floor = best * self.policy.also_min_share
        return [
            item for item in prediction.ranked[:limit] if item is prediction.ranked[0] or item[1] >= floor
        ]

    def behind_write_request(self, prediction: AskPrediction) -> str:
        """The principle a write request is answered with: its topic's when the principle
        model is sure of it, else the principle behind the refusal itself."""
        if prediction.ranked and prediction.ranked[0][1] >= self.policy.topic_min_probability:
            return prediction.ranked[0][0]
        return self.write_principle


def search_vector(principles: tuple[str, ...], search: Mapping[str, float]) -> np.ndarray:
    """The search's scores in the weights' class order; a principle the search did not
    reach gets the lowest score it gave (and every principle 0 without any)."""
    if not search:
        return np.zeros(len(principles), dtype=np.float64)
    lowest = min(search.values())
    return np.array([search.get(pid, lowest) for pid in principles], dtype=np.float64)
