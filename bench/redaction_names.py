"""How well redaction hides person names, and how often it touches a sentence with none.

Reads tests/data/names_redaction.jsonl: sentences in French and English, each with the
person names it holds (`names`, empty for a clean sentence: companies, places, products,
job titles, days and months, capitalised common words). For each split (`dev`, used to tune
the word lists in knowledge/redaction/names.yaml, and `holdout`, written at the same time
and not tuned on) and each language it prints:

- names hidden: the share of names of which no word is left in the redacted text;
- exact: the share of name sentences that come back as the sentence with each name (and
  nothing else) replaced by [name] (an honorific and a possessive 's stay);
- clean changed: the share of clean sentences that redaction changed at all.

Then the time redact() takes on a typical sentence and on 8,000 characters of bait.

    .venv/bin/python bench/redaction_names.py [--show] [--split dev|holdout]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "names_redaction.jsonl"
NAME = "[name]"
BAIT = {
    "capitalised words": "Sarah Jones Acme " * 470,
    "first names": "Sarah " * 1333,
    "names and commas": "Jean-Baptiste, " * 533,
    "particles": "Marie de " * 888,
    "honorifics": "Mme M. Dr " * 800,
    "apostrophes": "qu'Antoine's " * 615,
}


def load(split: str | None) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split is None or r["split"] == split]


def name_words(name: str) -> list[str]:
    """The words that identify a name: its capitalised words (particles aside), or all of
    them when the name is written in lowercase."""
    words = re.findall(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", name)
    capitalised = [w for w in words if w[:1].isupper()]
    return capitalised or words


def is_hidden(name: str, output: str) -> bool:
    return not any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", output) for w in name_words(name))


def expected(text: str, names: list[str]) -> str:
    for name in names:
        text = text.replace(name, NAME, 1)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--split", choices=["dev", "holdout"], default=None)
    parser.add_argument(
        "--show", action="store_true", help="print every miss and every changed clean sentence"
    )
    args = parser.parse_args()

    from bot.core.redact import redact, redact_with_counts

    start = time.perf_counter()
    redact("warm up: Sarah Jones")  # loads the first-name lists once
    load_ms = (time.perf_counter() - start) * 1000

    rows = load(args.split)
    stats: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    shown: list[str] = []
    for row in rows:
        text, names = str(row["text"]), [str(n) for n in row["names"]]  # type: ignore[attr-defined]
        out, counts = redact_with_counts(text)
        assert redact(out) == out, f"not idempotent: {text!r}"
        for key in ((str(row["split"]), str(row["lang"])), (str(row["split"]), "all"), ("all", "all")):
            s = stats[key]
            if names:
                s["sentences"] += 1
                s["names"] += len(names)
                s["hidden"] += sum(is_hidden(n, out) for n in names)
                s["exact"] += out == expected(text, names)
            else:
                s["clean"] += 1
                s["changed"] += out != text
        if args.show:
            missed = [n for n in names if not is_hidden(n, out)]
            if missed:
                shown.append(f"MISS  {row['id']}: {out}   (missed: {', '.join(missed)})")
            elif names and out != expected(text, names):
                shown.append(f"OVER  {row['id']}: {out}")
            elif not names and out != text:
                shown.append(f"FP    {row['id']}: {out}   (counts {counts['name']})")

    def pct(a: int, b: int) -> str:
        return f"{100 * a / b:5.1f}% ({a}/{b})" if b else "      -"

    print(f"{'split':<8} {'lang':<4} {'names hidden':>20} {'exact':>20} {'clean changed':>20}")
    for (split, lang), s in sorted(stats.items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        print(
            f"{split:<8} {lang:<4} {pct(s['hidden'], s['names']):>20} {pct(s['exact'], s['sentences']):>20}"
            f" {pct(s['changed'], s['clean']):>20}"
        )
    for line in shown:
        print(line)

    print(f"\nfirst call (loads the name lists): {load_ms:.0f} ms")
    texts = [str(r["text"]) for r in rows]
    start = time.perf_counter()
    for _ in range(5):
        for text in texts:
            redact(text)
    per_sentence = (time.perf_counter() - start) * 1000 / (5 * len(texts))
    print(f"redact() on one sentence of the list: {per_sentence:.3f} ms on average")
    for label, bait in BAIT.items():
        bait = bait[:8000]
        start = time.perf_counter()
        out = redact(bait)
        elapsed = (time.perf_counter() - start) * 1000
        assert redact(out) == out, label
        print(f"redact() on 8,000 characters of {label!r}: {elapsed:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
