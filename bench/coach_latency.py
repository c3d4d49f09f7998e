"""Latency benchmark for `Coach.coach`: how long one opener takes to coach, in one process.

What it measures (all inside this one Python process; interpreter start-up is excluded):

- load: the time to import `bot.app` and the time `build_coach(load_settings())` takes, then
  the first `coach.coach()` call on its own (it pays for lingua's lazily built detector);
- warm-up: `--warmup` openers (default 20) coached and discarded;
- latency: every opener of a deterministic corpus (`--count`, default 3000) coached once,
  each call timed with `time.perf_counter_ns`; count, p50, p95, p99 and max in ms, and
  throughput = openers / wall time of the whole timed loop;
- language detection alone: `coach.detector.detect(text)` over the same corpus, p50/p95;
- in the same run, the same corpus coached by the rules alone (no learned detectors), and
  one bare embedding of each whole opener (`shared_embedder().embed([text])`): the card's
  cost is reported against it (the learned detectors embed every sentence in one batch);
- with `--search`, the card includes the related principles (the knowledge index is
  opened, or built, in `--data-dir`, a temporary directory by default);
- peak RSS of the process (`resource.getrusage`, in MB), and the machine it ran on.

The corpus is built from the labelled openers in `tests/data/openers.jsonl`: the originals,
then variants made with a fixed seed by recombining sentences of openers in the same
language, swapping greetings, and truncating (by sentences or at a word boundary). Openers
the coach declines (`InvalidOpener`) are still timed and counted as "rejected".
Percentiles are nearest-rank. The garbage collector stays on, as in production.

Run from the repository root:

    .venv/bin/python bench/coach_latency.py
    .venv/bin/python bench/coach_latency.py --count 10000 --json
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import random
import re
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / "tests" / "data" / "openers.jsonl"
DEFAULT_COUNT = 3000
DEFAULT_WARMUP = 20
DEFAULT_SEED = 20240601

# A leading salutation: a greeting word, an optional title ("Dr."), up to three words (a
# name, "Madame Martin"), then "," or "!" or a line break ("Hi Priya,", "Hey!", "Allô,",
# "Hello Julie !"). "Hey Leo 👋 saw you…" has no such end and is left as body text.
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|hiya|dear|good (?:morning|afternoon|evening)|bonjour|bonsoir|salut"
    r"|coucou|allô|allo|cher|chère|madame|monsieur)\b"
    r"(?:[ \t\u00a0]+(?:dr|mr|mrs|ms|prof)\.)?"
    r"(?:[ \t\u00a0]+[^\s,!.:;?]+){0,3}?[ \t\u00a0]*(?:[,!]|(?=\n))",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_FALLBACK_GREETINGS = {
    "en": ["Hi,", "Hello,", "Hey there,"],
    "fr": ["Bonjour,", "Bonjour Madame,", "Bonjour Monsieur,"],
}
MIN_WORDS = 4


@dataclass(frozen=True)
class Opener:
    lang: str
    text: str
    greeting: str  # "" when the opener has none
    sentences: tuple[str, ...]  # the body, greeting removed


def split_opener(lang: str, text: str) -> Opener:
    match = _GREETING.match(text)
    greeting = match.group(0).strip() if match else ""
    body = text[match.end() :] if match else text
    sentences = tuple(s.strip() for s in _SENTENCE_END.split(body.strip()) if s.strip())
    return Opener(lang=lang, text=text, greeting=greeting, sentences=sentences)


def load_openers(path: Path) -> list[Opener]:
    openers = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                openers.append(split_opener(str(row.get("lang", "en")), str(row["text"])))
    if not openers:
        raise SystemExit(f"no openers in {path}")
    return openers


def _join(greeting: str, sentences: Sequence[str], rng: random.Random) -> str:
    body = " ".join(sentences)
    if not greeting:
        return body
    separator = rng.choice(["\n\n", " ", "\n"])
    return f"{greeting}{separator}{body}"


def _swap_greeting(rng: random.Random, src: Opener, greetings: dict[str, list[str]]) -> str:
    if not src.greeting:  # "Hey Leo 👋 saw…": the salutation is part of the first sentence
        return src.text
    pool = greetings.get(src.lang) or _FALLBACK_GREETINGS.get(src.lang, ["Hi,"])
    greeting = rng.choice([*pool, ""])  # sometimes no greeting at all
    return _join(greeting, src.sentences, rng)


def _recombine(rng: random.Random, src: Opener, by_lang: dict[str, list[Opener]]) -> str:
    donors = [src, *rng.sample(by_lang[src.lang], k=min(2, len(by_lang[src.lang])))]
    pool = [s for donor in donors for s in donor.sentences]
    k = rng.randint(1, min(4, len(pool)))
    picked = rng.sample(pool, k=k)
    questions = [s for s in pool if s.endswith("?")]
    if questions and not any(s.endswith("?") for s in picked) and rng.random() < 0.7:
        picked.append(rng.choice(questions))  # most real openers end on a question
    greeting = rng.choice(donors).greeting
    return _join(greeting, picked, rng)


def _truncate(rng: random.Random, src: Opener) -> str:
    if len(src.sentences) > 1 and rng.random() < 0.5:
        keep = rng.randint(1, len(src.sentences) - 1)
        return _join(src.greeting, src.sentences[:keep], rng)
    words = src.text.split(" ")
    if len(words) <= MIN_WORDS:
        return src.text
    cut = rng.randint(max(MIN_WORDS, len(words) // 4), len(words) - 1)
    return " ".join(words[:cut])


def build_corpus(openers: Sequence[Opener], count: int, seed: int) -> list[str]:
    """`count` openers: the originals first, then distinct seeded variants."""
    rng = random.Random(seed)
    by_lang: dict[str, list[Opener]] = {}
    greetings: dict[str, list[str]] = {}
    for opener in openers:
        by_lang.setdefault(opener.lang, []).append(opener)
        if opener.greeting:
            greetings.setdefault(opener.lang, []).append(opener.greeting)
    greetings = {lang: sorted(set(pool)) for lang, pool in greetings.items()}

    makers: list[Callable[[Opener], str]] = [
        lambda src: _recombine(rng, src, by_lang),
        lambda src: _swap_greeting(rng, src, greetings),
        lambda src: _truncate(rng, src),
    ]
    corpus = [opener.text for opener in openers][:count]
    seen = set(corpus)
    attempts = 0
    while len(corpus) < count:
        attempts += 1
        text = rng.choice(makers)(rng.choice(openers)).strip()
        if len(text.split()) < MIN_WORDS:
            continue
        if text in seen and attempts < count * 20:
            continue  # prefer distinct texts; accept repeats only if variety runs out
        seen.add(text)
        corpus.append(text)
    return corpus


def percentile(sorted_values: Sequence[int], pct: float) -> int:
    """Nearest-rank percentile of an ascending sequence."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def ms(ns: float) -> float:
    return round(ns / 1e6, 3)


