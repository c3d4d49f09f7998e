"""`ask` with the retrieved principles as context: a short answer in the model's words.

Retrieval stays Fournil's own (Chroma and the embedded encoder), and so does the refusal of
off-topic questions and of requests to write the message, before any call: the model only
rephrases what the principles found say, for this question. It must cite them by id, and
only them: an answer that cites a principle the search did not find rests on something the
rep cannot check, and is thrown away.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.language import LanguageDetector
from bot.core.lexicon import Lexicon
from bot.core.ports import PrincipleText
from bot.llm.guardrails import MessageShape, answer_reads_as_message, citations_allowed, in_language
from bot.llm.outcome import Discarded
from bot.llm.prompts import LlmPrompts

NAME = "ask_answer"


class _RawAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    answer: str
    principles: list[str] = Field(default_factory=list)


class LlmAnswer(BaseModel):
    """The answer's text and the ids it cites (each among the principles retrieved)."""

    model_config = ConfigDict(frozen=True)
    text: str
    cited: list[str]


def schema(prompts: LlmPrompts, ids: list[str]) -> dict[str, Any]:
    return {
        "title": NAME,
        "description": prompts.task("ask"),
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "principles": {"type": "array", "items": {"type": "string", "enum": ids}},
        },
        "required": ["answer", "principles"],
    }


def messages(prompts: LlmPrompts, question: str, principles: Sequence[PrincipleText]) -> tuple[str, str]:
    """The principles go as data beside the (redacted) question: their id, title, summary
    and key idea; not their examples, which are messages a model would echo."""
    context = [{"id": p.id, "title": p.title, "summary": p.summary, "idea": p.idea} for p in principles]
    user = json.dumps(
        {"language": prompts.lang, "question": question, "principles": context}, ensure_ascii=False
    )
    return prompts.system("ask"), user


def read_answer(
    data: dict[str, Any],
    lang: str,
    retrieved: Sequence[str],
    shape: MessageShape,
    detector: LanguageDetector,
    lexicons: Mapping[str, Lexicon],
) -> LlmAnswer:
    try:
        raw = _RawAnswer.model_validate(data)
    except ValidationError:
        raise Discarded("malformed") from None
    text = raw.answer.strip()
    if not text:
        raise Discarded("malformed")
    if answer_reads_as_message(text, shape):
        raise Discarded("message_like")
    cited = list(dict.fromkeys(pid.strip() for pid in raw.principles))
    if not citations_allowed(cited, text, retrieved):
        raise Discarded("unknown_citation")
    if not in_language(text, lang, detector, lexicons):
        raise Discarded("wrong_language")
    return LlmAnswer(text=text, cited=cited)
