"""A coach that talks back: a short Socratic note to the rep, and stems for this opener.

The embedded angles are generic by design (prompts/angles/); a model can fit a stem to
what this opener is about. What it may not do is write the message: the note asks the rep
about their buyer, each stem keeps a "…" gap for what only the rep knows, and an output
with anything that reads as a message in any field is thrown away whole (a model that
drafted an email in one field is not trusted in the next).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.language import LanguageDetector
from bot.core.lexicon import Lexicon
from bot.core.models import CoachCard
from bot.llm.guardrails import MessageShape, as_stem, in_language, note_problem, reads_as_message
from bot.llm.outcome import Discarded
from bot.llm.prompts import LlmPrompts, Part, Reason

NAME: Final[Part] = "coaching_note"
MAX_STEMS = 3


class _RawNote(BaseModel):
    model_config = ConfigDict(extra="ignore")
    note: str = ""
    questions: list[str] = Field(default_factory=list)


class CoachingNote(BaseModel):
    """What passed: the note (None when it did not) and the stems that did."""

    model_config = ConfigDict(frozen=True)
    note: str | None
    questions: list[str]


def schema(prompts: LlmPrompts) -> dict[str, Any]:
    return {
        "title": NAME,
        "description": prompts.task(NAME),
        "type": "object",
        "properties": {
            "note": {"type": "string"},
            "questions": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["note", "questions"],
    }


def messages(prompts: LlmPrompts, opener: str, card: CoachCard) -> tuple[str, str]:
    found = ", ".join(str(c) for c in card.categories) or "-"
    system = prompts.system(NAME, categories=found)
    user = json.dumps({"language": card.language, "opener": opener}, ensure_ascii=False)
    return system, user


def read_note(
    data: dict[str, Any],
    lang: str,
    shape: MessageShape,
    detector: LanguageDetector,
    lexicons: Mapping[str, Lexicon],
) -> CoachingNote:
    """The note and stems that pass every check, or Discarded with the first reason."""
    try:
        raw = _RawNote.model_validate(data)
    except ValidationError:
        raise Discarded("malformed") from None
    texts = [raw.note, *raw.questions]
    if any(text.strip() and reads_as_message(text, shape) for text in raw.questions) or (
        raw.note.strip() and note_problem(raw.note, shape) == "message_like"
    ):
        raise Discarded("message_like")
    problems: list[Reason] = []
    note: str | None = " ".join(raw.note.split()) or None
    if note is not None:
        problem = note_problem(note, shape)
        if problem is None and not in_language(note, lang, detector, lexicons):
            problem = "wrong_language"
        if problem is not None:
            problems.append(problem)
            note = None
    stems: list[str] = []
    for text in raw.questions:
        stem = as_stem(text, shape)
        if stem is None:
            continue
        if not in_language(stem, lang, detector, lexicons):
            problems.append("wrong_language")
            continue
        if stem not in stems:
            stems.append(stem)
    if note is None and not stems:
        said = any(text.strip() for text in texts)
        raise Discarded(problems[0] if problems else "nothing_kept" if said else "malformed")
    return CoachingNote(note=note, questions=stems[:MAX_STEMS])
