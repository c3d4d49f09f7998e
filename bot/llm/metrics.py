"""LLM calls as Prometheus figures: how often the LLM's part is used or skipped, and why,
how long calls take and how many tokens they cost (what the bill and the rep's wait
depend on).

The collectors are not registered anywhere by themselves: `fournil serve` and the bots
register them in the registry they expose (`registry.register(c) for c in metrics.collectors`),
so tests and several coaches in one process never collide in a global registry.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.registry import Collector

from bot.llm.prompts import Part, Reason

# Seconds: a call well under a second is a local model or a cache; 10 s is the default budget.
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 7.0, 10.0, 20.0)


class LlmMetrics:
    def __init__(self) -> None:
        self.calls = Counter(
            "fournil_llm_calls",
            "LLM calls by task and outcome (used, or the reason the output was skipped)",
            ["part", "outcome"],
            registry=None,
        )
        self.latency = Histogram(
            "fournil_llm_latency_seconds",
            "Seconds an LLM call took, answered or not (waiting for a slot not included)",
            ["part"],
            buckets=_LATENCY_BUCKETS,
            registry=None,
        )
        self.tokens = Counter(
            "fournil_llm_tokens",
            "Tokens the provider reported, by direction",
            ["part", "direction"],
            registry=None,
        )

    @property
    def collectors(self) -> tuple[Collector, ...]:
        return (self.calls, self.latency, self.tokens)

    def record(
        self, part: Part, outcome: Reason | str, seconds: float, input_tokens: int = 0, output_tokens: int = 0
    ) -> None:
        self.calls.labels(part=part, outcome=outcome).inc()
        if seconds > 0:
            self.latency.labels(part=part).observe(seconds)
        if input_tokens:
            self.tokens.labels(part=part, direction="input").inc(input_tokens)
        if output_tokens:
            self.tokens.labels(part=part, direction="output").inc(output_tokens)
