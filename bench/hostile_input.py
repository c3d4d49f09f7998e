"""How long the core takes on hostile text: the worst case, not the typical one.

For each kind of input (100 kB of prose, runs of punctuation, quote marks or "0-" that bait
backtracking patterns, emoji only, one huge sentence, odd Unicode, thousands of short
sentences), times redaction, the analysis, the cut into units and the learned detectors'
reading, each `--repeat` times in one process, and prints the slowest run of each step in
ms. An opener is at most 8,000 characters (FOURNIL_MAX_INPUT_CHARS); the 100 kB rows show
the steps stay linear past that. Tests check the bounds that keep this cheap (at most 32
units of at most 400 characters); the time itself is measured here, never asserted.

    .venv/bin/python bench/hostile_input.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

SENTENCE = "We help logistics teams cut empty miles with a smarter routing engine. "
INPUTS: dict[str, str] = {
    "prose 100 kB": (SENTENCE * 1500)[:100_000],
    "one sentence 100 kB": ("word " * 20_000)[:100_000],
    "punctuation 100 kB": ("!?." * 34_000)[:100_000],
    "emoji 20 kB": "🙌🔥👋\u200d\ufe0f " * 3_000,
    "short sentences 20 kB": "Hi. " * 5_000,
    "odd unicode": "\u202e\u0000\ufeff" * 1_000 + " Hello? " + "\u0301" * 2_000,
    "clauses 100 kB": ("and we, but they; so — it, which " * 3_000)[:100_000],
    "quote marks 8 kB": '"' * 8_000,
    "asterisks 8 kB": "*" * 8_000,
    "end marks 8 kB": "!?." * 2_666,
    "0- 8 kB": "0-" * 4_000,
    "0 and space 8 kB": "0 " * 4_000,
    "random digits 8 kB": " ".join(str((i * 7919) % 97) for i in range(2_700))[:8_000],
}


def slowest(step: Callable[[], object], repeat: int) -> float:
    worst = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        worst = max(worst, time.perf_counter() - start)
    return worst * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from bot.app import build_coach
    from bot.core.redact import redact
    from bot.core.units import opener_units
    from bot.settings import load_settings

    coach = build_coach(load_settings())
    scorer = coach.scorer
    if scorer is None:
        raise SystemExit("the learned detectors are off (FOURNIL_LEARNED_DETECTORS=false)")
    scorer.read(["warm up the encoder"])
    head = f"{'analyse ms':>11} {'units ms':>9} {'detectors ms':>13} {'redact ms':>10}"
    print(f"{'input':24} {'chars':>7} {'units':>5} {head}")
    for name, text in INPUTS.items():
        analysis = coach.analyse(text, "en")
        units = opener_units(analysis)
        texts = [unit.text for unit in units]
        analyse_ms = slowest(lambda text=text: coach.analyse(text, "en"), args.repeat)  # type: ignore[misc]
        units_ms = slowest(lambda analysis=analysis: opener_units(analysis), args.repeat)  # type: ignore[misc]
        read_ms = slowest(lambda texts=texts: scorer.read(texts), args.repeat)  # type: ignore[misc]
        redact_ms = slowest(lambda text=text: redact(text), args.repeat)  # type: ignore[misc]
        figures = f"{analyse_ms:>11.1f} {units_ms:>9.1f} {read_ms:>13.1f} {redact_ms:>10.1f}"
        print(f"{name:24} {len(text):>7} {len(units):>5} {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
