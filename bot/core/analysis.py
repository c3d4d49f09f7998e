"""Reading an opener the way a coach does: greeting, body, sign-off, sentences, questions.

Everything here is computed once per opener and shared by the rules, the score and the
question angles. Offsets always refer to the original text so excerpts quote the rep's
own words, typography included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import pyphen

from bot.core.lexicon import Lexicon

QuestionForm = Literal["open", "closed"]

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'"})
_SPACES = re.compile(r"[\u00a0\u202f\u2009\u2007\u200a]")
_QUOTES = str.maketrans({"«": '"', "»": '"', "“": '"', "”": '"', "„": '"'})
# Linear time: a run of end marks is read once, from its first character ("!?!?!?…" of
# 8,000 characters would otherwise be retried from each of them).
_SENTENCE_END = re.compile(r"(?<![.!?…])[.!?…]++[\"')\]»”]*+(?=\s|$)|\n+")
_ABBREVIATION = re.compile(
    r"(?<![\w])(?:st|dr|mr|mrs|ms|mme|mlle|m|p|e\.g|i\.e|etc|vs|cf|env|no|n°|inc|ltd|corp|co)\.$"
)
_CLAUSE_SPLIT = re.compile(r"[,;:(—–]|\s-\s")
# Two questions glued in one sentence: "How do you…, and would you…?" / "…, et quelle…?"
# Bounded gaps: "\s+-" would re-read a long run of spaces from each of its characters.
_JOINED_QUESTIONS = re.compile(r",\s{0,8}(?:and|et)\s{1,8}|;\s{1,8}|\s{1,8}-\s{1,8}(?:and|et)\s{1,8}")
_OR_NOT = re.compile(r"\b(?:or not|ou pas|ou non)\b")
_WORD = re.compile(r"[^\W_]+(?:['-][^\W_]+)*", re.UNICODE)
_DIGIT = re.compile(r"\d")
_QUOTED = re.compile(r"[\"«“][^\"»”]{3,300}[\"»”]")  # bounded: a run of « is bait otherwise
# "your post on pricing experiments in PLG teams": a named topic makes a compliment specific.
# The prepositions are per language: French « on a une solution » is a pronoun, not a topic.
_TOPIC_PREPOSITIONS = {
    "en": "on|about|regarding|around",
    "fr": "sur|concernant|au sujet de|à propos de|autour de",
}
_TOPIC_TAIL = r"\s+(?:[^\W\d_]+[\s'’-]+){2,}[^\W\d_]+"
_TOPIC = {
    lang: re.compile(rf"\b(?:{preps}){_TOPIC_TAIL}", re.IGNORECASE)
    for lang, preps in {**_TOPIC_PREPOSITIONS, "": "|".join(_TOPIC_PREPOSITIONS.values())}.items()
}
# In chat messages a run of emoji ends a thought like a full stop does: "Huge fan of your
# studio 🙌 we help studios 10x retention" praises nothing specific, whatever follows.
_EMOJI_RUN = re.compile(r"[\u2600-\u27bf\U0001f000-\U0001faff\ufe0f\u200d]+")


def normalise(text: str) -> str:
    """Lower-case with unified apostrophes, quotes and spaces; same length as `text`."""
    lowered = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
    return _SPACES.sub(" ", lowered.translate(_APOSTROPHES).translate(_QUOTES))


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    text: str
    norm: str
    is_question: bool = False
    form: QuestionForm | None = None
    parts: tuple[QuestionForm, ...] = ()
    indirect: bool = False
    generic: bool = False
    about_buyer: bool = False
    specific: bool = False
    # Offsets (in the whole text) of the emoji-delimited parts of the sentence that name
    # something concrete; a compliment is judged on its own part, not on a pitch after it.
    specific_spans: tuple[tuple[int, int], ...] = ()
    identity_check: bool = False  # "is that Mr. Obi?": asks the buyer nothing


@dataclass(frozen=True)
class OpenerAnalysis:
    """The facts about one opener that rules, score and angles read."""

    text: str
    norm: str
    lang: str
    body_start: int
    body_end: int
    sentences: tuple[Sentence, ...]
    word_count: int
    first_person: int
    second_person: int
    self_neutral: int
    context_anchor: str | None
    reading_ease: float | None
    greeting: str | None = None

    @property
    def body_norm(self) -> str:
        return self.norm[self.body_start : self.body_end]

    @property
    def questions(self) -> tuple[Sentence, ...]:
        return tuple(s for s in self.sentences if s.is_question)

    @property
    def question_count(self) -> int:
        """Questions asked, counting two joined in one sentence as two."""
        return sum(max(1, len(s.parts)) for s in self.questions)

    @property
    def closed_questions(self) -> tuple[Sentence, ...]:
        return tuple(s for s in self.questions if "closed" in s.parts)

    @property
    def open_questions(self) -> tuple[Sentence, ...]:
        return tuple(s for s in self.questions if s.form == "open")

    @property
    def buyer_questions(self) -> tuple[Sentence, ...]:
        """Open questions about the buyer's own situation, not "what do you think?"."""
        return tuple(s for s in self.open_questions if s.about_buyer and not s.generic)

    def sentence_at(self, offset: int) -> Sentence | None:
        for sentence in self.sentences:
            if sentence.start <= offset < sentence.end:
                return sentence
        return None

    def specific_at(self, offset: int) -> bool:
        """Whether the part of the sentence holding `offset` names something concrete."""
        sentence = self.sentence_at(offset)
        if sentence is None:
            return False
        return any(start <= offset < end for start, end in sentence.specific_spans)


