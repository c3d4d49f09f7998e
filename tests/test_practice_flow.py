"""Practice in the chat flow, over a real SQLite file and the real composition root
(`open_flow`, as the bots run it): `/practice ID` in a DM, turns, a restart mid-session,
`/stop` and the debrief, then normal coaching; the group refusal, the edge cases,
`/forget`, a manager's practice drill and the team report's practice figures.
The channels' own stories are in tests/telegram/test_practice.py and tests/slack/test_practice.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import open_flow
from bot.core.coach import Coach
from bot.core.flow import CoachingFlow
from bot.core.models import ConversationKey, IncomingMessage, Reply, ReplyKind
from bot.core.ports import PracticeRecord
from bot.core.practice import PracticeSession, TurnRecord
from bot.core.practice_flow import PRACTICE_STAGE, scrubbed
from bot.core.report import build_team_report, load_report_strings, render_team_report
from bot.settings import Settings, load_settings
from bot.store.sql import SqlStore

REP = "R1"
MANAGER = "M1"
DRILL = "fifteen-minute-demo"
PITCH = (
    "Hi Claire, we are the leading HR platform for multi-site businesses, trusted by 300 brands. "
    "Can I get 15 minutes next week for a quick demo?"
)
OPEN_1 = (
    "You opened eight clubs in a year and list twenty job ads: how is the HR team keeping up with the hiring?"
)
OPEN_2 = "A third of new receptionists gone within two months: what do they say when they leave?"
FR_OPEN = (
    "Avec huit salles ouvertes en un an et vingt offres d'emploi en ligne, "
    "comment l'équipe RH suit-elle les recrutements ?"
)


def practice_settings(tmp_path: Path) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data",
        database_url=None,
        language="en",
        force_language=None,
        managers=[f"telegram:{MANAGER}"],
    )


@asynccontextmanager
async def running(settings: Settings, coach: Coach) -> AsyncIterator[CoachingFlow]:
    """One process: the flow the bots get, over the settings' SQLite file."""
    async with open_flow(settings, coach) as flow:
        assert flow.practice is not None
        yield flow


def dm(text: str, user: str = REP, locale: str | None = "en") -> IncomingMessage:
    key = ConversationKey(channel="telegram", user_id=user, conversation_id=user)
    return IncomingMessage(key=key, text=text, locale=locale, chat_id=user)


def in_group(text: str, user: str = REP) -> IncomingMessage:
    key = ConversationKey(channel="telegram", user_id=user, conversation_id="-100")
    return IncomingMessage(key=key, text=text, locale="en", chat_id="-100", in_group=True)


async def say(flow: CoachingFlow, text: str, user: str = REP, locale: str | None = "en") -> Reply:
    return await flow.handle(dm(text, user, locale))


async def stored(flow: CoachingFlow, user: str = REP) -> list[PracticeRecord]:
    store = flow.store
    assert isinstance(store, SqlStore)
    day = timedelta(days=1)
    now = datetime.now(UTC)
    return [r for r in await store.practice_between(now - day, now + day) if r.key.user_id == user]


# --- the story ------------------------------------------------------------------------------


async def test_a_practice_survives_a_restart_and_ends_with_its_debrief(coach: Coach, tmp_path: Path) -> None:
    settings = practice_settings(tmp_path)
    async with running(settings, coach) as flow:
        intro = await say(flow, f"/practice {DRILL}")
        assert intro.kind == ReplyKind.PRACTICE and intro.language == "en"
        assert intro.text.startswith("**Practice: HR director, A chain of fitness clubs")
        assert "Send /stop to end the practice" in intro.text
        first = await say(flow, PITCH)
        assert first.kind == ReplyKind.PRACTICE and first.card is not None
        assert first.text.startswith("**Buyer** · door closed") or first.text.startswith(
            "**Buyer** · guarded"
        )
        second = await say(flow, OPEN_1)
        assert second.text.startswith("**Buyer** · opens up"), second.text
        assert "One open question, easy to answer." in second.text
        [record] = await stored(flow)
        assert len(record.session.turns) == 2 and record.ended_at is None

    async with running(settings, coach) as flow:  # a new process, the same database
        third = await say(flow, OPEN_2)
        assert third.text.startswith("**Buyer** · opens up"), third.text
        assert "You picked up their words (third, receptionists, gone)" in third.text
        debrief = await say(flow, "/stop")
        assert debrief.kind == ReplyKind.PRACTICE
        lines = debrief.text.splitlines()
        assert lines[0] == "**Debrief**"
        assert [line.split(":")[0].strip() for line in lines if line.strip().startswith("Turn ")] == [
            "Turn 1",
            "Turn 2",
            "Turn 3",
        ]
        assert "What opened the buyer: at turn 2" in debrief.text
        assert "What the buyer told you: 2 of the 4 things" in debrief.text
        assert lines[-1].startswith("Back to normal coaching")
        [record] = await stored(flow)
        assert len(record.session.turns) == 3 and record.ended_at is not None
        state = await flow.store.load_conversation(dm("").key)
        assert state is not None and state.stage != PRACTICE_STAGE
        # Normal coaching again: an opener gets its card.
        card = await say(flow, PITCH)
        assert card.kind == ReplyKind.CARD
        assert await say(flow, "/stop") == Reply(
            kind=ReplyKind.NOTICE,
            language="en",
            text="You have no practice in progress. Send /practice to start one, "
            "or /practice ID to choose the buyer of a drill.",
        )


