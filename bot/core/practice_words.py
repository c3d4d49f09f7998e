"""How the simulated buyer reads the rep's words: which of its topics a message names,
and which of its own words the rep picked up.

A buyer opens up to a question about *their* world, and warms to a seller who listened.
Both are judged here on words, not meaning, so the buyer stays deterministic and cheap
(a tenth of a millisecond a turn): a topic of a buyer sheet is a word start ("recruit" covers "recruiting",
« recrut » covers « recrutements »), compared without accents or case; a word the buyer
said counts as picked up when the rep uses the same word, give or take a plural or an
ending.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'"})
# A buyer's stage direction ("(No answer.)", « (Pas de réponse.) ») says nothing a rep can
# pick up.
_STAGE = re.compile(r"\([^)]*\)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_ELISION = re.compile(r"^(?:[a-z]{1,2}|qu|jusqu|lorsqu|puisqu)'")
MIN_WORD = 4  # shorter words ("new", « les ») carry no topic
STEM = 6


def fold(text: str) -> str:
    """Lower case, no accents, straight apostrophes: « Éléments » and "elements" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES).lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[tuple[str, str], ...]:
    """(folded, as written) for each word, French elisions removed from both
    (« l'Accueil » → ("accueil", "accueil")), so what is quoted back is the rep's spelling.
    Cached: the buyer's lines and the sheets' topics are read again at every turn."""
    tokens: list[tuple[str, str]] = []
    for raw in _WORD.findall(text.translate(_APOSTROPHES)):
        folded = fold(raw)
        elided = _ELISION.match(folded)
        cut = elided.end() if elided else 0
        tokens.append((folded[cut:], raw[cut:].lower()))
    return tuple(tokens)


def words(text: str) -> list[str]:
    """The folded words of `text`, French elisions removed (« l'accueil » → "accueil")."""
    return [folded for folded, _ in _tokens(text)]


def without_stage_directions(text: str) -> str:
    return _STAGE.sub(" ", text)


def stem(word: str) -> str:
    """A crude stem that is enough to hear the same word twice: plural dropped, then the
    first six letters ("recruiting" and "recruit" → "recrui"; "clubs" and "club" → "club")."""
    if len(word) > MIN_WORD and word[-1] in "sx":
        word = word[:-1]
    return word[:STEM]


def topic_hits(text: str, topics: Iterable[str]) -> list[str]:
    """The rep's words that name one of the sheet's topics (a topic is the start of a word,
    or the starts of a few words in a row), as the rep wrote them, in the sheet's order."""
    tokens = _tokens(text)
    hits: list[str] = []
    for topic in topics:
        wanted = words(topic)
        if not wanted:
            continue
        size = len(wanted)
        for index in range(len(tokens) - size + 1):
            if not tokens[index][0].startswith(wanted[0]):
                continue
            span = tokens[index : index + size]
            if all(token.startswith(want) for (token, _), want in zip(span, wanted, strict=True)):
                quoted = " ".join(written for _, written in span)
                if quoted not in hits:
                    hits.append(quoted)
                break
    return hits


def content_words(text: str, common: Collection[str]) -> dict[str, str]:
    """Words that carry meaning, by stem (the first spelling met is kept for quoting)."""
    found: dict[str, str] = {}
    for folded, written in _tokens(without_stage_directions(text)):
        if len(folded) < MIN_WORD or folded in common or folded.isdigit():
            continue
        found.setdefault(stem(folded), written)
    return found


def reused_words(rep_text: str, buyer_lines: Iterable[str], common: Collection[str]) -> list[str]:
    """The buyer's words the rep used again, as the rep spelled them, in the rep's order."""
    heard: set[str] = set()
    for line in buyer_lines:
        heard.update(content_words(line, common))
    return [word for key, word in content_words(rep_text, common).items() if key in heard]


def numbers(text: str) -> set[str]:
    """Figures in a text, with a decimal comma read as a point ("1,5" = "1.5")."""
    return {value.replace(",", ".") for value in _NUMBER.findall(text)}
