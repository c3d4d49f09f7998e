"""The text rendering of cards (redaction has its own tests in test_redact.py)."""

from __future__ import annotations

from bot.core.coach import Coach
from bot.core.render import render_card, render_comparison


def test_card_text_lists_at_most_three_findings_then_more(coach: Coach) -> None:
    card = coach.coach(
        "Hi, my name is Tom. Our revolutionary platform guarantees 300% ROI. "
        "Last chance: book a 15-minute demo today?"
    )
    text = render_card(card, coach.strings("en"))
    assert f"{card.score}/100" in text
    assert text.count("\n- **") == 3
    assert "/findings" in text
    full = render_card(card, coach.strings("en"), all_findings=True)
    assert full.count("\n- **") == len(card.findings)


def test_comparison_text_in_french(coach: Coach) -> None:
    comparison = coach.compare(
        "Bonjour, avez-vous 15 minutes pour une démo de notre plateforme ?",
        "Bonjour, comment vos équipes préparent-elles l'audit qualité de mars ?",
    )
    text = render_comparison(comparison, coach.strings("fr"))
    assert "Réglé" in text and "→" in text
