"""The team report (for managers): figures over a period, anonymous by default.

Pure: takes the `CardRecord`s of a period and returns numbers (`build_team_report`), then
text in the reader's language (`render_team_report`, strings from prompts/report/<lang>.yaml).
The chart is drawn outside the core (`bot.report_chart`).

Definitions, so every figure can be checked by hand:
- a *first version* is a card with `is_rewrite=False`; a *rewrite* is any later version;
- a *conversation* is one opener and the rewrites that follow it under the same
  `CardRecord.key` (chat platforms reuse the key for every opener in a DM, so a new first
  version starts a new conversation); its *last version* is the one created last. Only
  conversations whose opener falls in the period are counted (rewrites of an older
  opener still count as rewrites);
- a category's *share* is the share of first versions that have it; its *trend* compares that
  share in the first and second half of the period: rising or falling when it moved by
  `TREND_POINTS` percentage points or more, steady otherwise (the report says so);
- weeks start on Monday (ISO weeks); a conversation belongs to the week of its opener;
- a *practice session* is one `/practice` in a chat, started in the period, whoever ran
  it (anonymous, like the cards); the buyer *opened up* in it
  when some turn got `engaged`, and the *messages until the buyer opens up* of such a
  session is the number of that first engaged turn (2: the rep's second message did it);
  the report gives their median.
No rep is named unless the caller passes them in `named` (those who opted in): the report
itself holds no user id, only a count of distinct reps.
"""

from __future__ import annotations

import math
import statistics
import string
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.errors import KnowledgeError
from bot.core.models import Category
from bot.core.ports import CardRecord, PracticeRecord
from bot.core.yaml_text import load_yaml

Trend = Literal["up", "down", "flat"]
TOP_CATEGORIES = 5
TREND_POINTS = 5  # a share that moves by this many percentage points or more is a trend
LANGUAGES = ("en", "fr")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class CategoryStat(_Frozen):
    category: str
    count: int  # first versions with this category
    share: float  # of all first versions in the period
    first_half_share: float | None  # None: no first version in that half
    second_half_share: float | None
    trend: Trend


class WeekStat(_Frozen):
    week_start: date  # a Monday
    cards: int
    first_versions: int
    rewrites: int
    median_first: float | None
    median_rewrite: float | None
    conversations: int  # openers of that week
    question_share: float | None  # of those, the share whose last version ends as a question


class RepStat(_Frozen):
    """Only for reps who chose to share; `label` is what the caller passed."""

    label: str
    cards: int
    first_versions: int
    rewrites: int
    median_first: float | None
    median_rewrite: float | None


class TeamReport(_Frozen):
    since: datetime
    until: datetime  # excluded
    cards: int
    first_versions: int
    rewrites: int
    reps: int  # distinct reps: a count, never who
    conversations: int
    ending_with_question: int
    median_first: float | None
    median_rewrite: float | None
    question_share: float | None
    top_categories: tuple[CategoryStat, ...] = ()
    weeks: tuple[WeekStat, ...] = ()
    named_reps: tuple[RepStat, ...] = ()
    practice_sessions: int = 0
    practice_reps: int = 0  # distinct reps who practised: a count, never who
    practice_engaged: int = 0  # sessions where the buyer opened up
    practice_median_turns: float | None = None  # messages until the buyer opened up, median

    @property
    def empty(self) -> bool:
        return self.cards == 0

    @property
    def last_day(self) -> date:
        """The last calendar day the period covers (`until` is excluded)."""
        return (self.until - timedelta(microseconds=1)).date()


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: every stored timestamp is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _median(values: Sequence[int]) -> float | None:
    return float(statistics.median(values)) if values else None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


@dataclass
class _Conversation:
    cards: list[CardRecord]

    @property
    def opener(self) -> CardRecord:
        return self.cards[0]

    @property
    def last(self) -> CardRecord:
        return self.cards[-1]


def _stamp(card: CardRecord) -> datetime:
    assert card.created_at is not None  # filtered before
    return _utc(card.created_at)


def _conversations(cards: Iterable[CardRecord]) -> list[_Conversation]:
    """Split each key's cards (in time order) at every first version; a thread that starts
    with a rewrite (its opener is before the period) is not a conversation of the period."""
    by_key: dict[tuple[str, str, str], list[CardRecord]] = {}
    for card in cards:
        by_key.setdefault((card.key.channel, card.key.user_id, card.key.conversation_id), []).append(card)
    found: list[_Conversation] = []
    for thread in by_key.values():
        current: _Conversation | None = None
        for card in sorted(thread, key=_stamp):  # stable: equal stamps keep their order
            if not card.is_rewrite:
                current = _Conversation([card])
                found.append(current)
            elif current is not None:
                current.cards.append(card)
    return found


