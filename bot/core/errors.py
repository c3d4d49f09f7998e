"""Errors that carry a user-facing, one-line explanation."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class FournilError(Exception):
    """Base class: `str(error)` is a complete sentence fit for a user."""


class KnowledgeError(FournilError):
    """A knowledge, rule, lexicon or prompt file is broken; names the file and the field."""

    def __init__(self, path: Path, field: str, problem: str) -> None:
        self.path = path
        self.field = field
        self.problem = problem
        super().__init__(f"{path}: {field}: {problem}")

    @classmethod
    def from_validation(cls, path: Path, exc: ValidationError) -> KnowledgeError:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(file)"
        return cls(path, field, first["msg"])


class SetupError(FournilError):
    """A resource the configuration points at (data dir, database, knowledge index) cannot
    be used: the message says what is wrong and which setting or path to check."""

    lead = ""

    def __init__(self, problem: str, setting: str) -> None:
        self.problem = problem
        self.setting = setting
        super().__init__(f"{self.lead}{problem}; check {setting}")


class StoreUnavailable(SetupError):
    """The data directory or the database cannot be opened, read or written."""


class IndexUnavailable(SetupError):
    """The knowledge index (Chroma) cannot be reached or opened right now: an outage, not a
    bug. Cards go on without related principles; a search raises this error."""

    lead = "the knowledge index is unavailable right now: "
