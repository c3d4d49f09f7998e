"""Telegram-only wording (strings.yaml next to this file): buttons, the command menu, the
"send me the text" and apology replies, the note asking a rep to open a DM with the bot.

Everything the coach says lives in prompts/ui/<lang>.yaml and is shared by every channel;
only what exists because of Telegram (inline buttons, setMyCommands, non-text messages) is
here, so the shared UI files stay channel-agnostic. Loading checks that every language says
everything, because a missing key would only show up as a crash in a user's chat.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.errors import KnowledgeError

STRINGS_FILE = Path(__file__).resolve().parent / "strings.yaml"
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")  # what setMyCommands accepts


class ButtonLabels(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    findings: str = Field(min_length=1)
    explain: str = Field(min_length=1)
    rewrote: str = Field(min_length=1)


class TelegramStrings(BaseModel):
    """One language's Telegram wording."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    lang: str
    send_text: str = Field(min_length=1)
    apology: str = Field(min_length=1)
    not_yours: str = Field(min_length=1, max_length=200)  # a callback answer shows at most 200
    dm_needed: str = Field(min_length=1)  # the group note when a drill answer's DM is refused
    dm_ready: str = Field(min_length=1)  # /start drill: the deep link of that note
    buttons: ButtonLabels
    commands: dict[str, str] = Field(min_length=1)
    practice_private: str = Field(min_length=1)  # /practice in a group: the link to the DM
    practice_button: str = Field(min_length=1, max_length=64)  # under a practice drill's post

    @field_validator("dm_needed", "practice_private")
    @classmethod
    def _has_link(cls, value: str) -> str:
        if "{link}" not in value:
            raise ValueError("must contain {link} (where the link to the bot's chat goes)")
        return value

    @field_validator("commands")
    @classmethod
    def _menu_entries(cls, value: dict[str, str]) -> dict[str, str]:
        for name, description in value.items():
            if not _COMMAND_NAME.match(name):
                raise ValueError(f"{name!r}: a command is 1-32 of a-z, 0-9 and _")
            if not 1 <= len(description) <= 256:
                raise ValueError(f"{name!r}: a description is 1-256 characters")
        return value


def load_telegram_strings(path: Path = STRINGS_FILE) -> dict[str, TelegramStrings]:
    """Every language of the file, checked to carry the same keys and commands."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    if not isinstance(raw, dict) or not raw:
        raise KnowledgeError(path, "(file)", "expected one mapping per language (en:, fr:)")
    strings: dict[str, TelegramStrings] = {}
    for lang, entries in raw.items():
        try:
            strings[str(lang)] = TelegramStrings.model_validate({"lang": str(lang), **(entries or {})})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in (lang, *first["loc"]))
            raise KnowledgeError(path, field, first["msg"]) from None
        except TypeError:
            raise KnowledgeError(path, str(lang), "expected a mapping") from None
    menus = {lang: list(ui.commands) for lang, ui in strings.items()}
    first_lang, first_menu = next(iter(menus.items()))
    for lang, menu in menus.items():
        if menu != first_menu:
            raise KnowledgeError(path, f"{lang}.commands", f"must list the same commands as {first_lang}")
    return strings


@cache
def default_telegram_strings() -> dict[str, TelegramStrings]:
    """The shipped file, read once per process."""
    return load_telegram_strings()
