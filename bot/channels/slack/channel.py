"""The Slack listeners: Slack payloads in, `CoachingFlow` calls, Block Kit replies out.

Events (a message, a mention, the App Home opened) are worked on before they are
acknowledged (bot/core/delivery.py): the listener starts the work as a task and waits for
it up to `EVENT_ACK_SECONDS`, inside Slack's 3 s (Bolt runs with
`process_before_response=True`, so the HTTP answer, or the Socket Mode ack, goes when the
listener returns). A replica killed mid-work has answered nothing, so Slack sends the event
again, to another replica, which takes the claim over once its lease ran out. The answer is
200 once the reply went out, or when the event was handled already; 503 when another
replica claimed it and is still on it (Slack sends it again later: by then it is done, or
taken over); and 200 at `EVENT_ACK_SECONDS` when the work takes longer (it goes on: an
answer with an LLM's part, a burst), as Slack would otherwise time out and send it again.
Slash commands, shortcuts, buttons and modals are acknowledged first and worked on after,
as Slack requires an answer within 3 s and sends none of them again. Both are what Bolt's
lazy listeners do, done here with our own tasks because Bolt's lazy runner deep-copies
every request (most of the ack's CPU under a burst, and it cannot copy a pooled HTTP
session) and forgets its tasks (nothing to wait for on shutdown).

Nothing here knows about coaching: the conversation is the core's; this module only
decides where an answer goes (the DM, the thread, an ephemeral message) and in which
surface wording.

Team coaching goes through the same flow: `/fournil drill …` and the other team commands
carry the channel they were typed in (`chat_id`, `in_group`) and whether the user is a
workspace admin (`platform_admin`); a drill post (`Reply.drill_run`) goes to the channel
publicly and its `ts` is handed back to the run; members answer in the post's thread, and
only replies under an open drill reach the flow, each coached in an ephemeral message in
that thread (`Reply.private`); a report's chart (`Reply.image`) is uploaded to the
manager's DM. `SlackPoster` is what the drill clock posts with.

Practice (`/fournil practice [ID]`, the App Home's *Practise in private* button, the button
under a practice drill's post) always runs in the rep's DM with the bot, whose messages are
then the turns (`stop` ends it); asked from a channel, a private note there says so. A
practice drill (`Reply.practice`) is posted to the channel for everyone, with that button.

Retried events (same `event_id`, `X-Slack-Retry-Num` ≥ 1) run once, across restarts too,
because the store claims each event id before the work starts and marks it done after.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.kwargs_injection.async_args import AsyncArgs
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.channels.slack.blocks import (
    ACTION_ALL_FINDINGS,
    ACTION_EXPLAIN,
    ACTION_PRACTICE,
    ACTION_REWROTE,
    ANY_BUYER,
    MAX_FALLBACK_TEXT,
    REWRITE_BLOCK,
    REWRITE_INPUT,
    VIEW_REWRITE,
    Block,
    Surface,
    fit,
    home_view,
    mrkdwn,
    reply_blocks,
    reply_text,
    rewrite_modal,
    text_blocks,
)
from bot.channels.slack.payloads import (
    CardRef,
    RewriteTarget,
    command_name,
    dm_command,
    is_manager_command,
    parse_explain_value,
    request_id,
    slack_commands,
    slack_to_plain,
    slash_intent,
    strip_leading_mention,
)
from bot.channels.slack.strings import SlackStrings, strings_for
from bot.core.delivery import Claim, Delivery, claim, handling, receiving
from bot.core.errors import StoreUnavailable
from bot.core.flow import CoachingFlow, complete
from bot.core.models import ConversationKey, IncomingMessage, Reply, ReplyKind

log = logging.getLogger("fournil.slack")

CHANNEL = "slack"
SHORTCUT_CALLBACK = "fournil_coach_message"
# Any slash command routed to this app is Fournil's (the manifest declares /fournil; an
# admin who renames it to avoid a clash keeps a working app).
SLASH_COMMAND = re.compile(r"^/")
LOCALE_TTL_SECONDS = 3600.0  # also how long a workspace admin flag is trusted
LOCALE_CACHE_SIZE = 5000
LOCALE_TIMEOUT_SECONDS = 3.0
# Rep messages that carry an opener; edits, joins, deletions and bot posts do not.
_USER_SUBTYPES = {None, "thread_broadcast", "file_share"}
# The `message` events Fournil subscribes to (channel_type → event name in the manifest):
# the DM with the bot, and thread replies in public and private channels (drill answers).
MESSAGE_EVENTS = {"im": "message.im", "channel": "message.channels", "group": "message.groups"}
THREAD_CHANNEL_TYPES = frozenset({"channel", "group"})
# Slack's answers when the bot cannot post in a channel: it must be invited first.
NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})
REPORT_FILENAME = "report.png"
MAX_UPLOAD_COMMENT = 4000

Handler = Callable[[AsyncArgs], Awaitable[None]]
EventListener = Callable[[AsyncArgs], Awaitable[BoltResponse | None]]
# How long an event's listener waits for its work before it answers anyway: inside Slack's
# 3 s, with room for the request's way in and out.
EVENT_ACK_SECONDS = 2.5
# Flow commands that always run in the rep's DM with the bot (`/fournil practice`, `stop`).
PRACTICE_COMMANDS = frozenset({"practice", "stop"})


class DeliveryError(RuntimeError):
    """Slack refused an answer sent to a response_url."""


@dataclass(frozen=True)
class SlackUser:
    """What `users.info` tells about a user, cached: their locale (the language of replies
    with no text to detect one from) and whether they administer the workspace (a
    workspace admin or owner counts as a manager)."""

    locale: str | None = None
    admin: bool = False


@dataclass(frozen=True)
class Destination:
    """Where an answer goes: a `response_url` (ephemeral, where a slash command was typed
    or an ephemeral card clicked), an ephemeral message for one user in a channel, or a
    message in a channel or DM (optionally in a thread)."""

    channel: str | None = None
    thread_ts: str | None = None
    ephemeral_user: str | None = None
    response_url: str | None = None

    @property
    def surface(self) -> Surface:
        """Which invitation fits: in a DM the rep can simply reply; elsewhere, the button."""
        if self.response_url or (self.ephemeral_user and not self.thread_ts):
            return "private"
        if self.is_dm:
            return "dm"
        return "thread"

    @property
    def is_dm(self) -> bool:
        return bool(self.channel) and str(self.channel)[:1] in {"D", "U", "W"}  # a DM, or a user id

    def private_for(self, user: str) -> Destination:
        """The same place, seen by `user` only: a public channel or thread becomes an
        ephemeral message there; a response_url, an ephemeral message or a DM already is."""
        if self.response_url or self.ephemeral_user or self.is_dm:
            return self
        return replace(self, ephemeral_user=user)


def _is_rep_message(event: Mapping[str, Any]) -> bool:
    """A message typed by a person: not ours (Bolt drops those), not another bot's, not
    an edit or a deletion."""
    return (
        bool(event.get("user"))
        and not event.get("bot_id")
        and not event.get("bot_profile")
        and event.get("subtype") in _USER_SUBTYPES
    )


def _is_thread_reply(event: Mapping[str, Any]) -> bool:
    """A reply in a channel thread (where drill answers are), not the thread's first post."""
    thread = event.get("thread_ts")
    return (
        event.get("channel_type") in THREAD_CHANNEL_TYPES
        and isinstance(thread, str)
        and bool(thread)
        and thread != event.get("ts")
    )


