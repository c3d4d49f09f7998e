"""`fournil practice`: practise the conversation after the opener on a simulated buyer.

Interactive in a terminal (the rep writes, the buyer answers, each message is coached);
with `--json` the rep's turns come from stdin, one per line, and each turn prints one
JSON object, then the debrief (docs/contracts.md, "Practice"). The rep writes every
line: the command never proposes one.
"""

from __future__ import annotations

import json
import random
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from bot.core.buyers import BuyerLibrary, BuyerSheet
from bot.core.flow import CoachingFlow
from bot.core.models import CoachCard, Reply
from bot.core.practice import BuyerTurn, PracticeSession, start_session
from bot.core.practice_debrief import build_debrief, coaching_notes, render_debrief
from bot.core.practice_strings import PracticeStrings, load_practice_strings
from bot.core.practice_turn import practice_turn
from bot.settings import Settings

_REACTION_STYLE = {"engaged": "bold green", "neutral": "yellow", "objection": "magenta", "closed": "red"}
MAX_LINE_BYTES = 100_000  # a turn is one message; a longer "line" is read in pieces and declined


class _CommandContext(Protocol):
    """What `fournil practice` needs from the command group's context (bot.cli._Context)."""

    settings: Settings

    def flow(self) -> CoachingFlow: ...


class _Practice:
    """One session in progress: the sheet, the strings, and the session state."""

    def __init__(self, flow: CoachingFlow, sheet: BuyerSheet, strings: PracticeStrings, session_id: str):
        self.flow = flow
        self.sheet = sheet
        self.strings = strings
        self.session: PracticeSession = start_session(sheet, session_id)

    def turn(self, text: str) -> tuple[Reply, BuyerTurn | None]:
        reply, turn = practice_turn(self.flow, self.session, self.sheet, text, self.strings.common)
        if turn is not None:
            self.session = turn.session
        return reply, turn

    def debrief_json(self) -> dict[str, Any]:
        labels = self.flow.coach.strings(self.session.lang).data.categories
        return build_debrief(self.session, self.sheet, self.strings, labels).model_dump(mode="json")

    def debrief_text(self) -> str:
        labels = self.flow.coach.strings(self.session.lang).data.categories
        return render_debrief(build_debrief(self.session, self.sheet, self.strings, labels), self.strings)


@click.command()
@click.option(
    "--drill",
    "name",
    metavar="ID",
    help="Practise on the buyer of this drill (or a buyer id); default: a buyer drawn at random.",
)
@click.option(
    "--lang", type=click.Choice(["fr", "en"]), help="Practice language (default: FOURNIL_LANGUAGE)."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Read the turns from stdin, one per line; print one JSON object per turn, then the debrief.",
)
@click.option("--seed", metavar="TEXT", help="Session id: the same seed and turns give the same buyer lines.")
@click.pass_obj
def practice(
    obj: _CommandContext, name: str | None, lang: str | None, as_json: bool, seed: str | None
) -> None:
    """Practise the conversation after the opener on a simulated buyer."""
    settings = obj.settings
    language = lang or settings.force_language or settings.language
    all_strings = load_practice_strings(settings.prompts_dir / "practice")
    strings = all_strings.get(language) or all_strings[settings.language]
    library = BuyerLibrary.load(settings.prompts_dir / "buyers")
    session_id = seed or uuid.uuid4().hex
    if name:
        sheet = library.find(name, language)
        if sheet is None:
            ids = sorted({s.drill for s in library.for_language(language) if s.drill} | set(library.ids()))
            raise click.BadParameter(strings.text("cli", "unknown_buyer", name=name, ids=", ".join(ids)))
    else:
        sheet = library.choose(language, random.Random(session_id))
        if sheet is None:
            raise click.UsageError(strings.text("cli", "no_buyer", lang=language))
    run = _Practice(obj.flow(), sheet, strings, session_id)
    if as_json:
        _run_json(run)
    else:
        _run_terminal(run, Console())


