"""Core replies as Telegram messages: HTML text in chunks under the size limit, and buttons.

Pure functions (no I/O, no python-telegram-bot objects) so every rendering rule is tested
on tables of inputs. Telegram's HTML mode is used rather than MarkdownV2 because only three
characters need escaping (`<`, `>`, `&`), which makes escaping the rep's words (excerpts
of their opener) simple to get right; every piece of text that does not come from our own
templates goes through `escape`.

Text is either ours (prompts/ui: `text_lines` turns its `**bold**`, `_italic_`, bullets and
`> ` quotes into tags) or a rep's (openers, rewrites, drill answers, the excerpts and
evidence of findings, an id echoed back): `user_html` escapes it and formats nothing, so
it can never open a tag, a link (`<a href>`, `tg://`) or a quote. A core reply's text mixes
both: `reply_lines` finds the rep's words in it (`user_spans`) and formats only the rest.
Telegram itself still detects a bare URL, @username or #hashtag in any text (no HTML
switch turns that off): such a link shows its real address, never a label over it.

A message holds at most 4096 characters once entities are parsed. Chunks are measured on
the raw HTML, in UTF-16 code units as Telegram counts them (an emoji may count twice), which
over-counts tags and entities and so always stays under the real limit. A reply is cut on
line boundaries, and each line is balanced HTML, so no chunk ever opens a tag it does not
close; a single line longer than a message is cut between words, closing and reopening its
tags around the cut.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.channels.telegram.callbacks import REWROTE, explain_data, findings_data, fits
from bot.channels.telegram.texts import TelegramStrings
from bot.core.models import CoachCard, Comparison, Reply, ReplyKind
from bot.core.render import (
    MAX_FINDINGS_SHOWN,
    compare_scores_line,
    comparison_verdict,
    render_card,
    render_comparison,
)
from bot.core.ui import UiStrings
from bot.core.user_words import sentinel, user_spans

MAX_MESSAGE_CHARS = 4096
MAX_EXPLAIN_BUTTONS = 3
BUTTON_TITLE_CHARS = 40
# Room kept in a cut line for the tags closed before the cut (we nest at most two or three).
_TAG_ROOM = 64

# The tags Telegram's HTML parse mode knows (https://core.telegram.org/bots/api#html-style).
TELEGRAM_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a"}
    | {"tg-emoji", "code", "pre", "blockquote"}
)
_TOKEN = re.compile(r"<[^<>]*>|&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);|\s+|[^\s<&]+|[<&]")
_TAG = re.compile(r"^<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*>$")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![\w*])_(?=\S)(.+?)(?<=\S)_(?!\w)")


@dataclass(frozen=True)
class Button:
    label: str
    data: str
    url: str | None = None  # a link button (a deep link to the bot's DM) instead of a callback


@dataclass(frozen=True)
class Rendered:
    """What to send: HTML chunks in order, and the inline keyboard (rows of buttons) that
    goes under the last chunk."""

    chunks: tuple[str, ...]
    keyboard: tuple[tuple[Button, ...], ...] = ()


def escape(text: str) -> str:
    """User or knowledge text made safe for Telegram's HTML parse mode."""
    return html.escape(text, quote=False)


def user_html(text: str) -> str:
    """Text a rep typed, as HTML: escaped and never formatted, so `<b>`, `<a href=…>`,
    `**bold**`, `_italic_` or a leading `> ` show as typed and open no tag or link."""
    return escape(text)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _one_line(text: str) -> str:
    return " ".join(text.split())


def card_lines(card: CoachCard, ui: UiStrings, all_findings: bool = False) -> list[str]:
    """The coach card as balanced HTML lines: score and its reasons, findings with their
    principle, question angles, related principles, buying-group nudge, invitation."""
    lines = [f"<b>{escape(ui.text('card', 'score', score=card.score))}</b>"]
    # A reason may quote the opener ("A concrete reference to their context (…)").
    lines += [f"<i>{line.points:+d} {user_html(line.reason)}</i>" for line in card.explanation]
    lines.append("")
    shown = card.findings if all_findings else card.findings[:MAX_FINDINGS_SHOWN]
    titles = {ref.id: ref.title for ref in card.principles}
    if shown:
        lines.append(f"<b>{escape(ui.text('card', 'findings'))}</b>")
        for finding in shown:
            severity = ui.data.severity.get(finding.severity, finding.severity)
            principle = titles.get(finding.principle, finding.principle)
            lines.append(
                f"• <b>{escape(ui.category(finding.category))}</b> ({escape(severity)}): "
                f"“{user_html(_one_line(finding.excerpt))}”"
            )
            lines.append(f"   {escape(finding.message)}")
            lines.append(f"   <i>{escape(ui.text('card', 'principle'))}: {escape(principle)}</i>")
        hidden = len(card.findings) - len(shown)
        if hidden > 0:
            lines.append(escape(ui.text("card", "more_findings", count=hidden)))
    else:
        lines.append(escape(ui.text("card", "no_findings")))
    if card.note:  # the LLM's coaching note (FOURNIL_LLM)
        lines += ["", f"<b>{escape(ui.text('card', 'note'))}</b>", escape(_one_line(card.note))]
    lines += ["", f"<b>{escape(ui.text('card', 'questions'))}</b>"]
    lines += [f"→ {escape(question)}" for question in card.questions]
    related = [titles[principle] for principle in card.related if principle in titles]
    if related:  # principles found by meaning, beyond those the findings cite
        lines += ["", f"<b>{escape(ui.text('card', 'principles'))}</b>"]
        lines += [f"– {escape(title)}" for title in related]
    if card.buying_group_nudge:
        lines += ["", escape(card.buying_group_nudge)]
    if card.notice:  # the LLM's part, or a piece of it, was skipped
        lines += ["", f"<i>({escape(card.notice)})</i>"]
    lines += ["", f"<b>{escape(ui.text('card', 'invitation'))}</b>"]
    return lines