def _trend(first: tuple[int, int], second: tuple[int, int]) -> tuple[float | None, float | None, Trend]:
    """(count, first versions) in each half → shares and trend: "up" or "down" when the
    share moved by TREND_POINTS points or more (20 % → 36 % is rising), else "flat"; flat
    too when a half has no first version to compare with."""
    (c1, n1), (c2, n2) = first, second
    p1, p2 = _share(c1, n1), _share(c2, n2)
    if p1 is None or p2 is None:
        return p1, p2, "flat"
    points = round((p2 - p1) * 100, 9)  # 15 % - 10 % is 4.999… in floating point
    if abs(points) < TREND_POINTS:
        return p1, p2, "flat"
    return p1, p2, "up" if points > 0 else "down"


def _first_engaged(record: PracticeRecord) -> int | None:
    return next((turn.turn for turn in record.session.turns if turn.reaction == "engaged"), None)


def build_team_report(
    cards: Sequence[CardRecord],
    since: datetime,
    until: datetime,
    named: Mapping[tuple[str, str], str] | None = None,
    practice: Sequence[PracticeRecord] = (),
) -> TeamReport:
    """Figures for the cards created and the practice sessions started in [since, until).
    `named` maps (channel, user_id) of the reps who opted in to the label to show; nobody
    else appears, even by id."""
    since, until = _utc(since), _utc(until)
    if until <= since:
        raise ValueError("the period must end after it starts")
    sessions = [p for p in practice if p.created_at is not None and since <= _utc(p.created_at) < until]
    opened = [turn for turn in map(_first_engaged, sessions) if turn is not None]
    inside = [c for c in cards if c.created_at is not None and since <= _utc(c.created_at) < until]
    firsts = [c for c in inside if not c.is_rewrite]
    rewrites = [c for c in inside if c.is_rewrite]
    conversations = _conversations(inside)
    ending = sum(1 for conv in conversations if conv.last.has_question)

    middle = since + (until - since) / 2
    halves = ([c for c in firsts if _stamp(c) < middle], [c for c in firsts if _stamp(c) >= middle])
    counts: dict[str, int] = {}
    for card in firsts:
        for category in dict.fromkeys(card.categories):  # a category counts once per card
            counts[category] = counts.get(category, 0) + 1
    top: list[CategoryStat] = []
    for category, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_CATEGORIES]:
        in_half = [sum(1 for c in half if category in c.categories) for half in halves]
        p1, p2, trend = _trend((in_half[0], len(halves[0])), (in_half[1], len(halves[1])))
        top.append(
            CategoryStat(
                category=category,
                count=count,
                share=count / len(firsts),
                first_half_share=p1,
                second_half_share=p2,
                trend=trend,
            )
        )

    # One pass to bucket by week: a year of a large team is tens of thousands of cards.
    cards_by_week: dict[date, list[CardRecord]] = {}
    for card in inside:
        cards_by_week.setdefault(_monday(_stamp(card).date()), []).append(card)
    convs_by_week: dict[date, list[_Conversation]] = {}
    for conv in conversations:
        convs_by_week.setdefault(_monday(_stamp(conv.opener).date()), []).append(conv)
    weeks: list[WeekStat] = []
    week = _monday(since.date())
    last_week = _monday((until - timedelta(microseconds=1)).date())
    while week <= last_week:
        in_week = cards_by_week.get(week, [])
        week_convs = convs_by_week.get(week, [])
        week_firsts = [c.score for c in in_week if not c.is_rewrite]
        week_rewrites = [c.score for c in in_week if c.is_rewrite]
        weeks.append(
            WeekStat(
                week_start=week,
                cards=len(in_week),
                first_versions=len(week_firsts),
                rewrites=len(week_rewrites),
                median_first=_median(week_firsts),
                median_rewrite=_median(week_rewrites),
                conversations=len(week_convs),
                question_share=_share(
                    sum(1 for conv in week_convs if conv.last.has_question), len(week_convs)
                ),
            )
        )
        week += timedelta(days=7)

    reps: list[RepStat] = []
    for (channel, user_id), label in (named or {}).items():
        mine = [c for c in inside if (c.key.channel, c.key.user_id) == (channel, user_id)]
        if not mine:
            continue
        reps.append(
            RepStat(
                label=label,
                cards=len(mine),
                first_versions=sum(1 for c in mine if not c.is_rewrite),
                rewrites=sum(1 for c in mine if c.is_rewrite),
                median_first=_median([c.score for c in mine if not c.is_rewrite]),
                median_rewrite=_median([c.score for c in mine if c.is_rewrite]),
            )
        )
    reps.sort(key=lambda rep: rep.label.casefold())

    return TeamReport(
        since=since,
        until=until,
        cards=len(inside),
        first_versions=len(firsts),
        rewrites=len(rewrites),
        reps=len({(c.key.channel, c.key.user_id) for c in inside}),
        conversations=len(conversations),
        ending_with_question=ending,
        median_first=_median([c.score for c in firsts]),
        median_rewrite=_median([c.score for c in rewrites]),
        question_share=_share(ending, len(conversations)),
        top_categories=tuple(top),
        weeks=tuple(weeks),
        named_reps=tuple(reps),
        practice_sessions=len(sessions),
        practice_reps=len({(p.key.channel, p.key.user_id) for p in sessions}),
        practice_engaged=len(opened),
        practice_median_turns=_median(opened),
    )


