"""What an LLM text must pass before a rep sees it: the promises of the README kept in code.

A prompt asks a model nicely; these checks do not ask. Fournil never writes the message for
the rep, so a text that reads as one (a greeting, a sign-off, or a paragraph of prose that
is not a question) is thrown away; every text must be in the card's language; a question
angle stays a stem the rep completes; a finding must quote the opener's own words; a
category must come from the fixed vocabulary; an answer may only cite the principles the
search found. Each function is pure: same text, same verdict.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.core.language import LanguageDetector
from bot.core.lexicon import Lexicon
from bot.core.models import Category
from bot.llm.prompts import Reason

# Prose (sentences that are not questions) past this many words is a message being written,
# not a coaching remark: the README's "more than ~30 words of prose that is not a question".
MAX_PROSE_WORDS = 30
MAX_NOTE_SENTENCES = 3
MAX_STEM_WORDS = 25
MAX_EVIDENCE_WORDS = 60
MAX_ANSWER_WORDS = 160

_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
# Sentences end at . ! ? followed by a space; "…" does not end one (a stem's gap sits inside).
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'»”’)\]]*\s+")
# Where a new message could start inside a text: after an opening quote or a dash.
_QUOTE_OPEN = re.compile(r"[\"«“‘'(\[—–-]+\s*")
_ELLIPSIS = re.compile(r"\.{3,}|…")
# A principle id written inline: "(open-questions)" or "[buyer-world-first]".
_INLINE_ID = re.compile(r"[\[(]\s*([a-z0-9]+(?:-[a-z0-9]+)+)\s*[\])]")
_QUOTE_FOLD = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "«": '"', "»": '"', "\u00a0": " "})


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def normalise_ellipsis(text: str) -> str:
    """Models write "..." as often as "…": both mean the rep's gap."""
    return _ELLIPSIS.sub("…", text)


