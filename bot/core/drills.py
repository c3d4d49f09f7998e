"""Team drills: a weak opener (or a situation) a manager posts for the whole team to rework.

Drills are data in `prompts/drills/<id>.<lang>.yaml` so a manager can add one by hand
without touching code; every load problem therefore names the file and the field to fix.
A drill asks the rep for one opener or question of their own: Fournil then coaches the
answers like any other opener, it never supplies the expected message.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.errors import KnowledgeError
from bot.core.models import Category
from bot.core.yaml_text import load_yaml

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SUFFIX = ".yaml"


class Drill(BaseModel):
    """One drill in one language; its id is shared by its translations."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    lang: str = Field(min_length=2, max_length=5)
    title: str = Field(min_length=3)
    level: int = Field(ge=1, le=3)
    categories: list[Category] = Field(min_length=1)
    principles: list[str] = Field(min_length=1)
    buyer: str = Field(min_length=3)
    context: str = Field(min_length=10)
    # None when the drill is a situation to open from scratch rather than an opener to rework.
    opener: str | None = None
    instruction: str = Field(min_length=10)
    good_answer: list[str] = Field(min_length=2, max_length=4)

    @field_validator("id")
    @classmethod
    def _kebab(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("must be lower-case kebab-case (e.g. nagging-follow-up)")
        return value

    @field_validator("title", "buyer", "context", "instruction")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("opener")
    @classmethod
    def _opener_not_blank(cls, value: str | None) -> str | None:
        # An empty `opener:` key is an editing slip, not a deliberate "open from scratch".
        if value is not None and not value.strip():
            raise ValueError("must not be blank (omit the key for a drill without an opener)")
        return value.strip() if value is not None else None

    @field_validator("good_answer")
    @classmethod
    def _points_not_blank(cls, value: list[str]) -> list[str]:
        if any(not point.strip() for point in value):
            raise ValueError("points must not be blank")
        return [point.strip() for point in value]


def split_name(path: Path, suffix: str) -> tuple[str, str]:
    """`<id>.<lang><suffix>` → (id, lang): the file name is the editor's handle on a drill."""
    name = path.name
    stem = name[: -len(suffix)] if name.endswith(suffix) else path.stem
    drill_id, dot, lang = stem.rpartition(".")
    if not dot or not drill_id or not lang:
        raise KnowledgeError(path, "(file name)", f"must be <id>.<lang>{suffix}")
    return drill_id, lang


def check_name(path: Path, suffix: str, item_id: str, lang: str) -> None:
    """The file name and the front matter must agree, or a translation lookup silently misses."""
    name_id, name_lang = split_name(path, suffix)
    if item_id != name_id:
        raise KnowledgeError(path, "id", f"'{item_id}' does not match the file name ('{name_id}')")
    if lang != name_lang:
        raise KnowledgeError(path, "lang", f"'{lang}' does not match the file name ('{name_lang}')")


Model = TypeVar("Model", bound=BaseModel)


def load_yaml_model(path: Path, model: type[Model], what: str) -> Model:
    """One YAML mapping validated as `model`; any problem is one `KnowledgeError` naming
    the file and the field (drills and buyer sheets are read this same way)."""
    try:
        raw: Any = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(path, "file", str(exc)) from None
    if not isinstance(raw, dict):
        raise KnowledgeError(path, "(file)", f"{what} must be a YAML mapping")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError.from_validation(path, exc) from None


def load_drill(path: Path) -> Drill:
    drill = load_yaml_model(path, Drill, "a drill file")
    check_name(path, SUFFIX, drill.id, drill.lang)
    return drill


class DrillLibrary:
    """Every drill, by id and language, with the file each came from for error messages."""

    def __init__(self, entries: Iterable[tuple[Path, Drill]] = ()) -> None:
        self._by_key: dict[tuple[str, str], Drill] = {}
        self._paths: dict[tuple[str, str], Path] = {}
        for path, drill in entries:
            key = (drill.id, drill.lang)
            if key in self._by_key:
                raise KnowledgeError(
                    path, "id", f"duplicate drill '{drill.id}' in '{drill.lang}' (also {self._paths[key]})"
                )
            self._by_key[key] = drill
            self._paths[key] = path

    @classmethod
    def load(cls, directory: Path) -> DrillLibrary:
        """A missing directory is an empty library: drills are optional for a team."""
        if not directory.is_dir():
            return cls()
        return cls((path, load_drill(path)) for path in sorted(directory.glob(f"*{SUFFIX}")))

    def __len__(self) -> int:
        return len(self._by_key)

    def ids(self) -> list[str]:
        return sorted({drill_id for drill_id, _ in self._by_key})

    def all(self) -> list[Drill]:
        return [self._by_key[key] for key in sorted(self._by_key)]

    def get(self, drill_id: str, lang: str) -> Drill | None:
        return self._by_key.get((drill_id, lang))

    def path(self, drill_id: str, lang: str) -> Path | None:
        return self._paths.get((drill_id, lang))

    def for_language(self, lang: str) -> list[Drill]:
        return [drill for (_, drill_lang), drill in sorted(self._by_key.items()) if drill_lang == lang]

    def choose(
        self,
        lang: str,
        rng: random.Random,
        level: int | None = None,
        exclude: Collection[str] = (),
    ) -> Drill | None:
        """A random drill, avoiding `exclude` (recently posted) unless nothing else is left.

        The level is a hard filter: a manager who asks for beginner drills should never get
        an advanced one. Candidates are sorted before drawing so a seeded `rng` is reproducible.
        """
        candidates = [d for d in self.for_language(lang) if level is None or d.level == level]
        if not candidates:
            return None
        fresh = [d for d in candidates if d.id not in exclude]
        return rng.choice(fresh or candidates)

    def problems(self, languages: set[str], known_principles: set[str]) -> list[str]:
        """Cross-file problems: missing or inconsistent translations, unknown principles."""
        issues: list[str] = []
        for drill_id in self.ids():
            present = sorted(lang for did, lang in self._by_key if did == drill_id)
            reference = self._by_key[(drill_id, present[0])]
            reference_path = self._paths[(drill_id, present[0])]
            for lang in sorted(languages - set(present)):
                issues.append(f"{reference_path}: missing translation '{lang}'")
            for lang in present:
                path = self._paths[(drill_id, lang)]
                drill = self._by_key[(drill_id, lang)]
                if lang not in languages:
                    issues.append(f"{path}: lang: '{lang}' is not a supported language")
                if drill.level != reference.level:
                    issues.append(f"{path}: level: differs from {reference_path.name}")
                if set(drill.categories) != set(reference.categories):
                    issues.append(f"{path}: categories: differ from {reference_path.name}")
                if set(drill.principles) != set(reference.principles):
                    issues.append(f"{path}: principles: differ from {reference_path.name}")
        for (drill_id, lang), drill in sorted(self._by_key.items()):
            for principle in drill.principles:
                if principle not in known_principles:
                    path = self._paths[(drill_id, lang)]
                    issues.append(f"{path}: principles: unknown principle '{principle}'")
        return issues