def analyse_opener(text: str, lang: str, lexicon: Lexicon) -> OpenerAnalysis:
    norm = normalise(text)
    body_start, greeting = _greeting_end(norm, text, lexicon)
    body_end = _signoff_start(norm, body_start, lexicon)
    sentences = tuple(
        _read_sentence(text, norm, start, end, lexicon)
        for start, end in _sentence_spans(norm, body_start, body_end)
    )
    body = norm[body_start:body_end]
    words = _WORD.findall(body)
    first = len(lexicon.first_person.findall(body))
    second = len(lexicon.second_person.findall(body))
    neutral = len(lexicon.self_neutral.findall(body)) if lexicon.self_neutral else 0
    anchor = _context_anchor(text, norm, body_start, body_end, lexicon)
    return OpenerAnalysis(
        text=text,
        norm=norm,
        lang=lang,
        body_start=body_start,
        body_end=body_end,
        sentences=sentences,
        word_count=len(words),
        first_person=first,
        second_person=second,
        self_neutral=neutral,
        context_anchor=anchor,
        reading_ease=reading_ease(text[body_start:body_end], lexicon),
        greeting=greeting,
    )


def _greeting_end(norm: str, text: str, lexicon: Lexicon) -> tuple[int, str | None]:
    # Matched on the original text: a name is told from the message by its capital letter
    # (norm is lower-cased, and has the same length).
    match = lexicon.greeting.match(text)
    if not match:
        return 0, None
    # "Hi Sarah, how are you handling…" keeps its question: only the salutation is cut.
    end = match.end()
    return end, text[match.start() : end].strip() or None


def _signoff_start(norm: str, body_start: int, lexicon: Lexicon) -> int:
    lines = norm.split("\n")
    offset = len(norm)
    position = len(norm)
    # Look at the last few lines only: a sign-off sits at the end.
    for line in reversed(lines[-4:]):
        position -= len(line)
        if lexicon.signoff_line.match(line) and position > body_start:
            offset = position
        position -= 1
    return offset


