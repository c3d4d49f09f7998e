"""The principles of conversational selling: one markdown file per principle and language.

`knowledge/principles/<id>.<lang>.md` carries front matter (id, title, lang, summary, tags,
sources, related) and a body of level-2 sections (the idea, why it works, a weak and a
strong example). Loading validates all of it and names the file and field on any problem,
because a manager editing a file by hand must be told exactly what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.errors import KnowledgeError
from bot.core.front_matter import read_front_matter
from bot.core.models import PrincipleRef
from bot.core.ports import PrincipleText

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SECTION = re.compile(r"^##\s+(.+?)\s*$", re.MULTILINE)
MIN_SECTIONS = 4


class PrincipleMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: str = Field(min_length=3)
    lang: str = Field(min_length=2, max_length=5)
    summary: str = Field(min_length=10)
    tags: list[str] = Field(min_length=1)
    sources: list[str] = Field(min_length=1)
    related: list[str] = Field(default_factory=list)
    # Questions a rep or manager might ask that this principle answers, in the file's
    # language: what short questions are matched against when searching.
    asks: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _kebab(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be lower-case kebab-case (e.g. open-questions)")
        return value


@dataclass(frozen=True)
class Principle:
    id: str
    lang: str
    title: str
    summary: str
    tags: tuple[str, ...]
    sources: tuple[str, ...]
    related: tuple[str, ...]
    sections: tuple[tuple[str, str], ...]
    path: Path
    asks: tuple[str, ...] = ()

    @property
    def ref(self) -> PrincipleRef:
        return PrincipleRef(id=self.id, title=self.title)

    @property
    def body(self) -> str:
        return "\n\n".join(f"{heading}\n{text}" for heading, text in self.sections)


def load_principle(path: Path) -> Principle:
    metadata, content = read_front_matter(path)
    try:
        meta = PrincipleMeta.model_validate(metadata)
    except ValidationError as exc:
        raise KnowledgeError.from_validation(path, exc) from None
    expected = f"{meta.id}.{meta.lang}.md"
    if path.name != expected:
        raise KnowledgeError(path, "id/lang", f"front matter says {expected}")
    sections = _sections(content)
    if len(sections) < MIN_SECTIONS:
        raise KnowledgeError(path, "body", f"needs {MIN_SECTIONS} '## ' sections, found {len(sections)}")
    for heading, text in sections:
        if not text.strip():
            raise KnowledgeError(path, f"section '{heading}'", "is empty")
    return Principle(
        id=meta.id,
        lang=meta.lang,
        title=meta.title,
        summary=meta.summary,
        tags=tuple(meta.tags),
        sources=tuple(meta.sources),
        related=tuple(meta.related),
        sections=tuple(sections),
        path=path,
        asks=tuple(meta.asks),
    )


def _sections(content: str) -> list[tuple[str, str]]:
    matches = list(_SECTION.finditer(content))
    sections: list[tuple[str, str]] = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(content)
        sections.append((match.group(1), content[match.end() : end].strip()))
    return sections


class PrincipleStore:
    """All principles, by id and language."""

    def __init__(self, principles: list[Principle]) -> None:
        self._by_key: dict[tuple[str, str], Principle] = {}
        for principle in principles:
            key = (principle.id, principle.lang)
            if key in self._by_key:
                raise KnowledgeError(principle.path, "id", f"duplicate id '{principle.id}'")
            self._by_key[key] = principle

    @classmethod
    def load(cls, directory: Path) -> PrincipleStore:
        return cls([load_principle(path) for path in sorted(directory.glob("*.md"))])

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def ids(self) -> list[str]:
        return sorted({pid for pid, _ in self._by_key})

    @property
    def languages(self) -> set[str]:
        return {lang for _, lang in self._by_key}

    def all(self) -> list[Principle]:
        return [self._by_key[key] for key in sorted(self._by_key)]

    def get(self, principle_id: str, lang: str) -> Principle | None:
        """The principle in `lang`, or in any language if that translation is missing."""
        found = self._by_key.get((principle_id, lang))
        if found is not None:
            return found
        for (pid, _), principle in sorted(self._by_key.items()):
            if pid == principle_id:
                return principle
        return None

    def ref(self, principle_id: str, lang: str) -> PrincipleRef | None:
        principle = self.get(principle_id, lang)
        return principle.ref if principle is not None else None

    def describe(self, principle_id: str, lang: str) -> PrincipleText | None:
        principle = self.get(principle_id, lang)
        if principle is None:
            return None
        return PrincipleText(
            id=principle.id,
            lang=principle.lang,
            title=principle.title,
            summary=principle.summary,
            body=principle.body,
            sources=list(principle.sources),
            idea=principle.sections[0][1] if principle.sections else "",
            strong_example=principle.sections[3][1] if len(principle.sections) > 3 else "",
        )

    def problems(self, languages: set[str]) -> list[str]:
        """Cross-file problems: missing translations, broken `related` links."""
        issues: list[str] = []
        ids = set(self.ids)
        for pid in sorted(ids):
            for lang in sorted(languages):
                if (pid, lang) not in self._by_key:
                    issues.append(f"principle '{pid}': missing translation '{lang}'")
        for principle in self.all():
            for related in principle.related:
                if related not in ids:
                    issues.append(f"{principle.path}: related: unknown principle '{related}'")
        return issues
