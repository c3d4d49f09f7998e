"""Where a core reply's text holds words a rep typed, so each channel formats only its own.

The core hands channels one markdown-ish string that mixes our sentences (prompts/ui) with
the rep's words (the excerpts and evidence of findings, a drill answer quoted in a summary,
an id echoed in a notice). Slack and Telegram escape everything; they also format our
markdown, and must never format, link or mention what a rep typed. Both read the reply the
same way, here.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Sequence
from functools import lru_cache

from bot.core.models import Reply, ReplyKind
from bot.core.ui import UiStrings

Span = tuple[int, int]

# Templates whose literal part is this short (`{category}`) would match any line.
_MIN_TEMPLATE_LITERAL = 8
# Kinds whose text is one of our sentences, possibly with something the rep typed in it
# ("No drill called “{drill}”"): the values filled into the sentence are the rep's.
_TEMPLATED_KINDS = frozenset({ReplyKind.NOTICE, ReplyKind.INVALID, ReplyKind.REFUSAL})
_QUOTE_LINE = re.compile(r"^> (.+)$", re.MULTILINE)


def user_spans(reply: Reply, ui: UiStrings) -> list[Span]:
    """Where a core reply's text holds words a rep typed, as sorted, disjoint (start, end)
    ranges of `reply.text`:

    - the excerpts and evidence of its card's findings (a drill answer's coaching is the
      card as text), found between the quotes the core puts around them;
    - in a drill summary, the member's answer the core quotes on a `> ` line;
    - in a notice, the values filled into one of our sentences (an id the rep typed).

    Whatever a channel does not find here it still escapes: this only decides what keeps
    the channel's formatting."""
    text = reply.text
    spans: list[Span] = []
    for words in _finding_words(reply):
        quoted = list(_occurrences(text, f"“{words}”"))
        spans += [(start + 1, end - 1) for start, end in quoted] or list(_occurrences(text, words))
    if reply.kind == ReplyKind.SUMMARY:
        spans += [match.span(1) for match in _QUOTE_LINE.finditer(text)]
    if reply.kind in _TEMPLATED_KINDS:
        spans += _template_values(text, _ui_templates(ui))
    return _merge(spans)


def _finding_words(reply: Reply) -> set[str]:
    cards = [reply.card]
    if reply.comparison is not None:
        cards += [reply.comparison.before, reply.comparison.after]
    return {
        words
        for card in cards
        if card is not None
        for finding in card.findings
        for words in (finding.excerpt, finding.evidence)
        if words.strip()
    }


def _occurrences(text: str, words: str) -> Iterator[Span]:
    start = text.find(words)
    while start != -1:
        yield start, start + len(words)
        start = text.find(words, start + 1)


def _merge(spans: list[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(span for span in spans if span[1] > span[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def ui_sentences(ui: UiStrings) -> list[str]:
    """Every sentence of prompts/ui/<lang>.yaml (the sections of key → sentence)."""
    return [
        value
        for section in ui.data.model_dump().values()
        if isinstance(section, dict)
        for value in section.values()
        if isinstance(value, str)
    ]


def _ui_templates(ui: UiStrings) -> list[str]:
    return [value for value in ui_sentences(ui) if "{" in value]


@lru_cache(maxsize=1024)
def _template_pattern(template: str) -> re.Pattern[str] | None:
    """A sentence with `{fields}` as a pattern capturing what was filled in; None for one
    too short to tell apart from any text."""
    parts: list[str] = []
    literal_size = 0
    try:
        for literal, field, _spec, _conversion in string.Formatter().parse(template):
            parts.append(re.escape(literal))
            literal_size += len(literal.strip())
            if field is not None:
                parts.append("(.+?)")
    except ValueError:
        return None
    if literal_size < _MIN_TEMPLATE_LITERAL or "(.+?)" not in parts:
        return None
    return re.compile("".join(parts), re.DOTALL)


def _template_values(text: str, templates: Sequence[str]) -> list[Span]:
    """The filled-in values of the first template that is the whole text, or a whole line."""
    candidates = [(0, text)]
    offset = 0
    for line in text.split("\n"):
        candidates.append((offset, line))
        offset += len(line) + 1
    spans: list[Span] = []
    for at, candidate in candidates:
        for template in templates:
            pattern = _template_pattern(template)
            match = pattern.fullmatch(candidate) if pattern is not None else None
            if match is not None:
                spans += [(at + match.start(i), at + match.end(i)) for i in range(1, len(match.groups()) + 1)]
                break
    return spans


def sentinel(text: str) -> str | None:
    """A private-use character absent from `text`, to mark where the rep's words were."""
    return next((chr(code) for code in range(0xE000, 0xF900) if chr(code) not in text), None)
