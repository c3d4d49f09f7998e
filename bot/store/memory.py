"""A process-local store for one-shot commands (`fournil coach`), where nothing is kept.

It implements the same ports as `SqlStore` (conversations and team data), with the same
answers, so code paths and tests can use either; races are trivially won here, as a single
event loop runs every call to completion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.delivery import CLAIM_LEASE_SECONDS, current_event, replica_name
from bot.core.models import ConversationKey
from bot.core.ports import (
    CardRecord,
    ConversationState,
    DrillAnswer,
    DrillRun,
    DrillSchedule,
    OnboardingProgress,
    PracticeRecord,
)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _EventClaim:
    """A row of `processed_events`: who claimed the event last, when, and when it was done."""

    created_at: datetime
    claimant: str
    claimed_at: datetime
    done_at: datetime | None = None


class MemoryStore:
    def __init__(self, claim_lease: float = CLAIM_LEASE_SECONDS) -> None:
        self.claim_lease = claim_lease
        self.owner = replica_name()
        self._conversations: dict[ConversationKey, ConversationState] = {}
        self._languages: dict[tuple[str, str], str | None] = {}
        self._consent: dict[tuple[str, str], bool] = {}
        self.cards: list[CardRecord] = []
        self._events: dict[tuple[str, str], _EventClaim] = {}
        # What the work on a claimed event wrote (SqlStore's event_id and state_before
        # columns): the event that saved a conversation last and the state before it, and
        # the cards each event recorded. A take-over rolls them back.
        self._saved_by: dict[ConversationKey, tuple[str, ConversationState | None]] = {}
        self._cards_by: dict[tuple[str, str], list[CardRecord]] = {}
        self._schedules: dict[int, DrillSchedule] = {}
        self._runs: dict[int, DrillRun] = {}
        self._answers: dict[tuple[int, str, str], DrillAnswer] = {}
        self._progress: dict[tuple[str, str], OnboardingProgress] = {}
        self._practice: dict[str, PracticeRecord] = {}  # by session id, in insertion order
        self._next_id = 0

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # --- ConversationStore -------------------------------------------------------------

    async def load_conversation(self, key: ConversationKey) -> ConversationState | None:
        return self._conversations.get(key)

    async def save_conversation(self, state: ConversationState) -> None:
        key, event = state.key, current_event(state.key.channel)
        if event is None:
            self._saved_by.pop(key, None)
        elif (saved := self._saved_by.get(key)) is None or saved[0] != event:
            self._saved_by[key] = (event, self._conversations.get(key))
        self._conversations[key] = state.model_copy(update={"updated_at": _now()})

    async def record_card(self, record: CardRecord) -> None:
        if record.created_at is None:
            record = record.model_copy(update={"created_at": _now()})
        self.cards.append(record)
        event = current_event(record.key.channel)
        if event is not None:
            self._cards_by.setdefault((record.key.channel, event), []).append(record)

    async def language_preference(self, channel: str, user_id: str) -> str | None:
        return self._languages.get((channel, user_id))

    async def set_language_preference(self, channel: str, user_id: str, language: str | None) -> None:
        self._languages[(channel, user_id)] = language

    async def claim_event(self, channel: str, event_id: str, now: datetime | None = None) -> bool:
        now = now or _now()
        claim = self._events.get((channel, event_id))
        if claim is None:
            self._events[(channel, event_id)] = _EventClaim(now, self.owner, now)
            return True
        if claim.done_at is not None or claim.claimed_at >= now - timedelta(seconds=self.claim_lease):
            return False
        claim.claimant, claim.claimed_at = self.owner, now  # the lease ran out: taken over
        self._roll_back(channel, event_id)
        return True

    def _roll_back(self, channel: str, event_id: str) -> None:
        """What the dead claimant's work on the event wrote is undone (SqlStore._roll_back)."""
        undone = self._cards_by.pop((channel, event_id), [])
        self.cards = [c for c in self.cards if not any(c is card for card in undone)]
        for key, (event, before) in list(self._saved_by.items()):
            if key.channel == channel and event == event_id:
                del self._saved_by[key]
                if before is None:
                    self._conversations.pop(key, None)
                else:
                    self._conversations[key] = before

    async def finish_event(self, channel: str, event_id: str, now: datetime | None = None) -> None:
        claim = self._events.get((channel, event_id))
        if claim is not None and claim.done_at is None:
            claim.done_at = now or _now()

    async def event_done(self, channel: str, event_id: str) -> bool:
        claim = self._events.get((channel, event_id))
        return claim is not None and claim.done_at is not None

    async def recent_cards(self, channel: str, user_id: str, limit: int = 10) -> list[CardRecord]:
        mine = [c for c in self.cards if (c.key.channel, c.key.user_id) == (channel, user_id)]
        return list(reversed(mine))[:limit]

    async def forget_user(self, channel: str, user_id: str) -> int:
        if not user_id:
            return 0
        who = (channel, user_id)
        keys = [k for k in self._conversations if (k.channel, k.user_id) == who]
        for key in keys:
            del self._conversations[key]
            self._saved_by.pop(key, None)
        before = len(self.cards)
        self.cards = [c for c in self.cards if (c.key.channel, c.key.user_id) != who]
        self._keep_cards_by()
        changed = len(keys) + before - len(self.cards)
        user = who in self._languages or who in self._consent
        self._languages.pop(who, None)
        self._consent.pop(who, None)
        answers = [k for k in self._answers if (k[1], k[2]) == who]
        for answer_key in answers:
            del self._answers[answer_key]
        progress = self._progress.pop(who, None) is not None
        practice = [i for i, r in self._practice.items() if (r.key.channel, r.key.user_id) == who]
        for session_id in practice:
            del self._practice[session_id]
        changed += int(user) + len(answers) + int(progress) + len(practice)
        for schedule_id, schedule in self._schedules.items():
            if (schedule.channel, schedule.created_by) == who:
                self._schedules[schedule_id] = schedule.model_copy(update={"created_by": ""})
                changed += 1
        for run_id, run in self._runs.items():
            if (run.channel, run.opened_by) == who:
                self._runs[run_id] = run.model_copy(update={"opened_by": ""})
                changed += 1
        return changed

    def _keep_cards_by(self) -> None:
        """Forgets the event tags of cards no longer kept."""
        kept = {id(card) for card in self.cards}
        self._cards_by = {
            event: alive
            for event, cards in self._cards_by.items()
            if (alive := [card for card in cards if id(card) in kept])
        }

    async def count_user_rows(self, channel: str, user_id: str) -> int:
        """Records that still name a user (the same count as `SqlStore.count_user_rows`)."""
        who = (channel, user_id)
        return (
            sum((k.channel, k.user_id) == who for k in self._conversations)
            + int(who in self._languages or who in self._consent)
            + sum((c.key.channel, c.key.user_id) == who for c in self.cards)
            + sum((k[1], k[2]) == who for k in self._answers)
            + int(who in self._progress)
            + sum((r.key.channel, r.key.user_id) == who for r in self._practice.values())
            + sum((s.channel, s.created_by) == who for s in self._schedules.values())
            + sum((r.channel, r.opened_by) == who for r in self._runs.values())
        )

    # --- TeamStore: schedules ----------------------------------------------------------

    async def add_schedule(self, schedule: DrillSchedule) -> DrillSchedule:
        stored = schedule.model_copy(update={"id": self._new_id()})
        assert stored.id is not None
        self._schedules[stored.id] = stored
        return stored

    async def schedules(self, channel: str, chat_id: str) -> list[DrillSchedule]:
        return [s for _, s in sorted(self._schedules.items()) if (s.channel, s.chat_id) == (channel, chat_id)]

    async def remove_schedule(self, channel: str, chat_id: str, schedule_id: int) -> bool:
        schedule = self._schedules.get(schedule_id)
        if schedule is None or (schedule.channel, schedule.chat_id) != (channel, chat_id):
            return False
        del self._schedules[schedule_id]
        return True

    async def due_schedules(self, now: datetime) -> list[DrillSchedule]:
        due = [s for s in self._schedules.values() if s.next_run_at <= now]
        return sorted(due, key=lambda s: (s.next_run_at, s.id or 0))

    async def advance_schedule(self, schedule_id: int, expected: datetime, next_run_at: datetime) -> bool:
        schedule = self._schedules.get(schedule_id)
        if schedule is None or schedule.next_run_at != expected:
            return False
        self._schedules[schedule_id] = schedule.model_copy(update={"next_run_at": next_run_at})
        return True

    # --- TeamStore: runs and answers ---------------------------------------------------

    async def open_run(self, run: DrillRun) -> DrillRun:
        stored = run.model_copy(update={"id": self._new_id()})
        assert stored.id is not None
        self._runs[stored.id] = stored
        return stored

    async def set_run_message(self, run_id: int, message_ref: str) -> None:
        run = self._runs.get(run_id)
        if run is not None:
            self._runs[run_id] = run.model_copy(update={"message_ref": message_ref})

    def _chat_runs(self, channel: str, chat_id: str) -> list[DrillRun]:
        """The chat's runs, newest first."""
        runs = [r for r in self._runs.values() if (r.channel, r.chat_id) == (channel, chat_id)]
        return sorted(runs, key=lambda r: (r.opened_at, r.id or 0), reverse=True)

    async def find_run(self, channel: str, chat_id: str, message_ref: str) -> DrillRun | None:
        runs = [
            r
            for r in self._runs.values()
            if (r.channel, r.chat_id, r.message_ref) == (channel, chat_id, message_ref)
        ]
        return max(runs, key=lambda r: r.id or 0, default=None)

    async def latest_open_run(self, channel: str, chat_id: str) -> DrillRun | None:
        return next((r for r in self._chat_runs(channel, chat_id) if r.closed_at is None), None)

    async def due_runs(self, now: datetime) -> list[DrillRun]:
        due = [r for r in self._runs.values() if r.closed_at is None and r.closes_at <= now]
        return sorted(due, key=lambda r: (r.closes_at, r.id or 0))

    async def close_run(self, run_id: int, now: datetime) -> bool:
        run = self._runs.get(run_id)
        if run is None or run.closed_at is not None:
            return False
        self._runs[run_id] = run.model_copy(update={"closed_at": now})
        return True

    async def recent_drill_ids(self, channel: str, chat_id: str, limit: int = 10) -> list[str]:
        return [r.drill_id for r in self._chat_runs(channel, chat_id)[:limit]]

    async def save_answer(self, answer: DrillAnswer) -> None:
        if answer.created_at is None:
            answer = answer.model_copy(update={"created_at": _now()})
        self._answers[(answer.run_id, answer.channel, answer.user_id)] = answer

    async def run_answers(self, run_id: int) -> list[DrillAnswer]:
        answers = [a for (run, _, _), a in self._answers.items() if run == run_id]
        return sorted(answers, key=lambda a: a.created_at or _now())

    # --- TeamStore: onboarding and consent ---------------------------------------------

    async def load_progress(self, channel: str, user_id: str) -> OnboardingProgress | None:
        return self._progress.get((channel, user_id))

    async def save_progress(self, progress: OnboardingProgress) -> None:
        key = (progress.channel, progress.user_id)
        if progress.started_at is None:
            previous = self._progress.get(key)
            started = previous.started_at if previous is not None else _now()
            progress = progress.model_copy(update={"started_at": started})
        self._progress[key] = progress.model_copy(update={"passed": list(progress.passed)})

    async def all_progress(self, channel: str) -> list[OnboardingProgress]:
        mine = [p for p in self._progress.values() if p.channel == channel]
        return sorted(mine, key=lambda p: (p.started_at or _now(), p.user_id))

    async def share_consent(self, channel: str, user_id: str) -> bool:
        return self._consent.get((channel, user_id), False)

    async def set_share_consent(self, channel: str, user_id: str, share: bool) -> None:
        self._consent[(channel, user_id)] = share

    async def consenting_users(self, channel: str | None = None) -> set[tuple[str, str]]:
        return {who for who, share in self._consent.items() if share and channel in (None, who[0])}

    # --- TeamStore: team figures and retention -----------------------------------------

    async def cards_between(
        self, since: datetime, until: datetime, channel: str | None = None
    ) -> list[CardRecord]:
        """Cards made in [since, until), oldest first."""
        found = [
            c
            for c in self.cards
            if c.created_at is not None and since <= c.created_at < until and channel in (None, c.key.channel)
        ]
        return sorted(found, key=lambda c: c.created_at or since)

    async def purge_before(self, cutoff: datetime) -> int:
        old_conversations = [
            k for k, s in self._conversations.items() if s.updated_at is not None and s.updated_at < cutoff
        ]
        for key in old_conversations:
            del self._conversations[key]
            self._saved_by.pop(key, None)
        before = len(self.cards)
        self.cards = [c for c in self.cards if c.created_at is None or c.created_at >= cutoff]
        self._keep_cards_by()
        old_answers = [
            k for k, a in self._answers.items() if a.created_at is not None and a.created_at < cutoff
        ]
        for answer_key in old_answers:
            del self._answers[answer_key]
        old_events = [k for k, claim in self._events.items() if claim.created_at < cutoff]
        for event_key in old_events:
            del self._events[event_key]
        old_practice = [
            i for i, r in self._practice.items() if r.updated_at is not None and r.updated_at < cutoff
        ]
        for session_id in old_practice:
            del self._practice[session_id]
        return (
            len(old_conversations)
            + before
            - len(self.cards)
            + len(old_answers)
            + len(old_events)
            + len(old_practice)
        )

    # --- PracticeStore -------------------------------------------------------------------

    async def save_practice(self, record: PracticeRecord) -> None:
        now = _now()
        previous = self._practice.get(record.session.id)
        created = record.created_at or (previous.created_at if previous is not None else None) or now
        key = previous.key if previous is not None else record.key
        self._practice[record.session.id] = record.model_copy(
            update={"key": key, "created_at": created, "updated_at": now}
        )

    async def open_practice(self, key: ConversationKey) -> PracticeRecord | None:
        mine = [r for r in self._practice.values() if r.key == key and r.ended_at is None]
        return max(mine, key=lambda r: r.created_at or _now(), default=None)

    async def practice_between(
        self, since: datetime, until: datetime, channel: str | None = None
    ) -> list[PracticeRecord]:
        found = [
            r
            for r in self._practice.values()
            if r.created_at is not None and since <= r.created_at < until and channel in (None, r.key.channel)
        ]
        return sorted(found, key=lambda r: r.created_at or since)
