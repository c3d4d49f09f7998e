"""The principles of conversational selling: one markdown file per principle and language.

`knowledge/principles/<id>.<lang>.md` carries front matter (id, title, lang, summary, tags,
sources, related, asks, aliases) and a body of level-2 sections (the idea, why it works, a
weak and a strong example). Loading validates all of it and names the file and field on any
problem, because a manager editing a file by hand must be told exactly what to fix.

`aliases` lists the ids of principles merged into this one. The store resolves an alias to
the kept id in every lookup (`resolve`, `get`, `ref`, `describe`), so rules, drills,
onboarding steps, evaluation sets and cards stored before a merge still find their
principle, and whatever is shown carries the kept id.
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
    # Ids of principles merged into this one: every lookup of one resolves to this id.
    aliases: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _kebab(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be lower-case kebab-case (e.g. open-questions)")
        return value

    @field_validator("aliases")
    @classmethod
    def _kebab_aliases(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _ID.match(value):
                raise ValueError(f"'{value}' must be lower-case kebab-case (e.g. open-questions)")
        return values


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
    aliases: tuple[str, ...] = ()

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
        aliases=tuple(dict.fromkeys(meta.aliases)),
    )


def _sections(content: str) -> list[tuple[str, str]]:
    matches = list(_SECTION.finditer(content))
    sections: list[tuple[str, str]] = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(content)
        sections.append((match.group(1), content[match.end() : end].strip()))
    return sections


class PrincipleStore:
    """All principles, by id and language; the one place where an id is resolved."""

    def __init__(self, principles: list[Principle]) -> None:
        self._by_key: dict[tuple[str, str], Principle] = {}
        for principle in principles:
            key = (principle.id, principle.lang)
            if key in self._by_key:
                raise KnowledgeError(principle.path, "id", f"duplicate id '{principle.id}'")
            self._by_key[key] = principle
        self._kept = frozenset(pid for pid, _ in self._by_key)
        self._aliases, self._alias_problems = _alias_map(self.all())

    @classmethod
    def load(cls, directory: Path) -> PrincipleStore:
        return cls([load_principle(path) for path in sorted(directory.glob("*.md"))])

    @classmethod
    def load_each(cls, directory: Path) -> tuple[list[Principle], list[KnowledgeError]]:
        """Every file loaded on its own: the principles that load, and one error per file
        that does not (for checks, where one broken file must not hide the others)."""
        principles: list[Principle] = []
        errors: list[KnowledgeError] = []
        for path in sorted(directory.glob("*.md")):
            try:
                principles.append(load_principle(path))
            except KnowledgeError as exc:
                errors.append(exc)
        return principles, errors

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def ids(self) -> list[str]:
        """The kept ids (aliases excluded)."""
        return sorted(self._kept)

    @property
    def aliases(self) -> dict[str, str]:
        """Each alias and the kept id it resolves to."""
        return dict(self._aliases)

    @property
    def names(self) -> set[str]:
        """Every id that resolves: the kept ids and their aliases."""
        return set(self.ids) | set(self._aliases)

    @property
    def languages(self) -> set[str]:
        return {lang for _, lang in self._by_key}

    def all(self) -> list[Principle]:
        return [self._by_key[key] for key in sorted(self._by_key)]

    def translations(self, principle_id: str) -> set[str]:
        """The languages this id (or alias) is written in."""
        kept = self.resolve(principle_id)
        return {lang for pid, lang in self._by_key if pid == kept}

    def resolve(self, principle_id: str) -> str | None:
        """The kept id for an id or an alias; None when neither resolves."""
        if principle_id in self._kept:
            return principle_id
        return self._aliases.get(principle_id)

    def get(self, principle_id: str, lang: str) -> Principle | None:
        """The principle in `lang`, or in any language if that translation is missing;
        an alias gives the principle it was merged into."""
        kept = self.resolve(principle_id)
        if kept is None:
            return None
        found = self._by_key.get((kept, lang))
        if found is not None:
            return found
        for (pid, _), principle in sorted(self._by_key.items()):
            if pid == kept:
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
        """Cross-file problems: missing translations, aliases that collide or differ
        between translations, `related` links that neither an id nor an alias resolves."""
        issues: list[str] = []
        for pid in self.ids:
            for lang in sorted(languages):
                if (pid, lang) not in self._by_key:
                    issues.append(f"principle '{pid}': missing translation '{lang}'")
        issues += self._alias_problems
        for principle in self.all():
            issues += self.related_problems(principle)
        return issues

    def related_problems(self, principle: Principle) -> list[str]:
        """One line per `related` id of this file that does not resolve."""
        return [
            f"{principle.path}: related: unknown principle '{related}' (neither an id nor an alias)"
            for related in principle.related
            if self.resolve(related) is None
        ]

    def alias_problems(self, path: Path | None = None) -> list[str]:
        """Alias collisions and differences, all of them or those of one file."""
        if path is None:
            return list(self._alias_problems)
        return [issue for issue in self._alias_problems if issue.startswith(f"{path}:")]


def _alias_map(principles: list[Principle]) -> tuple[dict[str, str], list[str]]:
    """alias -> kept id, and the problems, one line per file: an alias that is also a kept
    id, one claimed by two principles (dropped: neither may win by file order), and
    translations that list different aliases (their union resolves)."""
    kept: dict[str, Principle] = {}
    for principle in principles:
        kept.setdefault(principle.id, principle)
    claims: dict[str, list[Principle]] = {}
    problems: list[str] = []
    for principle in principles:
        reference = kept[principle.id]  # the first translation: the others are compared with it
        if reference is not principle and set(principle.aliases) != set(reference.aliases):
            problems.append(f"{principle.path}: aliases: differ from {reference.path.name}")
        for alias in principle.aliases:
            if alias in kept:
                other = kept[alias]
                where = "its own id" if other.id == principle.id else f"the id of {other.path.name}"
                problems.append(f"{principle.path}: aliases: '{alias}' is {where}, not an old id")
            else:
                claims.setdefault(alias, []).append(principle)
    aliases: dict[str, str] = {}
    for alias, owners in sorted(claims.items()):
        ids = {owner.id for owner in owners}
        if len(ids) == 1:
            aliases[alias] = ids.pop()
            continue
        for owner in owners:
            others = ", ".join(sorted({o.path.name for o in owners if o.id != owner.id}))
            problems.append(f"{owner.path}: aliases: '{alias}' is also claimed by {others}")
    return aliases, problems
