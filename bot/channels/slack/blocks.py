"""Block Kit rendering: cards, comparisons, plain replies, the rewrite modal, the App Home
(with its button to practise against a simulated buyer).

Pure functions from core models to JSON-ready dicts, so they are tested on tables of
inputs without Slack. Three rules hold everywhere:

- text is ours (prompts/ui, strings.yaml: `mrkdwn` turns its markdown, links included,
  into Slack mrkdwn), data (knowledge titles, messages: `escape`, shown literally) or a
  rep's. What a rep typed (openers, rewrites, drill answers, the excerpts and evidence
  of findings, an id echoed back) goes through `user_mrkdwn` only: `&`, `<`, `>`
  escaped, so it can never form `<!channel>`, `<!here>`, `<@U…>` or `<url|label>`, and
  nothing converted, so `[label](url)` stays literal. A core reply's text mixes both:
  `reply_mrkdwn` finds the rep's words in it (`user_spans`) and converts only the rest,
  and even there a markdown link becomes a Slack link only when we wrote that very link
  in our strings;
- every mrkdwn text object is `verbatim`, so Slack does not auto-link a bare URL, a
  #channel or an @mention typed by a rep (our own `<url|label>` and `<!date…>` still work);
  the message's fallback `text` has no such switch, so the rep's words found there are
  left out of it;
- Block Kit's limits are enforced here, not hoped for: ≤ 50 blocks per message (100 in a
  view), section text ≤ 3000, header ≤ 150, button text ≤ 75, action_id ≤ 255, button
  value ≤ 2000, context ≤ 10 elements, modal title/submit/close ≤ 24. Slack rejects the
  whole message when one of them is exceeded, so a too-long card would mean no card.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from bot.channels.slack.payloads import CardRef, explain_value
from bot.channels.slack.strings import SlackStrings
from bot.core.models import CoachCard, Comparison, Reply, ReplyKind
from bot.core.ports import CardRecord
from bot.core.render import MAX_FINDINGS_SHOWN, compare_scores_line, comparison_verdict
from bot.core.ui import UiStrings
from bot.core.user_words import sentinel, ui_sentences, user_spans

Block = dict[str, Any]
Surface = Literal["dm", "thread", "private"]

MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_CONTEXT_TEXT = 3000
MAX_CONTEXT_ELEMENTS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BUTTON_VALUE = 2000
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_INPUT_CHARS = 3000  # plain_text_input max_length
MAX_FALLBACK_TEXT = 3000  # the notification text; Slack allows more, phones show less

ACTION_EXPLAIN = "fournil_explain"
ACTION_ALL_FINDINGS = "fournil_all_findings"
ACTION_REWROTE = "fournil_rewrote"
# Starts a practice in the rep's DM; the value is the drill to practise, or ANY_BUYER.
ACTION_PRACTICE = "fournil_practice"
ANY_BUYER = "any"
VIEW_REWRITE = "fournil_rewrite"
REWRITE_BLOCK = "rewrite"
REWRITE_INPUT = "text"

_ENTITY_TAIL = re.compile(r"&[a-z]{0,4}$")
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
# Bounded label and address: an unbounded class re-scans a run of "[" from every bracket.
_LINK = re.compile(r"\[([^\]\n]{1,300})\]\((https?://[^)\s]{1,2000})\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+)$", re.MULTILINE)
_BULLET = re.compile(r"^([ \t]*)[-*] ", re.MULTILINE)  # not \s*: it would re-read every blank line below


# --------------------------------------------------------------------------- text helpers


def escape(text: str) -> str:
    """mrkdwn control characters as entities: Slack's three, `&` first. Nothing else is
    encoded (Slack would show `&#39;` as is)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def user_mrkdwn(text: str) -> str:
    """Text a rep typed, as mrkdwn: escaped and nothing more, so `<!channel>`, `<@U1>` or
    `<https://x|label>` show as typed and `[label](url)` is never made a link. Only for
    verbatim text objects (`md` makes them all so): Slack then leaves bare URLs alone too."""
    return escape(text)


def fit(text: str, limit: int) -> str:
    """Cut escaped mrkdwn to `limit` characters with an ellipsis, never inside an entity
    (`&am…` would show as garbage)."""
    if len(text) <= limit:
        return text
    cut = _ENTITY_TAIL.sub("", text[: limit - 1])
    return cut + "…"


