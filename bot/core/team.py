"""Team coaching, the same in every channel: drills posted to a team chat (now or on a
schedule), each answer coached privately, an anonymous summary when the drill closes,
the onboarding path, consent and the privacy notice.

Channels only translate: they pass who spoke where (`IncomingMessage`), post the replies
they get (privately when `Reply.private`), and run `DrillClock` with a `TeamPoster` so
scheduled drills fire and open drills close. Everything that must survive a restart
(schedules, runs, answers, progress) is in the store before a reply is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import statistics
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.core.buyers import BuyerLibrary
from bot.core.coach import Coach
from bot.core.drills import Drill, DrillLibrary
from bot.core.errors import StoreUnavailable
from bot.core.models import Comparison, IncomingMessage, Reply, ReplyKind
from bot.core.onboarding import OnboardingPath, OnboardingStep, check_passed
from bot.core.ports import (
    CardRecord,
    ConversationState,
    ConversationStore,
    DrillAnswer,
    DrillRun,
    DrillSchedule,
    OnboardingProgress,
    TeamStore,
)
from bot.core.redact import redact
from bot.core.render import render_card, render_comparison
from bot.core.schedule import DayWords, ScheduleError, describe, next_fire, parse_schedule, zone
from bot.core.ui import UiStrings

_log = logging.getLogger("fournil.clock")
ONBOARDING_STAGE = "onboarding"
STRONG_EXAMPLE_SCORE = 70  # below this, an answer is not shown to the team as an example


# ASCII digits only: str.isdigit() also accepts "²" or "³", which int() refuses.
_NUMBER = re.compile(r"[0-9]+")

class TeamStorePort(ConversationStore, TeamStore, Protocol):
    """The store team coaching needs: conversations and cards, plus the team tables."""


ReportBuilder = Callable[[UiStrings, int, datetime], Awaitable[Reply]]


@dataclass(frozen=True)
class TeamConfig:
    """What a deployment decides: who manages, the team's clock, how long things last."""

    managers: frozenset[str] = frozenset()
    timezone: str = "UTC"
    drill_window: timedelta = timedelta(hours=24)
    retention: timedelta = timedelta(days=90)

    def is_manager(self, channel: str, user_id: str, platform_admin: bool = False) -> bool:
        """`FOURNIL_MANAGERS` entries are `channel:user` (`slack:U123`) or a bare user id."""
        return platform_admin or f"{channel}:{user_id}" in self.managers or user_id in self.managers


