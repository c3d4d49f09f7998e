"""An opener cut into the units a learned detector reads: sentences, and clauses of long ones.

A learned detector judges one thought at a time, as a coach underlines one sentence at a
time; a 60-word sentence often carries two (a compliment, then a pitch), and scoring it
whole lets the stronger one hide the other. The greeting and the sign-off are already set
apart by the analysis (`body_start`, `body_end`): they are never units.

Every bound here is linear in the text and capped, so hostile input (a 100 kB run of
punctuation, thousands of emoji) costs at most `MAX_UNITS` short strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.analysis import OpenerAnalysis

# A sentence longer than this is also read clause by clause.
LONG_SENTENCE_WORDS = 40
MAX_UNITS = 32  # about 50 ms of embedding on this project's machine (bench/detector_hostile.py)
MAX_UNIT_CHARS = 400
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Where a long sentence turns to another thought: a semicolon, a dash, a colon, or a comma
# before a coordinating word ("…, and we help…", "…, mais notre outil…"). Each alternative
# is a fixed string or one bounded class: linear-time.
_CLAUSE_BREAK = re.compile(
    r";\s|\s[—–-]\s|:\s|,\s(?=(?:and|but|so|which|while|because|et|mais|donc|car|alors|puis)\b)",
    re.IGNORECASE,
)
# A run of emoji ends a thought in chat: "Huge fan of your studio 🙌 we help studios grow".
_EMOJI_RUN = re.compile(r"[\u2600-\u27bf\U0001f000-\U0001faff]+[\ufe0f\u200d]*")


@dataclass(frozen=True)
class Unit:
    """A span of the original text (offsets into `OpenerAnalysis.text`)."""

    start: int
    end: int
    text: str


def opener_units(analysis: OpenerAnalysis) -> tuple[Unit, ...]:
    """The body's sentences, each also cut at emoji runs; long ones also by clause."""
    units: list[Unit] = []
    for sentence in analysis.sentences:
        for start, end in _pieces(analysis.text, sentence.start, sentence.end, _EMOJI_RUN, MAX_UNITS):
            units.append(_unit(analysis.text, start, end))
            if _long(analysis.text, start, end):
                clauses = _pieces(analysis.text, start, end, _CLAUSE_BREAK, MAX_UNITS - len(units) + 1)
                if len(clauses) > 1:
                    units.extend(_unit(analysis.text, a, b) for a, b in clauses)
            if len(units) >= MAX_UNITS:
                return tuple(unit for unit in units[:MAX_UNITS] if unit.text)
    return tuple(unit for unit in units if unit.text)


def _long(text: str, start: int, end: int) -> bool:
    """More than LONG_SENTENCE_WORDS words (counting stops as soon as it is decided)."""
    for count, _ in enumerate(_WORD.finditer(text, start, end), start=1):
        if count > LONG_SENTENCE_WORDS:
            return True
    return False


def _pieces(
    text: str, start: int, end: int, separator: re.Pattern[str], limit: int
) -> list[tuple[int, int]]:
    """Up to `limit` parts of text[start:end] with a word in them, between separator
    matches (offsets kept)."""
    pieces: list[tuple[int, int]] = []
    cursor = start
    for match in separator.finditer(text, start, end):
        if len(pieces) >= limit:
            return pieces
        if _WORD.search(text, cursor, match.start()):
            pieces.append((cursor, match.start()))
        cursor = match.end()
    if len(pieces) < limit and _WORD.search(text, cursor, end):
        pieces.append((cursor, end))
    return pieces


def _unit(text: str, start: int, end: int) -> Unit:
    raw = text[start:end]
    lead = len(raw) - len(raw.lstrip())
    body = raw.strip()[:MAX_UNIT_CHARS]
    return Unit(start + lead, start + lead + len(body), body)
