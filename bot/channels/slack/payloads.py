"""Reading what Slack sends, and the small references Fournil round-trips through Slack.

Pure functions only (tested on tables): the listeners call them to turn a payload into
the text and keys the core understands. Button values and modal metadata are compact
JSON, so a card's buttons and the rewrite modal find their conversation again, across
restarts, without any server-side session.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# <@U123>, <@U123|name>, <#C123|general>, <!here>, <!subteam^S1|@sales>, <https://x|label>
_ANGLE = re.compile(r"<([^<>|\s][^<>|]*)(?:\|([^<>]*))?>")
_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>[\s:,]*")
ASK_WORDS = frozenset({"ask", "question", "demander", "demande", "q"})
# Flow commands that take an argument; the others only count when they stand alone, so
# "/fournil New quarter, new priorities…" is coached, not read as `/new`.
ARGUMENT_COMMANDS = ("coach", "lang", "explain")


def slack_to_plain(text: str | None, bot_user_id: str | None = None) -> str:
    """Slack's message format back to the text the rep typed: links to their label,
    mentions to @name, the bot's own mention removed, and &amp; &lt; &gt; decoded."""

    def plain(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            if bot_user_id and target[1:] == bot_user_id:
                return ""
            return f"@{label}" if label else "@someone"
        if target.startswith("#"):
            return f"#{label}" if label else "#channel"
        if target.startswith("!"):
            if label:
                return label
            return "@" + target[1:].split("^")[0]
        if target.startswith("mailto:"):
            return label or target[len("mailto:") :]
        return label or target

    decoded = _ANGLE.sub(plain, text or "")
    return html.unescape(decoded) if "&" in decoded else decoded


def strip_leading_mention(text: str) -> str:
    """`<@UBOT> coach this…` → `coach this…` (the mention that addressed the bot)."""
    return _LEADING_MENTION.sub("", text, count=1)


class CardRef(BaseModel):
    """Which conversation a card belongs to: the value of its buttons (≤ 2000 chars)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)
    conversation: str = Field(alias="c")
    owner: str = Field(alias="u")
    lang: str = Field("en", alias="l")

    def encode(self) -> str:
        return json.dumps(self.model_dump(by_alias=True), separators=(",", ":"))

    @classmethod
    def decode(cls, value: str | None) -> CardRef | None:
        try:
            return cls.model_validate_json(value or "")
        except ValidationError:
            return None


class RewriteTarget(BaseModel):
    """What the rewrite modal must remember (its `private_metadata`, ≤ 3000 chars): the
    conversation to compare in, and where the card was, so the comparison lands there."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)
    conversation: str = Field(alias="c")
    owner: str = Field(alias="u")
    lang: str = Field("en", alias="l")
    channel: str | None = Field(None, alias="ch")
    thread_ts: str | None = Field(None, alias="ts")
    response_url: str | None = Field(None, alias="ru")

    def encode(self) -> str:
        return json.dumps(self.model_dump(by_alias=True, exclude_none=True), separators=(",", ":"))

    @classmethod
    def decode(cls, value: str | None) -> RewriteTarget | None:
        try:
            return cls.model_validate_json(value or "")
        except ValidationError:
            return None


def explain_value(lang: str, principle_id: str) -> str:
    return f"{lang}:{principle_id}"


def parse_explain_value(value: str | None) -> tuple[str, str]:
    lang, _, principle = (value or "").partition(":")
    return (lang, principle) if principle else ("en", lang)


Intent = tuple[Literal["ask", "flow"], str]


def slash_intent(text: str | None, commands: Mapping[str, Iterable[str]]) -> Intent:
    """`/fournil …` as one of: ("ask", question) or ("flow", text for `CoachingFlow.handle`).

    `commands` is the flow's command vocabulary (name → words, every language). Slack
    eats messages that start with "/", so `/fournil new` is how a rep says `/new`.
    """
    text = (text or "").strip()
    if not text:
        return ("flow", "/help")
    first, _, rest = text.partition(" ")
    word = first.lower()
    rest = rest.strip()
    if word in ASK_WORDS:
        return ("ask", rest)
    for name, words in commands.items():
        lowered = {w.lower() for w in words}
        if word not in lowered:
            continue
        if name in ARGUMENT_COMMANDS:
            return ("flow", f"/{word} {rest}".rstrip())
        if not rest:
            return ("flow", f"/{word}")
    return ("flow", f"/coach {text}")


def dm_command(text: str, commands: Mapping[str, Iterable[str]]) -> str:
    """A lone "help" / "aide" typed in the DM is a request for help, not an opener."""
    stripped = text.strip().lower().rstrip("?!. ")
    if stripped in {w.lower() for w in commands.get("help", ())} or text.strip() == "?":
        return "/help"
    return text


def request_id(body: Mapping[str, Any]) -> str:
    """The id to log a request under: Slack's own when there is one (`event_id` for
    events, repeated on retries; `trigger_id` for commands and interactions)."""
    for key in ("event_id", "trigger_id", "envelope_id"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return f"fournil-{uuid.uuid4().hex[:12]}"