@dataclass
class TeamCoach:
    coach: Coach
    store: TeamStorePort
    drills: DrillLibrary
    onboarding: OnboardingPath
    config: TeamConfig = field(default_factory=TeamConfig)
    report: ReportBuilder | None = None
    rng: random.Random = field(default_factory=random.Random)
    # The practice buyers (prompts/buyers/): `/drill now ID practice` invites the team to
    # practise privately against the buyer of that drill.
    buyers: BuyerLibrary | None = None

    # ---- commands -------------------------------------------------------------------

    async def command(self, message: IncomingMessage, name: str, args: str, ui: UiStrings) -> Reply | None:
        """The team commands, by canonical name (`drill`, `report`, `onboard`, `privacy`,
        `share`); None for any other command, which the conversation flow handles."""
        if name == "privacy":
            days = max(1, self.config.retention.days)
            return _notice(ui, ui.text("team", "privacy", days=days))
        if name == "share":
            return await self._share(message, args, ui)
        if name == "onboard":
            return await self._onboard(message, args, ui)
        if name == "drill":
            return await self._drill(message, args, ui)
        if name == "report":
            return await self._report(message, args, ui)
        return None

    def _is_manager(self, message: IncomingMessage) -> bool:
        key = message.key
        return self.config.is_manager(key.channel, key.user_id, message.platform_admin)

    async def _share(self, message: IncomingMessage, args: str, ui: UiStrings) -> Reply:
        key = message.key
        choice = args.strip().lower()
        if choice in {"on", "yes", "oui"}:
            await self.store.set_share_consent(key.channel, key.user_id, True)
            return _notice(ui, ui.text("team", "share_on"))
        if choice in {"off", "no", "non"}:
            await self.store.set_share_consent(key.channel, key.user_id, False)
            return _notice(ui, ui.text("team", "share_off"))
        shared = await self.store.share_consent(key.channel, key.user_id)
        state = ui.text("team", "share_state_on" if shared else "share_state_off")
        return _notice(ui, ui.text("team", "share_status", state=state))

    async def _report(self, message: IncomingMessage, args: str, ui: UiStrings) -> Reply:
        if not self._is_manager(message):
            return _notice(ui, ui.text("team", "managers_only"))
        words = args.split()
        if words and not (_NUMBER.fullmatch(words[0]) and 1 <= int(words[0]) <= 366):
            return _notice(ui, ui.text("team", "report_usage"))
        days = int(words[0]) if words else 28
        if self.report is None:
            return _notice(ui, ui.text("team", "report_usage"))
        return await self.report(ui, days, _now())

    # ---- drills ---------------------------------------------------------------------

    async def _drill(self, message: IncomingMessage, args: str, ui: UiStrings) -> Reply:
        if not self._is_manager(message):
            return _notice(ui, ui.text("team", "managers_only"))
        words = args.split()
        verb = words[0].lower() if words else ""
        rest = " ".join(words[1:])
        if verb in {"ids", "list-drills"}:
            drills = self.drills.for_language(ui.lang)
            lines = [ui.text("team", "drill_ids", count=len(drills))]
            lines += [f"- {d.id} ({d.level}/3): {d.title}" for d in sorted(drills, key=lambda d: d.id)]
            return _notice(ui, "\n".join(lines))
        if verb in {"", "help", "aide"}:
            return _notice(ui, ui.text("team", "usage"))
        chat = message.chat_id
        if chat is None or not message.in_group:
            return _notice(ui, ui.text("team", "group_only"))
        channel = message.key.channel
        if verb in {"now", "maintenant"}:
            practice = self._practice_drill(words[1:], ui)
            if practice is not None:
                return practice
            started = await self.start_drill(channel, chat, message.key.user_id, ui.lang, rest or None)
            return started if isinstance(started, Reply) else started[1]
        if verb in {"list", "liste"}:
            return await self._schedules(channel, chat, ui)
        if verb in {"cancel", "annuler", "remove"}:
            return await self._cancel(channel, chat, rest, ui)
        if verb in {"close", "clore", "fermer"}:
            run = await self.store.latest_open_run(channel, chat)
            if run is None or run.id is None:
                return _notice(ui, ui.text("team", "no_open_drill"))
            summary = await self.close(run, _now())
            return summary or _notice(ui, ui.text("team", "no_open_drill"))
        return await self._schedule(message, chat, args, ui)

    def _practice_drill(self, words: list[str], ui: UiStrings) -> Reply | None:
        """`/drill now ID practice`: the drill's buyer and opener posted to the team with an
        invitation to practise privately (`Reply.practice`; channels add a button or a link
        to their DM). No run is opened: each member's practice is their own session, counted
        in the team report. None when the words do not ask for a practice drill."""
        aliases = {alias for u in self.coach.ui.values() for alias in u.data.commands.get("practice", [])}
        if len(words) != 2 or words[1].lower() not in aliases:
            return None
        name = words[0].strip().lower()
        sheet = self.buyers.find(name, ui.lang) if self.buyers is not None else None
        drill = self.drills.get(sheet.drill, ui.lang) if sheet is not None and sheet.drill else None
        if drill is None:
            sheets = self.buyers.for_language(ui.lang) if self.buyers is not None else []
            playable = {s.drill for s in sheets if s.drill and self.drills.get(s.drill, ui.lang)}
            ids = ", ".join(sorted(playable))
            return _notice(ui, ui.text("team", "practice_no_buyer", drill=words[0].strip(), ids=ids))
        return Reply(
            kind=ReplyKind.DRILL,
            language=ui.lang,
            text=render_practice_drill(drill, ui),
            practice=drill.id,
        )

    async def start_drill(
        self,
        channel: str,
        chat_id: str,
        opened_by: str,
        lang: str,
        drill_id: str | None = None,
        schedule_id: int | None = None,
        now: datetime | None = None,
    ) -> tuple[DrillRun, Reply] | Reply:
        """Opens a run and returns it with the post; or the reason it cannot (a Reply)."""
        ui = self.coach.strings(lang)
        now = now or _now()
        drill: Drill | None
        if drill_id:
            drill = self.drills.get(drill_id.strip().lower(), ui.lang)
            if drill is None:
                return _notice(ui, ui.text("team", "drill_unknown", drill=drill_id.strip()))
        else:
            recent = await self.store.recent_drill_ids(channel, chat_id)
            drill = self.drills.choose(ui.lang, self.rng, exclude=recent)
            if drill is None:
                return _notice(ui, ui.text("team", "no_drills"))
        run = await self.store.open_run(
            DrillRun(
                channel=channel,
                chat_id=chat_id,
                drill_id=drill.id,
                language=ui.lang,
                opened_by=opened_by,
                opened_at=now,
                closes_at=now + self.config.drill_window,
                schedule_id=schedule_id,
            )
        )
        closes = self._local_time(run.closes_at)
        reply = Reply(
            kind=ReplyKind.DRILL,
            language=ui.lang,
            text=render_drill(drill, ui, closes),
            drill_run=run.id,
        )
        return run, reply

    async def attach(self, run_id: int, message_ref: str) -> None:
        """The channel posted the drill: answers are replies to this message."""
        await self.store.set_run_message(run_id, message_ref)

    async def open_run_for(self, message: IncomingMessage) -> DrillRun | None:
        """The drill this message answers, if it replies to one posted in that chat."""
        if message.chat_id is None or message.reply_to is None:
            return None
        return await self.store.find_run(message.key.channel, message.chat_id, message.reply_to)

    async def answer(self, run: DrillRun, message: IncomingMessage, lang: str) -> Reply:
        """A member's answer, coached for them only: card, the comparison with the drill's
        weak opener, and what a good answer shows."""
        ui = self.coach.strings(lang)
        drill = self.drills.get(run.drill_id, ui.lang) or self.drills.get(run.drill_id, run.language)
        if run.closed_at is not None or drill is None or run.id is None:
            return Reply(
                kind=ReplyKind.NOTICE, language=ui.lang, text=ui.text("team", "drill_closed"), private=True
            )
        text = message.text
        comparison: Comparison | None = None
        if drill.opener:
            comparison = await asyncio.to_thread(self.coach.compare, drill.opener, text, ui.lang)
            card = comparison.after
            body = render_comparison(comparison, ui, invite_next=False)
        else:
            card = await asyncio.to_thread(self.coach.coach, text, ui.lang)
            body = render_card(card, ui, invite=False)
        key = message.key
        clean = await asyncio.to_thread(redact, text)  # CPU work stays off the event loop
        await self.store.save_answer(
            DrillAnswer(
                run_id=run.id,
                channel=key.channel,
                user_id=key.user_id,
                text=clean,
                score=card.score,
                categories=[str(c) for c in card.categories],
                has_question=card.ends_as_real_question,
            )
        )
        drill_key = key.model_copy(update={"conversation_id": f"drill:{run.id}"})
        await self.store.record_card(CardRecord.from_card(drill_key, card, is_rewrite=False))
        good = "\n".join(f"- {point}" for point in drill.good_answer)
        text_out = (
            f"_{ui.text('team', 'answer_intro', title=drill.title)}_\n\n{body}\n\n"
            f"**{ui.text('team', 'good_answer')}**\n{good}\n\n{ui.text('team', 'answer_again')}"
        )
        return Reply(
            kind=ReplyKind.COMPARISON if comparison else ReplyKind.CARD,
            language=card.language,
            text=text_out,
            card=card,
            comparison=comparison,
            private=True,
        )

    async def close(self, run: DrillRun, now: datetime) -> Reply | None:
        """Closes the run once (None if it was already closed) and returns its summary."""
        if run.id is None or not await self.store.close_run(run.id, now):
            return None
        return await self.summary(run)

    async def summary(self, run: DrillRun) -> Reply:
        """Anonymous: counts, the median score, the most common finding, and one strong
        answer only if its author agreed to be quoted (/share on)."""
        ui = self.coach.strings(run.language)
        drill = self.drills.get(run.drill_id, ui.lang)
        title = drill.title if drill else run.drill_id
        answers = await self.store.run_answers(run.id) if run.id is not None else []
        lines = [f"**{ui.text('team', 'summary_title', title=title)}**"]
        if not answers:
            lines.append(ui.text("team", "summary_none"))
            return Reply(kind=ReplyKind.SUMMARY, language=ui.lang, text="\n".join(lines))
        median = round(statistics.median(a.score for a in answers))
        counts = Counter(c for a in answers for c in a.categories)
        finding = (
            ui.category(counts.most_common(1)[0][0]) if counts else ui.text("team", "summary_no_finding")
        )
        lines.append(ui.text("team", "summary_counts", answered=len(answers), median=median, finding=finding))
        consenting = await self.store.consenting_users(run.channel)
        shareable = [
            a for a in answers if (a.channel, a.user_id) in consenting and a.score >= STRONG_EXAMPLE_SCORE
        ]
        if shareable:
            best = max(shareable, key=lambda a: a.score)
            lines += ["", ui.text("team", "summary_example"), f"> {_one_line(best.text)} ({best.score}/100)"]
        return Reply(kind=ReplyKind.SUMMARY, language=ui.lang, text="\n".join(lines))

    # ---- schedules ------------------------------------------------------------------

    def _day_words(self) -> list[DayWords]:
        return [
            DayWords(
                days=ui.data.schedule.days,
                every_day=ui.data.schedule.every_day,
                weekdays=ui.data.schedule.weekdays,
            )
            for ui in self.coach.ui.values()
        ]

    def _describe(self, schedule: DrillSchedule, ui: UiStrings) -> tuple[str, str]:
        words = ui.data.schedule
        when = describe(schedule.cron, words.day_names, words.every_day_name, words.weekdays_name)
        drill = schedule.drill_id or ui.text("team", "random_drill")
        return when, drill

    async def _schedule(self, message: IncomingMessage, chat: str, args: str, ui: UiStrings) -> Reply:
        now = _now()
        try:
            zone(self.config.timezone)
            parsed = parse_schedule(args, self._day_words())
        except ScheduleError as error:
            return _notice(ui, ui.text("team", f"error_{error.code}", timezone=self.config.timezone))
        drill_id = parsed.rest.split()[0].lower() if parsed.rest.split() else None
        if drill_id and self.drills.get(drill_id, ui.lang) is None:
            return _notice(ui, ui.text("team", "drill_unknown", drill=drill_id))
        schedule = await self.store.add_schedule(
            DrillSchedule(
                channel=message.key.channel,
                chat_id=chat,
                cron=parsed.cron,
                timezone=self.config.timezone,
                drill_id=drill_id,
                language=ui.lang,
                created_by=message.key.user_id,
                next_run_at=next_fire(parsed.cron, self.config.timezone, now),
            )
        )
        when, drill = self._describe(schedule, ui)
        return _notice(
            ui,
            ui.text(
                "team",
                "scheduled",
                drill=drill,
                when=when,
                timezone=schedule.timezone,
                first=self._local_time(schedule.next_run_at),
                id=schedule.id,
            ),
        )

    async def _schedules(self, channel: str, chat: str, ui: UiStrings) -> Reply:
        schedules = await self.store.schedules(channel, chat)
        if not schedules:
            return _notice(ui, ui.text("team", "schedules_none"))
        lines = [ui.text("team", "schedules_title")]
        for schedule in schedules:
            when, drill = self._describe(schedule, ui)
            lines.append(
                "- "
                + ui.text(
                    "team",
                    "schedule_line",
                    id=schedule.id,
                    drill=drill,
                    when=when,
                    timezone=schedule.timezone,
                    next=self._local_time(schedule.next_run_at),
                )
            )
        return _notice(ui, "\n".join(lines))

    async def _cancel(self, channel: str, chat: str, rest: str, ui: UiStrings) -> Reply:
        number = rest.strip().lstrip("#")
        if not _NUMBER.fullmatch(number) or len(number) > 9:
            return _notice(ui, ui.text("team", "usage"))
        if await self.store.remove_schedule(channel, chat, int(number)):
            return _notice(ui, ui.text("team", "cancelled", id=int(number)))
        return _notice(ui, ui.text("team", "cancel_unknown", id=int(number)))

    async def claim_due_schedules(self, channel: str, now: datetime) -> list[DrillSchedule]:
        """Schedules of this channel due now, each moved to its next occurrence first: the
        store's compare-and-set makes sure one process, once, posts each occurrence. A bot
        that was down for days posts once on return, not once per missed week."""
        claimed: list[DrillSchedule] = []
        for schedule in await self.store.due_schedules(now):
            if schedule.channel != channel or schedule.id is None:
                continue
            following = next_fire(schedule.cron, schedule.timezone, now)
            if await self.store.advance_schedule(schedule.id, schedule.next_run_at, following):
                claimed.append(schedule)
        return claimed

    async def claim_due_closures(self, channel: str, now: datetime) -> list[tuple[DrillRun, Reply]]:
        closed: list[tuple[DrillRun, Reply]] = []
        for run in await self.store.due_runs(now):
            if run.channel != channel:
                continue
            summary = await self.close(run, now)
            if summary is not None:
                closed.append((run, summary))
        return closed

    def post_failed(self, schedule: DrillSchedule) -> Reply:
        """For the manager, in private: their scheduled drill could not be posted."""
        ui = self.coach.strings(schedule.language)
        text = ui.text("team", "post_failed", chat=schedule.chat_id, id=schedule.id)
        return Reply(kind=ReplyKind.NOTICE, language=ui.lang, text=text, private=True)

    async def purge(self, now: datetime) -> int:
        return await self.store.purge_before(now - self.config.retention)

    def _local_time(self, moment: datetime) -> str:
        local = moment.astimezone(zone(self.config.timezone))
        return local.strftime("%Y-%m-%d %H:%M %Z")

    # ---- onboarding -----------------------------------------------------------------

    async def _onboard(self, message: IncomingMessage, args: str, ui: UiStrings) -> Reply:
        key = message.key
        steps = self.onboarding.steps(ui.lang)
        if not steps:
            return _notice(ui, ui.text("onboarding", "unavailable"))
        verb = args.strip().lower()
        if verb in {"status", "team", "équipe", "equipe"}:
            if not self._is_manager(message):
                return _notice(ui, ui.text("team", "managers_only"))
            return await self._onboarding_status(key.channel, ui)
        progress = await self.store.load_progress(key.channel, key.user_id)
        if verb in {"restart", "recommencer"} or progress is None:
            progress = OnboardingProgress(channel=key.channel, user_id=key.user_id, step=1, started_at=_now())
            await self.store.save_progress(progress)
            intro = ui.text("onboarding", "restarted" if verb else "start", steps=len(steps))
        elif progress.finished_at is not None:
            return _notice(ui, ui.text("onboarding", "already_finished"))
        else:
            intro = ""
        step = self.onboarding.step(progress.step, ui.lang)
        if step is None:
            return _notice(ui, ui.text("onboarding", "unavailable"))
        await self.store.save_conversation(
            ConversationState(key=key, stage=f"{ONBOARDING_STAGE}:{step.step}", language=ui.lang)
        )
        lesson = render_lesson(step, ui, len(steps))
        text = f"{intro}\n\n{lesson}" if intro else lesson
        return Reply(kind=ReplyKind.LESSON, language=ui.lang, text=text)

    async def onboarding_answer(self, state: ConversationState, text: str, lang: str) -> Reply:
        """The exercise of the current step: coached against the step's weak opener, and
        checked; a passed check moves the seller on, and progress is saved before replying."""
        key = state.key
        ui = self.coach.strings(lang)
        number = int(state.stage.split(":", 1)[1]) if ":" in state.stage else 1
        step = self.onboarding.step(number, ui.lang) or self.onboarding.step(number, state.language or lang)
        if step is None:
            await self.store.save_conversation(ConversationState(key=key))
            return _notice(ui, ui.text("onboarding", "unavailable"))
        comparison = await asyncio.to_thread(self.coach.compare, step.opener, text, ui.lang)
        card = comparison.after
        step_key = key.model_copy(update={"conversation_id": f"onboarding:{step.step}"})
        await self.store.record_card(CardRecord.from_card(step_key, card, is_rewrite=True))
        unmet = check_passed(
            step.check, card.score, [str(c) for c in card.categories], card.ends_as_real_question
        )
        body = render_comparison(comparison, ui, invite_next=False)
        if unmet:
            reasons = ", ".join(_reason(code, step, ui) for code in unmet)
            verdict = ui.text("onboarding", "failed", reasons=reasons)
        else:
            total = len(self.onboarding)
            progress = await self.store.load_progress(key.channel, key.user_id) or OnboardingProgress(
                channel=key.channel, user_id=key.user_id, started_at=_now()
            )
            passed = sorted({*progress.passed, step.step})
            finished = _now() if step.step >= total else None
            await self.store.save_progress(
                progress.model_copy(
                    update={"passed": passed, "step": min(step.step + 1, total), "finished_at": finished}
                )
            )
            await self.store.save_conversation(ConversationState(key=key))
            if finished is not None:
                verdict = ui.text("onboarding", "finished")
            else:
                verdict = ui.text("onboarding", "passed", step=step.step)
        return Reply(
            kind=ReplyKind.COMPARISON,
            language=card.language,
            text=f"{body}\n\n**{verdict}**",
            comparison=comparison,
            card=card,
        )

    async def _onboarding_status(self, channel: str, ui: UiStrings) -> Reply:
        everyone = await self.store.all_progress(channel)
        if not everyone:
            return _notice(ui, ui.text("onboarding", "status_none"))
        finished = [p for p in everyone if p.finished_at is not None]
        lines = [
            f"**{ui.text('onboarding', 'status_title')}**",
            ui.text("onboarding", "status_counts", started=len(everyone), finished=len(finished)),
        ]
        working = Counter(p.step for p in everyone if p.finished_at is None)
        lines += [ui.text("onboarding", "status_step", step=s, count=n) for s, n in sorted(working.items())]
        consenting = await self.store.consenting_users(channel)
        named = sorted(p.user_id for p in finished if (p.channel, p.user_id) in consenting)
        if named:
            lines.append(ui.text("onboarding", "status_named", names=", ".join(named)))
        return _notice(ui, "\n".join(lines))