# --- strings ------------------------------------------------------------------------------

TEXT_KEYS = frozenset(
    {
        "title",
        "period",
        "empty",
        "counts",
        "medians",
        "question_share",
        "categories_title",
        "category_line",
        "trend_note",
        "weeks_title",
        "week_line",
        "week_empty",
        "reps_title",
        "rep_line",
        "anonymous",
        "missing",
        "practice",
        "practice_never",
    }
)
CHART_KEYS = frozenset(
    {
        "title",
        "scores_title",
        "first_versions",
        "rewrites",
        "score_axis",
        "questions_title",
        "question_axis",
        "categories_title",
        "count_axis",
        "week_axis",
        "no_data",
    }
)
TREND_KEYS = frozenset({"up", "down", "flat"})
CATEGORY_KEYS = frozenset(category.value for category in Category)


class ReportFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    decimal_separator: str = Field(min_length=1, max_length=1)
    percent: str  # "{value}%"
    date: str  # "{day} {month} {year}"
    date_short: str  # "{day} {month}"
    months: list[str] = Field(min_length=12, max_length=12)


class ReportFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    lang: Literal["fr", "en"]
    categories: dict[str, str]
    trend: dict[str, str]
    trend_arrow: dict[str, str]
    text: dict[str, str]
    chart: dict[str, str]
    format: ReportFormat


@dataclass(frozen=True)
class ReportStrings:
    """What the report says in one language, with its number and date conventions."""

    data: ReportFile

    @property
    def lang(self) -> str:
        return self.data.lang

    def text(self, key: str, **values: Any) -> str:
        return self.data.text[key].format(**values)

    def chart(self, key: str, **values: Any) -> str:
        return self.data.chart[key].format(**values)

    def category(self, category: str) -> str:
        return self.data.categories.get(category, category)

    def trend(self, trend: str) -> str:
        return self.data.trend[trend]

    def arrow(self, trend: str) -> str:
        return self.data.trend_arrow[trend]

    def number(self, value: float | None) -> str:
        """54 or 54.5 (54,5 in French); the `missing` text for no data."""
        if value is None:
            return self.text("missing")
        rounded = round(value, 1)
        shown = f"{rounded:.0f}" if rounded == int(rounded) else f"{rounded:.1f}"
        return shown.replace(".", self.data.format.decimal_separator)

    def percent(self, share: float | None) -> str:
        if share is None:
            return self.text("missing")
        return self.data.format.percent.format(value=math.floor(share * 100 + 0.5))

    def date(self, day: date, short: bool = False) -> str:
        template = self.data.format.date_short if short else self.data.format.date
        return template.format(day=day.day, month=self.data.format.months[day.month - 1], year=day.year)

    def period(self, report: TeamReport) -> str:
        first, last = report.since.date(), report.last_day
        if first == last:
            return self.date(first)
        return self.text(
            "period", since=self.date(first, short=first.year == last.year), until=self.date(last)
        )


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _check_keys(path: Path, section: str, present: Iterable[str], required: frozenset[str]) -> None:
    keys = set(present)
    for missing in sorted(required - keys):
        raise KnowledgeError(path, f"{section}.{missing}", "missing")
    for extra in sorted(keys - required):
        raise KnowledgeError(path, f"{section}.{extra}", "unknown key")


