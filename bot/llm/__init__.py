"""The optional LLM part of Fournil (FOURNIL_LLM): sharper cards and real answers, checked.

Unset, nothing here is built and Fournil works as it always did. Set, `LlmCoach` adds a
second opinion, a coaching note and tailored stems to a card, and writes `ask` answers from
the retrieved principles; each output passes the guardrails in code before a rep sees it,
and any failure returns the embedded result with a reason instead of raising.
"""

from bot.llm.ask_answer import LlmAnswer
from bot.llm.client import LlmCallError, LlmClient, LlmConfig, LlmSetupError
from bot.llm.coach import LlmCoach
from bot.llm.enrichment import Enrichment, apply_enrichment
from bot.llm.metrics import LlmMetrics
from bot.llm.outcome import LlmOutcome, LlmStatus

__all__ = [
    "Enrichment",
    "LlmAnswer",
    "LlmCallError",
    "LlmClient",
    "LlmCoach",
    "LlmConfig",
    "LlmMetrics",
    "LlmOutcome",
    "LlmSetupError",
    "LlmStatus",
    "apply_enrichment",
]