def clip(text: str, limit: int) -> str:
    """Cut plain text (no entities) to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mrkdwn(markdownish: str) -> str:
    """Markdown-ish text WE wrote (`**bold**`, `_italic_`, `- item`, `[label](url)`,
    `## heading`) as escaped Slack mrkdwn, links included. Never for text that holds a
    rep's words: `user_mrkdwn` for those, `reply_mrkdwn` for a core reply's text."""
    return _convert(escape(markdownish), lambda _link: True)


def _convert(escaped: str, link_allowed: Callable[[str], bool]) -> str:
    """Our markdown-ish markers in escaped text as mrkdwn; a `[label](url)` becomes a
    Slack link only when `link_allowed` says so (it is given the escaped markdown link)."""
    text = _LINK.sub(
        lambda m: f"<{m.group(2)}|{m.group(1)}>" if link_allowed(m.group(0)) else m.group(0), escaped
    )
    text = _HEADING.sub(lambda m: f"*{m.group(1).strip()}*", text)
    text = _BOLD.sub(lambda m: f"*{m.group(1)}*", text)
    return _BULLET.sub(lambda m: f"{m.group(1)}• ", text)


def _own_links(ui: UiStrings, strings: SlackStrings) -> set[str]:
    """The markdown links we wrote (prompts/ui, strings.yaml), escaped as in `_convert`."""
    texts = [*ui_sentences(ui), *(v for v in strings.model_dump().values() if isinstance(v, str))]
    return {match.group(0) for text in texts for match in _LINK.finditer(escape(text))}


def reply_mrkdwn(reply: Reply, ui: UiStrings, strings: SlackStrings, *, fallback: bool = False) -> str:
    """A core reply's markdown-ish text as mrkdwn: our parts converted (a link only if we
    wrote it), the rep's words (`user_spans`) escaped and nothing else. `fallback`: for the
    message's `text`, which Slack auto-links with no way to stop it, so the rep's words
    are left out ("…")."""
    text = reply.text
    spans = user_spans(reply, ui)
    mark = sentinel(text)
    if mark is None:  # no marker left (a text of every private-use character): all theirs
        return "…" if fallback else user_mrkdwn(text)
    theirs: list[str] = []
    masked: list[str] = []
    position = 0
    for start, end in spans:
        masked += [text[position:start], f"{mark}{len(theirs)}{mark}"]
        theirs.append(text[start:end])
        position = end
    masked.append(text[position:])
    own: set[str] | None = None

    def link_allowed(link: str) -> bool:
        nonlocal own
        if mark in link:  # a link made of the rep's words and ours
            return False
        if own is None:
            own = _own_links(ui, strings)
        return link in own

    converted = _convert(escape("".join(masked)), link_allowed)
    return re.sub(
        f"{mark}(\\d+){mark}",
        lambda m: "…" if fallback else user_mrkdwn(theirs[int(m.group(1))]),
        converted,
    )


def plain(text: str, limit: int = MAX_SECTION_TEXT, emoji: bool = True) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": emoji}


def md(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    """An mrkdwn text object from already escaped mrkdwn. Verbatim: Slack processes our
    markup (`*bold*`, `<url|label>`, `<!date…>`) but does not turn a bare URL, a #channel
    or an @here in the text into a link or a mention."""
    return {"type": "mrkdwn", "text": fit(text, limit), "verbatim": True}


def section(text: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": md(text)}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def context(*texts: str) -> Block:
    elements = [md(text, MAX_CONTEXT_TEXT) for text in texts if text][:MAX_CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER_TEXT)}


def divider() -> Block:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    if len(action_id) > MAX_ACTION_ID or len(value) > MAX_BUTTON_VALUE:
        raise ValueError(f"button {action_id!r}: action_id or value over Block Kit's limit")
    element: Block = {
        "type": "button",
        "text": plain(text, MAX_BUTTON_TEXT),
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def split_sections(text: str, limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Long escaped mrkdwn as several section texts, cut at paragraph, then line, then
    word boundaries so no piece exceeds the section limit."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"))
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            cut = len(_ENTITY_TAIL.sub("", window))
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def text_blocks(markdownish: str, max_blocks: int = MAX_BLOCKS) -> list[Block]:
    """Markdown-ish text we wrote (help, the Slack notes) as sections; a core reply's
    text, which may quote a rep, goes through `reply_text_blocks`."""
    return mrkdwn_blocks(mrkdwn(markdownish), max_blocks)


def reply_text_blocks(reply: Reply, ui: UiStrings, strings: SlackStrings) -> list[Block]:
    """Any core reply shown as its text (notices, refusals, principles, answers, drills,
    summaries, a drill answer's coaching), the rep's words in it escaped only."""
    return mrkdwn_blocks(reply_mrkdwn(reply, ui, strings))


def mrkdwn_blocks(text: str, max_blocks: int = MAX_BLOCKS) -> list[Block]:
    """Escaped mrkdwn as sections, cut under Slack's limits."""
    pieces = split_sections(text) or [" "]
    if len(pieces) > max_blocks:
        pieces = [*pieces[: max_blocks - 1], fit(pieces[max_blocks - 1] + " …", MAX_SECTION_TEXT)]
    return [section(piece) for piece in pieces]


# --------------------------------------------------------------------------- card


def _invitation(strings: SlackStrings, surface: Surface) -> str:
    return strings.text(f"invitation_{surface}")


def card_blocks(
    card: CoachCard,
    ui: UiStrings,
    strings: SlackStrings,
    *,
    ref: CardRef | None = None,
    surface: Surface = "dm",
    all_findings: bool = False,
    invitation: bool = True,
    max_blocks: int = MAX_BLOCKS,
) -> list[Block]:
    """The coach card: `NN/100` and its reasons, the findings with their principle and a
    "Why?" button each, question angles, the buying-group nudge, and the buttons
    ("All findings" when some are hidden, "I rewrote it" when the card has a
    conversation to compare in)."""
    blocks: list[Block] = [header(ui.text("card", "score", score=card.score))]
    if card.explanation:
        # A reason may quote the opener ("A concrete reference to their context (…)").
        lines = "\n".join(f"{line.points:+d}  {user_mrkdwn(line.reason)}" for line in card.explanation)
        blocks.append(context(f"*{escape(strings.score_reasons)}*\n{lines}"))
    blocks.append(divider())

    shown = list(card.findings if all_findings else card.findings[:MAX_FINDINGS_SHOWN])
    # Everything but the findings: findings title, "N more", questions, related
    # principles, nudge, invitation, actions. The findings get what is left.
    fixed = len(blocks) + 9  # + the LLM's note and notice
    room = max(0, max_blocks - fixed)
    if len(shown) > room:
        shown = shown[:room]
    hidden = len(card.findings) - len(shown)

    titles = {p.id: p.title for p in card.principles}
    if card.findings:
        blocks.append(section(f"*{escape(ui.text('card', 'findings'))}*"))
        for finding in shown:
            title = titles.get(finding.principle, finding.principle)
            text = (
                f"*{escape(ui.category(finding.category))}* "
                f"({escape(ui.data.severity.get(finding.severity, finding.severity))}) "
                f"“{user_mrkdwn(finding.excerpt)}”\n"
                f"{escape(finding.message)}\n"
                f"_{escape(ui.text('card', 'principle'))}: {escape(title)} ({escape(finding.principle)})_"
            )
            why = button(strings.why, ACTION_EXPLAIN, explain_value(card.language, finding.principle))
            blocks.append(section(text, accessory=why))
        if hidden > 0:
            blocks.append(context(escape(strings.text("more_findings", count=hidden))))
    else:
        blocks.append(section(escape(ui.text("card", "no_findings"))))

    if card.note:  # the LLM's coaching note (FOURNIL_LLM)
        blocks.append(section(f"*{escape(ui.text('card', 'note'))}*\n{escape(card.note)}"))
    if card.questions:
        bullets = "\n".join(f"• {escape(q)}" for q in card.questions)
        blocks.append(section(f"*{escape(ui.text('card', 'questions'))}*\n{bullets}"))
    related = [titles.get(pid, pid) + f" ({pid})" for pid in card.related if pid in titles]
    if related:
        blocks.append(context(f"*{escape(ui.text('card', 'principles'))}*: {escape(' · '.join(related))}"))
    if card.buying_group_nudge:
        blocks.append(context(escape(card.buying_group_nudge)))
    if card.notice:  # the LLM's part, or a piece of it, was skipped
        blocks.append(context(f"_({escape(card.notice)})_"))
    if invitation:
        blocks.append(section(_invitation_mrkdwn(strings, surface)))

    actions: list[Block] = []
    if ref is not None:
        actions.append(button(strings.rewrote, ACTION_REWROTE, ref.encode(), style="primary"))
        if hidden > 0 and not all_findings:
            actions.append(button(strings.all_findings, ACTION_ALL_FINDINGS, ref.encode()))
    if actions:
        blocks.append({"type": "actions", "elements": actions})
    return blocks[:max_blocks]


def _invitation_mrkdwn(strings: SlackStrings, surface: Surface) -> str:
    # The Slack strings are written in mrkdwn by us (bold button names): not escaped.
    return _invitation(strings, surface)


# --------------------------------------------------------------------------- comparison


def comparison_blocks(
    comparison: Comparison,
    ui: UiStrings,
    strings: SlackStrings,
    *,
    ref: CardRef | None = None,
    surface: Surface = "dm",
    max_blocks: int = MAX_BLOCKS,
) -> list[Block]:
    """Before/after: the scores, what was resolved, what remains, what is new, the
    verdict, then the new version's card (when it still has findings)."""

    def names(categories: Sequence[str]) -> str:
        return escape(", ".join(ui.category(c) for c in categories) or ui.text("compare", "none"))

    fields = [
        md(f"*{escape(ui.text('compare', 'resolved'))}*\n{names(comparison.resolved)}", MAX_FIELD_TEXT),
        md(f"*{escape(ui.text('compare', 'remaining'))}*\n{names(comparison.remaining)}", MAX_FIELD_TEXT),
        md(f"*{escape(ui.text('compare', 'new'))}*\n{names(comparison.new)}", MAX_FIELD_TEXT),
    ]
    blocks: list[Block] = [
        header(ui.text("compare", "title")),
        section(f"*{escape(compare_scores_line(comparison, ui))}*"),
        {"type": "section", "fields": fields},
        section(escape(ui.text("compare", comparison_verdict(comparison.delta)))),
    ]
    closing = context(strings.next)
    if comparison.after.findings or comparison.after.note:
        blocks.append(divider())
        room = max_blocks - len(blocks) - 1
        blocks += card_blocks(
            comparison.after, ui, strings, ref=ref, surface=surface, invitation=False, max_blocks=room
        )
        blocks.append(closing)
    else:
        blocks.append(closing)
        if ref is not None:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [button(strings.rewrote, ACTION_REWROTE, ref.encode(), style="primary")],
                }
            )
    return blocks[:max_blocks]


