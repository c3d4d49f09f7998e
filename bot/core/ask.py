"""Answering a question about the method from the knowledge base, without any LLM.

The answer is composed, not generated: for the best principles found, their key idea and
an example, each cited by id and title, in the asker's language. When nothing relevant is
found, Fournil says so instead of stretching a random principle over the question.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from bot.core.ports import PrincipleCatalog, SearchHit
from bot.core.ui import UiStrings

MAX_PRINCIPLES = 3


class AskPrinciple(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    title: str
    lang: str
    score: float


class AskAnswer(BaseModel):
    """DESIGN.md §3 `ask`: {"language", "answer", "principles": [{id, title, lang, score}]}."""

    model_config = ConfigDict(frozen=True)
    language: str
    answer: str
    principles: list[AskPrinciple]


def compose_answer(hits: list[SearchHit], lang: str, catalog: PrincipleCatalog, ui: UiStrings) -> AskAnswer:
    principles: list[AskPrinciple] = []
    parts: list[str] = []
    for hit in hits[:MAX_PRINCIPLES]:
        text = catalog.describe(hit.principle, lang)
        if text is None:
            continue
        principles.append(AskPrinciple(id=text.id, title=text.title, lang=text.lang, score=hit.score))
        block = f"**{text.title}** ({text.id})\n{text.summary}"
        example = text.strong_example.strip()
        if example and not parts:  # one example is enough; it belongs to the best match
            block += f"\n{ui.text('ask', 'example')}\n{example}"
        parts.append(block)
    if not parts:
        return AskAnswer(language=ui.lang, answer=ui.text("ask", "nothing"), principles=[])
    answer = "\n\n".join([ui.text("ask", "intro"), *parts, ui.text("ask", "outro")])
    return AskAnswer(language=ui.lang, answer=answer, principles=principles)
