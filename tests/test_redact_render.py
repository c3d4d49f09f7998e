"""Prospect details are redacted before storage; the text rendering of cards."""

from __future__ import annotations

import pytest

from bot.core.coach import Coach
from bot.core.redact import redact
from bot.core.render import render_card, render_comparison


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hi Sarah, write to sarah.jones@acme.com", "Hi [name], write to [email]"),
        ("Bonjour Marie, appelez le 06 12 34 56 78.", "Bonjour [name], appelez le [phone]."),
        ("Call +33 1 23 45 67 89 or (415) 555-0134", "Call [phone] or [phone]"),
        ("See https://www.linkedin.com/in/jane-doe-123/ now", "See [profile-url] now"),
        ("Bonjour Madame Martin,\nComment allez-vous ?", "Bonjour Madame [name],\nComment allez-vous ?"),
        ("Our 2024 report shows 30% growth", "Our 2024 report shows 30% growth"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


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
