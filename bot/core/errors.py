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
