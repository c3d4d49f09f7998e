"""The Telegram handlers: updates in, core calls, replies out; no coaching logic here.

Each handler answers one question ("is this update for the bot?"), claims the update in
the core's store so it is handled once even if Telegram delivers it again or the bot
restarts, turns it into an `IncomingMessage` for `CoachingFlow.handle`, and sends back the
`Reply` rendered by `render.py`.

Private chats: every text goes to the flow. Groups: only commands for this bot, messages
that mention it, and replies to its messages; a reply there quotes the rep's message, so a
card is never mistaken for someone else's. One conversation per user and chat, so a rep's
opener in a group and the same rep's DM never mix.

Team coaching: the flow is told where a message was said (`chat_id`, `in_group`) and which
of the bot's messages it replies to (`reply_to`), which is how a reply to a drill post is
recognised as an answer. A `Reply.private` (a drill answer's coaching) goes to the rep's
DM, never to the group; when Telegram refuses because the rep never opened a chat with the
bot, the group gets a short note with the link to do so. A drill post is attached to its
run by its message id, and a reply carrying a chart is sent as a photo, then its text.

Practice: `/practice` in a DM goes to the flow like any command (the session, its turns and
`/stop` are the core's); in a group it gets a note with the link that opens the bot's DM
and starts the practice there (`/start practice`). A practice drill's post
(`Reply.practice`) carries a button with that link, naming the drill.

With an LLM (FOURNIL_LLM), a card or an answer carries a `follow_up`: it is sent as it is,
then the same message is edited with the LLM's part when that arrives (`editMessageText`).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application, CallbackQueryHandler, ContextTypes, ExtBot, MessageHandler, filters

from bot.channels.telegram.callbacks import parse_callback
from bot.channels.telegram.render import Button, Rendered, plain_text, render_reply, split_html, text_lines
from bot.channels.telegram.texts import TelegramStrings, default_telegram_strings
from bot.core.delivery import Claim, claim, handling
from bot.core.errors import StoreUnavailable
from bot.core.flow import CoachingFlow
from bot.core.models import ConversationKey, IncomingMessage, Reply

log = logging.getLogger("fournil.telegram")

CHANNEL = "telegram"
ALLOWED_UPDATES = ("message", "callback_query")
Context = ContextTypes.DEFAULT_TYPE
# What `build_application` makes: a rate-limited bot (ExtBot[int]), default context, no job queue.
TelegramApplication = Application[ExtBot[int], Context, dict[Any, Any], dict[Any, Any], dict[Any, Any], None]
UpdateHandler = Callable[[Update, Context], Coroutine[Any, Any, None]]
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+(.*))?$", re.DOTALL)
_ANSWER_MAX = 200  # characters a callback answer (toast) shows
GROUP_TYPES = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})
DM_START = "drill"  # the /start payload of the "open a chat with me" link
# The /start payload that starts a practice in the DM: `practice`, or `practice-<drill id>`
# (a deep link's payload is at most 64 characters of A-Z, a-z, 0-9, _ and -).
PRACTICE_START = "practice"
_START_PAYLOAD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHART_FILENAME = "report.png"


class TelegramAdapter:
    """Translates Telegram updates to core calls and core replies to Telegram messages."""

    def __init__(self, flow: CoachingFlow, strings: Mapping[str, TelegramStrings] | None = None) -> None:
        self.flow = flow
        self.strings = dict(strings or default_telegram_strings())
        self._application: TelegramApplication | None = None  # set by `register`
        commands = [ui.data.commands for ui in flow.coach.ui.values()]
        # Commands this bot knows: in a group, a bare /command nobody else claims is ours;
        # others may belong to another bot of the group and are left alone.
        aliases = {alias for table in commands for names in table.values() for alias in names}
        # A bare /stop (/end…) in a group is more likely another bot's: practice is in the DM.
        stops = {alias for table in commands for alias in table.get("stop", [])}
        self.known_commands = frozenset({"start", "ask", *aliases} - stops)
        # /practice and its aliases: in a group, answered with the link to the DM.
        self.practice_commands = frozenset(alias for table in commands for alias in table.get("practice", []))
        # Commands that make the coach or the search work: "typing…" while they run.
        self.slow_commands = frozenset(
            {
                "ask",
                *(alias for table in commands for key in ("coach", "ask") for alias in table.get(key, [])),
            }
        )

    def register(self, application: TelegramApplication) -> None:
        self._application = application
        message = filters.UpdateType.MESSAGE  # new messages only: edits and channel posts are ignored
        once = self._delivered
        application.add_handler(MessageHandler(message & filters.COMMAND, once(self.on_command)))
        application.add_handler(MessageHandler(message & filters.TEXT, once(self.on_text)))
        application.add_handler(
            MessageHandler(message & ~filters.TEXT & ~filters.StatusUpdate.ALL, once(self.on_other))
        )
        application.add_handler(CallbackQueryHandler(once(self.on_callback)))
        application.add_error_handler(self.on_error)

    def _delivered(self, handler: UpdateHandler) -> UpdateHandler:
        """The handler as one piece of work on the update's delivery (bot/core/delivery.py):
        the update it claims is marked done when it returns, or fails (then `on_error`
        apologises)."""

        @functools.wraps(handler)
        async def delivered(update: Update, context: Context) -> None:
            async with handling(self.flow.store):
                await handler(update, context)

        return delivered

    # --- handlers -------------------------------------------------------------------------

    async def on_command(self, update: Update, context: Context) -> None:
        """/start is the welcome; every other command goes to the flow as text (it knows
        /help, /coach, /ask, /lang, /new, /forget, /findings, /explain, /rewrite, and says
        so for the others)."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot or not message.text:
            return
        found = _COMMAND.match(message.text.strip())
        if found is None:
            return
        name, target, args = found.group(1).lower(), found.group(2), found.group(3) or ""
        private = message.chat.type == ChatType.PRIVATE
        if target and target.lower() != (context.bot.username or "").lower():
            return  # /command@OtherBot
        if not private and not target and name not in self.known_commands:
            return
        if not await self._first_time(update, context):
            return
        reply_to = None if private else message.message_id
        if name in self.practice_commands and not private:  # practice happens in the DM
            labels = self.labels(await self._language(user))
            link = practice_link(context.bot.username or "")
            note = Rendered(tuple(split_html(text_lines(labels.practice_private.format(link=link)))))
            await self._send(context.bot, message.chat.id, note, reply_to)
            return
        if name == "start" and private and args.strip().split("-", 1)[0] == PRACTICE_START:
            drill = args.strip()[len(PRACTICE_START) + 1 :]  # from a practice link: start it here
            await self._converse(context.bot, message, user, f"/practice {drill}".strip(), typing=False)
            return
        if name == "start":
            lang = await self._language(user)
            text = self.flow.coach.strings(lang).text("flow", "welcome")
            if private and args.strip() == DM_START:  # from the link of the "open a chat" note
                text = f"{self.labels(lang).dm_ready}\n\n{text}"
            welcome = Rendered(tuple(split_html(text_lines(text))))
            await self._send(context.bot, message.chat.id, welcome, reply_to)
            return
        text = f"/{name} {args}".strip()
        await self._converse(context.bot, message, user, text, typing=name in self.slow_commands)

    async def on_text(self, update: Update, context: Context) -> None:
        """An opener, a rewrite or anything else: the flow decides."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot:
            return
        text = message.text or ""
        if message.chat.type != ChatType.PRIVATE:
            for_bot = addressed_text(message, context.bot)
            if for_bot is None:
                return
            text = for_bot
        if not await self._first_time(update, context):
            return
        await self._converse(context.bot, message, user, text, typing=True)

    async def on_other(self, update: Update, context: Context) -> None:
        """A photo, sticker, voice note, file…: ask for the text instead."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or user.is_bot:
            return
        private = message.chat.type == ChatType.PRIVATE
        if not private and addressed_text(message, context.bot) is None:
            return
        if not await self._first_time(update, context):
            return
        labels = self.labels(await self._language(user))
        rendered = Rendered(tuple(split_html(text_lines(labels.send_text))))
        await self._send(context.bot, message.chat.id, rendered, None if private else message.message_id)

    async def on_callback(self, update: Update, context: Context) -> None:
        """Card buttons: all findings (the card edited in place), explain a principle, I
        rewrote it. Every query is answered, so the button stops spinning."""
        query = update.callback_query
        if query is None:
            return
        if not await self._first_time(update, context):
            return
        user = query.from_user
        action = parse_callback(query.data)
        message = query.message if isinstance(query.message, Message) else None
        if action is None or message is None:  # unknown data, or a message too old to touch
            await query.answer()
            return
        chat_id = message.chat.id
        if action.action == "findings":
            if action.owner != str(user.id):
                await query.answer(self.labels(await self._language(user)).not_yours, show_alert=True)
                return
            reply = await self.flow.handle(self._incoming(user, message.chat, "/findings"))
            if reply.card is None:  # the conversation moved on (/new, /forget)
                await query.answer(_toast(reply))
                return
            await query.answer()
            await self._edit(context.bot, message, self.render(reply, str(user.id)))
        elif action.action == "explain" and action.principle and action.lang:
            await query.answer()
            reply = self.flow.explain(action.principle, action.lang)
            await self._send(context.bot, chat_id, self.render(reply, str(user.id)), message.message_id)
        else:
            await query.answer()
            reply = await self.flow.handle(self._incoming(user, message.chat, "/rewrite"))
            await self._send(context.bot, chat_id, self.render(reply, str(user.id)), message.message_id)

    async def on_error(self, update: object, context: Context) -> None:
        """Any failure: logged with the update id, a short apology to the user, and the bot
        goes on with the next update."""
        update_id = update.update_id if isinstance(update, Update) else None
        error = context.error
        if isinstance(error, Forbidden):  # blocked by the user, or removed from the group
            log.info("update %s: cannot write to this chat (%s)", update_id, error)
            return
        outage = isinstance(error, StoreUnavailable)
        if outage:  # the store logs an outage once; the rep gets the one line
            log.debug("update %s: %s", update_id, error)
        else:
            log.error("update %s failed: %s", update_id, error, exc_info=error)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        chat, user, message = update.effective_chat, update.effective_user, update.effective_message
        lang = self._locale_language(user.language_code if user else None)
        text = self.flow.coach.strings(lang).text("flow", "store_unavailable") if outage else None
        reply_to = message.message_id if message and chat.type != ChatType.PRIVATE else None
        try:
            await self._send(
                context.bot,
                chat.id,
                Rendered(tuple(split_html(text_lines(text or self.labels(lang).apology)))),
                reply_to,
            )
        except TelegramError as exc:
            log.warning("update %s: the apology could not be sent either: %s", update_id, exc)

    # --- helpers --------------------------------------------------------------------------

    def labels(self, lang: str) -> TelegramStrings:
        if lang in self.strings:
            return self.strings[lang]
        return self.strings.get(self.flow.coach.default_language) or next(iter(self.strings.values()))

    def render(self, reply: Reply, owner: str) -> Rendered:
        return render_reply(
            reply, self.flow.coach.strings(reply.language), self.labels(reply.language), owner
        )

    async def _converse(self, bot: Bot, message: Message, user: User, text: str, typing: bool) -> None:
        chat = message.chat
        if typing:
            await _typing(bot, chat.id)
        incoming = self._incoming(user, chat, text, reply_to=replied_to_bot(message, bot))
        reply = await self.flow.handle(incoming)
        if chat.type == ChatType.PRIVATE:  # a DM is already private
            sent = await self.deliver(bot, chat.id, reply, str(user.id), None)
            await self._edit_later(bot, chat.id, reply, str(user.id), sent)
            return
        if reply.private:
            await self._deliver_privately(bot, message, user, reply)
            return
        # A drill post is for the whole group: it quotes nobody, and its first message is
        # the one members reply to.
        quote = None if reply.drill_run is not None else message.message_id
        sent = await self.deliver(bot, chat.id, reply, str(user.id), quote)
        if reply.drill_run is not None and sent and self.flow.team is not None:
            await self.flow.team.attach(reply.drill_run, str(sent[0]))
        await self._edit_later(bot, chat.id, reply, str(user.id), sent)

    async def _edit_later(self, bot: Bot, chat_id: int, reply: Reply, owner: str, sent: list[int]) -> None:
        """With an LLM, the card (or answer) just sent is edited in place with the LLM's part
        when it comes, in a task of its own: the wait for the model holds no worker (other
        chats, and this chat's next message, go on) and the rep reads the card meanwhile.
        The application awaits its tasks when it stops; an adapter used without a running
        application edits before it returns."""
        if reply.follow_up is None or not sent or reply.image is not None:
            return
        edit = self._follow_up(bot, chat_id, reply, owner, sent)
        if self._application is not None and self._application.running:
            self._application.create_task(edit, name=f"llm-edit-{chat_id}")
        else:
            await edit

    async def _follow_up(self, bot: Bot, chat_id: int, reply: Reply, owner: str, sent: list[int]) -> None:
        """A failed edit is logged; the rep keeps the card."""
        assert reply.follow_up is not None
        try:
            before = self.render(reply, owner)
            after = self.render(await reply.follow_up(), owner)
            if after == before:
                return
            for index, (message_id, chunk) in enumerate(zip(sent, after.chunks, strict=False)):
                last = index == len(after.chunks) - 1
                await bot.edit_message_text(
                    chat_id=chat_id,
                    message_id=message_id,
                    text=chunk,
                    parse_mode=ParseMode.HTML,
                    reply_markup=keyboard_markup(after.keyboard) if last else None,
                    link_preview_options=NO_PREVIEW,
                )
            if len(after.chunks) > len(sent):  # what no longer fits follows as new messages
                await self._send(bot, chat_id, Rendered(after.chunks[len(sent) :], after.keyboard), None)
        except Exception as exc:
            log.warning("chat %s: the card could not be edited with the LLM's part (%s)", chat_id, exc)

    async def _deliver_privately(self, bot: Bot, message: Message, user: User, reply: Reply) -> None:
        """To the rep's DM. If Telegram refuses (they never opened a chat with the bot, or
        blocked it), a note in the group, quoting their message, in their language, asks
        them to open one: the coaching itself never goes to the group."""
        try:
            await self.deliver(bot, user.id, reply, str(user.id), None)
            return
        except Forbidden as exc:
            log.info("cannot write to user %s privately (%s): note in chat %s", user.id, exc, message.chat.id)
        except BadRequest as exc:
            if "chat not found" not in exc.message.lower():
                raise
            log.info("user %s has no chat with the bot: note in chat %s", user.id, message.chat.id)
        labels = self.labels(await self._language(user))
        link = f"https://t.me/{bot.username}?start={DM_START}"
        note = Rendered(tuple(split_html(text_lines(labels.dm_needed.format(link=link)))))
        await self._send(bot, message.chat.id, note, message.message_id)

    async def deliver(
        self, bot: Bot, chat_id: int, reply: Reply, owner: str, reply_to: int | None
    ) -> list[int]:
        """A core reply sent to a chat: its chart first when it has one (a photo quoting
        `reply_to`), then its text. Returns the ids of the messages sent, in order."""
        rendered = self.render(reply, owner)
        if reply.practice is not None and bot.username:  # a practice drill: the way to the DM
            label = self.labels(reply.language).practice_button
            button = Button(label, "", url=practice_link(bot.username, reply.practice))
            rendered = Rendered(rendered.chunks, (*rendered.keyboard, (button,)))
        sent: list[int] = []
        if reply.image is not None:
            photo = await bot.send_photo(
                chat_id=chat_id,
                photo=reply.image,
                filename=CHART_FILENAME,
                reply_parameters=_quoting(reply_to),
            )
            sent.append(photo.message_id)
            reply_to = None
        sent += await self._send(bot, chat_id, rendered, reply_to)
        return sent

    @staticmethod
    def _incoming(user: User, chat: Chat, text: str, reply_to: int | None = None) -> IncomingMessage:
        key = ConversationKey(channel=CHANNEL, user_id=str(user.id), conversation_id=str(chat.id))
        return IncomingMessage(
            key=key,
            text=text,
            locale=user.language_code,
            chat_id=str(chat.id),
            in_group=chat.type in GROUP_TYPES,
            reply_to=str(reply_to) if reply_to is not None else None,
        )

    async def _first_time(self, update: Update, context: Context) -> bool:
        """Claims the update in the store: False if it was already handled (a webhook retry,
        a replay after a crash) or another replica is handling it (the webhook then asks
        Telegram to send it again later). Keyed by bot too, since update ids are only unique
        per bot. With the store down it is handled unclaimed: a card rather than silence."""
        found = await claim(self.flow.store, CHANNEL, f"{context.bot.id}:{update.update_id}")
        if found is Claim.DONE:
            log.info("update %s already handled: skipped", update.update_id)
        elif found is Claim.BUSY:
            log.info("update %s is being handled by another replica: to be sent again", update.update_id)
        return found.handle

    async def _language(self, user: User) -> str:
        try:
            preference = await self.flow.store.language_preference(CHANNEL, str(user.id))
        except StoreUnavailable:
            preference = None
        return preference or self._locale_language(user.language_code)

    def _locale_language(self, locale: str | None) -> str:
        """Telegram's language_code ("fr", "en-GB", "pt-br") as one of our languages."""
        code = (locale or "").replace("_", "-").split("-")[0].lower()
        return code if code in self.flow.coach.languages else self.flow.coach.default_language

    async def _send(self, bot: Bot, chat_id: int, rendered: Rendered, reply_to: int | None) -> list[int]:
        """The chunks in order, the first quoting `reply_to`, the keyboard under the last;
        returns the ids of the messages sent."""
        last = len(rendered.chunks) - 1
        sent: list[int] = []
        for index, chunk in enumerate(rendered.chunks):
            message = await bot.send_message(
                chat_id=chat_id,
                text=chunk,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard_markup(rendered.keyboard) if index == last else None,
                reply_parameters=_quoting(reply_to) if index == 0 else None,
                link_preview_options=NO_PREVIEW,
            )
            sent.append(message.message_id)
        return sent

    async def _edit(self, bot: Bot, message: Message, rendered: Rendered) -> None:
        """The card message replaced in place; what does not fit follows as new messages."""
        first, *rest = rendered.chunks
        try:
            await bot.edit_message_text(
                chat_id=message.chat.id,
                message_id=message.message_id,
                text=first,
                parse_mode=ParseMode.HTML,
                reply_markup=None if rest else keyboard_markup(rendered.keyboard),
                link_preview_options=NO_PREVIEW,
            )
        except BadRequest as exc:
            if "not modified" not in exc.message.lower():  # pressed twice: nothing to change
                raise
        if rest:
            await self._send(bot, message.chat.id, Rendered(tuple(rest), rendered.keyboard), None)


