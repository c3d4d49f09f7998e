"""Question angles: directions to explore, as open question stems the rep completes.

Stems end in "…" on purpose: Fournil points to a direction and leaves the words, the
facts about the buyer and the sending to the rep. Angles live in prompts/angles/.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.errors import KnowledgeError
from bot.core.models import Category, Finding


class AngleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    kind: str
    principle: str
    addresses: list[Category] = Field(default_factory=list)
    when: Literal["any", "has_anchor", "no_anchor"] = "any"
    stems: dict[str, list[str]]


@dataclass(frozen=True)
class Angle:
    id: str
    kind: str
    principle: str
    addresses: frozenset[Category]
    when: str
    stems: dict[str, tuple[str, ...]]
    order: int


def load_angles(directory: Path, languages: set[str]) -> tuple[Angle, ...]:
    angles: list[Angle] = []
    for order, path in enumerate(sorted(directory.glob("*.yaml"))):
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
            data = AngleFile.model_validate(raw)
        except yaml.YAMLError as exc:
            raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
        except ValidationError as exc:
            raise KnowledgeError.from_validation(path, exc) from None
        for lang in sorted(languages):
            stems = data.stems.get(lang)
            if not stems:
                raise KnowledgeError(path, f"stems.{lang}", "missing")
            for stem in stems:
                if "…" not in stem or not stem.rstrip().endswith("?"):
                    raise KnowledgeError(path, f"stems.{lang}", f"'{stem}' must be a question stem with …")
        angles.append(
            Angle(
                id=data.id,
                kind=data.kind,
                principle=data.principle,
                addresses=frozenset(data.addresses),
                when=data.when,
                stems={lang: tuple(items) for lang, items in data.stems.items()},
                order=order,
            )
        )
    if not angles:
        raise KnowledgeError(directory, "angles", "no angle file found")
    return tuple(angles)


def suggest_angles(
    text: str,
    lang: str,
    findings: list[Finding],
    has_anchor: bool,
    angles: tuple[Angle, ...],
    count: int = 3,
) -> list[str]:
    """Two or three stems from different angles, the ones the findings call for first.

    The choice of stem inside an angle follows a hash of the opener, so the same opener
    always gets the same card while different openers see different wordings.
    """
    categories = {finding.category for finding in findings}

    def weight(angle: Angle) -> tuple[int, int]:
        relevance = 2 * len(angle.addresses & categories)
        if angle.when == "has_anchor" and has_anchor:
            relevance += 1
        if angle.when == "no_anchor" and not has_anchor:
            relevance += 1
        return (-relevance, angle.order)

    seed = zlib.crc32(text.encode("utf-8", "replace"))
    chosen: list[str] = []
    kinds: set[str] = set()
    for angle in sorted(angles, key=weight):
        if angle.kind in kinds:
            continue
        stems = angle.stems.get(lang) or angle.stems.get("en") or ()
        if not stems:
            continue
        chosen.append(stems[(seed + angle.order) % len(stems)])
        kinds.add(angle.kind)
        if len(chosen) == count:
            break
    return chosen
