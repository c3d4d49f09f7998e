"""Practice on Telegram, end to end: the real python-telegram-bot `Application` over real
HTTP against the stub Bot API, a real SQLite store. The rep's story in a DM (start, two
turns, the bot restarted on the same database mid-session, a third turn, /stop and the
debrief, then normal coaching), the group's pointer to the DM, the deep link, a manager's
practice drill and /forget.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.channels.telegram.texts import default_telegram_strings
from bot.core.coach import Coach
from bot.core.models import ConversationKey
from bot.settings import Settings
from bot.store.sql import SqlStore
from tests.telegram.botapi_stub import BOT_USERNAME, BotApiStub, Call
from tests.telegram.conftest import RunningBot, bot_settings, running_bot
from tests.telegram.samples import SCORE

GROUP = -100_888
MANAGER = 401
REP = 411
DRILL = "fifteen-minute-demo"
PITCH = (
    "Hi Claire, we are the leading HR platform for multi-site businesses, trusted by 300 brands. "
    "Can I get 15 minutes next week for a quick demo?"
)
OPEN_1 = (
    "You opened eight clubs in a year and list twenty job ads: how is the HR team keeping up with the hiring?"
)
OPEN_2 = "A third of new receptionists gone within two months: what do they say when they leave?"


def practice_settings(stub: BotApiStub, tmp_path: Path) -> Settings:
    return bot_settings(stub, tmp_path / "data", managers=[f"telegram:{MANAGER}"], clock_seconds=3600.0)


async def exchange(stub: BotApiStub, update: dict[str, object], chat_id: int) -> Call:
    mark = stub.mark()
    stub.push(update)
    [sent] = await stub.wait_for("sendMessage", after=mark, chat_id=chat_id)
    return sent


def store_of(bot: RunningBot) -> SqlStore:
    assert isinstance(bot.flow.store, SqlStore)
    return bot.flow.store


async def sessions_of(bot: RunningBot, user: int) -> int:
    now = datetime.now(UTC)
    found = await store_of(bot).practice_between(now - timedelta(days=1), now + timedelta(days=1))
    return sum(record.key.user_id == str(user) for record in found)


async def test_a_practice_in_the_dm_survives_a_restart(
    stub: BotApiStub, coach: Coach, tmp_path: Path
) -> None:
    settings = practice_settings(stub, tmp_path)
    async with running_bot(stub, settings, coach):
        intro = await exchange(stub, stub.private(REP, f"/practice {DRILL}"), REP)
        assert intro.shown.startswith("Practice: HR director, A chain of fitness clubs"), intro.shown
        assert "<b>Practice: HR director" in intro.text and "/stop" in intro.shown
        first = await exchange(stub, stub.private(REP, PITCH), REP)
        assert first.shown.startswith("Buyer · ") and "opens up" not in first.shown.splitlines()[0]
        assert "<blockquote>" in first.text and not first.buttons
        second = await exchange(stub, stub.private(REP, OPEN_1), REP)
        assert second.shown.startswith("Buyer · opens up"), second.shown

    async with running_bot(stub, settings, coach) as bot:  # a new process, the same database
        third = await exchange(stub, stub.private(REP, OPEN_2), REP)
        assert third.shown.startswith("Buyer · opens up"), third.shown
        assert "You picked up their words (third, receptionists, gone)" in third.shown
        debrief = await exchange(stub, stub.private(REP, "/stop"), REP)
        assert debrief.shown.startswith("Debrief")
        for turn in ("Turn 1: ", "Turn 2: ", "Turn 3: "):
            assert turn in debrief.shown
        assert "What opened the buyer: at turn 2" in debrief.shown
        assert debrief.shown.rstrip().endswith("or send /practice for another round.")
        card = await exchange(stub, stub.private(REP, PITCH), REP)  # normal coaching again
        assert SCORE.search(card.shown) and "Conversation score" in card.shown
        assert await sessions_of(bot, REP) == 1


async def test_practice_in_a_group_points_to_the_dm_and_its_link_starts_it(
    stub: BotApiStub, coach: Coach, tmp_path: Path
) -> None:
    async with running_bot(stub, practice_settings(stub, tmp_path), coach) as bot:
        asked = stub.message(GROUP, REP, "/practice", language_code="fr")
        note = await exchange(stub, asked, GROUP)
        link = f"https://t.me/{BOT_USERNAME}?start=practice"
        assert note.shown == default_telegram_strings()["fr"].practice_private.format(link=link)
        assert note.params["reply_parameters"]["message_id"] == asked["message"]["message_id"]
        assert await sessions_of(bot, REP) == 0
        # A bare /stop in the group is left to other bots: the next answer there is the
        # one to the message after it (a chat's updates are handled in order).
        mark = stub.mark()
        stub.push(stub.message(GROUP, REP, "/stop"))
        stub.push(stub.message(GROUP, REP, "/practice", language_code="fr"))
        [answer] = await stub.wait_for("sendMessage", after=mark, chat_id=GROUP)
        assert answer.shown == note.shown
        # The link opens the DM with "/start practice": the practice starts there.
        intro = await exchange(stub, stub.message(REP, REP, "/start practice", language_code="fr"), REP)
        assert intro.shown.startswith("Entraînement : "), intro.shown
        assert await sessions_of(bot, REP) == 1


async def test_a_manager_posts_a_practice_drill_with_a_link_to_the_dm(
    stub: BotApiStub, coach: Coach, tmp_path: Path
) -> None:
    async with running_bot(stub, practice_settings(stub, tmp_path), coach) as bot:
        post = await exchange(stub, stub.message(GROUP, MANAGER, f"/drill now {DRILL} practice"), GROUP)
        assert post.shown.startswith("Team drill: ") and f"/practice {DRILL}" in post.shown
        [button] = post.buttons
        assert button["url"] == f"https://t.me/{BOT_USERNAME}?start=practice-{DRILL}"
        assert button["text"] == default_telegram_strings()["en"].practice_button
        # A member follows it: the practice starts in their DM, on that drill's buyer.
        member = 421
        intro = await exchange(stub, stub.private(member, f"/start practice-{DRILL}"), member)
        assert intro.shown.startswith("Practice: HR director"), intro.shown
        assert await store_of(bot).latest_open_run("telegram", str(GROUP)) is None


async def test_forget_deletes_the_practice(stub: BotApiStub, coach: Coach, tmp_path: Path) -> None:
    async with running_bot(stub, practice_settings(stub, tmp_path), coach) as bot:
        await exchange(stub, stub.private(REP, f"/practice {DRILL}"), REP)
        await exchange(stub, stub.private(REP, OPEN_1), REP)
        key = ConversationKey(channel="telegram", user_id=str(REP), conversation_id=str(REP))
        assert await store_of(bot).open_practice(key) is not None
        done = await exchange(stub, stub.private(REP, "/forget"), REP)
        assert done.shown.startswith("Done: I deleted everything")
        assert await store_of(bot).count_user_rows("telegram", str(REP)) == 0
        assert await sessions_of(bot, REP) == 0
        card = await exchange(stub, stub.private(REP, OPEN_1), REP)  # no buyer any more: a card
        assert SCORE.search(card.shown)
