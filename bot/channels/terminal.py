"""The terminal channel: cards rendered with rich, and `fournil chat`.

Like the chat platforms, it only turns input lines into `IncomingMessage`s and `Reply`s
into output; the conversation itself is the core's `CoachingFlow`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.core.flow import CoachingFlow, complete
from bot.core.models import CoachCard, Comparison, ConversationKey, IncomingMessage, Reply, ReplyKind
from bot.core.render import MAX_FINDINGS_SHOWN, compare_scores_line, comparison_verdict
from bot.core.ui import UiStrings

if TYPE_CHECKING:  # Markdown (markdown-it, pygments: ~30 ms) loads for text that needs it, not a card
    from rich.markdown import Markdown

_SEVERITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan"}
_LIST_ITEM = re.compile(r"^\s{0,3}(?:[-*•]|\d+[.)])\s")


def terminal_markdown(text: str) -> Markdown:
    """The core's markdown-ish text (help, privacy, answers, the team report) for rich.

    That text is written line by line, as the chat platforms show it: a line of its own
    stays a line of its own (Markdown would run "/new: …" and "/findings: …" into one
    paragraph), and a sentence after a list is not swallowed by its last bullet."""
    lines = text.split("\n")
    out: list[str] = []
    in_list = False
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if not line.strip():
            in_list = False
            out.append(line)
            continue
        item = bool(_LIST_ITEM.match(line))
        continuation = in_list and not item and line.startswith((" ", "\t"))
        in_list = item or continuation
        if not following.strip():
            out.append(line)
        elif in_list and not _LIST_ITEM.match(following) and not following.startswith((" ", "\t")):
            out += [line, ""]  # the list ends here: what follows is a paragraph again
        else:
            out.append(line.rstrip() + "  ")  # a hard line break
    from rich.markdown import Markdown

    return Markdown("\n".join(out))


def score_style(score: int) -> str:
    if score >= 75:
        return "bold green"
    if score >= 50:
        return "bold yellow"
    return "bold red"


def card_renderable(card: CoachCard, ui: UiStrings, all_findings: bool = False) -> Panel:
    parts: list[object] = []
    title = Text(ui.text("card", "score", score=card.score), style=score_style(card.score))
    parts.append(title)
    explanation = Table.grid(padding=(0, 1))
    for line in card.explanation:
        explanation.add_row(Text(f"{line.points:+d}", style="dim"), Text(line.reason, style="dim"))
    parts.append(explanation)
    titles = {ref.id: ref.title for ref in card.principles}
    shown = card.findings if all_findings else card.findings[:MAX_FINDINGS_SHOWN]
    parts.append(Text(""))
    parts.append(Text(ui.text("card", "findings"), style="bold"))
    if not shown:
        parts.append(Text("  " + ui.text("card", "no_findings"), style="green"))
    for finding in shown:
        head = Text("• ")
        head.append(ui.category(finding.category), style=_SEVERITY_STYLE[finding.severity])
        head.append(f"  “{finding.excerpt}”", style="italic")
        parts.append(head)
        parts.append(Text("  " + finding.message))
        principle = titles.get(finding.principle, finding.principle)
        parts.append(
            Text(f"  {ui.text('card', 'principle')}: {principle} ({finding.principle})", style="dim")
        )
    hidden = len(card.findings) - len(shown)
    if hidden > 0:
        parts.append(Text("  " + ui.text("card", "more_findings", count=hidden), style="dim"))
    if card.note:  # the LLM's coaching note (FOURNIL_LLM)
        parts.append(Text(""))
        parts.append(Text(ui.text("card", "note"), style="bold"))
        parts.append(Text(f"  {card.note}", style="magenta"))
    parts.append(Text(""))
    parts.append(Text(ui.text("card", "questions"), style="bold"))
    for question in card.questions:
        parts.append(Text(f"  → {question}", style="cyan"))
    related = [ref for ref in card.principles if ref.id in card.related]
    if related:
        parts.append(Text(""))
        parts.append(Text(ui.text("ask", "related"), style="bold"))
        for ref in related:
            parts.append(Text(f"  {ref.title} ({ref.id})", style="dim"))
    if card.buying_group_nudge:
        parts.append(Text(""))
        parts.append(Text(card.buying_group_nudge, style="magenta"))
    if card.notice:  # the LLM's part, or a piece of it, was skipped
        parts.append(Text(""))
        parts.append(Text(f"({card.notice})", style="dim italic"))
    parts.append(Text(""))
    parts.append(Text(ui.text("card", "invitation"), style="bold"))
    return Panel(Group(*parts), title=ui.text("card", "title"), border_style="blue")  # type: ignore[arg-type]


def comparison_renderable(comparison: Comparison, ui: UiStrings) -> Panel:
    def names(categories: Sequence[str]) -> str:
        return ", ".join(ui.category(c) for c in categories) or ui.text("compare", "none")

    table = Table.grid(padding=(0, 2))
    table.add_row(Text(ui.text("compare", "resolved"), style="green"), names(comparison.resolved))
    table.add_row(Text(ui.text("compare", "remaining"), style="yellow"), names(comparison.remaining))
    table.add_row(Text(ui.text("compare", "new"), style="red"), names(comparison.new))
    verdict = comparison_verdict(comparison.delta)
    header = Text(compare_scores_line(comparison, ui), style=score_style(comparison.after.score))
    body = Group(header, table, Text(ui.text("compare", verdict)))
    return Panel(body, title=ui.text("compare", "title"), border_style="green")


def print_reply(console: Console, reply: Reply, strings: Callable[[str], UiStrings]) -> None:
    ui = strings(reply.language)
    if reply.kind == ReplyKind.COMPARISON and reply.comparison is not None:
        console.print(comparison_renderable(reply.comparison, ui))
        console.print(card_renderable(reply.comparison.after, ui))
        console.print(Text(ui.text("compare", "next"), style="dim"))
    elif reply.kind == ReplyKind.CARD and reply.card is not None:
        console.print(card_renderable(reply.card, ui, all_findings=reply.all_findings))
    elif reply.kind == ReplyKind.INVALID:
        console.print(Text(reply.text, style="yellow"))
    else:
        console.print(terminal_markdown(reply.text))


async def run_chat(
    flow: CoachingFlow,
    key: ConversationKey,
    read_line: Callable[[str], str],
    console: Console,
) -> None:
    """The conversation in a terminal: a blank line sends a (multi-line) message."""
    ui = flow.coach.strings(flow.coach.default_language)
    console.print(Text(ui.text("flow", "welcome")))
    console.print(Text("(/help, Ctrl-D to quit)", style="dim"))
    while True:
        lines: list[str] = []
        try:
            while True:
                line = read_line("> " if not lines else "… ")
                if line.startswith("/") and not lines:
                    lines.append(line)
                    break
                if not line.strip():
                    if lines:
                        break
                    continue
                lines.append(line)
        except EOFError:
            if not lines:
                return
        message = IncomingMessage(key=key, text="\n".join(lines))
        reply = await complete(await flow.handle(message))
        print_reply(console, reply, flow.coach.strings)
