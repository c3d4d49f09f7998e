"""Answering a question about the method from the knowledge base, without any LLM.

The answer is composed, not generated: for the best principles found, their key idea and
an example, each cited by id and title, in the asker's language. When nothing relevant is
found, Fournil says so instead of stretching a random principle over the question; when
the rep asks Fournil to write the message, it explains why it will not, with the
principle behind that.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from bot.core.ports import PrincipleCatalog, QuestionIntent, SearchHit
from bot.core.ui import UiStrings

MAX_PRINCIPLES = 3


class AskPrinciple(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    title: str
    lang: str
    score: float


class AskAnswer(BaseModel):
    """docs/contracts.md `ask`: {"language", "answer", "principles": [{id, title, lang,
    score}], "kind"}; `kind` says whether the question was answered, refused as off-topic,
    or met with the no-writing explanation (`write_request`)."""

    model_config = ConfigDict(frozen=True)
    language: str
    answer: str
    principles: list[AskPrinciple]
    kind: QuestionIntent = QuestionIntent.ANSWER


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
        return refuse(ui)
    answer = "\n\n".join([ui.text("ask", "intro"), *parts, ui.text("ask", "outro")])
    return AskAnswer(language=ui.lang, answer=answer, principles=principles)


def refuse(ui: UiStrings) -> AskAnswer:
    """No principle covers the question: said plainly, citing nothing."""
    return AskAnswer(
        language=ui.lang, answer=ui.text("ask", "nothing"), principles=[], kind=QuestionIntent.OFFTOPIC
    )


def decline_writing(
    principle: str | None, catalog: PrincipleCatalog, ui: UiStrings, score: float = 1.0
) -> AskAnswer:
    """A request to write the message: why Fournil will not (`flow.refusal`), then the
    principle behind it, in the asker's language (the refusal alone when there is none)."""
    parts = [ui.text("flow", "refusal")]
    cited: list[AskPrinciple] = []
    text = catalog.describe(principle, ui.lang) if principle else None
    if text is not None:
        cited.append(AskPrinciple(id=text.id, title=text.title, lang=text.lang, score=score))
        parts.append(f"{ui.text('ask', 'behind_refusal')}\n**{text.title}** ({text.id})\n{text.summary}")
    return AskAnswer(
        language=ui.lang, answer="\n\n".join(parts), principles=cited, kind=QuestionIntent.WRITE_REQUEST
    )