class TeamPoster(Protocol):
    """What a channel offers the drill clock: post to a team chat, get the message id."""

    async def post(self, chat_id: str, reply: Reply) -> str | None: ...


@dataclass
class DrillClock:
    """Fires scheduled drills and closes open ones for one channel; ticks every
    `interval` seconds until stopped. Only the store decides who acts, so several
    replicas may run a clock each."""

    team: TeamCoach
    channel: str
    poster: TeamPoster
    interval: float = 30.0
    purge_every: timedelta = timedelta(hours=6)
    _last_purge: datetime | None = None

    async def tick(self, now: datetime | None = None) -> int:
        """One pass; returns how many posts were made."""
        now = now or _now()
        posts = 0
        for schedule in await self.team.claim_due_schedules(self.channel, now):
            started = await self.team.start_drill(
                schedule.channel,
                schedule.chat_id,
                schedule.created_by,
                schedule.language,
                schedule.drill_id,
                schedule_id=schedule.id,
                now=now,
            )
            if isinstance(started, Reply):  # the drill was removed from the files
                await self.poster.post(schedule.chat_id, started)
                continue
            run, reply = started
            ref = await self.poster.post(schedule.chat_id, reply)
            if run.id is None:
                continue
            if ref is None:  # removed from the chat, say: no orphan run, and tell the manager
                await self.team.store.close_run(run.id, now)
                if schedule.created_by:
                    await self.poster.post(schedule.created_by, self.team.post_failed(schedule))
                continue
            posts += 1
            await self.team.attach(run.id, ref)
        for run, summary in await self.team.claim_due_closures(self.channel, now):
            await self.poster.post(run.chat_id, summary)
            posts += 1
        if self._last_purge is None or now - self._last_purge >= self.purge_every:
            self._last_purge = now
            await self.team.purge(now)
        return posts

    @contextlib.asynccontextmanager
    async def running(self, stop_within: float = 10.0) -> AsyncIterator[DrillClock]:
        """Ticks in a task for as long as the block runs. On the way out (stop, Ctrl-C,
        cancellation) the tick in progress finishes, or is cancelled after `stop_within`
        seconds, and the task is awaited: nothing leaks."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop), name=f"fournil-{self.channel}-drill-clock")
        try:
            yield self
        finally:
            stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), stop_within)
            except TimeoutError:
                _log.warning(
                    "%s: the drill clock did not stop within %ss, cancelled", self.channel, stop_within
                )
            finally:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def run(self, stop: asyncio.Event) -> None:
        log = _log
        while not stop.is_set():
            try:
                await self.tick()
            except StoreUnavailable as exc:  # logged once per outage by the store; next tick tries again
                log.debug("drill clock: %s", exc)
            except Exception:  # a failed post must not stop next week's drill
                log.exception("drill clock tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)


def render_drill(drill: Drill, ui: UiStrings, closes: str) -> str:
    level = ui.text("team", "drill_level", level=drill.level)
    lines = [
        f"**{ui.text('team', 'drill_title', title=drill.title)}** ({level})",
        "",
        f"**{ui.text('team', 'drill_buyer')}:** {drill.buyer}",
        f"**{ui.text('team', 'drill_context')}:** {drill.context}",
    ]
    if drill.opener:
        lines.append(f"**{ui.text('team', 'drill_opener')}:** “{drill.opener}”")
    lines += [
        f"**{ui.text('team', 'drill_instruction')}:** {drill.instruction}",
        "",
        ui.text("team", "drill_how", closes=closes),
    ]
    return "\n".join(lines)


def render_practice_drill(drill: Drill, ui: UiStrings) -> str:
    """A practice drill's post: the buyer, the situation and the weak opener, then the
    invitation to practise the conversation after it, privately."""
    level = ui.text("team", "drill_level", level=drill.level)
    lines = [
        f"**{ui.text('team', 'drill_title', title=drill.title)}** ({level})",
        "",
        f"**{ui.text('team', 'drill_buyer')}:** {drill.buyer}",
        f"**{ui.text('team', 'drill_context')}:** {drill.context}",
    ]
    if drill.opener:
        lines.append(f"**{ui.text('team', 'drill_opener')}:** “{drill.opener}”")
    lines += ["", ui.text("team", "practice_drill_how", drill=drill.id)]
    return "\n".join(lines)


def render_lesson(step: OnboardingStep, ui: UiStrings, total: int) -> str:
    return "\n".join(
        [
            f"**{ui.text('onboarding', 'step_title', step=step.step, steps=total, title=step.title)}**",
            "",
            step.lesson.strip(),
            "",
            ui.text("onboarding", "read", principle=step.principle),
            "",
            f"**{ui.text('onboarding', 'exercise')}:** {step.exercise}",
            f"**{ui.text('onboarding', 'opener')}:** “{step.opener}”",
            "",
            ui.text("onboarding", "answer_how"),
        ]
    )


def _reason(code: str, step: OnboardingStep, ui: UiStrings) -> str:
    if code.startswith("avoid:"):
        return ui.text("onboarding", "reason_avoid", category=ui.category(code.split(":", 1)[1]))
    if code == "score":
        return ui.text("onboarding", "reason_score", min_score=step.check.min_score)
    return ui.text("onboarding", "reason_question")


def _notice(ui: UiStrings, text: str) -> Reply:
    return Reply(kind=ReplyKind.NOTICE, language=ui.lang, text=text)


def _one_line(text: str, limit: int = 400) -> str:
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _now() -> datetime:
    return datetime.now(UTC)
