"""Is this something we can coach? Empty, huge, binary, emoji-only, link-only, too short or
in another language: each gets its own plain answer instead of a meaningless card."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MIN_WORDS = 3


@dataclass(frozen=True)
class InputProblem:
    """`code` is a key of the `invalid` section of prompts/ui/<lang>.yaml."""

    code: str
    values: dict[str, object] = field(default_factory=dict)


def clean_text(text: str) -> str:
    """The text with lone UTF-16 surrogates (half an emoji from a broken client, or bytes a
    terminal could not decode) replaced by U+FFFD; a proper pair becomes its character.
    Nothing downstream (language detection, the encoder, the database) can take them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def check_text(text: str, max_chars: int) -> InputProblem | None:
    """Problems that do not depend on the language."""
    if not text or not text.strip():
        return InputProblem("empty")
    # Binary before size: an image piped in is "not text", whatever its length.
    controls = len(_CONTROL.findall(text))
    replacement = text.count("\ufffd")
    if "\x00" in text or controls + replacement > max(2, len(text) // 50):
        return InputProblem("binary")
    if len(text) > max_chars:
        return InputProblem("too_big", {"chars": len(text), "max": max_chars})
    without_urls = _URL.sub(" ", text)
    if not _LETTER.search(without_urls):
        return InputProblem("only_url" if _URL.search(text) else "no_words")
    if len(_WORD.findall(without_urls)) < MIN_WORDS:
        return InputProblem("only_url" if _URL.search(text) else "too_short")
    return None