def _stdin_lines() -> Iterator[str]:
    """The rep's turns, decoded leniently (binary input is declined by the coach, not the decoder)."""
    if sys.stdin is None:
        return
    stream = sys.stdin.buffer
    while True:
        raw = stream.readline(MAX_LINE_BYTES)
        if not raw:
            return
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _run_json(run: _Practice) -> None:
    """One object per turn; `{"line", "error"}` for a line that gets no card (the buyer
    never sees it); once the buyer leaves or proposes a next step, the rest is not read."""
    for number, line in enumerate(_stdin_lines(), start=1):
        if not line.strip():
            continue
        reply, turn = run.turn(line)
        if turn is None or reply.card is None:
            click.echo(json.dumps({"line": number, "error": reply.text}, ensure_ascii=False))
            continue
        payload = {
            "turn": turn.turn,
            "buyer": turn.buyer,
            "reaction": turn.reaction,
            "ended": turn.ended,
            "coaching": turn.signals.model_dump(mode="json"),
            "card": reply.card.model_dump(mode="json"),
        }
        click.echo(json.dumps(payload, ensure_ascii=False))
        if turn.ended:
            break
    click.echo(json.dumps({"debrief": run.debrief_json()}, ensure_ascii=False))


def _reader(console: Console, prompt: str) -> Callable[[], str]:
    def read() -> str:
        if sys.stdin.isatty():
            return console.input(prompt)
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    return read


def _intro(run: _Practice) -> Panel:
    strings, sheet = run.strings, run.sheet
    lines = [
        f"[bold]{escape(strings.text('cli', 'title', role=sheet.role, company=sheet.company))}[/bold]",
        escape(strings.text("cli", "channel", channel=strings.text("channels", sheet.channel))),
        escape(strings.text("cli", "situation", situation=sheet.situation)),
        escape(strings.text("cli", "cares", cares="; ".join(sheet.cares_about))),
        "",
        f"[dim]{escape(strings.text('cli', 'how'))}[/dim]",
    ]
    return Panel("\n".join(lines), border_style="blue")


def _card_line(card: CoachCard, run: _Practice) -> str:
    ui = run.flow.coach.strings(card.language)
    if not card.categories:
        return run.strings.text("cli", "no_findings", score=card.score)
    names = ", ".join(ui.category(category) for category in card.categories)
    return run.strings.text("cli", "findings", score=card.score, categories=names)


def _run_terminal(run: _Practice, console: Console) -> None:
    from bot.channels.terminal import card_renderable

    strings = run.strings
    console.print(_intro(run))
    read = _reader(console, strings.text("cli", "prompt"))
    last_card: CoachCard | None = None
    while True:
        try:
            line = read().strip()
        except EOFError:
            break
        if not line:
            continue
        command = line.lower()
        if command == "/end":
            break
        if command == "/card":
            if last_card is not None:
                console.print(card_renderable(last_card, run.flow.coach.strings(last_card.language)))
            continue
        if command == "/help":
            console.print(f"[dim]{escape(strings.text('cli', 'how'))}[/dim]")
            continue
        reply, turn = run.turn(line)
        if turn is None or reply.card is None:
            console.print(f"[yellow]{escape(reply.text)}[/yellow]")
            continue
        last_card = reply.card
        style = _REACTION_STYLE[turn.reaction]
        label = strings.text("reactions", turn.reaction)
        console.print(
            f"[bold]{escape(strings.text('cli', 'buyer'))}[/bold] [{style}]({escape(label)})[/{style}]"
        )
        console.print(f"  {escape(turn.buyer)}")
        console.print(f"[dim]  {escape(_card_line(reply.card, run))}[/dim]")
        for note in coaching_notes(turn.signals, reply.card.open_questions, strings):
            console.print(f"[dim]  · {escape(note)}[/dim]")
        if turn.ended:
            key = "next_step" if turn.session.status == "next_step" else "left"
            console.print(f"[bold]{escape(strings.text('cli', key))}[/bold]")
            break
    console.print(Panel(escape(run.debrief_text()), border_style="green"))
