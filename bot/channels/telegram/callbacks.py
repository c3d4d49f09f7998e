"""The inline buttons' callback data: short strings that survive a restart.

Telegram gives a button at most 64 bytes of data and hands them back as they are, so the
data names the action and just enough to redo it from the store, never the card itself:

- `f:<owner user id>`: the card in full (the core re-reads the owner's last version);
- `x:<lang>:<principle id>`: explain a principle, in the card's language;
- `r`: "I rewrote it", which asks for the rewrite.

Nothing is kept in memory (python-telegram-bot's arbitrary callback data would be), so a
button pressed after a restart still works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MAX_CALLBACK_BYTES = 64
REWROTE = "r"
_FINDINGS = re.compile(r"^f:(\d{1,20})$")
_EXPLAIN = re.compile(r"^x:([a-z]{2}):([a-z0-9-]{1,58})$")

Action = Literal["findings", "explain", "rewrote"]


@dataclass(frozen=True)
class Callback:
    action: Action
    owner: str | None = None
    lang: str | None = None
    principle: str | None = None


def findings_data(owner: str) -> str:
    return f"f:{owner}"


def explain_data(lang: str, principle_id: str) -> str:
    return f"x:{lang}:{principle_id}"


def fits(data: str) -> bool:
    """Whether Telegram accepts this as callback data (1-64 bytes)."""
    return 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_BYTES


def parse_callback(data: str | None) -> Callback | None:
    """The button's meaning, or None for data this version did not produce."""
    if not data:
        return None
    if data == REWROTE:
        return Callback("rewrote")
    if found := _FINDINGS.match(data):
        return Callback("findings", owner=found.group(1))
    if found := _EXPLAIN.match(data):
        return Callback("explain", lang=found.group(1), principle=found.group(2))
    return None
