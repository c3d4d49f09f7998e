"""Per-language word lists (knowledge/rules/lexicons/<lang>.yaml), compiled once.

Lexicons hold every language-specific word the counting detectors and the score need, so
that supporting a language, or a new way of asking a question, is a data change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.core.errors import KnowledgeError
from bot.core.yaml_text import load_yaml


def _alternation(alternatives: list[str]) -> str:
    """Alternatives ending on a whole word; French elisions (j', qu', l') end on the
    apostrophe and are glued to the next word, so they get no trailing boundary."""
    ordered = sorted(alternatives, key=len, reverse=True)
    whole = "|".join(f"(?:{alt})" for alt in ordered if not alt.endswith("'"))
    elided = "|".join(f"(?:{alt})" for alt in ordered if alt.endswith("'"))
    parts = [f"(?:{whole})(?![\\w-])"] if whole else []
    if elided:
        parts.append(f"(?:{elided})")
    return "|".join(parts)


def word_pattern(alternatives: list[str]) -> re.Pattern[str]:
    """One regex matching any alternative as whole words (so `us` never matches `business`)."""
    return re.compile(rf"(?<![\w'’])(?:{_alternation(alternatives)})", re.IGNORECASE)


def prefix_pattern(alternatives: list[str], optional_prefix: str = "") -> re.Pattern[str]:
    """Regex anchored at the start of a clause."""
    return re.compile(rf"^\s*{optional_prefix}(?:{_alternation(alternatives)})", re.IGNORECASE)


class Readability(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hyphenation: str
    base: float
    sentence_weight: float
    syllable_weight: float
    plain_above: float
    hard_below: float


class LexiconFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lang: str
    readability: Readability
    greeting: list[str] = Field(min_length=1)
    signoff: list[str] = Field(min_length=1)
    first_person: list[str] = Field(min_length=1)
    second_person: list[str] = Field(min_length=1)
    self_neutral: list[str] = Field(default_factory=list)
    open_starters: list[str] = Field(min_length=1)
    open_prepositions: list[str] = Field(default_factory=list)
    closed_starters: list[str] = Field(min_length=1)
    closed_inversion: str | None = None
    open_anywhere: list[str] = Field(min_length=1)
    open_enders: list[str] = Field(default_factory=list)
    choice: list[str] = Field(default_factory=list)
    lead_ins: list[str] = Field(default_factory=list)
    indirect_open: list[str] = Field(default_factory=list)
    generic_questions: list[str] = Field(default_factory=list)
    context_anchors: list[str] = Field(default_factory=list)
    group_mentions: list[str] = Field(default_factory=list)
    function_words: list[str] = Field(default_factory=list)
    # Words that name no topic ("your profile and your background"): a compliment "on"
    # them stays generic; "on pricing experiments in PLG teams" names one.
    vague_words: list[str] = Field(default_factory=list)
    # A call opener's check of who answered ("is that Mr. Obi?", « je suis bien au service
    # informatique ? »): a short question of this form is not a question to the buyer.
    identity_checks: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Lexicon:
    """Compiled lexicon of one language."""

    lang: str
    readability: Readability
    greeting: re.Pattern[str]
    signoff_line: re.Pattern[str]
    first_person: re.Pattern[str]
    second_person: re.Pattern[str]
    self_neutral: re.Pattern[str] | None
    open_start: re.Pattern[str]
    open_anywhere: re.Pattern[str]
    closed_start: re.Pattern[str]
    open_end: re.Pattern[str] | None
    choice: re.Pattern[str] | None
    lead_in: re.Pattern[str] | None
    indirect_open: re.Pattern[str] | None
    generic_question: re.Pattern[str] | None
    context_anchor: re.Pattern[str] | None
    group_mention: re.Pattern[str] | None
    function_words: re.Pattern[str] | None
    topic_stopwords: frozenset[str] = frozenset()
    identity_check: re.Pattern[str] | None = None

    def function_word_count(self, text: str) -> int:
        """Grammar words of this language only (not shared with its neighbours)."""
        if self.function_words is None:
            return 0
        return len(self.function_words.findall(text.lower().replace("’", "'")))

    @classmethod
    def compile(cls, data: LexiconFile) -> Lexicon:
        def optional(words: list[str]) -> re.Pattern[str] | None:
            return word_pattern(words) if words else None

        preps = "|".join(data.open_prepositions)
        prep_part = rf"(?:(?:{preps})\s+)?" if preps else ""
        closed = list(data.closed_starters)
        if data.closed_inversion:
            closed.append(data.closed_inversion)
        lead = "|".join(sorted(data.lead_ins, key=len, reverse=True))
        return cls(
            lang=data.lang,
            readability=data.readability,
            # "Hi Sarah," / "Dear Dr. Smith," / "Hey Dana 🙌 Huge fan…" (the greeting stops at
            # the name: capitalised words only when no comma or colon closes it).
            greeting=re.compile(
                rf"^\s*(?:{'|'.join(data.greeting)})(?![\w-])"
                r"(?:[ \t\w'’-]{0,40}[,!:;\n—–]|(?:[ \t]+(?-i:[A-ZÀ-Ý])[\w'’.-]*){0,3}[,!.:;]?)",
                re.IGNORECASE,
            ),
            signoff_line=re.compile(
                rf"^\s*(?:{'|'.join(data.signoff)})(?![\w-])[^\n]{{0,30}}$", re.IGNORECASE
            ),
            first_person=word_pattern(data.first_person),
            second_person=word_pattern(data.second_person),
            self_neutral=optional(data.self_neutral),
            open_start=prefix_pattern(data.open_starters, prep_part),
            open_anywhere=word_pattern(data.open_anywhere),
            closed_start=prefix_pattern(closed),
            open_end=(
                re.compile(rf"(?<![\w'-])(?:{'|'.join(data.open_enders)})\s*$", re.IGNORECASE)
                if data.open_enders
                else None
            ),
            choice=(
                re.compile(rf",\s+(?:{'|'.join(data.choice)})\s+\w", re.IGNORECASE) if data.choice else None
            ),
            lead_in=(re.compile(rf"^\s*(?:{lead})(?![\w-])[\s,:;.!—–-]*", re.IGNORECASE) if lead else None),
            indirect_open=optional(data.indirect_open),
            generic_question=optional(data.generic_questions),
            context_anchor=optional(data.context_anchors),
            group_mention=optional(data.group_mentions),
            function_words=optional(data.function_words),
            topic_stopwords=frozenset(
                word.lower()
                for word in (*data.vague_words, *data.function_words, *data.first_person, *data.second_person)
            ),
            identity_check=prefix_pattern(data.identity_checks) if data.identity_checks else None,
        )


def load_lexicons(directory: Path) -> dict[str, Lexicon]:
    """Load every `<lang>.yaml` lexicon; a broken file names itself and the field."""
    lexicons: dict[str, Lexicon] = {}
    for path in sorted(directory.glob("*.yaml")):
        raw: Any = _read_yaml(path)
        try:
            data = LexiconFile.model_validate(raw)
            lexicons[data.lang] = Lexicon.compile(data)
        except ValidationError as exc:
            raise KnowledgeError.from_validation(path, exc) from None
        except re.error as exc:
            raise KnowledgeError(path, "patterns", f"invalid regular expression: {exc}") from None
        if path.stem != data.lang:
            raise KnowledgeError(path, "lang", f"'{data.lang}' does not match the file name")
    if not lexicons:
        raise KnowledgeError(directory, "lexicons", "no <lang>.yaml lexicon found")
    return lexicons


def _read_yaml(path: Path) -> Any:
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, "yaml", str(exc).replace("\n", " ")) from None
    except OSError as exc:
        raise KnowledgeError(path, "file", exc.strerror or str(exc)) from None