def sentences(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        out += [part.strip() for part in _SENTENCE_END.split(line.strip()) if part.strip()]
    return out


def is_question(sentence: str) -> bool:
    return sentence.rstrip(" \u00a0\u202f\"'»”’)]").endswith("?")


@dataclass(frozen=True)
class MessageShape:
    """What opens and closes a message, in every language Fournil knows (the lexicons'
    greetings and sign-offs): an English reply may greet in French, and the other way round.
    With them, the lexicons' either/or joints (", or …"), which no question angle may use."""

    greetings: tuple[re.Pattern[str], ...]
    signoffs: tuple[re.Pattern[str], ...]
    choices: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def from_lexicons(cls, lexicons: Mapping[str, Lexicon]) -> MessageShape:
        return cls(
            greetings=tuple(lex.greeting for lex in lexicons.values()),
            signoffs=tuple(lex.signoff_line for lex in lexicons.values()),
            choices=tuple(lex.choice for lex in lexicons.values() if lex.choice is not None),
        )


def _starts(text: str) -> Iterable[str]:
    """Each place a message could begin: every line, every sentence, and the text right
    after an opening quote ("…such as « Bonjour Marie, … »")."""
    for sentence in sentences(text):
        yield sentence
        for match in _QUOTE_OPEN.finditer(sentence):
            yield sentence[match.end() :]


def has_greeting_or_signoff(text: str, shape: MessageShape) -> bool:
    for start in _starts(text):
        if any(pattern.match(start) for pattern in shape.greetings):
            return True
    for line in text.splitlines():
        line = line.strip()
        # "Best way to reach … ?" is a stem, not "Best,": a sign-off never asks.
        if line and not is_question(line) and any(pattern.match(line) for pattern in shape.signoffs):
            return True
    return False


def prose_words(text: str) -> int:
    """Words in the sentences that are not questions (a question stem is not prose)."""
    return sum(len(words(sentence)) for sentence in sentences(text) if not is_question(sentence))


def reads_as_message(text: str, shape: MessageShape, max_prose_words: int = MAX_PROSE_WORDS) -> bool:
    """A ready-to-send message: it greets or signs, or it is a paragraph of prose."""
    return has_greeting_or_signoff(text, shape) or prose_words(text) > max_prose_words


def in_language(text: str, lang: str, detector: LanguageDetector, lexicons: Mapping[str, Lexicon]) -> bool:
    """The text is in `lang`. lingua decides; on a short text that it gives to another
    language (a French stem full of "reporting", "pipeline"), the lexicons' grammar words
    settle it, as they do for openers (Coach.resolve_language)."""
    guess = detector.detect(text)
    if guess.other is not None:
        return False
    if guess.lang == lang:
        return True
    own = lexicons[lang].function_word_count(text) if lang in lexicons else 0
    others = [lex.function_word_count(text) for name, lex in lexicons.items() if name != lang]
    return own >= 2 and own > max(others, default=0)


def as_stem(text: str, shape: MessageShape) -> str | None:
    """The stem, tidied ("..." → "…"), when `text` is one (docs/contracts.md `questions`):
    a single question of a few words ending in "?" with a "…" gap for what only the rep
    knows; None when it is a finished sentence, several sentences, an either/or, or a
    greeting."""
    stem = normalise_ellipsis(" ".join(text.split()))
    if "…" not in stem or not is_question(stem) or any(choice.search(stem) for choice in shape.choices):
        return None
    if len(sentences(stem)) != 1 or stem.count("?") > 1 or len(words(stem)) > MAX_STEM_WORDS:
        return None
    if has_greeting_or_signoff(stem, shape):
        return None
    return stem


def note_problem(note: str, shape: MessageShape) -> Reason | None:
    """Why a coaching note cannot be shown (None: it can): a message in disguise, more than
    a few sentences, or nothing asked of the rep."""
    if reads_as_message(note, shape) or len(sentences(note)) > MAX_NOTE_SENTENCES:
        return "message_like"
    if not any(is_question(sentence) for sentence in sentences(note)):
        return "not_socratic"
    return None


def answer_reads_as_message(answer: str, shape: MessageShape) -> bool:
    """An answer explains, so it is prose by nature: only a greeting, a sign-off or a length
    no short answer needs give a message away."""
    return has_greeting_or_signoff(answer, shape) or len(words(answer)) > MAX_ANSWER_WORDS


def _fold_with_map(text: str) -> tuple[str, list[tuple[int, int]]]:
    """`text` case-folded, with typographic quotes, "..." and runs of spaces made plain, and
    for each character of the result the span of `text` it came from."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(text):
        char = text[i]
        if text.startswith("...", i):
            end = i
            while end < len(text) and text[end] == ".":
                end += 1
            out.append("…")
            spans.append((i, end))
            i = end
            continue
        if char.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                spans.append((i, i + 1))
            i += 1
            continue
        for folded in unicodedata.normalize("NFC", char).translate(_QUOTE_FOLD).casefold():
            out.append(folded)
            spans.append((i, i + 1))
        i += 1
    return "".join(out), spans


def verbatim_span(quote: str, opener: str) -> str | None:
    """The opener's own words for an LLM's evidence quote, or None when the quote is not in
    the opener. Case, typographic quotes and spacing may differ (models retype them);
    the words may not. The span returned is the opener's, as the rep wrote it."""
    folded_quote, _ = _fold_with_map(quote.strip().strip("\"'«»“”‘’").strip())
    folded_quote = folded_quote.strip()
    if not words(folded_quote) or len(words(folded_quote)) > MAX_EVIDENCE_WORDS:
        return None
    folded_opener, spans = _fold_with_map(opener)
    start = folded_opener.find(folded_quote)
    if start < 0:
        return None
    last = start + len(folded_quote) - 1
    return opener[spans[start][0] : spans[last][1]]


def known_category(name: str, allowed: Iterable[Category]) -> Category | None:
    """The category an LLM named, if it is one of the fixed vocabulary it may use."""
    try:
        category = Category(name.strip().lower())
    except ValueError:
        return None
    return category if category in set(allowed) else None


def citations_allowed(cited: Iterable[str], answer: str, retrieved: Iterable[str]) -> bool:
    """An answer cites at least one principle, and only principles the search found, both
    in its list of citations and in ids written inline in its text."""
    allowed = set(retrieved)
    cited = list(cited)
    inline = _INLINE_ID.findall(answer)
    return bool(cited) and all(pid in allowed for pid in (*cited, *inline))
