"""The Telegram bot end to end, by long polling: the real python-telegram-bot `Application`
over real HTTP on 127.0.0.1 against the stub Bot API server, a real SQLite store.

Silence is never checked by waiting: a test that expects no answer sends a second message
that must be answered, in the same chat (a chat's updates are handled in order), and checks
that this answer is the only one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.channels.telegram.texts import default_telegram_strings
from bot.core.coach import Coach
from tests.telegram.botapi_stub import BOT_USERNAME, BotApiStub, Call
from tests.telegram.conftest import RunningBot, bot_settings, running_bot
from tests.telegram.samples import FRENCH, OPENER, REWRITE, SCORE, WEAK

GROUP = -100_555


async def exchange(stub: BotApiStub, update: dict[str, object], chat_id: int, count: int = 1) -> list[Call]:
    """Queues the update and waits for the next `count` messages sent to the chat."""
    mark = stub.mark()
    stub.push(update)
    return await stub.wait_for("sendMessage", after=mark, chat_id=chat_id, count=count)


def questions(call: Call) -> list[str]:
    return [line for line in call.shown.splitlines() if line.startswith("→ ")]


def button_data(call: Call) -> list[str]:
    return [str(button["callback_data"]) for button in call.buttons]


async def test_dm_opener_gets_a_card_with_score_and_questions(stub: BotApiStub, bot: RunningBot) -> None:
    mark = stub.mark()
    [card] = await exchange(stub, stub.private(101, OPENER), 101)
    assert card.params["parse_mode"] == "HTML"
    assert SCORE.search(card.shown) and "Conversation score" in card.shown
    assert questions(card), card.shown
    assert "reply_parameters" not in card.params  # a private chat needs no quote
    assert button_data(card)[-1] == "r"
    [typing] = stub.of("sendChatAction", after=mark, chat_id=101)
    assert typing.params["action"] == "typing" and typing.at < card.at


async def test_a_rewrite_gets_a_comparison(stub: BotApiStub, bot: RunningBot) -> None:
    [card] = await exchange(stub, stub.private(102, OPENER), 102)
    [comparison] = await exchange(stub, stub.private(102, REWRITE), 102)
    assert "Before / after" in comparison.shown
    before = SCORE.search(card.shown)
    assert before is not None
    assert f"{before.group(1)}/100 → " in comparison.shown


async def test_a_french_opener_gets_a_french_card(stub: BotApiStub, bot: RunningBot) -> None:
    [card] = await exchange(stub, stub.private(103, FRENCH, language_code="en"), 103)
    assert "Score de conversation" in card.shown and SCORE.search(card.shown)
    assert "Pistes de questions" in card.shown and questions(card)
    assert any(button["text"] == "Je l'ai réécrite" for button in card.buttons)


@pytest.mark.parametrize(
    ("language_code", "start"), [("fr", "Bonjour ! Je suis Fournil"), ("en-GB", "Hi! I'm")]
)
async def test_start_welcomes_in_the_users_language(
    stub: BotApiStub, bot: RunningBot, language_code: str, start: str
) -> None:
    [welcome] = await exchange(stub, stub.private(104, "/start", language_code=language_code), 104)
    assert welcome.shown.startswith(start)


async def test_the_command_menu_is_registered_in_both_languages(stub: BotApiStub, bot: RunningBot) -> None:
    assert set(stub.commands) == {"fr", "en", ""}
    names = [command["command"] for command in stub.commands["fr"]]
    assert names == [
        *("start", "help", "coach", "ask", "lang", "new", "forget"),
        *("drill", "report", "onboard", "privacy", "share"),
        *("practice", "stop"),
    ]
    assert stub.commands["fr"][1]["description"] == default_telegram_strings()["fr"].commands["help"]
    assert stub.commands[""] == stub.commands["en"]  # users in other languages get English


async def test_commands_go_to_the_flow(stub: BotApiStub, bot: RunningBot) -> None:
    [language] = await exchange(stub, stub.private(105, "/lang fr"), 105)
    assert "français" in language.shown
    [helped] = await exchange(stub, stub.private(105, "/help"), 105)
    assert helped.shown.startswith("Collez")
    [coached] = await exchange(stub, stub.private(105, f"/coach {WEAK}"), 105)
    assert "Score de conversation" in coached.shown  # /lang fr holds for every opener
    [asked] = await exchange(stub, stub.private(105, "/ask what is an open question?"), 105)
    assert asked.shown and asked.shown != default_telegram_strings()["fr"].apology


async def test_a_group_message_without_mention_gets_no_answer(stub: BotApiStub, bot: RunningBot) -> None:
    mark = stub.mark()
    stub.push(stub.message(GROUP, 201, OPENER))  # not for the bot
    mention = stub.push(stub.message(GROUP, 201, f"@{BOT_USERNAME} {WEAK}"))
    [card] = await stub.wait_for("sendMessage", after=mark, chat_id=GROUP)
    # The first message was never coached: the mention got a card, not a comparison with it.
    assert SCORE.search(card.shown) and "Before / after" not in card.shown
    assert card.params["reply_parameters"]["message_id"] == mention["message"]["message_id"]
    assert len(stub.of("sendMessage", after=mark, chat_id=GROUP)) == 1


async def test_a_reply_to_the_bot_in_a_group_is_for_the_bot(stub: BotApiStub, bot: RunningBot) -> None:
    [card] = await exchange(stub, stub.message(GROUP, 202, f"@{BOT_USERNAME} {OPENER}"), GROUP)
    card_message = card.result
    reply = stub.message(GROUP, 202, REWRITE, reply_to=card_message)
    [comparison] = await exchange(stub, reply, GROUP)
    assert "Before / after" in comparison.shown
    assert comparison.params["reply_parameters"]["message_id"] == reply["message"]["message_id"]


async def test_group_commands_for_other_bots_are_left_alone(stub: BotApiStub, bot: RunningBot) -> None:
    mark = stub.mark()
    stub.push(stub.message(GROUP, 203, "/help@SomeOtherBot"))
    stub.push(stub.message(GROUP, 203, "/weather Paris"))  # a bare command we do not know
    stub.push(stub.message(GROUP, 203, f"/help@{BOT_USERNAME}"))
    [helped] = await stub.wait_for("sendMessage", after=mark, chat_id=GROUP)
    assert helped.shown.startswith("Paste an opener")
    assert len(stub.of("sendMessage", after=mark, chat_id=GROUP)) == 1


async def test_the_all_findings_button_edits_the_card_in_place(stub: BotApiStub, bot: RunningBot) -> None:
    [card] = await exchange(stub, stub.private(106, WEAK), 106)
    assert "f:106" in button_data(card)
    mark = stub.mark()
    stub.push(stub.callback(106, card.result, "f:106"))
    [edit] = await stub.wait_for("editMessageText", after=mark, chat_id=106)
    [answer] = stub.of("answerCallbackQuery", after=mark)
    assert answer.at < edit.at  # the button stops spinning first
    assert edit.params["message_id"] == card.result["message_id"]
    assert edit.shown.count("• ") > card.shown.count("• ") == 3
    assert "f:106" not in button_data(edit) and button_data(edit)[-1] == "r"
    assert not stub.of("sendMessage", after=mark, chat_id=106)


async def test_the_why_button_explains_the_principle(stub: BotApiStub, bot: RunningBot) -> None:
    [card] = await exchange(stub, stub.private(107, WEAK), 107)
    explain = next(button for button in card.buttons if str(button["callback_data"]).startswith("x:"))
    title = str(explain["text"]).removeprefix("Why? ")
    [principle] = await exchange(stub, stub.callback(107, card.result, explain["callback_data"]), 107)
    assert principle.shown.startswith(title)
    assert principle.params["reply_parameters"]["message_id"] == card.result["message_id"]


async def test_the_rewrote_button_asks_for_the_rewrite(stub: BotApiStub, bot: RunningBot) -> None:
    [card] = await exchange(stub, stub.private(108, OPENER), 108)
    [prompt] = await exchange(stub, stub.callback(108, card.result, "r"), 108)
    assert prompt.shown.startswith("Send me your rewrite")


async def test_someone_elses_findings_button_is_refused(stub: BotApiStub, bot: RunningBot) -> None:
    [card] = await exchange(stub, stub.message(GROUP, 204, f"@{BOT_USERNAME} {WEAK}"), GROUP)
    mark = stub.mark()
    stub.push(stub.callback(999, card.result, "f:204"))
    [answer] = await stub.wait_for("answerCallbackQuery", after=mark)
    assert answer.params["text"] == default_telegram_strings()["en"].not_yours
    assert answer.params["show_alert"] in (True, "true", "True")
    assert not stub.of("editMessageText", after=mark)


async def test_non_text_messages_get_a_polite_request_for_text(stub: BotApiStub, bot: RunningBot) -> None:
    [photo] = await exchange(stub, stub.photo(109, 109), 109)
    assert photo.shown == default_telegram_strings()["en"].send_text
    mark = stub.mark()
    stub.push(stub.sticker(GROUP, 205))  # in a group, a sticker is not for the bot
    stub.push(stub.photo(GROUP, 205, caption=f"@{BOT_USERNAME} what about this one?"))
    [asked] = await stub.wait_for("sendMessage", after=mark, chat_id=GROUP)
    assert asked.shown == default_telegram_strings()["en"].send_text
    assert len(stub.of("sendMessage", after=mark, chat_id=GROUP)) == 1


async def test_a_failure_is_logged_apologised_for_and_the_bot_goes_on(
    stub: BotApiStub, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="fournil.telegram")
    stub.fail("sendMessage", 400, "Bad Request: injected failure")
    update = stub.private(110, OPENER, language_code="fr")
    failed, apology = await exchange(stub, update, 110, count=2)
    assert failed.error == "Bad Request: injected failure"
    assert apology.shown == default_telegram_strings()["fr"].apology
    assert f"update {update['update_id']} failed" in caplog.text
    [card] = await exchange(stub, stub.private(110, REWRITE, language_code="fr"), 110)
    assert SCORE.search(card.shown)


async def test_a_restart_between_opener_and_rewrite_loses_nothing(
    stub: BotApiStub, coach: Coach, tmp_path: Path
) -> None:
    settings = bot_settings(stub, tmp_path / "data")
    opener = stub.private(111, OPENER)
    async with running_bot(stub, settings, coach):
        [card] = await exchange(stub, opener, 111)
    async with running_bot(stub, settings, coach):  # a new process: new flow, same database
        mark = stub.mark()
        stub.push(opener)  # Telegram delivers the opener again (never confirmed): skipped
        stub.push(stub.private(111, REWRITE))
        [first] = await stub.wait_for("sendMessage", after=mark, chat_id=111)
        assert "Before / after" in first.shown, first.shown
        assert SCORE.search(card.shown)


# python-telegram-bot's own RetryAfter reads its deprecated float `retry_after` (PTB 22.8).
@pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")
async def test_a_flood_wait_from_telegram_is_waited_out_not_lost(stub: BotApiStub, bot: RunningBot) -> None:
    stub.fail("sendMessage", 429, "Too Many Requests: retry after 1")
    refused, card = await exchange(stub, stub.private(112, OPENER), 112, count=2)
    assert refused.error is not None and refused.error.startswith("Too Many Requests")
    assert card.params["text"] == refused.params["text"]  # the same card, sent again
    assert SCORE.search(card.shown)
