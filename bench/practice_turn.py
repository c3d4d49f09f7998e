"""What one turn of the embedded practice buyer costs, next to the coach card it reads.

Replays the thirty scripted sessions of `tests/data/practice_sessions.yaml` `--rounds`
times (default 20), each round with other session ids (so other wordings), in one Python
process (start-up and the first card, which loads the models, are excluded). For every
turn it times, with `time.perf_counter_ns`:

- the card: `coach.coach(text, lang)`, as `fournil practice` computes it (learned
  detectors on, no knowledge search);
- the buyer: `take_turn(session, sheet, card, text)` alone, the engine's own cost;

and prints count, p50, p95 and max in ms for both (nearest-rank percentiles), and the
machine it ran on. The garbage collector stays on.

Run from the repository root:

    .venv/bin/python bench/practice_turn.py
    .venv/bin/python bench/practice_turn.py --rounds 50 --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bot.app import build_coach  # noqa: E402
from bot.core.buyers import BuyerLibrary  # noqa: E402
from bot.core.practice import start_session, take_turn  # noqa: E402
from bot.core.practice_strings import load_practice_strings  # noqa: E402
from bot.settings import load_settings  # noqa: E402


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summary(values_ns: list[int]) -> dict[str, float]:
    ms = [value / 1e6 for value in values_ns]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 0.50), 4),
        "p95_ms": round(percentile(ms, 0.95), 4),
        "max_ms": round(max(ms), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    settings = load_settings()
    coach = build_coach(settings, with_search=False)
    library = BuyerLibrary.load(settings.prompts_dir / "buyers")
    strings = load_practice_strings(settings.prompts_dir / "practice")
    scripts: list[dict[str, Any]] = yaml.safe_load(
        (REPO_ROOT / "tests" / "data" / "practice_sessions.yaml").read_text(encoding="utf-8")
    )
    coach.coach("Hi Sarah, how is the team handling the audit?", "en")  # loads the models

    cards: list[int] = []
    turns: list[int] = []
    for round_number in range(args.rounds):
        for script in scripts:
            lang = script["lang"]
            sheet = library.find(script["drill"], lang)
            assert sheet is not None
            session = start_session(sheet, f"bench-{round_number}-{script['drill']}-{lang}-{script['seed']}")
            for turn in script["turns"]:
                text = next(iter(turn.values()))
                if session.over:
                    break
                start = time.perf_counter_ns()
                card = coach.coach(text, lang)
                middle = time.perf_counter_ns()
                session = take_turn(session, sheet, card, text, strings[lang].common).session
                end = time.perf_counter_ns()
                cards.append(middle - start)
                turns.append(end - middle)

    figures_by_name = {"card": summary(cards), "buyer_turn": summary(turns)}
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()}
    if args.json:
        print(json.dumps({**figures_by_name, "machine": machine}))
        return
    for name, figures in figures_by_name.items():
        print(
            f"{name:>10}: n={figures['count']} p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, "
            f"max {figures['max_ms']} ms"
        )
    print(f"machine: {machine}")


if __name__ == "__main__":
    main()