# --------------------------------------------------------------------------- any reply


def reply_blocks(
    reply: Reply,
    ui: UiStrings,
    strings: SlackStrings,
    *,
    ref: CardRef | None = None,
    surface: Surface = "dm",
) -> list[Block]:
    """A core `Reply` in Block Kit: native card and comparison, Slack help, text otherwise.
    A private reply (a drill answer's coaching) is its full text: the intro, the card and
    what a good answer shows, without buttons tied to a conversation it does not have."""
    blocks: list[Block]
    if reply.practice is not None:  # a practice drill's post: the button that starts it in the DM
        practice = button(strings.practice_button, ACTION_PRACTICE, reply.practice, style="primary")
        text = reply_text_blocks(reply, ui, strings)[: MAX_BLOCKS - 1]
        return [*text, {"type": "actions", "elements": [practice]}]
    if reply.private and reply.kind != ReplyKind.HELP:
        return reply_text_blocks(reply, ui, strings)
    if reply.kind == ReplyKind.COMPARISON and reply.comparison is not None:
        blocks = comparison_blocks(reply.comparison, ui, strings, ref=ref, surface=surface)
    elif reply.kind == ReplyKind.CARD and reply.card is not None:
        blocks = card_blocks(
            reply.card, ui, strings, ref=ref, surface=surface, all_findings=reply.all_findings
        )
    elif reply.kind == ReplyKind.HELP:
        return text_blocks(strings.help)
    else:
        return reply_text_blocks(reply, ui, strings)
    note = ui.text("flow", "injection_note")
    if reply.text.startswith(note) and len(blocks) < MAX_BLOCKS:
        blocks.insert(0, context(escape(note)))
    return blocks


