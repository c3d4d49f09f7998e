"""When a recurring drill fires: a manager's words ("every monday at 9:30", "lundi 9h30",
"weekdays 8:45") become a crontab, read in the team's time zone.

Managers type schedules in a chat, so the grammar is forgiving and bilingual; the day
words live in the UI files (`schedule` section), so a new language is a data change.
Next fire times come from APScheduler's cron trigger (already shipped with
python-telegram-bot's job queue) rather than hand-written calendar arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(
    r"\b(?:at\s+|à\s+|a\s+)?([01]?\d|2[0-3])\s*(?::|h)\s*([0-5]\d)?\b|\b([01]?\d|2[0-3])\s*h\b"
)
_CRON = re.compile(r"^\s*((?:[\d*/,\-]+|\w{3}(?:-\w{3})?(?:,\w{3})*)\s+){4}[\w*/,\-]+\s*$")


class ScheduleError(ValueError):
    """The schedule cannot be understood; `code` picks the explanation shown to the manager."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class DayWords:
    """How one language names the days: `days` maps a DAY_CODES entry to its words;
    `every_day` and `weekdays` are words for "daily" and "Monday to Friday"."""

    days: Mapping[str, Sequence[str]]
    every_day: Sequence[str]
    weekdays: Sequence[str]


@dataclass(frozen=True)
class ParsedSchedule:
    cron: str  # 5-field crontab: minute hour day month weekday
    rest: str  # what followed the schedule (a drill id, say)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError("timezone") from None


def parse_schedule(text: str, words: Sequence[DayWords]) -> ParsedSchedule:
    """A crontab from the manager's words; raises ScheduleError("day"|"time"|"cron")."""
    tokens = text.split()
    if len(tokens) >= 5 and _CRON.match(" ".join(tokens[:5])):
        cron = " ".join(tokens[:5])
        try:
            CronTrigger.from_crontab(cron, timezone=UTC)
        except ValueError:
            raise ScheduleError("cron") from None
        return ParsedSchedule(cron=cron, rest=" ".join(tokens[5:]))
    lowered = text.lower()
    time_match = _TIME.search(lowered)
    if time_match is None:
        raise ScheduleError("time")
    hour = int(time_match.group(1) or time_match.group(3))
    minute = int(time_match.group(2) or 0)
    head = lowered[: time_match.start()]
    days = _days(head, words)
    if not days:
        raise ScheduleError("day")
    rest = text[time_match.end() :].strip()
    return ParsedSchedule(cron=f"{minute} {hour} * * {days}", rest=rest)


def _days(text: str, words: Sequence[DayWords]) -> str:
    found: list[str] = []
    for language in words:
        if any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text) for w in language.every_day):
            return "*"
        if any(re.search(rf"(?<!\w){re.escape(w)}(?!\w)", text) for w in language.weekdays):
            return "mon-fri"
        for code in DAY_CODES:
            names = language.days.get(code, ())
            if code not in found and any(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", text) for n in names):
                found.append(code)
    return ",".join(sorted(found, key=DAY_CODES.index))


def next_fire(cron: str, timezone: str, after: datetime) -> datetime:
    """The first occurrence strictly after `after`, in UTC."""
    tz = zone(timezone)
    trigger = CronTrigger.from_crontab(cron, timezone=tz)
    # The trigger answers "at or after now", with whole seconds: step past `after`.
    start = after.astimezone(tz).replace(microsecond=0) + timedelta(seconds=1)
    fire: datetime | None = trigger.get_next_fire_time(None, start)
    if fire is None:  # a crontab always fires again; guard against a malformed trigger
        raise ScheduleError("cron")
    return fire.astimezone(UTC)


def describe(cron: str, day_names: Mapping[str, str], every_day: str, weekdays: str) -> str:
    """A crontab made by `parse_schedule`, back in words ("mon, thu 09:30")."""
    minute, hour, _, _, days = cron.split()[:5]
    if not (minute.isascii() and minute.isdigit() and hour.isascii() and hour.isdigit()):
        return cron
    when = f"{int(hour):02d}:{int(minute):02d}"
    if days == "*":
        return f"{every_day} {when}"
    if days == "mon-fri":
        return f"{weekdays} {when}"
    names = [day_names.get(code, code) for code in days.split(",")]
    return f"{', '.join(names)} {when}"
