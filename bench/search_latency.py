"""Knowledge search figures: index build (cold and warm), `ask` latency, memory.

Run: `.venv/bin/python bench/search_latency.py [--queries N] [--json]`

- cold build: a new data dir, every principle document embedded and stored in Chroma
  (in a fresh process, so the encoder and Chroma imports are included);
- warm build: the same data dir, nothing changed (the content hashes match);
- ask: `CoachingFlow.ask` end to end (language detection, embedding, Chroma query, BM25,
  answer composition) over the labelled questions, repeated, excluding process start;
- RSS: peak resident memory of this process with the index loaded;
- coach card with the related-principle search, over the labelled openers.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = (
    "import time, sys\n"
    "t = time.perf_counter()\n"
    "from bot.app import load_principles, open_search\n"
    "from bot.knowledge.embedder import shared_embedder\n"
    "from bot.knowledge.index import chroma_client\n"
    "from bot.settings import load_settings\n"
    "settings = load_settings(data_dir=sys.argv[1])\n"
    "shared_embedder().embed(['warm up'])\n"
    "chroma_client(settings)\n"
    "ready = time.perf_counter()\n"
    "open_search(settings, load_principles(settings))\n"
    "done = time.perf_counter()\n"
    "print(done - t, done - ready)\n"
)


def build_seconds(data_dir: Path) -> tuple[float, float]:
    """(whole process, the index sync alone once the encoder and Chroma are loaded)."""
    out = subprocess.run(
        [sys.executable, "-c", BUILD, str(data_dir)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    total, sync = out.stdout.strip().splitlines()[-1].split()
    return float(total), float(sync)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from bot.app import build_coach
    from bot.core.flow import CoachingFlow
    from bot.settings import load_settings
    from bot.store.memory import MemoryStore

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        cold = build_seconds(data_dir)
        warm = build_seconds(data_dir)
        coach = build_coach(load_settings(data_dir=data_dir), with_search=True)
        flow = CoachingFlow(coach, MemoryStore())
        lines = (ROOT / "tests" / "data" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        questions = [json.loads(line)["question"] for line in lines if line.strip()]
        for question in questions[:10]:
            flow.ask(question)
        timings: list[float] = []
        for index in range(args.queries):
            started = time.perf_counter_ns()
            flow.ask(questions[index % len(questions)])
            timings.append((time.perf_counter_ns() - started) / 1e6)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        openers = [
            json.loads(line)["text"]
            for line in (ROOT / "tests" / "data" / "openers.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        card_timings: list[float] = []
        for index in range(args.queries):
            started = time.perf_counter_ns()
            coach.coach(openers[index % len(openers)])
            card_timings.append((time.perf_counter_ns() - started) / 1e6)
    figures = {
        "index_build_cold_s": {"process": round(cold[0], 2), "sync": round(cold[1], 2)},
        "index_build_warm_s": {"process": round(warm[0], 2), "sync": round(warm[1], 2)},
        "ask_ms": {
            "n": len(timings),
            "p50": round(statistics.median(timings), 2),
            "p95": round(percentile(timings, 0.95), 2),
            "max": round(max(timings), 2),
        },
        "peak_rss_mb": round(rss_mb, 1),
        "card_with_related_ms": {
            "n": len(card_timings),
            "p50": round(statistics.median(card_timings), 2),
            "p95": round(percentile(card_timings, 0.95), 2),
        },
    }
    if args.json:
        print(json.dumps(figures))
        return
    print("knowledge search benchmark")
    print(
        f"  index build  cold {cold[1]:.2f} s sync ({cold[0]:.2f} s whole process) | "
        f"warm {warm[1]:.2f} s sync ({warm[0]:.2f} s whole process, imports and model load included)"
    )
    ask = figures["ask_ms"]
    assert isinstance(ask, dict)
    print(f"  ask          n={ask['n']} p50 {ask['p50']} ms  p95 {ask['p95']} ms  max {ask['max']} ms")
    print(f"  peak RSS     {rss_mb:.0f} MB (process with the index loaded)")
    card = figures["card_with_related_ms"]
    assert isinstance(card, dict)
    print(f"  coach card with related principles  p50 {card['p50']} ms  p95 {card['p95']} ms")


if __name__ == "__main__":
    main()