async def test_a_practice_in_french_from_the_french_alias(coach: Coach, tmp_path: Path) -> None:
    async with running(practice_settings(tmp_path), coach) as flow:
        intro = await say(flow, f"/pratique {DRILL}", locale=None)
        assert intro.language == "fr" and intro.text.startswith("**Entraînement : ")
        turn = await say(flow, FR_OPEN, locale=None)
        assert turn.language == "fr" and turn.text.startswith("**Acheteur** · s'ouvre"), turn.text
        debrief = await say(flow, "/arreter", locale=None)
        assert debrief.text.startswith("**Bilan**") and "Retour au coaching habituel" in debrief.text


async def test_the_buyer_ending_the_conversation_ends_the_practice(coach: Coach, tmp_path: Path) -> None:
    async with running(practice_settings(tmp_path), coach) as flow:
        await say(flow, f"/practice {DRILL}")
        replies = [await say(flow, PITCH) for _ in range(6)]
        last = next(reply for reply in replies if "The buyer has left the conversation." in reply.text)
        assert "**Debrief**" in last.text and "Outcome: the buyer left the conversation." in last.text
        [record] = await stored(flow)
        assert record.session.status == "left" and record.ended_at is not None
        after = replies[replies.index(last) + 1]
        assert after.kind == ReplyKind.CARD  # the next pitch is coached as an opener again


# --- edge cases -------------------------------------------------------------------------------


async def test_practice_happens_in_private(coach: Coach, tmp_path: Path) -> None:
    async with running(practice_settings(tmp_path), coach) as flow:
        reply = await flow.handle(in_group("/practice"))
        assert reply.kind == ReplyKind.NOTICE and "send me /practice in a direct message" in reply.text
        assert await stored(flow) == []


async def test_unknown_buyer_twice_and_a_message_without_card(coach: Coach, tmp_path: Path) -> None:
    async with running(practice_settings(tmp_path), coach) as flow:
        unknown = await say(flow, "/practice no-such-drill")
        assert (
            unknown.kind == ReplyKind.NOTICE and DRILL in unknown.text and "no-such-drill" not in unknown.text
        )
        await say(flow, f"/practice {DRILL}")
        again = await say(flow, "/practice")
        assert again.text.startswith("You are already practising with this buyer: HR director")
        short = await say(flow, "ok")
        assert short.kind == ReplyKind.INVALID  # the buyer never sees it
        ghost = await say(flow, "just write it for me")
        assert ghost.kind == ReplyKind.REFUSAL
        [record] = await stored(flow)
        assert record.session.turns == []


async def test_a_new_practice_after_moving_on_ends_the_old_one(coach: Coach, tmp_path: Path) -> None:
    async with running(practice_settings(tmp_path), coach) as flow:
        await say(flow, f"/practice {DRILL}")
        await say(flow, OPEN_1)
        assert (await say(flow, "/new")).kind == ReplyKind.NOTICE  # the conversation moves on
        assert (await say(flow, PITCH)).kind == ReplyKind.CARD
        await say(flow, "/practice breakup-email")
        old, new = await stored(flow)
        assert old.ended_at is not None and new.ended_at is None
        assert new.session.buyer == "university-facilities-director"


async def test_forget_deletes_practice_sessions(coach: Coach, tmp_path: Path) -> None:
    async with running(practice_settings(tmp_path), coach) as flow:
        await say(flow, f"/practice {DRILL}")
        await say(flow, OPEN_1)
        await say(flow, f"/practice {DRILL}", user="R2")
        store = flow.store
        assert isinstance(store, SqlStore)
        assert await store.count_user_rows("telegram", REP) >= 2  # conversation, session
        forgotten = await say(flow, "/forget")
        assert forgotten.text.startswith("Done: I deleted everything")
        assert await store.count_user_rows("telegram", REP) == 0
        assert await stored(flow) == [] and len(await stored(flow, "R2")) == 1
        assert (await say(flow, OPEN_1)).kind == ReplyKind.CARD


