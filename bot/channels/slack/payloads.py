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
# Team commands, and practice (`practice ID`, `stop`), and how many words may follow them
# (`drill every monday 9:30 cold-call`, `report 28`, `onboard status`, `share on`); longer
# text is an opener to coach, so
# "Share your plans for…" pasted in the DM is coached, not read as `/share`.
TEAM_COMMAND_WORDS = {
    "drill": 8,
    "report": 1,
    "onboard": 1,
    "share": 1,
    "privacy": 0,
    "practice": 1,
    "stop": 0,
}
# What managers ask for: the workspace admin flag matters for these only.
MANAGER_COMMANDS = frozenset({"drill", "report"})
MANAGER_ONBOARD_WORDS = frozenset({"status", "team", "équipe", "equipe"})


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
    team = team_command(text, commands)
    if team is not None:
        return ("flow", team)
    for name, words in commands.items():
        lowered = {w.lower() for w in words}
        if word not in lowered:
            continue
        if name in ARGUMENT_COMMANDS:
            return ("flow", f"/{word} {rest}".rstrip())
        if not rest:
            return ("flow", f"/{word}")
    return ("flow", f"/coach {text}")


def team_command(text: str, commands: Mapping[str, Iterable[str]]) -> str | None:
    """`drill now`, `report 28`, `onboard status`, `share on`, `privacy` (any language's
    word) as the flow command (`/drill now`…); None when the text is not one, including
    when too many words follow the command word to be anything but an opener."""
    first, _, rest = text.strip().partition(" ")
    word = first.lower()
    args = rest.split()
    for name, limit in TEAM_COMMAND_WORDS.items():
        if word in {w.lower() for w in commands.get(name, ())} and len(args) <= limit:
            return f"/{word} {' '.join(args)}".rstrip()
    return None


def command_name(text: str, commands: Mapping[str, Iterable[str]]) -> str | None:
    """Which flow command a `/word …` text is (its name in the vocabulary), if any."""
    if not text.startswith("/"):
        return None
    word = text[1:].split(" ", 1)[0].lower()
    for name, words in commands.items():
        if word in {w.lower() for w in words}:
            return name
    return None


def is_manager_command(text: str, commands: Mapping[str, Iterable[str]]) -> bool:
    """`/drill …`, `/report …`, `/onboard status`: only managers (or workspace admins) may."""
    name = command_name(text, commands)
    if name in MANAGER_COMMANDS:
        return True
    args = text.split()[1:]
    return name == "onboard" and bool(args) and args[0].lower() in MANAGER_ONBOARD_WORDS


def dm_command(text: str, commands: Mapping[str, Iterable[str]]) -> str:
    """A lone "help" / "aide" typed in the DM is a request for help, not an opener; the
    team commands typed without their slash (Slack keeps "/…" for slash commands) are
    those commands."""
    stripped = text.strip().lower().rstrip("?!. ")
    if stripped in {w.lower() for w in commands.get("help", ())} or text.strip() == "?":
        return "/help"
    return team_command(text, commands) or text


_SLASHED = re.compile(r"(?<![\w/<|.:])/([a-zéè]+)\b")


def slack_commands(text: str, commands: Mapping[str, Iterable[str]], slash: str = "/fournil") -> str:
    """The core names its commands as Telegram does (`/drill now`, `/share on`); in Slack
    they are sub-commands of `/fournil`: "/drill list" reads "/fournil drill list"."""
    known = {w.lower() for words in commands.values() for w in words}

    def rewrite(match: re.Match[str]) -> str:
        word = match.group(1)
        return f"{slash} {word}" if word.lower() in known else match.group(0)

    return _SLASHED.sub(rewrite, text)


def request_id(body: Mapping[str, Any]) -> str:
    """The id to log a request under: Slack's own when there is one (`event_id` for
    events, repeated on retries; `trigger_id` for commands and interactions)."""
    for key in ("event_id", "trigger_id", "envelope_id"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return f"fournil-{uuid.uuid4().hex[:12]}"