def _in_group(channel: str) -> bool:
    """A channel or a private channel, not a DM (DM ids start with D)."""
    return bool(channel) and not channel.startswith("D")


def _command_words(flow: CoachingFlow) -> dict[str, set[str]]:
    """The flow's command vocabulary, every language merged (`/fournil aide` works too)."""
    words: dict[str, set[str]] = {}
    for ui in flow.coach.ui.values():
        for name, names in ui.data.commands.items():
            words.setdefault(name, set()).update(names)
    return words


class SlackChannel:
    """Translates Slack payloads to core calls and replies back; owns nothing else but a
    small locale cache and the set of answers in flight (drained on shutdown)."""

    def __init__(self, flow: CoachingFlow, *, default_language: str = "en", work_limit: int = 4) -> None:
        self.flow = flow
        self.default_language = default_language
        self.commands = _command_words(flow)
        self._inflight: set[asyncio.Task[Any]] = set()
        # Answers share the event loop with the acks: a burst of fifty events must not
        # become fifty coaching and database steps in every loop turn, or the acks of the
        # next requests would wait behind them. A few answers progress at a time; the
        # others wait their turn (cheaply), already acked.
        self._work = asyncio.Semaphore(work_limit)
        self.event_ack_seconds = EVENT_ACK_SECONDS
        self._users: dict[str, tuple[float, SlackUser]] = {}

    # ------------------------------------------------------------------ wiring

    def register(self, app: AsyncApp) -> None:
        app.middleware(self._tag_request)
        app.error(self._on_error)
        app.event("message")(self._work_then_ack(self._on_message, relevant=self._wanted_message))
        app.event("app_mention")(self._work_then_ack(self._on_mention))
        app.event("app_home_opened")(self._work_then_ack(self._on_home_opened))
        app.command(SLASH_COMMAND)(self._ack_then(self._on_slash_command))
        app.shortcut(SHORTCUT_CALLBACK)(self._ack_then(self._on_shortcut))
        app.action(ACTION_EXPLAIN)(self._ack_then(self._on_explain))
        app.action(ACTION_ALL_FINDINGS)(self._ack_then(self._on_all_findings))
        app.action(ACTION_REWROTE)(self._ack_then(self._on_rewrote))
        app.action(ACTION_PRACTICE)(self._ack_then(self._on_practice_button))
        app.view(VIEW_REWRITE)(self._ack_then(self._on_rewrite_submitted))

    def _ack_then(self, handler: Handler, relevant: Callable[[AsyncArgs], bool] | None = None) -> Handler:
        """A Bolt listener that acks (empty: answers always come through the Web API) and
        leaves the work to a task, so the ack never waits for coaching or Slack. Events
        that `relevant` rejects (channel chatter) are only acked: no task, no API call."""

        async def ack_then_work(args: AsyncArgs) -> None:
            await args.ack()
            if relevant is not None and not relevant(args):
                return
            self._start(handler, args)

        ack_then_work.__name__ = f"ack_then_{handler.__name__}"
        return ack_then_work

    def _work_then_ack(
        self, handler: Handler, relevant: Callable[[AsyncArgs], bool] | None = None
    ) -> EventListener:
        """A Bolt listener for events: the work first, the answer after (see the module
        docstring), at the latest after `EVENT_ACK_SECONDS`; 503 without an ack when the
        event is another replica's work in progress. Irrelevant events are only acked."""

        async def work_then_ack(args: AsyncArgs) -> BoltResponse | None:
            if relevant is not None and not relevant(args):
                await args.ack()
                return None
            delivery = Delivery()
            with receiving(delivery):  # the work's task runs in this context
                task = self._start(handler, args)
            await asyncio.wait({task}, timeout=self.event_ack_seconds)
            if delivery.busy:
                return BoltResponse(status=503, body="being handled elsewhere: send it again later")
            await args.ack()
            return None

        work_then_ack.__name__ = f"work_then_ack_{handler.__name__}"
        return work_then_ack

    def _start(self, handler: Handler, args: AsyncArgs) -> asyncio.Task[None]:
        task = asyncio.create_task(self._work_on(handler, args), name=f"slack-{handler.__name__}")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    async def _work_on(self, handler: Handler, args: AsyncArgs) -> None:
        async with self._work, handling(self.flow.store):
            try:
                await handler(args)
            except StoreUnavailable as exc:  # the store logs an outage once
                log.debug("slack: request %s: %s", args.context.get("request_id"), exc)
            except Exception:  # handlers apologise themselves; this is the last net
                rid = args.context.get("request_id") or request_id(args.body)
                log.exception("slack: request %s failed", rid)

    async def drain(self, limit_seconds: float = 10.0) -> None:
        """Wait for the answers in flight (shutdown, tests): an acked request still gets
        its card when the process is asked to stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_seconds
        while self._inflight:
            remaining = deadline - loop.time()
            if remaining <= 0:
                late = set(self._inflight)
                log.warning("slack: %d answer(s) still unfinished at shutdown, cancelled", len(late))
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
                return
            await asyncio.wait(set(self._inflight), timeout=remaining)

    @staticmethod
    async def _tag_request(
        context: AsyncBoltContext, body: dict[str, Any], next_: Callable[[], Awaitable[None]]
    ) -> None:
        context["request_id"] = request_id(body)
        await next_()

    @staticmethod
    async def _on_error(error: Exception, body: dict[str, Any], context: AsyncBoltContext) -> None:
        rid = context.get("request_id") or request_id(body)
        log.error("slack: request %s failed: %s", rid, error, exc_info=error)

    # ------------------------------------------------------------------ surfaces

    @staticmethod
    def _wanted_message(args: AsyncArgs) -> bool:
        """A rep's message in the DM, or a rep's reply in a channel thread that does not
        address the bot (a mention is the `app_mention` listener's)."""
        event = args.event or {}
        if not _is_rep_message(event):
            return False
        if event.get("channel_type") == "im":
            return True
        bot = args.context.bot_user_id
        mentioned = bool(bot) and f"<@{bot}" in str(event.get("text") or "")
        return _is_thread_reply(event) and not mentioned

    async def _on_message(self, args: AsyncArgs) -> None:
        event = args.event or {}
        if event.get("channel_type") == "im":
            await self._on_direct_message(args)
        elif _is_thread_reply(event):
            await self._on_thread_reply(args)

    async def _on_direct_message(self, args: AsyncArgs) -> None:
        event = args.event or {}
        if event.get("channel_type") != "im" or not _is_rep_message(event):
            return
        user, channel = str(event["user"]), str(event["channel"])
        dest = Destination(channel=channel, thread_ts=event.get("thread_ts"))
        async with self._apologising(args, dest, user):
            if not await self._first_time(args.body):
                return
            text = dm_command(slack_to_plain(event.get("text"), args.context.bot_user_id), self.commands)
            info = await self._user(args.client, user)
            message = IncomingMessage(
                key=self._key(user, channel),
                text=text,
                locale=info.locale,
                chat_id=channel,
                in_group=False,
                platform_admin=self._admin(info, text),
            )
            reply = await self.flow.handle(message)
            ref = CardRef(conversation=channel, owner=user)
            await self._reply(args.client, dest, reply, ref, message, dm=channel)

    async def _on_thread_reply(self, args: AsyncArgs) -> None:
        """A reply in a channel thread: a drill answer when the thread is a drill post,
        coached for its author only (ephemeral, in the thread); anything else is the
        team's own conversation and is left alone, without a single API call."""
        event = args.event or {}
        team = self.flow.team
        if team is None or not _is_rep_message(event):
            return
        user, channel, thread = str(event["user"]), str(event["channel"]), str(event["thread_ts"])
        message = IncomingMessage(
            key=self._key(user, f"{channel}:{thread}"),
            text=slack_to_plain(event.get("text"), args.context.bot_user_id),
            chat_id=channel,
            in_group=True,
            reply_to=thread,
        )
        try:
            if await team.open_run_for(message) is None:
                return
        except StoreUnavailable:  # no way to tell a drill's thread now: leave the team's talk alone
            return
        dest = Destination(channel=channel, thread_ts=thread, ephemeral_user=user)
        async with self._apologising(args, dest, user):
            if not await self._first_time(args.body):
                return
            info = await self._user(args.client, user)
            reply = await self.flow.handle(message.model_copy(update={"locale": info.locale}))
            await self._reply(args.client, dest, reply.model_copy(update={"private": True}), None, message)

    async def _on_mention(self, args: AsyncArgs) -> None:
        event = args.event or {}
        if not _is_rep_message(event):
            return
        user, channel = str(event["user"]), str(event["channel"])
        root = str(event.get("thread_ts") or event["ts"])
        dest = Destination(channel=channel, thread_ts=root)
        async with self._apologising(args, dest, user):
            if not await self._first_time(args.body):
                return
            raw = strip_leading_mention(str(event.get("text") or ""))
            text = dm_command(slack_to_plain(raw, args.context.bot_user_id), self.commands).strip()
            text = text or "/help"
            info = await self._user(args.client, user)
            conversation = f"{channel}:{root}"
            thread = event.get("thread_ts")
            # In a drill's thread, the mention is an answer: the flow coaches it privately.
            message = IncomingMessage(
                key=self._key(user, conversation),
                text=text,
                locale=info.locale,
                chat_id=channel,
                in_group=_in_group(channel),
                reply_to=str(thread) if thread and thread != event.get("ts") else None,
                platform_admin=self._admin(info, text),
            )
            reply = await self.flow.handle(message)
            ref = CardRef(conversation=conversation, owner=user)
            await self._reply(args.client, dest, reply, ref, message)

    async def _on_home_opened(self, args: AsyncArgs) -> None:
        event = args.event or {}
        if event.get("tab", "home") != "home" or not event.get("user"):
            return
        user = str(event["user"])
        async with self._apologising(args, None, user):
            cards = await self.flow.store.recent_cards(CHANNEL, user, 50)
            lang = await self.flow.store.language_preference(CHANNEL, user)
            lang = lang or self._language_of(await self._locale(args.client, user))
            lang = lang or (cards[0].language if cards else None) or self.default_language
            ui = self.flow.coach.strings(lang)
            view = home_view(cards, ui, strings_for(ui.lang, self.default_language))
            await args.client.views_publish(user_id=user, view=view)

    async def _on_slash_command(self, args: AsyncArgs) -> None:
        command = args.command or {}
        user, channel = str(command.get("user_id")), str(command.get("channel_id"))
        response_url = command.get("response_url")
        dest = (
            Destination(response_url=str(response_url))
            if response_url
            else Destination(channel=channel, ephemeral_user=user)
        )
        async with self._apologising(args, dest, user):
            kind, text = slash_intent(slack_to_plain(command.get("text")), self.commands)
            info = await self._user(args.client, user)
            if command_name(text, self.commands) in PRACTICE_COMMANDS:
                await self._practice_in_dm(args.client, user, text, info.locale, dest, channel)
                return
            key = self._key(user, channel)
            message = IncomingMessage(
                key=key,
                text=text,
                locale=info.locale,
                chat_id=channel,
                in_group=_in_group(channel),
                platform_admin=self._admin(info, text),
            )
            if kind == "ask":
                reply = await self._ask(key, text, info.locale)
            else:
                reply = await self.flow.handle(message)
            await self._reply(args.client, dest, reply, CardRef(conversation=channel, owner=user), message)

    async def _on_practice_button(self, args: AsyncArgs) -> None:
        """*Practise in private*, on the App Home or under a practice drill's post: the
        practice starts in the rep's DM (on that drill's buyer, when the button names one)."""
        body = args.body
        user = str((body.get("user") or {}).get("id"))
        words = str((args.action or {}).get("value") or "").split()
        drill = words[0][:128] if words and words[0] != ANY_BUYER else ""
        channel = str((body.get("channel") or {}).get("id") or "")
        # From a channel's drill post, a private note there says where the practice is.
        note = Destination(channel=channel, ephemeral_user=user) if _in_group(channel) else None
        async with self._apologising(args, note, user):
            locale = await self._locale(args.client, user)
            await self._practice_in_dm(args.client, user, f"/practice {drill}".strip(), locale, note, channel)

    async def _practice_in_dm(
        self,
        client: AsyncWebClient,
        user: str,
        text: str,
        locale: str | None,
        note: Destination | None,
        where: str,
    ) -> None:
        """`/practice [ID]` or `/stop`, always in the rep's DM with the bot, whatever
        channel it was asked from: the session is that DM's conversation, where the rep's
        next messages arrive. Asked from elsewhere, a private note there points to the DM."""
        opened = await client.conversations_open(users=user)
        dm = str((opened.get("channel") or {})["id"])
        reply = await self._handle(self._key(user, dm), text, locale)
        await self._send(client, Destination(channel=dm), reply, CardRef(conversation=dm, owner=user))
        if note is not None and where != dm:
            pointer = strings_for(self.flow.coach.strings(reply.language).lang, self.default_language)
            await self._deliver(client, note, text_blocks(pointer.practice_in_dm), pointer.practice_in_dm)

    async def _on_shortcut(self, args: AsyncArgs) -> None:
        """The "Coach this opener" shortcut, on any message: the card goes privately to
        the rep's DM with the bot, and that DM continues the conversation (a rewrite
        typed there, or sent with the button, is compared with this opener)."""
        body = args.body
        user = str((body.get("user") or {}).get("id"))
        response_url = body.get("response_url")
        fallback = Destination(response_url=str(response_url)) if response_url else None
        async with self._apologising(args, fallback, user):
            opened = await args.client.conversations_open(users=user)
            dm = str((opened.get("channel") or {})["id"])
            message = body.get("message") or {}
            text = slack_to_plain(message.get("text"), args.context.bot_user_id)
            locale = await self._locale(args.client, user)
            reply = await self._handle(self._key(user, dm), f"/coach {text}", locale)
            await self._send(
                args.client, Destination(channel=dm), reply, CardRef(conversation=dm, owner=user)
            )

    async def _on_explain(self, args: AsyncArgs) -> None:
        body = args.body
        user = str((body.get("user") or {}).get("id"))
        dest = self._action_destination(body, user)
        async with self._apologising(args, dest, user):
            lang, principle = parse_explain_value((args.action or {}).get("value"))
            reply = self.flow.explain(principle, lang)
            await self._send(args.client, dest, reply, None)

    async def _on_all_findings(self, args: AsyncArgs) -> None:
        body = args.body
        user = str((body.get("user") or {}).get("id"))
        dest = self._action_destination(body, user)
        async with self._apologising(args, dest, user):
            ref = CardRef.decode((args.action or {}).get("value"))
            if ref is None:
                return
            reply = await self._handle(self._key(ref.owner, ref.conversation), "/findings", None)
            await self._send(args.client, dest, reply, ref)

    async def _on_rewrote(self, args: AsyncArgs) -> None:
        """The "I rewrote it" button opens a modal for the rewrite; the modal remembers
        the conversation and where the card was, so the comparison lands next to it."""
        body = args.body
        user = str((body.get("user") or {}).get("id"))
        dest = self._action_destination(body, user)
        async with self._apologising(args, dest, user):
            ref = CardRef.decode((args.action or {}).get("value"))
            if ref is None:
                return
            target = RewriteTarget(
                conversation=ref.conversation,
                owner=ref.owner,
                lang=ref.lang,
                channel=dest.channel,
                thread_ts=dest.thread_ts,
                response_url=dest.response_url,
            )
            modal = rewrite_modal(strings_for(ref.lang, self.default_language), target.encode())
            await args.client.views_open(trigger_id=str(body.get("trigger_id")), view=modal)

    async def _on_rewrite_submitted(self, args: AsyncArgs) -> None:
        body = args.body
        view = args.view or {}
        user = str((body.get("user") or {}).get("id"))
        target = RewriteTarget.decode(view.get("private_metadata"))
        if target is None:
            log.warning("slack: rewrite modal without its metadata (request %s)", request_id(body))
            return
        if target.response_url:
            dest = Destination(response_url=target.response_url)
        elif target.channel and target.channel.startswith("D"):
            dest = Destination(channel=target.channel, thread_ts=target.thread_ts)
        elif target.channel:
            dest = Destination(channel=target.channel, thread_ts=target.thread_ts, ephemeral_user=user)
        else:
            dest = Destination(channel=user)  # the app's DM with this user
        async with self._apologising(args, dest, user):
            values = (view.get("state") or {}).get("values") or {}
            text = str(((values.get(REWRITE_BLOCK) or {}).get(REWRITE_INPUT) or {}).get("value") or "")
            # The key is the submitter's: a colleague pressing the button on someone
            # else's card compares with their own opener in that conversation, if any.
            conversation = target.conversation
            locale = await self._locale(args.client, user)
            reply = await self._handle(self._key(user, conversation), text, locale)
            await self._send(args.client, dest, reply, CardRef(conversation=conversation, owner=user))

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _key(user: str, conversation: str) -> ConversationKey:
        return ConversationKey(channel=CHANNEL, user_id=user, conversation_id=conversation)

    async def _first_time(self, body: Mapping[str, Any]) -> bool:
        """False for a retry (or a replay) of an event already handled, even before a
        restart (the store remembers event ids), or one another replica is working on (the
        listener then asks Slack to send it again later). With the store down it is handled
        unclaimed: a card rather than silence."""
        event_id = body.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            return True
        found = await claim(self.flow.store, CHANNEL, event_id)
        if found is Claim.DONE:
            log.info("slack: event %s already handled, skipped", event_id)
        elif found is Claim.BUSY:
            log.info("slack: event %s is being handled by another replica: to be sent again", event_id)
        return found.handle

    async def _handle(self, key: ConversationKey, text: str, locale: str | None) -> Reply:
        return await self.flow.handle(IncomingMessage(key=key, text=text, locale=locale))

    def _admin(self, info: SlackUser, text: str) -> bool:
        """The workspace admin flag, passed for the manager commands only (drill, report,
        onboard status): the only ones it changes anything for."""
        return info.admin and is_manager_command(text, self.commands)

    async def _ask(self, key: ConversationKey, question: str, locale: str | None) -> Reply:
        """`/fournil ask`: the flow's `ask_reply` (with the LLM's answer to follow, when there
        is an LLM) or `ask` (the reply, or a (reply, answer) pair), else the `/ask` command
        through `handle`."""
        ask: Any = getattr(self.flow, "ask_reply", None) or getattr(self.flow, "ask", None)
        if callable(ask):
            try:
                lang = await self.flow.store.language_preference(key.channel, key.user_id)
            except StoreUnavailable:
                lang = None
            result = ask(question, lang)
            if inspect.isawaitable(result):
                result = await result
            reply = result[0] if isinstance(result, tuple) and result else result
            if isinstance(reply, Reply):
                return reply
        return await self._handle(key, f"/ask {question}".rstrip(), locale)

    def _language_of(self, locale: str | None) -> str | None:
        if not locale:
            return None
        code = locale.replace("_", "-").split("-")[0].lower()
        return code if code in self.flow.coach.languages else None

    async def _locale(self, client: AsyncWebClient, user: str) -> str | None:
        return (await self._user(client, user)).locale

    async def _user(self, client: AsyncWebClient, user: str) -> SlackUser:
        """The rep's Slack locale and admin flag (one `users.info`), cached: the locale
        decides the language of anything that has no text to detect a language from
        (help, notices, the Home); the flag makes a workspace admin or owner a manager."""
        now = time.monotonic()
        cached = self._users.get(user)
        if cached is not None and cached[0] > now:
            return cached[1]
        info = SlackUser()
        try:
            response = await asyncio.wait_for(
                client.users_info(user=user, include_locale=True), LOCALE_TIMEOUT_SECONDS
            )
            found = response.get("user") or {}
            value = found.get("locale")
            info = SlackUser(
                locale=value if isinstance(value, str) else None,
                admin=found.get("is_admin") is True or found.get("is_owner") is True,
            )
        except Exception as exc:  # a missing scope or a slow API must not cost the card
            log.info("slack: no user info for %s (%s)", user, exc)
        self._users[user] = (now + LOCALE_TTL_SECONDS, info)
        while len(self._users) > LOCALE_CACHE_SIZE:
            self._users.pop(next(iter(self._users)))
        return info

    @staticmethod
    def _action_destination(body: Mapping[str, Any], user: str) -> Destination:
        """Answers to a button go where its card is: the same DM, the same ephemeral
        place (its response_url), or privately to the clicker in the same thread."""
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or container.get("thread_ts")
        response_url = body.get("response_url")
        if container.get("is_ephemeral") and response_url:
            return Destination(response_url=str(response_url))
        if channel and str(channel).startswith("D"):
            return Destination(channel=str(channel), thread_ts=thread_ts)
        if channel:
            return Destination(channel=str(channel), thread_ts=thread_ts, ephemeral_user=user)
        return Destination(response_url=str(response_url) if response_url else None, channel=user)

    async def _reply(
        self,
        client: AsyncWebClient,
        dest: Destination,
        reply: Reply,
        ref: CardRef | None,
        message: IncomingMessage,
        *,
        dm: str | None = None,
    ) -> None:
        """Where a reply goes: a drill post publicly to the team channel (then its ts to
        the run), a drill summary to the channel too, a chart to the requester's DM, a
        private reply only to its author, anything else to `dest`. `dm` is the user's
        DM with the bot when known."""
        user = message.key.user_id
        chat = message.chat_id if message.in_group else None
        if reply.drill_run is not None and chat:
            await self._post_drill(client, dest, reply, chat, user)
        elif reply.image is not None:
            await self._send_report(client, dest, reply, user, dm)
        elif reply.kind == ReplyKind.SUMMARY and chat:
            await self.post(client, chat, reply)
        elif reply.practice is not None and chat:  # a practice drill: for the whole channel
            try:
                await self.post(client, chat, reply)
            except SlackApiError as exc:
                if exc.response.get("error") not in NOT_A_MEMBER:
                    raise
                note = self._strings(reply).invite_me
                await self._deliver(client, dest.private_for(user), text_blocks(note), note)
        else:
            await self._send(client, dest.private_for(user) if reply.private else dest, reply, ref)

    def _strings(self, reply: Reply) -> SlackStrings:
        return strings_for(self.flow.coach.strings(reply.language).lang, self.default_language)

    def _slack_reply(self, reply: Reply) -> Reply:
        """The core names commands as `/drill list`; Slack users type `/fournil drill list`."""
        return reply.model_copy(update={"text": slack_commands(reply.text, self.commands)})

    async def post(self, client: AsyncWebClient, chat_id: str, reply: Reply) -> str | None:
        """A reply as a public message in a team channel (drill posts, summaries); returns
        its ts, the message id thread replies point at. Slack errors are raised."""
        ui = self.flow.coach.strings(reply.language)
        strings = strings_for(ui.lang, self.default_language)
        reply = self._slack_reply(reply)
        blocks = reply_blocks(reply, ui, strings, ref=None, surface="thread")
        response = await client.chat_postMessage(
            channel=chat_id, text=reply_text(reply, ui, strings), blocks=blocks, unfurl_links=False
        )
        ts = response.get("ts")
        return str(ts) if ts else None

    async def _post_drill(
        self, client: AsyncWebClient, dest: Destination, reply: Reply, chat_id: str, user: str
    ) -> None:
        """`/fournil drill now`: the drill goes to the channel for everyone, and the run
        learns which message answers reply to. When Slack refuses (the bot is not in the
        channel), the run is closed at once and the manager is told to invite the bot."""
        run_id = reply.drill_run
        assert run_id is not None and self.flow.team is not None
        try:
            ts = await self.post(client, chat_id, reply)
        except SlackApiError as exc:
            if exc.response.get("error") not in NOT_A_MEMBER:
                raise
            await self.flow.team.store.close_run(run_id, datetime.now(UTC))
            note = self._strings(reply).invite_me
            await self._deliver(client, dest.private_for(user), text_blocks(note), note)
            return
        if ts is not None:
            await self.flow.team.attach(run_id, ts)

    async def _send_report(
        self, client: AsyncWebClient, dest: Destination, reply: Reply, user: str, dm: str | None
    ) -> None:
        """The team report: its chart uploaded (files.uploadV2) to the manager's DM with
        the text as the comment, never to a channel, even when asked in one (a short
        ephemeral note there says where it went)."""
        assert reply.image is not None
        if dm is None:
            opened = await client.conversations_open(users=user)
            dm = str((opened.get("channel") or {})["id"])
        reply = self._slack_reply(reply)
        text = mrkdwn(reply.text)
        title = reply.text.strip().splitlines()[0].strip("*_ #") if reply.text.strip() else REPORT_FILENAME
        comment = text
        if len(text) > MAX_UPLOAD_COMMENT:  # the whole text as a message, the chart after it
            await self._send(client, Destination(channel=dm), reply.model_copy(update={"image": None}), None)
            comment = fit(title, MAX_FALLBACK_TEXT)
        await client.files_upload_v2(
            content=reply.image,
            filename=REPORT_FILENAME,
            title=title,
            alt_txt=title,
            channel=dm,
            initial_comment=comment,
        )
        if dest.channel != dm:
            note = self._strings(reply).report_in_dm
            await self._deliver(client, dest.private_for(user), text_blocks(note), note)

    async def _send(
        self, client: AsyncWebClient, dest: Destination, reply: Reply, ref: CardRef | None
    ) -> None:
        """A reply delivered to `dest`. With an LLM (`reply.follow_up`) the embedded card goes
        first and the same message is updated with the LLM's part when it comes (chat.update,
        or a response_url message replaced), in a task of its own: the wait for the model
        holds neither a work slot nor the event's ack. An ephemeral message the bot posted
        cannot be updated, so there the reply goes once, complete."""
        if reply.follow_up is not None and dest.ephemeral_user and not dest.response_url:
            reply = await complete(reply)
        blocks, text = self._rendered(dest, reply, ref)
        posted = await self._deliver(client, dest, blocks, text)
        if reply.follow_up is not None:
            task = asyncio.create_task(self._update(client, dest, reply, ref, blocks, posted))
            self._inflight.add(task)  # drained at shutdown like any answer
            task.add_done_callback(self._inflight.discard)

    async def _update(
        self,
        client: AsyncWebClient,
        dest: Destination,
        reply: Reply,
        ref: CardRef | None,
        sent: list[Block],
        posted: tuple[str, str] | None,
    ) -> None:
        """The message just sent, updated with the LLM's part; a failure is logged, and the
        rep keeps the embedded card (no apology for the extra)."""
        assert reply.follow_up is not None
        try:
            later = await reply.follow_up()
            blocks, text = self._rendered(dest, later, ref)
            if blocks == sent:
                return
            if dest.response_url:
                await self._respond(client, dest.response_url, blocks, text, replace=True)
            elif posted is not None:
                channel, ts = posted
                await client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except Exception as exc:
            log.warning("slack: the card could not be updated with the LLM's part (%s)", exc)

    def _rendered(self, dest: Destination, reply: Reply, ref: CardRef | None) -> tuple[list[Block], str]:
        ui = self.flow.coach.strings(reply.language)
        strings = strings_for(ui.lang, self.default_language)
        if ref is not None:
            ref = ref.model_copy(update={"lang": ui.lang})
        reply = self._slack_reply(reply)
        return reply_blocks(reply, ui, strings, ref=ref, surface=dest.surface), reply_text(reply, ui, strings)

    @staticmethod
    async def _respond(
        client: AsyncWebClient, url: str, blocks: list[Block], text: str, replace: bool = False
    ) -> None:
        webhook = AsyncWebhookClient(url, session=client.session)
        response = await webhook.send(
            text=text, blocks=blocks, response_type="ephemeral", replace_original=replace
        )
        if response.status_code != 200:
            raise DeliveryError(f"response_url answered {response.status_code}: {response.body[:200]}")

    @classmethod
    async def _deliver(
        cls, client: AsyncWebClient, dest: Destination, blocks: list[Block], text: str
    ) -> tuple[str, str] | None:
        """Returns the channel and ts of a message posted with chat.postMessage (what
        chat.update needs), None otherwise."""
        if dest.response_url:
            await cls._respond(client, dest.response_url, blocks, text)
        elif dest.ephemeral_user:
            await client.chat_postEphemeral(
                channel=str(dest.channel),
                user=dest.ephemeral_user,
                text=text,
                blocks=blocks,
                thread_ts=dest.thread_ts,
            )
        else:
            response = await client.chat_postMessage(
                channel=str(dest.channel), text=text, blocks=blocks, thread_ts=dest.thread_ts
            )
            channel, ts = response.get("channel"), response.get("ts")
            if isinstance(channel, str) and isinstance(ts, str):
                return channel, ts
        return None

    @asynccontextmanager
    async def _apologising(self, args: AsyncArgs, dest: Destination | None, user: str) -> AsyncIterator[None]:
        """Any failure is logged with the request id, the rep gets a short apology in
        their language (when there is somewhere to say it), and the app keeps running."""
        try:
            yield
        except Exception as exc:
            rid = args.context.get("request_id") or request_id(args.body)
            outage = isinstance(exc, StoreUnavailable)
            if outage:  # the store logs an outage once; the rep gets the one line
                log.debug("slack: request %s: %s", rid, exc)
            else:
                log.exception("slack: request %s failed", rid)
            if dest is None:
                return
            try:
                lang = self._language_of(await self._locale(args.client, user)) or self.default_language
                apology = strings_for(lang, self.default_language).apology
                if outage:
                    apology = self.flow.coach.strings(lang).text("flow", "store_unavailable")
                await self._deliver(args.client, dest, text_blocks(apology), apology)
            except Exception as exc:
                log.warning("slack: request %s: the apology could not be delivered either (%s)", rid, exc)


class SlackPoster:
    """The drill clock's `TeamPoster` in Slack: a scheduled drill or a summary posted to
    its channel, the message ts returned. A refusal (the bot was removed from the
    channel) is logged and gives None; a drill that could not be posted is closed at
    once, so it never comes back as an empty summary."""

    def __init__(self, channel: SlackChannel, client: AsyncWebClient) -> None:
        self.channel = channel
        self.client = client

    async def post(self, chat_id: str, reply: Reply) -> str | None:
        try:
            return await self.channel.post(self.client, chat_id, reply)
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("slack: cannot post to %s (%s)", chat_id, error)
            team = self.channel.flow.team
            if reply.drill_run is not None and team is not None and error in NOT_A_MEMBER:
                await team.store.close_run(reply.drill_run, datetime.now(UTC))
            return None