def comparison_lines(comparison: Comparison, ui: UiStrings) -> list[str]:
    """Before/after: scores, what was resolved, what remains, what is new, a verdict, then
    the new version's card when it still has findings (as the core's text does)."""

    def names(categories: Sequence[str]) -> str:
        return ", ".join(ui.category(c) for c in categories) or ui.text("compare", "none")

    lines = [
        f"<b>{escape(ui.text('compare', 'title'))}</b>",
        f"<b>{escape(compare_scores_line(comparison, ui))}</b>",
        f"• {escape(ui.text('compare', 'resolved'))}: {escape(names(comparison.resolved))}",
        f"• {escape(ui.text('compare', 'remaining'))}: {escape(names(comparison.remaining))}",
        f"• {escape(ui.text('compare', 'new'))}: {escape(names(comparison.new))}",
        "",
        escape(ui.text("compare", comparison_verdict(comparison.delta))),
    ]
    if comparison.after.findings or comparison.after.note:
        lines += ["", *card_lines(comparison.after, ui)]
    lines += ["", escape(ui.text("compare", "next"))]
    return lines


def text_lines(text: str) -> list[str]:
    """Markdown-ish text WE wrote (help, notes, the Telegram strings) as HTML: `**bold**`,
    `_italic_`, `- ` bullets and `> ` quotes; anything else is plain text. A core reply's
    text, which may quote a rep, goes through `reply_lines`."""
    lines: list[str] = []
    for raw in text.split("\n"):
        quoted = raw.startswith("> ")
        line = escape(raw[2:] if quoted else raw)
        bold = _BOLD.sub(r"<b>\1</b>", line)
        formatted = _ITALIC.sub(r"<i>\1</i>", bold)
        if not balanced(formatted):  # crossed markers such as "**a _b** c_": bold only, or none
            formatted = bold if balanced(bold) else line
        if formatted.startswith("- "):
            formatted = "• " + formatted[2:]
        lines.append(f"<blockquote>{formatted}</blockquote>" if quoted and formatted else formatted)
    return lines


def reply_lines(reply: Reply, ui: UiStrings) -> list[str]:
    """A core reply's markdown-ish text as balanced HTML lines: our parts formatted as by
    `text_lines`, the rep's words (`user_spans`) escaped only, each on one line."""
    text = reply.text
    mark = sentinel(text)
    if mark is None:  # no marker left (a text of every private-use character): all theirs
        return [user_html(line) for line in text.split("\n")]
    theirs: list[str] = []
    masked: list[str] = []
    position = 0
    for start, end in user_spans(reply, ui):
        masked += [text[position:start], f"{mark}{len(theirs)}{mark}"]
        theirs.append(text[start:end])
        position = end
    masked.append(text[position:])
    placeholder = re.compile(f"{mark}(\\d+){mark}")
    return [
        placeholder.sub(lambda m: user_html(_one_line(theirs[int(m.group(1))])), line)
        for line in text_lines("".join(masked))
    ]


def card_keyboard(
    card: CoachCard,
    labels: TelegramStrings,
    owner: str,
    all_findings: bool = False,
    explain_only: bool = False,
) -> tuple[tuple[Button, ...], ...]:
    """All findings (when some are hidden), "why?" for the principles of the shown findings
    then the related ones (at most three), and "I rewrote it"; any button whose data would
    not fit is left out. `explain_only`: the "why?" buttons alone."""
    rows: list[tuple[Button, ...]] = []
    if not explain_only and not all_findings and len(card.findings) > MAX_FINDINGS_SHOWN:
        data = findings_data(owner)
        if fits(data):
            label = labels.buttons.findings.format(count=len(card.findings))
            rows.append((Button(label, data),))
    titles = {ref.id: ref.title for ref in card.principles}
    shown = card.findings if all_findings else card.findings[:MAX_FINDINGS_SHOWN]
    principles = list(dict.fromkeys([*(finding.principle for finding in shown), *card.related]))
    for principle in principles[:MAX_EXPLAIN_BUTTONS]:
        data = explain_data(card.language, principle)
        if fits(data):
            title = _shorten(titles.get(principle, principle), BUTTON_TITLE_CHARS)
            rows.append((Button(labels.buttons.explain.format(title=title), data),))
    if not explain_only:
        rows.append((Button(labels.buttons.rewrote, REWROTE),))
    return tuple(rows)