def _load_one(path: Path) -> ReportFile:
    try:
        raw: Any = load_yaml(path.read_text(encoding="utf-8"))
        data = ReportFile.model_validate(raw)
    except OSError as exc:
        raise KnowledgeError(path, "(file)", f"cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    except ValidationError as exc:
        raise KnowledgeError.from_validation(path, exc) from None
    if data.lang != path.stem:
        raise KnowledgeError(path, "lang", f"{data.lang!r} in a file named {path.name}")
    _check_keys(path, "categories", data.categories, CATEGORY_KEYS)
    _check_keys(path, "trend", data.trend, TREND_KEYS)
    _check_keys(path, "trend_arrow", data.trend_arrow, TREND_KEYS)
    _check_keys(path, "text", data.text, TEXT_KEYS)
    _check_keys(path, "chart", data.chart, CHART_KEYS)
    for section in ("text", "chart"):
        for key, template in getattr(data, section).items():
            try:
                _fields(template)
            except ValueError as exc:
                raise KnowledgeError(path, f"{section}.{key}", f"bad template: {exc}") from None
    return data


def load_report_strings(directory: Path) -> dict[str, ReportStrings]:
    """prompts/report/<lang>.yaml for every language; the languages must say the same
    things with the same placeholders, so no report breaks in only one of them."""
    files = {lang: directory / f"{lang}.yaml" for lang in LANGUAGES}
    for lang, path in files.items():
        if not path.is_file():
            raise KnowledgeError(path, "(file)", f"missing: the report needs a {lang}.yaml")
    loaded = {lang: _load_one(path) for lang, path in files.items()}
    reference_lang = LANGUAGES[0]
    reference = loaded[reference_lang]
    for lang, data in loaded.items():
        if lang == reference_lang:
            continue
        for section in ("text", "chart"):
            theirs: dict[str, str] = getattr(reference, section)
            ours: dict[str, str] = getattr(data, section)
            for key, template in ours.items():
                if _fields(template) != _fields(theirs[key]):
                    raise KnowledgeError(
                        files[lang],
                        f"{section}.{key}",
                        f"placeholders {sorted(_fields(template))} differ from "
                        f"{reference_lang}.yaml's {sorted(_fields(theirs[key]))}",
                    )
    return {lang: ReportStrings(data) for lang, data in loaded.items()}


# --- text -----------------------------------------------------------------------------------


def share_labels(consenting: Collection[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Reps who opted in are shown by their id (with the channel when two channels share it)."""
    seen = Counter(user for _, user in consenting)
    return {
        (channel, user): user if seen[user] == 1 else f"{user} ({channel})" for channel, user in consenting
    }


def render_team_report(report: TeamReport, strings: ReportStrings) -> str:
    """Markdown-ish (**bold**, `- ` bullets), as channels and the terminal show it."""
    s = strings
    lines = [f"**{s.text('title')} · {s.period(report)}**"]
    if report.empty:
        lines.append(s.text("empty"))
        lines += _practice_lines(report, s)
        lines.append("")
        lines.append(f"_{s.text('anonymous')}_")
        return "\n".join(lines)
    lines.append(
        "- "
        + s.text(
            "counts",
            cards=report.cards,
            first=report.first_versions,
            rewrites=report.rewrites,
            reps=report.reps,
        )
    )
    lines.append(
        "- " + s.text("medians", first=s.number(report.median_first), rewrite=s.number(report.median_rewrite))
    )
    lines.append(
        "- "
        + s.text(
            "question_share",
            share=s.percent(report.question_share),
            ending=report.ending_with_question,
            conversations=report.conversations,
        )
    )
    lines += _practice_lines(report, s)
    if report.top_categories:
        lines += ["", f"**{s.text('categories_title')}**"]
        for stat in report.top_categories:
            lines.append(
                "- "
                + s.text(
                    "category_line",
                    category=s.category(stat.category),
                    count=stat.count,
                    share=s.percent(stat.share),
                    arrow=s.arrow(stat.trend),
                    trend=s.trend(stat.trend),
                    before=s.percent(stat.first_half_share),
                    after=s.percent(stat.second_half_share),
                )
            )
        lines.append(f"_{s.text('trend_note', points=TREND_POINTS)}_")
    lines += ["", f"**{s.text('weeks_title')}**"]
    for week in report.weeks:
        day = s.date(week.week_start, short=True)
        if week.cards == 0:
            lines.append("- " + s.text("week_empty", week=day))
            continue
        lines.append(
            "- "
            + s.text(
                "week_line",
                week=day,
                cards=week.cards,
                first=s.number(week.median_first),
                rewrite=s.number(week.median_rewrite),
                share=s.percent(week.question_share),
            )
        )
    if report.named_reps:
        lines += ["", f"**{s.text('reps_title')}**"]
        for rep in report.named_reps:
            lines.append(
                "- "
                + s.text(
                    "rep_line",
                    name=rep.label,
                    cards=rep.cards,
                    first=s.number(rep.median_first),
                    rewrite=s.number(rep.median_rewrite),
                )
            )
    lines += ["", f"_{s.text('anonymous')}_"]
    return "\n".join(lines)


def _practice_lines(report: TeamReport, s: ReportStrings) -> list[str]:
    """The practice figures, as a bullet; nothing when nobody practised in the period."""
    if not report.practice_sessions:
        return []
    if not report.practice_engaged:
        return ["- " + s.text("practice_never", sessions=report.practice_sessions, reps=report.practice_reps)]
    return [
        "- "
        + s.text(
            "practice",
            sessions=report.practice_sessions,
            reps=report.practice_reps,
            engaged=report.practice_engaged,
            turns=s.number(report.practice_median_turns),
        )
    ]
