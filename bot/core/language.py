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
# Letters of scripts we can name when an opener is written in one: the share of letters
# outside the Latin alphabet decides, before lingua (which only knows Latin-script
# languages here) would call Russian or Chinese "English".
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_LETTERS = re.compile(r"[^\W\d_]")
_SCRIPTS: tuple[tuple[re.Pattern[str], dict[str, str]], ...] = (
    (re.compile(r"[\u3040-\u30ff]"), {"en": "Japanese", "fr": "japonais"}),  # kana before Han
    (re.compile(r"[\uac00-\ud7af\u1100-\u11ff]"), {"en": "Korean", "fr": "coréen"}),
    (re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]"), {"en": "Chinese", "fr": "chinois"}),
    (re.compile(r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]"),
     {"en": "Arabic", "fr": "arabe"}),
    (re.compile(r"[\u0590-\u05ff\ufb1d-\ufb4f]"), {"en": "Hebrew", "fr": "hébreu"}),
    (re.compile(r"[\u0400-\u052f]"), {"en": "a Cyrillic-script language", "fr": "cyrillique"}),
    (re.compile(r"[\u0370-\u03ff\u1f00-\u1fff]"), {"en": "Greek", "fr": "grec"}),
    (re.compile(r"[\u0900-\u097f]"), {"en": "Hindi", "fr": "hindi"}),
    (re.compile(r"[\u0e00-\u0e7f]"), {"en": "Thai", "fr": "thaï"}),
)
_OTHER_SCRIPT = {"en": "another writing system", "fr": "une autre écriture"}
# Bounded where a failed attempt would re-read the rest of the text from every character.
_NOISE = re.compile(r"https?://\S+|www\.\S+|[^\s@]{1,200}@\S+|\{\{?[^}]{0,200}\}\}?|\[[^\]]{0,200}\]")
_WORDS = re.compile(r"[^\W\d_]{2,}")


@dataclass(frozen=True)
class LanguageGuess:
    """`lang` is fr/en when we can coach the text; `other` names a language we cannot."""

    lang: str | None
    confidence: float
    other: dict[str, str] | None = None


def other_script(text: str) -> dict[str, str] | None:
    """The name of the script most letters are written in, when it is not the Latin one."""
    letters = len(_LETTERS.findall(text))
    if letters < 4 or len(_LATIN.findall(text)) * 2 > letters:
        return None
    counts = [(len(pattern.findall(text)), names) for pattern, names in _SCRIPTS]
    best, names = max(counts, key=lambda item: item[0])
    return names if best > 0 else _OTHER_SCRIPT


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
        script = other_script(clean)
        if script is not None:
            return LanguageGuess(lang=None, confidence=1.0, other=script)
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