def addressed_text(message: Message, bot: Bot) -> str | None:
    """In a group: the message's text (or caption) without the bot's mention when it is
    for the bot (it mentions the bot, or replies to one of its messages), else None."""
    text = message.text if message.text is not None else (message.caption or "")
    addressed = replied_to_bot(message, bot) is not None
    kinds: list[str | None] = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    if message.text is not None:
        entities = message.parse_entities(kinds)
    else:
        entities = message.parse_caption_entities(kinds)
    handle = f"@{bot.username}".lower() if bot.username else None
    for entity, value in entities.items():
        mention = entity.type == MessageEntity.MENTION and value.lower() == handle
        named = (
            entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot.id
        )
        if mention or named:
            addressed = True
            text = text.replace(value, "", 1)
    return text.strip() if addressed else None


def replied_to_bot(message: Message, bot: Bot) -> int | None:
    """The id of the bot's message this one replies to (a drill post, a card), if any."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        return replied.message_id
    return None


def keyboard_markup(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(button.label, url=button.url)
                if button.url
                else InlineKeyboardButton(button.label, callback_data=button.data)
                for button in row
            ]
            for row in rows
        ]
    )


def practice_link(username: str, drill: str | None = None) -> str:
    """The deep link that opens the bot's DM and starts a practice there (on that drill's
    buyer when the id fits in a start payload)."""
    payload = f"{PRACTICE_START}-{drill}" if drill else PRACTICE_START
    if not _START_PAYLOAD.match(payload):
        payload = PRACTICE_START
    return f"https://t.me/{username}?start={payload}"


def command_menu(strings: TelegramStrings) -> list[BotCommand]:
    return [BotCommand(name, description) for name, description in strings.commands.items()]


async def register_commands(bot: Bot, strings: Mapping[str, TelegramStrings], default_language: str) -> None:
    """The command menu in each language (`language_code`), and the default language's for
    users whose Telegram language is neither."""
    for lang, texts in strings.items():
        await bot.set_my_commands(command_menu(texts), language_code=lang)
    fallback = strings.get(default_language) or next(iter(strings.values()))
    await bot.set_my_commands(command_menu(fallback))


def _quoting(reply_to: int | None) -> ReplyParameters | None:
    if reply_to is None:
        return None
    return ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)


async def _typing(bot: Bot, chat_id: int) -> None:
    """ "Typing…" while the core works: a courtesy, so a failure is not an error."""
    try:
        await bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)
    except TelegramError as exc:
        log.debug("typing action for chat %s failed: %s", chat_id, exc)


def _toast(reply: Reply) -> str:
    """A reply short enough for a callback answer (plain text, at most 200 characters)."""
    text = " ".join(plain_text(" ".join(text_lines(reply.text))).split())
    return text if len(text) <= _ANSWER_MAX else text[: _ANSWER_MAX - 1] + "…"