def render_reply(
    reply: Reply,
    ui: UiStrings,
    labels: TelegramStrings,
    owner: str,
    limit: int = MAX_MESSAGE_CHARS,
) -> Rendered:
    """Any core reply as Telegram messages. `ui` and `labels` are in `reply.language`;
    `owner` is the Telegram user id the card belongs to (for the "all findings" button).

    A card or comparison is drawn natively (with its buttons) when the reply's text is just
    the core's rendering of it. When the core framed it in more (a drill answer's intro and
    what a good answer shows, an onboarding verdict), the text is shown so nothing is lost,
    with only the "why?" buttons: the others act on a conversation the answer is not in."""
    note = ui.text("flow", "injection_note")
    notes = [escape(note), ""] if reply.text.startswith(note) else []
    comparison, card = reply.comparison, reply.card
    if reply.kind == ReplyKind.COMPARISON and comparison is not None:
        if _just(reply, render_comparison(comparison, ui)):
            lines = [*notes, *comparison_lines(comparison, ui)]
            return Rendered(tuple(split_html(lines, limit)), card_keyboard(comparison.after, labels, owner))
        card = card or comparison.after
    elif (
        reply.kind == ReplyKind.CARD
        and card is not None
        and _just(reply, render_card(card, ui, reply.all_findings))
    ):
        lines = [*notes, *card_lines(card, ui, reply.all_findings)]
        return Rendered(
            tuple(split_html(lines, limit)), card_keyboard(card, labels, owner, reply.all_findings)
        )
    framed = card is not None and reply.kind in (ReplyKind.CARD, ReplyKind.COMPARISON)
    keyboard = card_keyboard(card, labels, owner, explain_only=True) if card is not None and framed else ()
    return Rendered(tuple(split_html(reply_lines(reply, ui), limit)), keyboard)


def _just(reply: Reply, standard: str) -> bool:
    """Whether the reply's text is the core's plain rendering (after any injection note)."""
    return not reply.text or reply.text.endswith(standard)


def _shorten(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1].rstrip() + "…"


# --- Splitting --------------------------------------------------------------------------


def balanced(fragment: str) -> bool:
    """Whether this fragment is HTML Telegram accepts: known tags, each closed in order, and
    `<`, `>`, `&` only as parts of tags and entities."""
    stack: list[str] = []
    for token in _TOKEN.findall(fragment):
        tag = _TAG.match(token)
        if tag is None:
            if (token.startswith(("<", "&")) and not token.endswith(";")) or ">" in token:
                return False
            continue
        closing, name = tag.group(1), tag.group(2).lower()
        if name not in TELEGRAM_TAGS:
            return False
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


def plain_text(fragment: str) -> str:
    """What the reader sees of an HTML fragment: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^<>]*>", "", fragment))


def split_html(lines: Sequence[str], limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Balanced HTML lines packed into as few messages as fit under `limit`, cut on line
    boundaries (a line longer than a message is cut between words); blank chunks dropped."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        pieces = [line] if utf16_len(line) <= limit else _cut_line(line, limit)
        for piece in pieces:
            extra = utf16_len(piece) + (1 if current else 0)
            if current and size + extra > limit:
                chunks.append("\n".join(current))
                current, size, extra = [], 0, utf16_len(piece)
            current.append(piece)
            size += extra
    if current:
        chunks.append("\n".join(current))
    return [chunk.strip("\n") for chunk in chunks if plain_text(chunk).strip()]


def _cut_line(line: str, limit: int) -> list[str]:
    """One over-long balanced line as pieces under `limit`: cut between words (or inside a
    word longer than a message), each piece closing the tags open at its end and the next
    reopening them."""
    budget = max(limit - _TAG_ROOM, 1)
    pieces: list[str] = []
    open_tags: list[tuple[str, str]] = []  # (name, opening tag as written)
    current = ""
    for token in _words_and_tags(line, budget):
        tag = _TAG.match(token)
        if current and tag is None and utf16_len(current) + utf16_len(token) > budget:
            pieces.append(current.rstrip() + "".join(f"</{name}>" for name, _ in reversed(open_tags)))
            current = "".join(opening for _, opening in open_tags)
            if token.isspace():
                continue
        current += token
        if tag is not None:
            if tag.group(1):
                if open_tags:
                    open_tags.pop()
            else:
                open_tags.append((tag.group(2), token))
    if plain_text(current).strip():
        pieces.append(current)
    return pieces


def _words_and_tags(line: str, budget: int) -> list[str]:
    """Tokens of a line: tags, entities, runs of spaces, words; words longer than `budget`
    are cut into characters so a cut can happen inside them."""
    tokens: list[str] = []
    for token in _TOKEN.findall(line):
        if utf16_len(token) > budget // 2 and not token.startswith("<"):
            tokens.extend(token)
        else:
            tokens.append(token)
    return tokens
