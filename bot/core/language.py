"""Which language an opener is written in: French, English, or something we do not coach.

lingua is built for short texts. Its low-accuracy mode over a handful of European
languages loads in milliseconds and, on sales openers full of English loanwords
("call", "closing", "webinar"), beats the high-accuracy FR/EN-only mode; the extra
languages are there so a German or Spanish opener is recognised and politely declined
instead of being coached as badly written French.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from lingua import Language as LinguaLanguage
from lingua import LanguageDetector as LinguaDetector
from lingua import LanguageDetectorBuilder

_SUPPORTED = {LinguaLanguage.FRENCH: "fr", LinguaLanguage.ENGLISH: "en"}
_OTHERS = (
    LinguaLanguage.GERMAN,
    LinguaLanguage.SPANISH,
    LinguaLanguage.ITALIAN,
    LinguaLanguage.PORTUGUESE,
    LinguaLanguage.DUTCH,
)
_OTHER_NAMES = {
    LinguaLanguage.GERMAN: {"en": "German", "fr": "allemand"},
    LinguaLanguage.SPANISH: {"en": "Spanish", "fr": "espagnol"},
    LinguaLanguage.ITALIAN: {"en": "Italian", "fr": "italien"},
    LinguaLanguage.PORTUGUESE: {"en": "Portuguese", "fr": "portugais"},
    LinguaLanguage.DUTCH: {"en": "Dutch", "fr": "néerlandais"},
}
_NOISE = re.compile(r"https?://\S+|www\.\S+|\S+@\S+|\{\{?[^}]*\}\}?|\[[^\]]*\]")
_WORDS = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class LanguageGuess:
    """`lang` is fr/en when we can coach the text; `other` names a language we cannot."""

    lang: str | None
    confidence: float
    other: dict[str, str] | None = None


class LanguageDetector:
    def __init__(self, other_threshold: float = 0.75, min_words_for_other: int = 4) -> None:
        self._other_threshold = other_threshold
        self._min_words_for_other = min_words_for_other

    @cached_property
    def _lingua(self) -> LinguaDetector:
        return LanguageDetectorBuilder.from_languages(*_SUPPORTED, *_OTHERS).with_low_accuracy_mode().build()

    def detect(self, text: str) -> LanguageGuess:
        clean = _NOISE.sub(" ", text)
        words = _WORDS.findall(clean)
        if not words:
            return LanguageGuess(lang=None, confidence=0.0)
        values = self._lingua.compute_language_confidence_values(clean)
        scores = {value.language: value.value for value in values}
        top = values[0]
        if top.language in _SUPPORTED:
            return LanguageGuess(lang=_SUPPORTED[top.language], confidence=top.value)
        if top.value >= self._other_threshold and len(words) >= self._min_words_for_other:
            return LanguageGuess(lang=None, confidence=top.value, other=_OTHER_NAMES[top.language])
        fr = scores.get(LinguaLanguage.FRENCH, 0.0)
        en = scores.get(LinguaLanguage.ENGLISH, 0.0)
        if fr == en == 0.0:
            return LanguageGuess(lang=None, confidence=0.0)
        return LanguageGuess(lang="fr" if fr > en else "en", confidence=max(fr, en))