def reply_text(reply: Reply, ui: UiStrings, strings: SlackStrings) -> str:
    """The message's `text`: what notifications and screen readers get. Slack auto-links
    URLs there (no verbatim switch), so no rep's words go in it."""
    if reply.kind == ReplyKind.COMPARISON and reply.comparison is not None:
        return fit(escape(compare_scores_line(reply.comparison, ui)), MAX_FALLBACK_TEXT)
    if reply.kind == ReplyKind.CARD and reply.card is not None:
        return fit(escape(ui.text("card", "score", score=reply.card.score)), MAX_FALLBACK_TEXT)
    if reply.kind == ReplyKind.HELP:
        return fit(strings.help, MAX_FALLBACK_TEXT)
    return fit(reply_mrkdwn(reply, ui, strings, fallback=True), MAX_FALLBACK_TEXT)


# --------------------------------------------------------------------------- modal


def rewrite_modal(strings: SlackStrings, metadata: str) -> Block:
    """The "I rewrote it" modal: one multi-line input; its metadata says which conversation."""
    if len(metadata) > MAX_PRIVATE_METADATA:
        raise ValueError("rewrite modal: private_metadata over Block Kit's limit")
    return {
        "type": "modal",
        "callback_id": VIEW_REWRITE,
        "title": plain(strings.modal_title, MAX_VIEW_TITLE),
        "submit": plain(strings.modal_submit, MAX_VIEW_TITLE),
        "close": plain(strings.modal_close, MAX_VIEW_TITLE),
        "private_metadata": metadata,
        "blocks": [
            {
                "type": "input",
                "block_id": REWRITE_BLOCK,
                "label": plain(strings.modal_label, 2000),
                "hint": plain(strings.modal_hint, 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REWRITE_INPUT,
                    "multiline": True,
                    "max_length": MAX_INPUT_CHARS,
                    "placeholder": plain(strings.modal_placeholder, 150),
                },
            }
        ],
    }