def peak_rss_mb() -> float:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return round(maxrss * scale / 2**20, 1)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
    }


def _timed(texts: Sequence[str], call: Callable[[str], object]) -> tuple[list[int], int]:
    """Each call's time (ns, ascending) and the wall time of the whole loop."""
    clock = time.perf_counter_ns
    times: list[int] = []
    loop_start = clock()
    for text in texts:
        start = clock()
        with contextlib.suppress(Exception):  # declined openers are timed too (InvalidOpener)
            call(text)
        times.append(clock() - start)
    loop = clock() - loop_start
    times.sort()
    return times, loop


def _figures(times: list[int], loop_ns: int) -> dict[str, float]:
    return {
        "p50_ms": ms(percentile(times, 50)),
        "p95_ms": ms(percentile(times, 95)),
        "p99_ms": ms(percentile(times, 99)),
        "per_s": round(len(times) / (loop_ns / 1e9), 1),
    }


def run(
    data: Path, count: int, warmup: int, seed: int, search: bool = False, data_dir: Path | None = None
) -> dict[str, Any]:
    t0 = time.perf_counter_ns()
    from bot.app import build_coach
    from bot.core.coach import Coach, InvalidOpener
    from bot.knowledge.embedder import shared_embedder
    from bot.settings import load_settings

    t1 = time.perf_counter_ns()
    overrides: dict[str, object] = {"data_dir": data_dir} if data_dir is not None else {}
    coach = build_coach(load_settings(**overrides), with_search=search)
    t2 = time.perf_counter_ns()

    openers = load_openers(data)
    corpus = build_corpus(openers, count, seed)
    warm_texts = [opener.text for opener in openers[:warmup]]

    t3 = time.perf_counter_ns()
    coach.coach(openers[0].text)  # first call builds lingua's detector (a cached_property)
    first_call_ns = time.perf_counter_ns() - t3
    for text in warm_texts:
        coach.coach(text)

    gc.collect()
    latencies: list[int] = []
    rejected = 0
    languages: Counter[str] = Counter()
    findings = 0
    clock = time.perf_counter_ns
    loop_start = clock()
    for text in corpus:
        start = clock()
        try:
            card = coach.coach(text)
        except InvalidOpener:
            latencies.append(clock() - start)
            rejected += 1
            continue
        latencies.append(clock() - start)
        languages[card.language] += 1
        findings += len(card.findings)
    loop_ns = clock() - loop_start

    detect_ns: list[int] = []
    for text in corpus:
        start = clock()
        coach.detector.detect(text)
        detect_ns.append(clock() - start)

    embedder = shared_embedder()
    embed_ns, embed_loop = _timed(corpus, lambda text: embedder.embed([text]))
    rules_only = Coach(**{**coach.__dict__, "scorer": None, "policy": None})
    rules_ns, rules_loop = _timed(corpus, rules_only.coach)

    latencies.sort()
    detect_ns.sort()
    coached = len(corpus) - rejected
    lengths = sorted(len(text) for text in corpus)
    return {
        "load": {
            "import_ms": ms(t1 - t0),
            "build_coach_ms": ms(t2 - t1),
            "first_call_ms": ms(first_call_ns),
            "warmup_openers": len(warm_texts),
        },
        "corpus": {
            "count": len(corpus),
            "distinct": len(set(corpus)),
            "originals": min(len(openers), len(corpus)),
            "seed": seed,
            "chars_p50": percentile(lengths, 50),
            "chars_max": lengths[-1],
        },
        "coach": {
            "count": len(latencies),
            "p50_ms": ms(percentile(latencies, 50)),
            "p95_ms": ms(percentile(latencies, 95)),
            "p99_ms": ms(percentile(latencies, 99)),
            "max_ms": ms(latencies[-1]),
            "mean_ms": ms(sum(latencies) / len(latencies)),
            "throughput_per_s": round(len(corpus) / (loop_ns / 1e9), 1),
            "loop_s": round(loop_ns / 1e9, 3),
            "rejected": rejected,
            "languages": dict(sorted(languages.items())),
            "findings_mean": round(findings / coached, 2) if coached else 0.0,
        },
        "detect": {
            "count": len(detect_ns),
            "p50_ms": ms(percentile(detect_ns, 50)),
            "p95_ms": ms(percentile(detect_ns, 95)),
        },
        "search": search,
        "embedding": _figures(embed_ns, embed_loop),
        "rules_only": _figures(rules_ns, rules_loop),
        "card_vs_embedding_p95": round(percentile(latencies, 95) / max(1, percentile(embed_ns, 95)), 2),
        "peak_rss_mb": peak_rss_mb(),
        "machine": machine_info(),
    }


