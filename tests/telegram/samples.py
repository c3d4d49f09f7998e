"""Openers the Telegram tests send (the same ones tests/test_flow.py uses, plus French)."""

from __future__ import annotations

import re

OPENER = "Hi Sarah, we are a leading provider of analytics. Would you be open to a 15-minute call?"
REWRITE = (
    "Hi Sarah, since Northwind opened the Lyon site, "
    "how are you splitting picking between the two warehouses?"
)
WEAK = (
    "Hi, my name is Tom. Our revolutionary platform guarantees 300% ROI. "
    "Last chance: book a 15-minute demo today?"
)
FRENCH = "Bonjour, avez-vous 15 minutes cette semaine pour une démo de notre plateforme ?"
SCORE = re.compile(r"\b(\d{1,3})/100\b")