# --------------------------------------------------------------------------- App Home


def _when(moment: datetime | None) -> str:
    """A Slack date token: shown in the reader's own time zone and locale."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    fallback = aware.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(aware.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}> · "


def home_view(
    cards: Sequence[CardRecord],
    ui: UiStrings,
    strings: SlackStrings,
    *,
    recent: int = 10,
) -> Block:
    """The App Home tab: how to use Fournil, then the rep's own figures and recent cards
    (numbers and categories only: the store keeps no opener text for this)."""
    blocks: list[Block] = [header(strings.home_title), section(f"*{escape(strings.home_how)}*")]
    blocks += text_blocks(strings.help, max_blocks=10)
    practice = button(strings.practice_button, ACTION_PRACTICE, ANY_BUYER, style="primary")
    blocks += [divider(), section(strings.home_practice, accessory=practice)]
    blocks += [divider(), header(strings.home_progress)]
    if not cards:
        blocks.append(section(strings.home_no_cards))
        return {"type": "home", "blocks": blocks}
    scores = [c.score for c in cards]
    average = round(sum(scores) / len(scores))
    blocks.append(
        section(escape(strings.text("home_stats", count=len(cards), average=average, best=max(scores))))
    )
    openers = [c.score for c in cards if not c.is_rewrite]
    rewrites = [c.score for c in cards if c.is_rewrite]
    if openers and rewrites:
        delta = round(sum(rewrites) / len(rewrites) - sum(openers) / len(openers))
        blocks.append(section(escape(strings.text("home_rewrites", delta=delta))))
    blocks.append(section(f"*{escape(strings.home_recent)}*"))
    room = MAX_VIEW_BLOCKS - len(blocks)
    for record in list(cards)[: min(recent, room)]:
        kind = strings.home_rewrite if record.is_rewrite else strings.home_opener
        categories = ", ".join(ui.category(c) for c in record.categories) or strings.home_clean
        line = f"{_when(record.created_at)}*{record.score}/100* · {escape(kind)} · {escape(categories)}"
        blocks.append(context(line))
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}