def render(result: dict[str, Any]) -> str:
    load, corpus, coach = result["load"], result["corpus"], result["coach"]
    detect, machine = result["detect"], result["machine"]
    langs = ", ".join(f"{lang} {n}" for lang, n in coach["languages"].items())
    return "\n".join(
        [
            "coach latency benchmark",
            f"  machine   {machine['cpu']} | {machine['cores']} cores "
            f"({machine['cores_usable']} usable) | Python {machine['python']}",
            f"  load      import {load['import_ms']:.1f} ms | build_coach "
            f"{load['build_coach_ms']:.1f} ms | first call {load['first_call_ms']:.1f} ms "
            f"| warm-up {load['warmup_openers']} openers",
            f"  corpus    {corpus['count']} openers ({corpus['distinct']} distinct, "
            f"{corpus['originals']} originals, seed {corpus['seed']}), "
            f"chars p50 {corpus['chars_p50']} max {corpus['chars_max']}",
            f"  coach     n={coach['count']}  p50 {coach['p50_ms']:.3f} ms  "
            f"p95 {coach['p95_ms']:.3f} ms  p99 {coach['p99_ms']:.3f} ms  "
            f"max {coach['max_ms']:.3f} ms  (mean {coach['mean_ms']:.3f} ms)",
            f"            throughput {coach['throughput_per_s']:.1f} openers/s "
            f"over {coach['loop_s']:.3f} s | rejected {coach['rejected']} | {langs} "
            f"| findings/opener {coach['findings_mean']}",
            f"  detect    n={detect['count']}  p50 {detect['p50_ms']:.3f} ms  p95 {detect['p95_ms']:.3f} ms",
            "  card      "
            + ("with related principles" if result["search"] else "without the knowledge index"),
            _line("rules", result["rules_only"]),
            _line("embedding", result["embedding"]) + "  (one bare embedding of the whole opener)",
            f"  card p95 / embedding p95 = {result['card_vs_embedding_p95']:.2f}",
            f"  peak RSS  {result['peak_rss_mb']:.1f} MB",
        ]
    )


def _line(name: str, figures: dict[str, float]) -> str:
    return (
        f"  {name:<9} p50 {figures['p50_ms']:.3f} ms  p95 {figures['p95_ms']:.3f} ms  "
        f"p99 {figures['p99_ms']:.3f} ms  {figures['per_s']:.1f}/s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="openers to time")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="warm-up openers")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="corpus random seed")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled openers")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--search", action="store_true", help="cards with related principles")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the index lives (--search)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    if args.search and args.data_dir is None:
        import tempfile

        args.data_dir = Path(tempfile.mkdtemp(prefix="fournil-bench-"))
    result = run(args.data, args.count, max(0, args.warmup), args.seed, args.search, args.data_dir)
    print(json.dumps(result) if args.json else render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
