"""The words Fournil sends to an LLM and the words it shows when the LLM part is skipped.

They are data (prompts/llm/<lang>.yaml), one file per language: a model answers in the
language it is spoken to more reliably than in one it is told to use, and a reviewer can
read and change what is said to the model without reading code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.errors import KnowledgeError
from bot.core.models import LlmReason

Part = Literal["second_opinion", "coaching_note", "ask"]
# Why an LLM output was not used: the codes of the card JSON's `llm.reason` (a contract
# vocabulary, so the core's).
Reason = LlmReason
REASONS: tuple[Reason, ...] = Reason.__args__  # type: ignore[attr-defined]


class TaskPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    system: str = Field(min_length=1)
    task: str = Field(min_length=1)  # one line: the structured output's description


class LlmPrompts(BaseModel):
    """One language's prompts/llm file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    lang: str
    guard: str = Field(min_length=1)
    second_opinion: TaskPrompt
    coaching_note: TaskPrompt
    ask: TaskPrompt
    skipped: str = Field(min_length=1)
    partly_skipped: str = Field(min_length=1)
    parts: dict[Part, str]
    reasons: dict[Reason, str]

    def system(self, part: Part, **values: str) -> str:
        """The system message of a task: its instructions, then the guard that says the
        opener is data (last, so it is what the model reads just before the data)."""
        prompt: TaskPrompt = getattr(self, part)
        return f"{prompt.system.format(**values)}\n\n{self.guard}"

    def task(self, part: Part) -> str:
        prompt: TaskPrompt = getattr(self, part)
        return prompt.task

    def reason(self, reason: Reason, seconds: float) -> str:
        return self.reasons[reason].format(seconds=f"{seconds:g}")

    def notice(self, reason: Reason, seconds: float, part: Part | None = None) -> str:
        """What the rep reads: the whole LLM part was skipped, or (with `part`) one of it."""
        if part is None:
            return self.skipped.format(reason=self.reason(reason, seconds))
        return self.partly_skipped.format(part=self.parts[part], reason=self.reason(reason, seconds))


def load_llm_prompts(directory: Path) -> dict[str, LlmPrompts]:
    """Every `<lang>.yaml` of prompts/llm; a broken file names itself and the field, and
    each must name every part and every reason (a missing wording would surface as a
    KeyError in front of a rep)."""
    prompts: dict[str, LlmPrompts] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
            data = LlmPrompts.model_validate(raw)
        except yaml.YAMLError as exc:
            raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
        except ValidationError as exc:
            raise KnowledgeError.from_validation(path, exc) from None
        if data.lang != path.stem:
            raise KnowledgeError(path, "lang", f"'{data.lang}' does not match the file name")
        for field, have, wanted in (
            ("parts", data.parts, Part.__args__),  # type: ignore[attr-defined]
            ("reasons", data.reasons, REASONS),
        ):
            missing = [name for name in wanted if name not in have]
            if missing:
                raise KnowledgeError(path, field, f"missing {', '.join(missing)}")
        prompts[data.lang] = data
    if not prompts:
        raise KnowledgeError(directory, "prompts", "no <lang>.yaml LLM prompt file found")
    return prompts