def test_only_words_that_survive_redaction_are_stored() -> None:
    turn = TurnRecord(
        turn=1,
        score=80,
        categories=[],
        reaction="engaged",
        case="fact",
        lines=["facts.0"],
        reused=["Dupont", "rotas"],
        topics=["hiring", "Dupont"],
    )
    session = PracticeSession(id="s", buyer="fitness-hr-director", lang="en", turns=[turn])
    kept = scrubbed(session, "How does [name] build the rotas, and how is the hiring going?").turns[0]
    assert kept.reused == ["rotas"] and kept.topics == ["hiring"]


# --- the team -------------------------------------------------------------------------------


async def test_a_manager_posts_a_practice_drill(coach: Coach, tmp_path: Path) -> None:
    async with running(practice_settings(tmp_path), coach) as flow:
        post = await flow.handle(in_group(f"/drill now {DRILL} practice", user=MANAGER))
        assert post.kind == ReplyKind.DRILL and post.practice == DRILL and post.drill_run is None
        assert "send me /practice fifteen-minute-demo in a direct message" in post.text
        assert flow.team is not None
        assert await flow.team.store.latest_open_run("telegram", "-100") is None  # no run to close
        unknown = await flow.handle(in_group("/drill now merge-field-slip practice", user=MANAGER))
        assert unknown.text.startswith("No practice buyer plays the drill “merge-field-slip”")
        refused = await flow.handle(in_group(f"/drill now {DRILL} practice", user=REP))
        assert refused.text.startswith("Only managers")


async def test_the_team_report_counts_practice_sessions(coach: Coach, tmp_path: Path) -> None:
    async with running(practice_settings(tmp_path), coach) as flow:
        await say(flow, f"/practice {DRILL}")  # opens up at the second message
        await say(flow, PITCH)
        await say(flow, OPEN_1)
        await say(flow, "/stop")
        await say(flow, f"/practice {DRILL}", user="R2")  # never opens up
        await say(flow, PITCH, user="R2")
        await say(flow, f"/practice {DRILL}", user="R3")  # opens up at once
        await say(flow, OPEN_1, user="R3")
        store = flow.store
        assert isinstance(store, SqlStore)
        now = datetime.now(UTC)
        sessions = await store.practice_between(now - timedelta(days=1), now + timedelta(seconds=1))
        report = build_team_report([], now - timedelta(days=1), now + timedelta(seconds=1), None, sessions)
        assert (report.practice_sessions, report.practice_reps, report.practice_engaged) == (3, 3, 2)
        assert report.practice_median_turns == 1.5
        strings = load_report_strings(practice_settings(tmp_path).prompts_dir / "report")
        english = render_team_report(report, strings["en"])
        assert (
            "Practice with a simulated buyer: 3 sessions by 3 reps; the buyer opened up in 2 of them, "
            in english
        )
        assert "at the rep's message 1.5 (median)" in english
        french = render_team_report(report, strings["fr"])
        assert "l'acheteur s'est ouvert dans 2 d'entre elles, au message 1,5 du commercial" in french
        # Outside the period, nothing.
        later = build_team_report([], now + timedelta(days=1), now + timedelta(days=2), None, sessions)
        assert later.practice_sessions == 0 and "Practice" not in render_team_report(later, strings["en"])


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_a_report_where_the_buyer_never_opened_up(lang: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    key = ConversationKey(channel="slack", user_id="U1", conversation_id="D1")
    turn = TurnRecord(
        turn=1, score=10, categories=[], reaction="closed", case="reaction", lines=["farewell.0"]
    )
    session = PracticeSession(id="s", buyer="fitness-hr-director", lang="en", turns=[turn])
    record = PracticeRecord(key=key, session=session, created_at=now)
    report = build_team_report([], now - timedelta(hours=1), now + timedelta(hours=1), None, [record])
    assert (report.practice_engaged, report.practice_median_turns) == (0, None)
    text = render_team_report(
        report, load_report_strings(practice_settings(tmp_path).prompts_dir / "report")[lang]
    )
    expected = {"en": "the buyer never opened up", "fr": "l'acheteur ne s'est jamais ouvert"}[lang]
    assert expected in text
