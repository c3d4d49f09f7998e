"""Markdown-ish text of cards and comparisons: the fallback every channel can show.

Channels with richer surfaces (rich in the terminal, Block Kit, Telegram HTML) render the
structured `CoachCard` themselves; this text is what the others, and logs of the
conversation, get.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.models import CoachCard, Comparison
from bot.core.ui import UiStrings

MAX_FINDINGS_SHOWN = 3


def render_card(card: CoachCard, ui: UiStrings, all_findings: bool = False, invite: bool = True) -> str:
    """`invite` off where the next step is not a rewrite to compare (drill answers)."""
    lines = [f"**{ui.text('card', 'score', score=card.score)}**", ""]
    shown = card.findings if all_findings else card.findings[:MAX_FINDINGS_SHOWN]
    titles = {ref.id: ref.title for ref in card.principles}
    if shown:
        lines.append(f"**{ui.text('card', 'findings')}**")
        for finding in shown:
            principle = titles.get(finding.principle, finding.principle)
            lines.append(
                f"- **{ui.category(finding.category)}** ({ui.data.severity[finding.severity]}): "
                f"“{finding.excerpt}”\n  {finding.message}\n"
                f"  _{ui.text('card', 'principle')}: {principle} ({finding.principle})_"
            )
        hidden = len(card.findings) - len(shown)
        if hidden > 0:
            lines.append(ui.text("card", "more_findings", count=hidden))
    else:
        lines.append(ui.text("card", "no_findings"))
    if card.note:  # the LLM's coaching note (FOURNIL_LLM)
        lines += ["", f"**{ui.text('card', 'note')}**", card.note]
    lines += ["", f"**{ui.text('card', 'questions')}**"]
    lines += [f"- {question}" for question in card.questions]
    related = [ref for ref in card.principles if ref.id in card.related]
    if related:
        lines += ["", f"**{ui.text('ask', 'related')}**"]
        lines += [f"- {ref.title} ({ref.id})" for ref in related]
    if card.buying_group_nudge:
        lines += ["", card.buying_group_nudge]
    if card.notice:  # the LLM's part, or a piece of it, was skipped
        lines += ["", f"_({card.notice})_"]
    if invite:
        lines += ["", ui.text("card", "invitation")]
    return "\n".join(lines)


def comparison_verdict(delta: int) -> str:
    """Which `compare` sentence fits: a few points either way is noise, not progress."""
    if delta >= 5:
        return "better"
    if delta <= -5:
        return "worse"
    return "same"


def compare_scores_line(comparison: Comparison, ui: UiStrings) -> str:
    return ui.text(
        "compare",
        "scores",
        before=comparison.before.score,
        after=comparison.after.score,
        delta=comparison.delta,
    )


def render_comparison(comparison: Comparison, ui: UiStrings, invite_next: bool = True) -> str:
    """`invite_next` off where the next step is not another rewrite (drills, onboarding)."""

    def names(categories: Sequence[str]) -> str:
        return ", ".join(ui.category(c) for c in categories) or ui.text("compare", "none")

    verdict = comparison_verdict(comparison.delta)
    lines = [
        f"**{ui.text('compare', 'title')}**",
        compare_scores_line(comparison, ui),
        f"- {ui.text('compare', 'resolved')}: {names(comparison.resolved)}",
        f"- {ui.text('compare', 'remaining')}: {names(comparison.remaining)}",
        f"- {ui.text('compare', 'new')}: {names(comparison.new)}",
        "",
        ui.text("compare", verdict),
    ]
    if comparison.after.findings or comparison.after.note:
        lines += ["", render_card(comparison.after, ui)]
    if invite_next:
        lines += ["", ui.text("compare", "next")]
    return "\n".join(lines)
