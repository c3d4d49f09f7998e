"""Replies as the core writes them, for the renderers' output-safety tests of both channels:
one copy, so the Slack and Telegram tests feed their renderers the same text."""

from __future__ import annotations

from typing import Any

from bot.core.coach import Coach
from bot.core.models import CoachCard, Comparison, Reply, ReplyKind
from bot.core.render import render_card, render_comparison


def squash(text: str) -> str:
    """The text without any whitespace: renderers may rewrap, never drop characters."""
    return "".join(text.split())


def summary_reply(coach: Coach, answer: str, lang: str = "en") -> Reply:
    """The drill summary as `TeamCoach.summary` writes it, quoting a shared answer."""
    ui = coach.strings(lang)
    lines = [
        f"**{ui.text('team', 'summary_title', title='The company brochure')}**",
        ui.text("team", "summary_counts", answered=3, median=71, finding=ui.category("pitch")),
        "",
        ui.text("team", "summary_example"),
        f"> {' '.join(answer.split())} (97/100)",
    ]
    return Reply(kind=ReplyKind.SUMMARY, language=lang, text="\n".join(lines))


def drill_answer_reply(coach: Coach, coached: CoachCard, comparison: Comparison | None = None) -> Reply:
    """A drill answer's private coaching as `TeamCoach.answer` writes it: the core's text."""
    ui = coach.strings(coached.language)
    body = (
        render_comparison(comparison, ui, invite_next=False)
        if comparison
        else render_card(coached, ui, invite=False)
    )
    text = (
        f"_{ui.text('team', 'answer_intro', title='The company brochure')}_\n\n{body}\n\n"
        f"**{ui.text('team', 'good_answer')}**\n- a question about their world\n\n"
        f"{ui.text('team', 'answer_again')}"
    )
    kind = ReplyKind.COMPARISON if comparison else ReplyKind.CARD
    return Reply(
        kind=kind, language=coached.language, text=text, card=coached, comparison=comparison, private=True
    )


def mrkdwn_objects(node: Any) -> list[dict[str, Any]]:
    """Every Slack mrkdwn text object in a block tree."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            found.append(node)
        for value in node.values():
            found += mrkdwn_objects(value)
    elif isinstance(node, list):
        for item in node:
            found += mrkdwn_objects(item)
    return found
