"""Team figures at scale: how long `/report` takes on a year of a large team's cards, and
how long a drill answer takes to coach and store.

    .venv/bin/python bench/team_report.py [--reps 50] [--days 365] [--runs 5]

Seeds a temporary SQLite database through the store's public API (cards spread over the
period, a quarter of them rewrites), then times, separately: reading the period's cards,
computing the figures, the text, and the PNG chart; and a drill answer through the flow
(coach, compare with the drill's weak opener, save the answer and the card).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import build_coach, build_team  # noqa: E402
from bot.core.flow import CoachingFlow  # noqa: E402
from bot.core.models import ConversationKey, IncomingMessage, Reply  # noqa: E402
from bot.core.ports import CardRecord  # noqa: E402
from bot.core.report import build_team_report, load_report_strings, render_team_report  # noqa: E402
from bot.report_chart import render_report_png  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.store.sql import SqlStore  # noqa: E402

CATEGORIES = ["pitch", "meeting_ask", "closed_question", "self_focus", "jargon", "pressure"]
ANSWERS = [
    "Since the new depot opened, how are your planners deciding which routes to rebalance first?",
    "Hi, we are the leading platform for route optimisation. Can we book 30 minutes this week?",
    "Depuis l'ouverture du nouveau dépôt, comment vos planificateurs choisissent-ils les tournées ?",
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def seed(store: SqlStore, reps: int, days: int, now: datetime, rng: random.Random) -> int:
    count = 0
    for rep in range(reps):
        key = ConversationKey(channel="slack", user_id=f"U{rep:04d}", conversation_id=f"D{rep:04d}")
        for day in range(days):
            if rng.random() > 0.6:
                continue
            moment = now - timedelta(days=day, minutes=rng.randint(0, 600))
            for rewrite in (False, True):
                if rewrite and rng.random() > 0.5:
                    continue
                await store.record_card(
                    CardRecord(
                        key=key,
                        language=rng.choice(["en", "fr"]),
                        score=rng.randint(20, 95),
                        categories=rng.sample(CATEGORIES, rng.randint(0, 3)),
                        is_rewrite=rewrite,
                        has_question=rng.random() < 0.6,
                        created_at=moment + timedelta(minutes=5 if rewrite else 0),
                    )
                )
                count += 1
    return count


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as data:
        settings = load_settings(data_dir=Path(data), managers=["slack:M"])
        store = await SqlStore.open(settings.resolved_database_url)
        now = datetime.now(UTC)
        started = time.perf_counter()
        cards = await seed(store, args.reps, args.days, now, rng)
        seconds = time.perf_counter() - started
        print(f"seeded {cards} cards for {args.reps} reps over {args.days} days in {seconds:.1f} s")
        strings = load_report_strings(settings.prompts_dir / "report")["en"]
        timings: dict[str, list[float]] = {"read": [], "figures": [], "text": [], "chart": []}
        for _ in range(args.runs):
            for period in (28, args.days):
                since = now - timedelta(days=period)
                t0 = time.perf_counter()
                rows = await store.cards_between(since, now + timedelta(seconds=1))
                t1 = time.perf_counter()
                report = build_team_report(rows, since, now + timedelta(seconds=1))
                t2 = time.perf_counter()
                render_team_report(report, strings)
                t3 = time.perf_counter()
                render_report_png(report, strings)
                t4 = time.perf_counter()
                if period == args.days:
                    for name, spent in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                        timings[name].append(spent * 1000)
        total = [sum(parts) for parts in zip(*timings.values(), strict=True)]
        print(f"report over {args.days} days ({len(rows)} cards), median of {args.runs} runs:")
        for name, values in timings.items():
            print(f"  {name:8s} {statistics.median(values):8.1f} ms")
        print(f"  total    {statistics.median(total):8.1f} ms")

        coach = build_coach(settings)
        team = build_team(settings, coach, store)
        flow = CoachingFlow(coach, store, team=team)
        posted = await team.start_drill("slack", "C1", "M", "en", team.drills.ids()[0])
        if isinstance(posted, Reply):
            raise SystemExit(posted.text)
        run, _ = posted
        assert run.id is not None
        await team.attach(run.id, "post")
        latencies: list[float] = []
        for index in range(200):
            key = ConversationKey(channel="slack", user_id=f"A{index}", conversation_id="C1")
            message = IncomingMessage(
                key=key, text=ANSWERS[index % len(ANSWERS)], chat_id="C1", in_group=True, reply_to="post"
            )
            t0 = time.perf_counter()
            reply = await flow.handle(message)
            latencies.append((time.perf_counter() - t0) * 1000)
            assert reply.private
        print(
            f"drill answer (coach + compare + store), 200 members: p50 {percentile(latencies, 0.5):.1f} ms, "
            f"p95 {percentile(latencies, 0.95):.1f} ms"
        )
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
