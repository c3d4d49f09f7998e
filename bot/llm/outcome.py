"""What a caller gets back from the LLM part: a value or None, and always a status.

The LLM is an extra, never a dependency: every call returns instead of raising, with the
status the card JSON carries (`"llm": {"status", "model", "reason"}`, docs/contracts.md)
and, when something was skipped, a sentence in the card's language that the channel can
show under the embedded card ("the LLM part was skipped: …").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from bot.core.models import LlmStatus  # the card JSON's `llm`: a core type, channels show it
from bot.llm.prompts import Reason

__all__ = ["Discarded", "LlmOutcome", "LlmStatus", "Status"]
T = TypeVar("T")
Status = Literal["used", "off", "fallback"]


class Discarded(Exception):
    """An LLM output that failed a guardrail: not shown, and `reason` says which."""

    def __init__(self, reason: Reason) -> None:
        self.reason: Reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class LlmOutcome(Generic[T]):
    """`value` is None on fallback; `notice` is None when everything was used."""

    value: T | None
    status: LlmStatus
    notice: str | None = None