def _sentence_spans(norm: str, start: int, end: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _SENTENCE_END.finditer(norm, start, end):
        if _ABBREVIATION.search(norm, max(cursor, match.start() - 6), match.end()):
            continue
        if match.end() > cursor and norm[cursor : match.end()].strip():
            spans.append((cursor, match.end()))
        cursor = match.end()
    if norm[cursor:end].strip():
        spans.append((cursor, end))
    return spans


def _read_sentence(text: str, norm: str, start: int, end: int, lex: Lexicon) -> Sentence:
    raw = text[start:end]
    lead = len(raw) - len(raw.lstrip())
    start += lead
    raw = raw.strip()
    snorm = norm[start : start + len(raw)]
    stripped = snorm.rstrip()
    while stripped and not stripped[-1].isalnum() and stripped[-1] != "?":
        stripped = stripped[:-1].rstrip()
    # Read on the original text: a name is told by its capital ("is that Mr. Obi?" is a
    # check, "is that a priority?" a question).
    identity = stripped.endswith("?") and _identity_check(raw.rstrip(), lex)
    is_direct = stripped.endswith("?") and not identity
    indirect = bool(not is_direct and lex.indirect_open and lex.indirect_open.search(snorm))
    spans = _specific_spans(raw, start, lex)
    specific = bool(spans)
    if not (is_direct or indirect):
        return Sentence(
            start,
            start + len(raw),
            raw,
            snorm,
            specific=specific,
            specific_spans=spans,
            identity_check=identity,
        )
    parts: list[QuestionForm] = ["open"] if indirect else question_parts(stripped.rstrip("?").rstrip(), lex)
    form = parts[-1]
    generic = bool(lex.generic_question and lex.generic_question.search(snorm)) and (
        len(_WORD.findall(snorm)) <= 8
    )
    about_buyer = bool(lex.second_person.search(snorm)) or indirect
    return Sentence(
        start,
        start + len(raw),
        raw,
        snorm,
        is_question=True,
        form=form,
        parts=tuple(parts),
        indirect=indirect,
        generic=generic,
        about_buyer=about_buyer,
        specific=specific,
        specific_spans=spans,
    )


_IDENTITY_CHECK_WORDS = 8


def _identity_check(question: str, lex: Lexicon) -> bool:
    """ "Is that Mr. Obi?" on the phone checks who answered; it asks the buyer nothing."""
    if lex.identity_check is None or len(_WORD.findall(question)) > _IDENTITY_CHECK_WORDS:
        return False
    return bool(lex.identity_check.match(_strip_lead_ins(question, lex)))


def question_form(question: str, lex: Lexicon) -> QuestionForm:
    """Open or closed, read from the form of the clause that carries the question.

    "Given the new rules, how are you adapting?" is open; "How do you plan it, and would
    you be open to a call?" ends on a yes/no clause and is closed; an intonation question
    with no question word ("Vous êtes dispo jeudi ?") is closed, but "tu es dispo quand ?"
    and a choice between alternatives ("is it X, or Y?") are open.
    """
    return question_parts(question, lex)[-1]


def question_parts(question: str, lex: Lexicon) -> list[QuestionForm]:
    """The form of each question a sentence asks ("How…, and would you…?" asks two)."""
    if lex.indirect_open and lex.indirect_open.search(question):
        return ["open"]
    parts: list[QuestionForm] = []
    chunks = _JOINED_QUESTIONS.split(question)
    for chunk_index, chunk in enumerate(chunks):
        decided: QuestionForm | None = None
        for clause in _CLAUSE_SPLIT.split(chunk):
            clause = _strip_lead_ins(clause, lex)
            if not clause:
                continue
            if lex.open_start.match(clause):
                decided = "open"
            elif lex.closed_start.match(clause):
                decided = "open" if _in_situ_or_choice(clause, chunk, lex) else "closed"
        if decided is None and chunk_index == len(chunks) - 1 and not parts:
            clauses = [c for c in _CLAUSE_SPLIT.split(chunk) if c.strip()]
            last = clauses[-1] if clauses else chunk
            decided = "open" if lex.open_anywhere.search(last) else "closed"
        if decided is not None:
            parts.append(decided)
    return parts or ["closed"]


def _in_situ_or_choice(clause: str, chunk: str, lex: Lexicon) -> bool:
    """ "Tu es dispo quand ?" ends on its question word; "is it X, or Y?" offers a choice."""
    if lex.open_end and lex.open_end.search(clause):
        return True
    return bool(lex.choice and lex.choice.search(chunk) and not _OR_NOT.search(chunk))


def _strip_lead_ins(clause: str, lex: Lexicon) -> str:
    clause = clause.strip()
    if lex.lead_in is None:
        return clause
    for _ in range(4):
        match = lex.lead_in.match(clause)
        if not match or match.end() == 0:
            break
        clause = clause[match.end() :].strip()
    return clause


def _specific_spans(raw: str, start: int, lex: Lexicon) -> tuple[tuple[int, int], ...]:
    """The emoji-delimited parts of a sentence that are specific, as absolute offsets."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for cut in [*_EMOJI_RUN.finditer(raw), None]:
        end = cut.start() if cut else len(raw)
        if raw[cursor:end].strip() and _is_specific(raw[cursor:end], lex):
            spans.append((start + cursor, start + (cut.end() if cut else len(raw))))
        cursor = cut.end() if cut else len(raw)
    return tuple(spans)


def _is_specific(raw: str, lex: Lexicon) -> bool:
    """A sentence naming something concrete: a number, a quotation, a topic."""
    # A company name alone is not specific: "love what you do at Acme" fits anyone.
    if _DIGIT.search(raw) or _QUOTED.search(raw):
        return True
    for topic in _TOPIC.get(lex.lang, _TOPIC[""]).finditer(raw):
        words = [w.lower() for w in _WORD.findall(topic.group(0))[1:]]
        if sum(1 for w in words if w not in lex.topic_stopwords) >= 2:
            return True
    return False


def _context_anchor(text: str, norm: str, start: int, end: int, lex: Lexicon) -> str | None:
    if lex.context_anchor is None:
        return None
    match = lex.context_anchor.search(norm, start, end)
    return text[match.start() : match.end()] if match else None


@lru_cache(maxsize=8)
def _hyphenator(lang: str) -> pyphen.Pyphen:
    return pyphen.Pyphen(lang=lang)


def reading_ease(text: str, lexicon: Lexicon) -> float | None:
    """Flesch reading ease with each language's constants (Kandel & Moles for French);
    syllables come from the hyphenation dictionaries shipped inside pyphen."""
    words = _WORD.findall(text)
    if len(words) < 8:
        return None
    sentences = max(1, len([m for m in _SENTENCE_END.finditer(text.strip())]))
    hyphenator = _hyphenator(lexicon.readability.hyphenation)
    syllables = sum(_syllables(word, hyphenator) for word in words)
    params = lexicon.readability
    return (
        params.base
        - params.sentence_weight * (len(words) / sentences)
        - params.syllable_weight * (syllables / len(words))
    )


def _syllables(word: str, hyphenator: pyphen.Pyphen) -> int:
    if word.isdigit():
        return max(1, len(word) // 2)
    return len(hyphenator.positions(word.lower())) + 1
