"""Slack-only wording (buttons, modal, App Home, Slack help), per language: data, not code.

The shared sentences stay in prompts/ui/<lang>.yaml; this file only holds what has no
meaning outside Slack, so the other channels never carry it. A typo in a key fails at
load time (the model forbids unknown keys and requires every key in every language).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.core.errors import KnowledgeError

STRINGS_FILE = Path(__file__).with_name("strings.yaml")


class SlackStrings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lang: str
    why: str
    all_findings: str
    rewrote: str
    more_findings: str
    score_reasons: str
    invitation_dm: str
    invitation_thread: str
    invitation_private: str
    next: str
    modal_title: str
    modal_submit: str
    modal_close: str
    modal_label: str
    modal_placeholder: str
    modal_hint: str
    apology: str
    help: str
    invite_me: str
    report_in_dm: str
    home_title: str
    home_how: str
    home_progress: str
    home_no_cards: str
    home_stats: str
    home_rewrites: str
    home_recent: str
    home_opener: str
    home_rewrite: str
    home_clean: str
    home_practice: str
    practice_button: str
    practice_in_dm: str

    def text(self, key: str, **values: Any) -> str:
        template: str = getattr(self, key)
        return template.format(**values) if values else template


def load_slack_strings(path: Path = STRINGS_FILE) -> dict[str, SlackStrings]:
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or not raw:
            raise KnowledgeError(path, "(file)", "expected one mapping per language")
        return {lang: SlackStrings.model_validate({"lang": lang, **entries}) for lang, entries in raw.items()}
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    except ValidationError as exc:
        raise KnowledgeError.from_validation(path, exc) from None
    except TypeError as exc:
        raise KnowledgeError(path, "(file)", str(exc)) from None


@cache
def slack_strings() -> dict[str, SlackStrings]:
    """The shipped strings, read once per process."""
    return load_slack_strings()


def strings_for(lang: str | None, default: str = "en") -> SlackStrings:
    table = slack_strings()
    return table.get(lang or default) or table.get(default) or next(iter(table.values()))
