"""The Slack listeners: Slack payloads in, `CoachingFlow` calls, Block Kit replies out.

Every listener acknowledges first and works after: its Bolt function only calls `ack()`
(so Slack gets its HTTP 200, or its Socket Mode ack, within milliseconds and never
retries for slowness) and schedules the work as a task that answers through the Web
API. This is what Bolt's lazy listeners do, done here with our own tasks because Bolt's
lazy runner deep-copies every request (most of the ack's CPU under a burst, and it
cannot copy a pooled HTTP session) and forgets its tasks (nothing to wait for on
shutdown). Nothing here knows about coaching: the conversation is the core's; this
module only decides where an answer goes (the DM, the thread, an ephemeral message) and
in which surface wording.

Retried events (same `event_id`, `X-Slack-Retry-Num` ≥ 1) run once, across restarts too,
because the store claims each event id before the work starts.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.kwargs_injection.async_args import AsyncArgs
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.channels.slack.blocks import (
    ACTION_ALL_FINDINGS,
    ACTION_EXPLAIN,
    ACTION_REWROTE,
    REWRITE_BLOCK,
    REWRITE_INPUT,
    VIEW_REWRITE,
    Block,
    Surface,
    home_view,
    reply_blocks,
    reply_text,
    rewrite_modal,
    text_blocks,
)
from bot.channels.slack.payloads import (
    CardRef,
    RewriteTarget,
    dm_command,
    parse_explain_value,
    request_id,
    slack_to_plain,
    slash_intent,
    strip_leading_mention,
)
from bot.channels.slack.strings import strings_for
from bot.core.flow import CoachingFlow
from bot.core.models import ConversationKey, IncomingMessage, Reply

log = logging.getLogger("fournil.slack")

CHANNEL = "slack"
SHORTCUT_CALLBACK = "fournil_coach_message"
# Any slash command routed to this app is Fournil's (the manifest declares /fournil; an
# admin who renames it to avoid a clash keeps a working app).
SLASH_COMMAND = re.compile(r"^/")
LOCALE_TTL_SECONDS = 3600.0
LOCALE_CACHE_SIZE = 5000
LOCALE_TIMEOUT_SECONDS = 3.0
# Rep messages that carry an opener; edits, joins, deletions and bot posts do not.
_USER_SUBTYPES = {None, "thread_broadcast", "file_share"}

Handler = Callable[[AsyncArgs], Awaitable[None]]


class DeliveryError(RuntimeError):
    """Slack refused an answer sent to a response_url."""


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
        if self.channel and self.channel[:1] in {"D", "U", "W"}:  # a DM, or a user id (their DM)
            return "dm"
        return "thread"


def _is_rep_message(event: Mapping[str, Any]) -> bool:
    """A message typed by a person: not ours (Bolt drops those), not another bot's, not
    an edit or a deletion."""
    return (
        bool(event.get("user"))
        and not event.get("bot_id")
        and not event.get("bot_profile")
        and event.get("subtype") in _USER_SUBTYPES
    )


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
        self._locales: dict[str, tuple[float, str | None]] = {}

    # ------------------------------------------------------------------ wiring

    def register(self, app: AsyncApp) -> None:
        app.middleware(self._tag_request)
        app.error(self._on_error)
        app.event("message")(self._ack_then(self._on_direct_message))
        app.event("app_mention")(self._ack_then(self._on_mention))
        app.event("app_home_opened")(self._ack_then(self._on_home_opened))
        app.command(SLASH_COMMAND)(self._ack_then(self._on_slash_command))
        app.shortcut(SHORTCUT_CALLBACK)(self._ack_then(self._on_shortcut))
        app.action(ACTION_EXPLAIN)(self._ack_then(self._on_explain))
        app.action(ACTION_ALL_FINDINGS)(self._ack_then(self._on_all_findings))
        app.action(ACTION_REWROTE)(self._ack_then(self._on_rewrote))
        app.view(VIEW_REWRITE)(self._ack_then(self._on_rewrite_submitted))

    def _ack_then(self, handler: Handler) -> Handler:
        """A Bolt listener that acks (empty: answers always come through the Web API) and
        leaves the work to a task, so the ack never waits for coaching or Slack."""

        async def ack_then_work(args: AsyncArgs) -> None:
            await args.ack()
            task = asyncio.create_task(self._work_on(handler, args), name=f"slack-{handler.__name__}")
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

        ack_then_work.__name__ = f"ack_then_{handler.__name__}"
        return ack_then_work

    async def _work_on(self, handler: Handler, args: AsyncArgs) -> None:
        async with self._work:
            try:
                await handler(args)
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
            locale = await self._locale(args.client, user)
            reply = await self._handle(self._key(user, channel), text, locale)
            await self._send(args.client, dest, reply, CardRef(conversation=channel, owner=user))

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
            locale = await self._locale(args.client, user)
            conversation = f"{channel}:{root}"
            reply = await self._handle(self._key(user, conversation), text or "/help", locale)
            await self._send(args.client, dest, reply, CardRef(conversation=conversation, owner=user))

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
            locale = await self._locale(args.client, user)
            key = self._key(user, channel)
            if kind == "ask":
                reply = await self._ask(key, text, locale)
            else:
                reply = await self._handle(key, text, locale)
            await self._send(args.client, dest, reply, CardRef(conversation=channel, owner=user))

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
        restart: the store remembers event ids."""
        event_id = body.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            return True
        first = await self.flow.store.claim_event(CHANNEL, event_id)
        if not first:
            log.info("slack: event %s already handled, skipped", event_id)
        return first

    async def _handle(self, key: ConversationKey, text: str, locale: str | None) -> Reply:
        return await self.flow.handle(IncomingMessage(key=key, text=text, locale=locale))

    async def _ask(self, key: ConversationKey, question: str, locale: str | None) -> Reply:
        """`/fournil ask`: the flow's `ask` when the knowledge search is there (it returns
        the reply, or a (reply, answer) pair), else the `/ask` command through `handle`."""
        ask: Any = getattr(self.flow, "ask", None)
        if callable(ask):
            lang = await self.flow.store.language_preference(key.channel, key.user_id)
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
        """The rep's Slack locale (`users.info`), cached: it decides the language of
        anything that has no text to detect a language from (help, notices, the Home)."""
        now = time.monotonic()
        cached = self._locales.get(user)
        if cached is not None and cached[0] > now:
            return cached[1]
        locale: str | None = None
        try:
            response = await asyncio.wait_for(
                client.users_info(user=user, include_locale=True), LOCALE_TIMEOUT_SECONDS
            )
            value = (response.get("user") or {}).get("locale")
            locale = value if isinstance(value, str) else None
        except Exception as exc:  # a missing scope or a slow API must not cost the card
            log.info("slack: no locale for %s (%s)", user, exc)
        self._locales[user] = (now + LOCALE_TTL_SECONDS, locale)
        while len(self._locales) > LOCALE_CACHE_SIZE:
            self._locales.pop(next(iter(self._locales)))
        return locale

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

    async def _send(
        self, client: AsyncWebClient, dest: Destination, reply: Reply, ref: CardRef | None
    ) -> None:
        ui = self.flow.coach.strings(reply.language)
        strings = strings_for(ui.lang, self.default_language)
        if ref is not None:
            ref = ref.model_copy(update={"lang": ui.lang})
        blocks = reply_blocks(reply, ui, strings, ref=ref, surface=dest.surface)
        await self._deliver(client, dest, blocks, reply_text(reply, ui, strings))

    @staticmethod
    async def _deliver(client: AsyncWebClient, dest: Destination, blocks: list[Block], text: str) -> None:
        if dest.response_url:
            webhook = AsyncWebhookClient(dest.response_url, session=client.session)
            response = await webhook.send(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=False
            )
            if response.status_code != 200:
                raise DeliveryError(f"response_url answered {response.status_code}: {response.body[:200]}")
        elif dest.ephemeral_user:
            await client.chat_postEphemeral(
                channel=str(dest.channel),
                user=dest.ephemeral_user,
                text=text,
                blocks=blocks,
                thread_ts=dest.thread_ts,
            )
        else:
            await client.chat_postMessage(
                channel=str(dest.channel), text=text, blocks=blocks, thread_ts=dest.thread_ts
            )

    @asynccontextmanager
    async def _apologising(self, args: AsyncArgs, dest: Destination | None, user: str) -> AsyncIterator[None]:
        """Any failure is logged with the request id, the rep gets a short apology in
        their language (when there is somewhere to say it), and the app keeps running."""
        try:
            yield
        except Exception:
            rid = args.context.get("request_id") or request_id(args.body)
            log.exception("slack: request %s failed", rid)
            if dest is None:
                return
            try:
                lang = self._language_of(await self._locale(args.client, user)) or self.default_language
                apology = strings_for(lang, self.default_language).apology
                await self._deliver(args.client, dest, text_blocks(apology), apology)
            except Exception as exc:
                log.warning("slack: request %s: the apology could not be delivered either (%s)", rid, exc)
