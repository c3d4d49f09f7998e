"""Seed a database with a demo team's card history, to try the team report.

    python scripts/seed_demo_team.py && fournil report --png report.png

Six reps (four on Slack, two on Telegram; two in French) over eight weeks: they paste
openers on working days and rewrite about half of them. Early openers ask for meetings and
pitch; over the weeks those findings get rarer, so scores rise, and rewrites score higher
than first versions. Two reps opt in to share their figures, so the report names them and
nobody else. Only the store's public API is used (`record_card`, `set_share_consent`,
`forget_user`); running the script again replaces the demo reps' history, and touches no
one else's.

DATABASE is a SQLite file path or a SQLAlchemy URL; by default, the configured database
(FOURNIL_DATABASE_URL, or data/fournil.db under FOURNIL_DATA_DIR).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core.ports import CardRecord

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Rep:
    channel: str
    user_id: str
    conversation_id: str  # the DM: chat platforms reuse it for every opener
    language: str
    skill: float  # -1 (struggling) … +1 (already good)
    activity: float  # chance of pasting an opener on a working day
    shares: bool  # opted in to be named in the report


REPS = (
    Rep("slack", "demo-ana", "D0DEMOANA", "en", 0.4, 0.70, True),
    Rep("slack", "demo-ben", "D0DEMOBEN", "en", -0.6, 0.55, False),
    Rep("slack", "demo-chloe", "D0DEMOCHLOE", "fr", 0.0, 0.60, True),
    Rep("slack", "demo-dev", "D0DEMODEV", "en", -0.2, 0.45, False),
    Rep("telegram", "demo-elise", "demo-elise-dm", "fr", 0.7, 0.50, False),
    Rep("telegram", "demo-farid", "demo-farid-dm", "en", -0.9, 0.65, False),
)

# category: (chance in a first version at the start, at the end of the period, score penalty)
CATEGORIES: dict[str, tuple[float, float, int]] = {
    "meeting_ask": (0.72, 0.14, 14),
    "pitch": (0.66, 0.14, 12),
    "self_focus": (0.42, 0.20, 8),
    "closed_question": (0.38, 0.20, 10),
    "jargon": (0.32, 0.12, 6),
    "no_question": (0.20, 0.08, 16),
    "too_long": (0.18, 0.10, 6),
    "unproven_claim": (0.16, 0.10, 6),
    "stacked_questions": (0.12, 0.10, 6),
    "fake_personalization": (0.10, 0.05, 5),
    "pressure": (0.08, 0.04, 12),
    "template_leftover": (0.03, 0.02, 10),
}
BASE_SCORE = 80


def _score(categories: list[str], rep: Rep, rng: random.Random, bonus: float = 0.0) -> int:
    penalty = sum(CATEGORIES[category][2] for category in categories)
    value = BASE_SCORE - penalty + 6 * rep.skill + bonus + rng.gauss(0, 5)
    return max(3, min(98, round(value)))


def _has_question(categories: list[str]) -> bool:
    """As the coach decides it: a question, and no closed or missing question finding."""
    return not {"closed_question", "no_question"} & set(categories)


def _first_categories(progress: float, rep: Rep, rng: random.Random) -> list[str]:
    found = []
    for category, (start, end, _) in CATEGORIES.items():
        chance = (start + (end - start) * progress) * (1 - 0.35 * rep.skill)
        if rng.random() < chance:
            found.append(category)
    return found


def _rewrite_categories(previous: list[str], rng: random.Random) -> list[str]:
    kept = [c for c in previous if rng.random() < (0.2 if c in {"meeting_ask", "no_question"} else 0.35)]
    if rng.random() < 0.08:  # a rewrite sometimes adds a problem: two questions at once
        kept.append("stacked_questions")
    return list(dict.fromkeys(kept))


def _working_moment(day: date, rng: random.Random) -> datetime:
    minutes = rng.randint(8 * 60, 17 * 60 + 30)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=UTC)


def build_history(weeks: int, now: datetime, seed: int) -> list[CardRecord]:
    """The demo cards (CardRecords), oldest first, none after `now`."""
    from bot.core.models import ConversationKey
    from bot.core.ports import CardRecord

    rng = random.Random(seed)
    first_day = (now - timedelta(weeks=weeks)).date() + timedelta(days=1)
    days = [first_day + timedelta(days=n) for n in range((now.date() - first_day).days + 1)]
    cards: list[CardRecord] = []
    for day in days:
        if day.weekday() >= 5:
            continue
        progress = (day - first_day).days / max(1, len(days) - 1)
        for rep in REPS:
            for _ in range(2 if rng.random() < 0.15 else 1):
                if rng.random() > rep.activity:
                    continue
                key = ConversationKey(
                    channel=rep.channel, user_id=rep.user_id, conversation_id=rep.conversation_id
                )
                moment = _working_moment(day, rng)
                categories = _first_categories(progress, rep, rng)
                versions = [(categories, _score(categories, rep, rng), False)]
                rewrite_chance = 0.40 + 0.35 * progress
                while rng.random() < rewrite_chance and len(versions) < 3 and versions[-1][0]:
                    categories = _rewrite_categories(versions[-1][0], rng)
                    versions.append((categories, _score(categories, rep, rng, bonus=4), True))
                    rewrite_chance = 0.3
                for categories, score, is_rewrite in versions:
                    if moment > now:
                        break
                    cards.append(
                        CardRecord(
                            key=key,
                            language=rep.language,
                            score=score,
                            categories=categories,
                            is_rewrite=is_rewrite,
                            has_question=_has_question(categories),
                            created_at=moment,
                        )
                    )
                    moment += timedelta(minutes=rng.randint(4, 75))
    cards.sort(key=lambda card: card.created_at or now)
    return cards


def _database_url(argument: str | None) -> str:
    if argument is None:
        from bot.settings import load_settings

        return load_settings().resolved_database_url
    if "://" in argument:
        return argument
    return f"sqlite+aiosqlite:///{Path(argument).expanduser().resolve()}"


async def seed(url: str, weeks: int, seed_value: int, now: datetime) -> tuple[int, int, int]:
    from bot.store.sql import SqlStore

    store = await SqlStore.open(url)
    try:
        for rep in REPS:
            await store.forget_user(rep.channel, rep.user_id)
        cards = build_history(weeks, now, seed_value)
        for card in cards:
            await store.record_card(card)
        for rep in REPS:
            await store.set_language_preference(rep.channel, rep.user_id, rep.language)
            await store.set_share_consent(rep.channel, rep.user_id, rep.shares)
    finally:
        await store.close()
    rewrites = sum(1 for card in cards if card.is_rewrite)
    return len(cards), len(cards) - rewrites, rewrites


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("database", nargs="?", help="SQLite file or SQLAlchemy URL (default: configured)")
    parser.add_argument("--weeks", type=int, default=8, help="weeks of history (default 8)")
    parser.add_argument("--seed", type=int, default=7, help="random seed, for a repeatable history")
    args = parser.parse_args(argv)
    if not 1 <= args.weeks <= 104:
        parser.error("--weeks must be between 1 and 104")
    url = _database_url(args.database)
    now = datetime.now(UTC)
    cards, firsts, rewrites = asyncio.run(seed(url, args.weeks, args.seed, now))
    since = (now - timedelta(weeks=args.weeks)).date() + timedelta(days=1)
    shown = url.split("///", 1)[-1] if url.startswith("sqlite") else url.split("@")[-1]
    print(
        f"seeded {cards} cards ({firsts} first versions, {rewrites} rewrites) for {len(REPS)} demo reps "
        f"over {args.weeks} weeks into {shown}; {sum(rep.shares for rep in REPS)} of them share their figures"
    )
    print(f"try: fournil report --since {since.isoformat()} --png report.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
