"""Prospect details never leave the process or reach the store.

Before an opener is saved or logged, these are replaced by placeholders:

- emails, including ``marie.dupont [at] acme [dot] fr`` obfuscations → ``[email]``;
- phone numbers that Google's libphonenumber judges valid for France, the UK or the US, or
  written with a ``+country`` code → ``[phone]``;
- URLs that point at a person: social profiles (``linkedin.com/in/…``, ``x.com/…``, ``t.me/…``,
  ``calendly.com/…``, ``github.com/<user>``…) and any URL whose path or query holds an email or
  looks like a profile (``/u/name``, ``/users/name``, ``/profile/…``, ``/~name``, ``/@name``)
  → ``[profile-url]``;
- names the rep marks with double brackets (``[[Marie Dupont]]``) and the name right after a
  greeting (``Hi Sarah,``, ``Bonjour Madame Martin,``, and in chat lowercase ``hi sarah,``)
  → ``[name]``;
- person names anywhere else, French and English → ``[name]``: a known first name with a
  capital and the surname after it ("my colleague, Ophélie Garnier, told me", "Jean-Baptiste
  Lefebvre suggested", "Stefan van der Berg", "Olivier DUPONT"); a first name alone inside a
  sentence ("I spoke with Priya at the fair", "qu'Antoine"), or at its start before a verb of
  speech, a possessive or another name ("Ophélie m'a dit", "Kevin's numbers", "Vincent et
  Pauline"); the words after an honorific, which stays ("Mme [name]", "Dr. [name]").

First names come from the lists of Faker's person providers (offline, in its wheel); the
words that make a capitalised word a place, a company, a title or a date rather than a person
are in knowledge/redaction/names.yaml ("Victoria Station", "Jordan Logistics", "rue Victor
Hugo", "Leroy Merlin", "Johnson & Johnson", "Will Salesforce …?", "upgrade to Max", "avant
Noël"). A first name that is also a common word, a place or a brand is only hidden with a
surname. Names typed in lowercase outside a greeting, and names missing from the lists
without an honorific in front, are not found. bench/redaction_names.py measures both
directions on tests/data/names_redaction.jsonl.

Company homepages (``https://acme.com``, ``acme.fr/pricing``), years, prices, counts, dates and
single-bracket template leftovers (``[Company]``, ``{first_name}``) are left as they are: the
coach needs them.
"""

from __future__ import annotations

import functools
import importlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

from bot.core.yaml_text import load_yaml

KINDS = ("email", "phone", "url", "name")
PLACEHOLDERS = {"email": "[email]", "phone": "[phone]", "url": "[profile-url]", "name": "[name]"}

# --- URLs ---------------------------------------------------------------------------------

# A host with a dotted name, then a path or query: a URL without one is a homepage and stays.
_URL = re.compile(
    r"(?<![\w@.%+-])(?:https?://)?(?:[\w-]+\.)+[^\W\d_]{2,}(?::\d{1,5})?[/?#][^\s<>\"'`\[\]{}|\\^]*",
    re.IGNORECASE,
)
_URL_TRAILING = re.compile(r"[.,;:!?)»”’'\"…]+$")
# Hosts where any path names a person (or a handle, which is as identifying).
_PERSONAL_HOSTS = (
    "x.com",
    "twitter.com",
    "facebook.com",
    "fb.com",
    "instagram.com",
    "t.me",
    "telegram.me",
    "wa.me",
    "calendly.com",
    "cal.com",
    "github.com",
    "tiktok.com",
    "threads.net",
    "bsky.app",
    "linktr.ee",
)
# LinkedIn: profiles and Sales Navigator / Recruiter lead pages; company pages stay.
_LINKEDIN_PERSONAL = re.compile(r"/(?:in|pub|sales|talent)/[^/?#]", re.IGNORECASE)
# The same, inside another URL's path or query (a redirect: google.com/url?q=https://…/in/…).
_NESTED_PERSONAL = re.compile(
    r"(?<![\w-])(?:linkedin\.com/(?:in|pub|sales|talent)/"
    rf"|(?:{'|'.join(re.escape(h) for h in _PERSONAL_HOSTS)})/)[^/?#&\s]",
    re.IGNORECASE,
)
_PROFILE_PATH = re.compile(
    r"/(?:(?:u|user|users|member|members|profile|profiles)/[^/?#\s]|[~@][^/?#\s])",
    re.IGNORECASE,
)
_EMAIL_IN_URL = re.compile(r"[\w.%+-]{1,64}@[\w-]{1,255}\.[\w.-]{1,255}")  # RFC 5321 lengths; bounded

# --- Emails -------------------------------------------------------------------------------

_AT = r"(?:@|\s*[\[(]\s*(?:at|arobase|@)\s*[\])]\s*)"
_DOT = r"(?:\.|\s*[\[(]\s*(?:dot|point)\s*[\])]\s*)"
_AT_WORD = re.compile(r"[\[(]\s*(?:at|arobase)\s*[\])]", re.IGNORECASE)
_EMAIL = re.compile(
    rf"(?<![\w.%+-])[\w%+-]+(?:\.[\w%+-]+)*{_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}[^\W\d_]{{2,}}(?![\w-])",
    re.IGNORECASE,
)

# --- Phones -------------------------------------------------------------------------------

# The matcher costs about 1 ms per region on a whole opener with numbers in it, so it only reads
# the runs of 7+ digits (short separators allowed), each with the regions that can read it: a
# group after "+" is international (any region parses it); one starting with 0 is French or
# British (10 digits, or 8 for the shortest UK freephone numbers); a US number has 10 digits
# and starts with 2-9, or 11 with a leading 1. Years, dates, prices and counts ("2024",
# "12.03.2025", "3 500 000 €") mostly stop there.
_PHONE_RUN = re.compile(r"\d(?:[^\w\n]{0,4}\d){6,}")
_DIGIT_GROUP = re.compile(r"\d+")
_MAX_PHONE_DIGITS = 17  # country code and national number, at most
# libphonenumber does not take the thin and narrow no-break spaces of French typography as
# separators: they become plain spaces (one character for one, so the offsets hold).
_SPACES = str.maketrans(dict.fromkeys("\u2007\u2008\u2009\u200a\u202f\u205f", " "))

# --- Names --------------------------------------------------------------------------------

# A placeholder in double brackets (``[[phone]]``, from ``[06 12 34 56 78]]``) hides nothing: left.
_DOUBLE_BRACKETS = re.compile(
    r"(?<!\[)\[{2,}+(?!(?:email|phone|profile-url|name)\])[^\S\n]*+[^\[\]\s][^\[\]\n]*\]{2,}"
)

_UPPER = "".join(re.escape(c) for c in map(chr, range(0x41, 0x530)) if c.isupper() and c.isalpha())
_NAME_WORD = rf"(?:[{_UPPER}]\.(?=\s)|(?:[dD]['’])?[{_UPPER}][\w'’-]*)"
_PARTICLE = r"(?:de\s+la|de|du|des|la|le|van|von|der|den|ter|di|da|del|della|dos)"
_NAME = rf"(?:{_PARTICLE}[^\S\n]+)?{_NAME_WORD}(?:[^\S\n]+(?:{_PARTICLE}[^\S\n]+)?{_NAME_WORD}){{0,2}}"
_GREETING_WORD = (
    r"(?i:hi|hello|hey|hiya|dear|greetings|good\s+(?:morning|afternoon|evening)"
    r"|bonjour|bonsoir|salut|coucou|cher|chère|chers|chères)"
)
# Linear time: a greeting may start after a quote or markup character, but the run of such
# characters in its lead is only read from the run's first character (possessively), so a
# message of 8,000 quote marks costs one pass instead of one pass per character.
_GREETING = re.compile(
    r"(?:^|(?<=[:\"“«'(>*_])|(?<=[.!?…]\s))"
    r"(?P<lead>[^\S\n]*+(?:(?<![\"“«'>*_])[\"“«'>*_]++)?[^\S\n]*+"
    rf"{_GREETING_WORD}"
    r"(?:[^\S\n]+(?i:mr|mrs|ms|mx|miss|dr|prof|sir|madam|madame|monsieur|mademoiselle|mme|mlle|me|m"
    r"|docteur|professeur|maître|maitre)\.?)?[^\S\n]+)"
    rf"(?P<first>{_NAME})"
    rf"(?:(?P<joint>[^\S\n]+(?:and|et|&)[^\S\n]+)(?P<second>{_NAME}))?"
    r"(?=[^\S\n]*(?:[,!:;?.…)\n–—-]|$))",
    re.MULTILINE,
)
# Chat is often typed in lowercase ("hi sarah, saw your post"): one lowercase word right
# after a greeting that opens a line, then a comma or "!", is a name too. Two words are not
# taken ("hey quick question,"), nor the words below.
_GREETING_LOWERCASE = re.compile(
    rf"^(?P<lead>[^\S\n]*{_GREETING_WORD}[^\S\n]+)"
    r"(?P<first>[a-zß-öø-ÿ][a-zß-öø-ÿ'’-]+)"
    r"(?=[^\S\n]*[,!])",
    re.MULTILINE,
)
# Words after a greeting that are not a person's name.
_NOT_A_NAME = re.compile(
    r"(?i)(?:team|teams|all|everyone|everybody|there|folks|guys|friends|again|world|tous|toutes"
    r"|équipe|equipe|madame|monsieur|mademoiselle|sir|madam|mr|mrs|ms|mx|miss|dr|prof|m|mme|mlle|me"
    r"|docteur|professeur|maître|maitre"
    r"|you|y'all|both|mate|buddy|pal|toi|vous|les|gang|hello|hi|hey|and|et"
    r"|colleagues?|customers?|clients?|partners?|collègues|collegues|amis|partenaires|messieurs|mesdames)\.?"
)


def _is_personal_url(url: str) -> bool:
    rest = re.sub(r"^https?://", "", url, flags=re.IGNORECASE)
    split = re.search(r"[/?#]", rest)
    if split is None:
        return False
    host = rest[: split.start()].split(":")[0].lower()
    path = unquote(rest[split.start() :])
    if host == "linkedin.com" or host.endswith(".linkedin.com"):
        if _LINKEDIN_PERSONAL.match(path):
            return True
    elif any(host == h or host.endswith("." + h) for h in _PERSONAL_HOSTS) and re.match(r"/[^/?#\s]", path):
        return True
    return any(p.search(path) for p in (_EMAIL_IN_URL, _PROFILE_PATH, _NESTED_PERSONAL))


def _redact_urls(text: str) -> tuple[str, int]:
    # Every personal URL has a "/" (an email in a bare query is caught as an email anyway).
    if "/" not in text:
        return text, 0
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        url = match.group()
        trailing = _URL_TRAILING.search(url)
        tail = trailing.group() if trailing else ""
        url = url[: len(url) - len(tail)]
        if not _is_personal_url(url):
            return match.group()
        count += 1
        return PLACEHOLDERS["url"] + tail

    return _URL.sub(replace, text), count


def _phone_regions(text: str, groups: list[re.Match[str]]) -> set[str]:
    """Which regions can read a phone number in these digit groups of one run."""
    regions: set[str] = set()
    remaining = sum(len(g.group()) for g in groups)
    for group in groups:
        first = int(group.group()[0])
        if text[group.start() - 1 : group.start()] in ("+", "＋"):
            regions.add("FR")
        elif first == 0 and remaining >= 8:
            regions.update(("FR", "GB"))
        elif (first == 1 and remaining >= 11) or (first >= 2 and remaining >= 10):
            regions.add("US")
        remaining -= len(group.group())
    return regions


def _has_phone_shape(digits: str) -> bool:
    """Digit counts and leading digits a number needs before it is worth parsing (no "+" in
    front): French 0[1-9] + 8 digits; British 0[1-9] and 8, 10 or 11 digits in all; US
    [2-9]XX [2-9]XX XXXX with an optional 1 in front; anything after "00"."""
    if digits.startswith("00"):
        return True
    if digits.startswith("0"):
        return len(digits) in (8, 10, 11) and digits[1] != "0"
    national = digits[1:] if len(digits) == 11 and digits[0] == "1" else digits
    return len(national) == 10 and national[0] >= "2" and national[3] >= "2"


def _is_valid_phone(candidate: str, regions: set[str]) -> bool:
    for region in sorted(regions):
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


def _is_glued(char: str) -> bool:
    """A neighbour that makes digits part of something else (a word, an amount, a percentage)."""
    return char.isalpha() or char == "%" or (char != "" and unicodedata.category(char) == "Sc")


class _ParseBudget:
    """How many candidates libphonenumber may still parse for one text (each costs ~0.1 ms),
    and how many may be looked at in all.

    A real opener needs a handful; a hostile run such as "0-0-0-…" of 8,000 characters would
    need tens of thousands. Repeated candidates are answered from a cache, and when the
    budget is spent the rest of the run is hidden whole: hiding digits that may be a phone
    number is the safe side."""

    def __init__(self, parses: int = 300, checks: int = 2000) -> None:
        self.parses = parses
        self.checks = checks
        self._seen: dict[tuple[str, frozenset[str]], bool] = {}

    def is_valid(self, candidate: str, regions: set[str]) -> bool | None:
        """None when the budget is spent."""
        self.checks -= 1
        if self.checks < 0:
            return None
        key = (candidate, frozenset(regions))
        if key not in self._seen:
            if self.parses <= 0:
                return None
            self.parses -= 1
            self._seen[key] = _is_valid_phone(candidate, regions)
        return self._seen[key]


def _numbers_in_groups(
    text: str, groups: list[re.Match[str]], regions: set[str], budget: _ParseBudget
) -> list[tuple[int, int]]:
    """Valid numbers made of whole consecutive groups, longest first: the matcher gives up on a
    run such as "06 12 34 56 78 06 98 76 54 32" (two numbers, one space apart)."""
    digits = "".join(str(int(c)) for g in groups for c in g.group())
    counted = [0]
    for group in groups:
        counted.append(counted[-1] + len(group.group()))
    found: list[tuple[int, int]] = []
    i = 0
    while i < len(groups):
        for j in range(min(len(groups), i + _MAX_PHONE_DIGITS) - 1, i - 1, -1):
            start, end = groups[i].start(), groups[j].end()
            international = text[start - 1 : start] in ("+", "＋")
            start -= international
            number = digits[counted[i] : counted[j + 1]]
            if not (
                7 <= len(number) <= _MAX_PHONE_DIGITS
                and (international or _has_phone_shape(number))
                and not _is_glued(text[start - 1 : start])
                and not _is_glued(text[end : end + 1])
            ):
                continue
            valid = budget.is_valid(text[start:end], regions)
            if valid is None:  # budget spent: hide what is left of the run
                found.append((groups[i].start(), groups[-1].end()))
                return found
            if valid:
                found.append((start, end))
                i = j + 1
                break
        else:
            i += 1
    return found


# The matcher reads at most this much around a run; longer runs are read by the group pass.
_MAX_MATCHER_WINDOW = 256


def _phone_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    budget = _ParseBudget()
    for run in _PHONE_RUN.finditer(text):
        groups = list(_DIGIT_GROUP.finditer(text, run.start(), run.end()))
        regions = _phone_regions(text, groups)
        if not regions:
            continue
        # The matcher reads the run with its lead ("+", "(", "tel:") and extension ("ext. 12"),
        # widened to whitespace so it sees the same neighbours as in the whole text.
        start, end = max(0, run.start() - 8), min(len(text), run.end() + 16)
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        while end < len(text) and not text[end].isspace():
            end += 1
        window = text[start:end]
        found = (
            [
                (start + m.start, start + m.end)
                for region in sorted(regions)
                for m in PhoneNumberMatcher(window, region, leniency=Leniency.VALID)
            ]
            if len(window) <= _MAX_MATCHER_WINDOW
            else []
        )
        spans.extend(found)
        # Groups of the run that the matcher left: whole groups that make a valid number.
        left: list[re.Match[str]] = []
        for group in [*groups, None]:
            if group is not None and not any(s < group.end() and group.start() < e for s, e in found):
                left.append(group)
            elif left:
                spans.extend(_numbers_in_groups(text, left, _phone_regions(text, left), budget))
                left = []
    return spans


def _redact_phones(text: str) -> tuple[str, int]:
    # Once a number is out, what was glued to it is read afresh: go on until nothing is left,
    # so that redacting the output again finds nothing either (the loop ends: each round
    # removes digits).
    total = 0
    while True:
        text, count = _redact_phones_once(text)
        if not count:
            return text, total
        total += count


def _redact_phones_once(text: str) -> tuple[str, int]:
    if _PHONE_RUN.search(text) is None:
        return text, 0
    spans = _phone_spans(text.translate(_SPACES))
    if not spans:
        return text, 0
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    parts: list[str] = []
    last = 0
    for start, end in merged:
        parts.extend((text[last:start], PLACEHOLDERS["phone"]))
        last = end
    parts.append(text[last:])
    return "".join(parts), len(merged)


def _is_name(candidate: str) -> bool:
    return not any(_NOT_A_NAME.fullmatch(word) for word in candidate.split())


def _redact_greeting_names(text: str) -> tuple[str, int]:
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        first, second = match.group("first"), match.group("second")
        out = match.group("lead")
        if _is_name(first):
            out += PLACEHOLDERS["name"]
            count += 1
        else:
            out += first
        if second is not None:
            out += match.group("joint")
            if _is_name(second):
                out += PLACEHOLDERS["name"]
                count += 1
            else:
                out += second
        return out

    text = _GREETING.sub(replace, text)

    def replace_lowercase(match: re.Match[str]) -> str:
        nonlocal count
        if not _is_name(match.group("first")):
            return match.group(0)
        count += 1
        return match.group("lead") + PLACEHOLDERS["name"]

    return _GREETING_LOWERCASE.sub(replace_lowercase, text), count


# --- Names anywhere in a sentence ---------------------------------------------------------

# Where the word lists live: inside the wheel (bot/_resources/knowledge), else the checkout.
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_NAMES_FILE = Path("redaction") / "names.yaml"
_FAKER_FIRST = (
    "first_names",
    "first_names_male",
    "first_names_female",
    "first_names_nonbinary",
    "first_romanized_names",
    "first_romanized_names_male",
    "first_romanized_names_female",
)
_FAKER_LAST = ("last_names", "last_romanized_names")
# A word: letters, with inner apostrophes or hyphens ("O'Connor", "Jean-Baptiste", "qu'Antoine");
# or a name placeholder already in the text. Possessive, so a long run costs one pass.
_TOKEN = re.compile(r"\[name\]|[^\W\d_]++(?:['’-][^\W\d_]++)*+")
_ELISIONS = frozenset({"l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu", "quoiqu"})
_SPACE_GAP = re.compile(r"[ \t\u00a0\u202f]{1,3}")
_OPENERS = " \t\u00a0\u202f\"'“‘«([{*_>•–—-"
_SAINTS = frozenset({"saint", "sainte", "st", "ste", "san", "santa", "santo", "sao"})


@functools.lru_cache(maxsize=8192)
def _fold(word: str) -> str:
    """Lowercase without accents: "Élodie" and "elodie" read alike."""
    decomposed = unicodedata.normalize("NFD", word.casefold().replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _is_title(word: str) -> bool:
    """Every hyphen-separated part starts with a capital and has a lowercase letter, and a
    capital follows any apostrophe ("O'Connor", not "I'll")."""
    return all(part[:1].isupper() and any(c.islower() for c in part) for part in word.split("-")) and all(
        after[:1].isupper() for after in re.split(r"['’]", word)[1:]
    )


def _is_caps(word: str) -> bool:
    return len(word) >= 3 and word.isupper()


@dataclass(frozen=True)
class _Lexicon:
    first: frozenset[str]
    ambiguous: frozenset[str]
    surnames: frozenset[str]
    honorifics: frozenset[str]
    particles: frozenset[str]
    not_surnames: frozenset[str]
    titles: frozenset[str]
    acronyms: frozenset[str]
    place_before: frozenset[str]
    place_prepositions: frozenset[str]
    determiners: frozenset[str]
    cues_after: frozenset[str]
    company_after: frozenset[str]
    conjunctions: frozenset[str]
    brands: frozenset[str]


def _names_file() -> Path:
    packaged = _PACKAGE_DIR / "_resources" / "knowledge" / _NAMES_FILE
    return packaged if packaged.is_file() else _PACKAGE_DIR.parent / "knowledge" / _NAMES_FILE


def _faker_names(locales: list[str], attributes: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for locale in locales:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attribute in attributes:
            values = getattr(provider, attribute, None)
            if isinstance(values, (tuple, list, dict)):
                names.update(n for n in values if isinstance(n, str) and n[:1].isupper())
    return names


@functools.cache
def _lexicon() -> _Lexicon:
    """Faker's first and last names for the configured locales, and our word lists (loaded
    once per process, on first use: about 0.2 s)."""
    raw: Any = load_yaml(_names_file().read_text(encoding="utf-8"))

    def folded(key: str) -> frozenset[str]:
        return frozenset(_fold(str(w)) for w in raw.get(key) or ())

    never = folded("not_first_names")
    first = {_fold(n) for n in _faker_names(raw["locales"], _FAKER_FIRST)}
    first |= {_fold(str(n)) for n in raw.get("extra_first_names") or ()}
    ambiguous = frozenset(_fold(str(w)) for group in raw["ambiguous_first_names"].values() for w in group)
    first |= ambiguous
    return _Lexicon(
        first=frozenset(first - never),
        ambiguous=ambiguous,
        surnames=frozenset({_fold(n) for n in _faker_names(raw["locales"], _FAKER_LAST)} | first),
        honorifics=frozenset(str(w) for w in raw["honorifics"]),
        particles=folded("particles"),
        not_surnames=folded("not_surnames") | never,
        titles=folded("titles"),
        acronyms=frozenset(str(w).upper() for w in raw["acronyms"]),
        place_before=folded("place_words_before"),
        place_prepositions=folded("place_prepositions"),
        determiners=folded("determiners"),
        cues_after=folded("cues_after"),
        company_after=folded("company_words_after"),
        conjunctions=folded("conjunctions"),
        brands=frozenset(" ".join(_fold(w) for w in b.split()) for b in raw["brands"]),
    )


@dataclass
class _Word:
    """One word of the text: ``core`` is the word without an elided article in front
    ("qu'Antoine" → "Antoine") nor a possessive behind ("Chen's" → "Chen")."""

    start: int
    end: int
    raw: str
    core: str
    core_start: int
    core_end: int
    possessive: bool

    @property
    def placeholder(self) -> bool:
        return self.raw == PLACEHOLDERS["name"]


def _words(text: str) -> list[_Word]:
    words = []
    for m in _TOKEN.finditer(text):
        raw, start, end = m.group(), m.start(), m.end()
        core, core_start, core_end, possessive = raw, start, end, False
        apostrophe = next((i for i, c in enumerate(raw) if c in "'’"), -1)
        if (
            apostrophe > 0
            and raw[:apostrophe].lower() in _ELISIONS
            and raw[apostrophe + 1 : apostrophe + 2].isalpha()
        ):
            core, core_start = raw[apostrophe + 1 :], start + apostrophe + 1
        if len(core) > 3 and core[-2] in "'’" and core[-1] in "sS":
            core, core_end, possessive = core[:-2], core_end - 2, True
        words.append(_Word(start, end, raw, core, core_start, core_end, possessive))
    return words


class _NameScanner:
    """Finds person names in one text: a known first name with a capital, then its surname
    (capitalised words, particles allowed); a first name alone where a sentence places a
    person; the words after an honorific ("Mme Lambert"). One pass over the words, each
    read a bounded number of times."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lex = _lexicon()
        self.words = _words(text)

    # -- what one word is

    def _glued(self, i: int) -> bool:
        """Part of an identifier or a template: "Sarah2", "jean_Sarah", "[Prénom]", "{Marie}"."""
        w = self.words[i]
        before, after = self.text[w.start - 1 : w.start], self.text[w.end : w.end + 1]
        if any(c.isalnum() or c == "_" for c in before + after):
            return True
        return before in ("[", "{") and after in ("]", "}")

    def _first_name(self, i: int) -> bool:
        w = self.words[i]
        if w.placeholder or len(w.core) < 2 or not _is_title(w.core) or self._glued(i):
            return False
        key = _fold(w.core)
        if key in self.lex.first:
            return True
        parts = key.split("-")
        return len(parts) > 1 and all(p in self.lex.first for p in parts)

    def _ambiguous(self, i: int) -> bool:
        return all(p in self.lex.ambiguous for p in _fold(self.words[i].core).split("-"))

    def _space_gap(self, i: int) -> bool:
        """Only one to three spaces between word i-1 and word i (no punctuation, no line break);
        a possessive on word i-1 ends the name."""
        if i <= 0 or i >= len(self.words) or self.words[i - 1].possessive:
            return False
        return _SPACE_GAP.fullmatch(self.text, self.words[i - 1].end, self.words[i].start) is not None

    def _sentence_start(self, i: int) -> bool:
        w = self.words[i]
        previous_end = self.words[i - 1].end if i else 0
        gap = self.text[previous_end : w.core_start]
        if w.core_start != w.start:  # "D'après", "Qu'Antoine …": the elision is the first word
            return i == 0 and not gap.strip(_OPENERS)
        if "\n" in gap or i == 0:
            return True
        return gap.rstrip(_OPENERS).endswith((".", "!", "?", "…", ":", ";"))

    def _surname_word(self, i: int) -> bool:
        w = self.words[i]
        if w.placeholder or self._glued(i):
            return False
        # "D'Souza" and "N'Diaye" are whole surnames; in "d'Estaing" the particle is apart.
        elided = w.core_start != w.start and w.raw[:1].isupper()
        word = w.raw[: w.core_end - w.start] if elided else w.core
        key = _fold(word)
        if key in self.lex.not_surnames or key in self.lex.titles or key in self.lex.determiners:
            return False
        if key.split("-")[0] in _SAINTS:  # "Paris Saint-Germain", "Marie Sainte-Croix" are places
            return False
        if _is_caps(word):
            return word not in self.lex.acronyms and any(c in "AEIOUYÀÂÉÈÊËÎÏÔÛÜ" for c in word)
        return len(word) >= 2 and _is_title(word)

    def _surname_run(self, j: int) -> tuple[int, bool]:
        """The words of a surname from word j on: (index after the last one, whether the run
        stopped on a word that makes the whole a company or a place)."""
        end = j
        while self._space_gap(end):
            w = self.words[end]
            key = _fold(w.core)
            if key in self.lex.particles and not w.possessive:
                after = end + 1
                while self._space_gap(after) and _fold(self.words[after].core) in self.lex.particles:
                    after += 1
                if self._space_gap(after) and self._surname_word(after):
                    end = after + 1
                    if self.words[after].possessive:
                        break
                    continue
                break
            if not self._surname_word(end):
                break
            end += 1
            if w.possessive:
                break
        following = _fold(self.words[end].core) if self._space_gap(end) else ""
        stopped = (following in self.lex.not_surnames and self.words[end].core[:1].isupper()) or (
            following in self.lex.company_after
        )
        return end, stopped

    def _previous_word(self, i: int) -> str | None:
        """The word right before word i, folded, when only spaces lie between."""
        if i == 0:
            return None
        if self.words[i].core_start != self.words[i].start:
            return _fold(self.words[i].raw.split("'")[0].split("’")[0])
        return _fold(self.words[i - 1].core) if self._space_gap(i) else None

    def _brand(self, i: int, end: int) -> bool:
        """Words i to end name a company: a listed one ("Leroy Merlin"), or one side of an
        ampersand ("Johnson & Johnson", "Marks & Spencer", "Stanley Black & Decker")."""
        folded = [_fold(w.core) for w in self.words[i : min(end, i + 2)]]
        if len(folded) == 2 and " ".join(folded) in self.lex.brands:
            return True
        before = self.text[self.words[i - 1].end if i else 0 : self.words[i].start]
        after = self.text[self.words[end - 1].end : self.words[end].start if end < len(self.words) else None]
        return before.rstrip().endswith("&") or after.lstrip().startswith("&")

    def _honorific(self, i: int) -> bool:
        w = self.words[i]
        if w.raw not in self.lex.honorifics or self._glued(i):
            return False
        dot = self.text[w.end : w.end + 1] == "."
        return dot or w.raw != "M"

    def _honorific_run(self, i: int) -> int:
        """The name after honorific i ("M. Girard", "Dr. Ahmed Patel"): index after its last word."""
        w = self.words[i]
        if i + 1 >= len(self.words):
            return i + 1
        gap = self.text[w.end : self.words[i + 1].start]
        if not re.fullmatch(r"\.?[ \t\u00a0\u202f]{1,3}", gap):
            return i + 1
        j = i + 1
        if self._first_name(j) or self._surname_word(j):
            end, _ = self._surname_run(j + 1)
            return end
        if _fold(self.words[j].core) in self.lex.particles:  # "Monsieur de La Fontaine"
            end, _ = self._surname_run(j)
            return end
        return i + 1

    def _joined_to_a_name(self, i: int) -> bool:
        """Word i is followed by "and"/"et"/"," and a first name or a name placeholder."""
        n = len(self.words)
        if i + 1 >= n:
            return False
        gap = self.text[self.words[i].end : self.words[i + 1].start]
        nxt = i + 1
        if gap.strip() == "," and "\n" not in gap:
            pass
        elif self._space_gap(i + 1) and _fold(self.words[i + 1].core) in self.lex.conjunctions and i + 2 < n:
            nxt = i + 2
            if not self._space_gap(nxt):
                return False
        else:
            return False
        other = self.words[nxt]
        return other.placeholder or (self._first_name(nxt) and not self._ambiguous(nxt))

    def _cue_after(self, i: int) -> bool:
        """What follows a first name alone at the start of a sentence makes it a person: a
        possessive, a verb of speech ("Priya said", "Ophélie m'a dit"), an apposition
        ("Carlos, your buyer, …", "Chloé, votre responsable …"), or another name ("Vincent et
        Pauline"). A bare vocative ("Paul, since the new stores opened …") is left."""
        w = self.words[i]
        if w.possessive:
            return True
        if i + 1 < len(self.words):
            following = self.text[w.end : self.words[i + 1].start]
            apposition = following.strip() == "," and "\n" not in following
            if apposition and _fold(self.words[i + 1].core) in self.lex.determiners:
                return True
        if self._space_gap(i + 1) and _fold(self.words[i + 1].raw) in self.lex.cues_after:
            return True
        return self._joined_to_a_name(i)

    # -- the scan

    def spans(self) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        words, lex = self.words, self.lex
        hidden_end = -1  # the index after the last word hidden so far
        i = 0
        while i < len(words):
            if self._honorific(i):
                end = self._honorific_run(i)
                if end > i + 1 and not self._brand(i, end):
                    found.append((words[i + 1].core_start, words[end - 1].core_end))
                    hidden_end = end
                i = end
                continue
            if not self._first_name(i):
                i += 1
                continue
            end, stopped = self._surname_run(i + 1)
            previous = self._previous_word(i)
            # Right after a hidden name, a first name belongs to it: redacting the output again
            # sees "[name] Sarah" and must find what this pass found.
            after_placeholder = i > 0 and (words[i - 1].placeholder or hidden_end == i) and self._space_gap(i)
            if (
                stopped or self._brand(i, end) or previous in lex.place_before or previous in lex.determiners
            ) and not after_placeholder:
                i = end
                continue
            start = self._sentence_start(i)
            # Inside a run of capitalised words that does not start with a name, within a
            # sentence: a company or a title ("both Kraft Heinz and …"); a job title may come
            # first ("VP Sales Lisa Nguyen").
            capitalised_before = (
                previous is not None
                and not after_placeholder
                and words[i].core_start == words[i].start  # not after an elided article
                and words[i - 1].core[:1].isupper()
                and not self._sentence_start(i - 1)
                and previous not in lex.titles
                and not self._honorific(i - 1)
            )
            if end > i + 1:
                known = all(_fold(w.core) in lex.surnames for w in words[i + 1 : end])
                if capitalised_before or (self._ambiguous(i) and start and not known):
                    i = end
                    continue
            elif not after_placeholder:
                if self._ambiguous(i) or previous in lex.place_prepositions:
                    i += 1
                    continue
                if capitalised_before or (start and not self._cue_after(i)):
                    i += 1
                    continue
            found.append((words[i].core_start, words[end - 1].core_end))
            i = hidden_end = end
        return found


_NAME_ROUNDS = 8


def _redact_names_in_sentences(text: str) -> tuple[str, int]:
    spans = _NameScanner(text).spans()
    if not spans:
        return text, 0
    parts: list[str] = []
    last = 0
    for start, end in spans:
        parts.extend((text[last:start], PLACEHOLDERS["name"]))
        last = end
    parts.append(text[last:])
    return "".join(parts), len(spans)


def redact_with_counts(text: str) -> tuple[str, dict[str, int]]:
    """The redacted text and how many items of each kind (email, phone, url, name) it hid."""
    counts = dict.fromkeys(KINDS, 0)
    text, counts["url"] = _redact_urls(text)
    if "@" in text or _AT_WORD.search(text):
        text, counts["email"] = _EMAIL.subn(PLACEHOLDERS["email"], text)
    # Marked names go before phones: brackets glued to digits ("0100000000[[0]]") must not
    # change what the phone pass reads between a first and a second redaction.
    text, marked = _DOUBLE_BRACKETS.subn(PLACEHOLDERS["name"], text)
    text, counts["phone"] = _redact_phones(text)
    # Each name pass reads the words around a name, which a pass may just have hidden ("Priya
    # and [name]" is two names): go on until neither pass finds anything new, so that
    # redacting the output again finds nothing either (a round is linear, and there are a
    # handful at most).
    counts["name"] = marked
    for _ in range(_NAME_ROUNDS):
        text, mentioned = _redact_names_in_sentences(text)
        text, greeted = _redact_greeting_names(text)
        counts["name"] += mentioned + greeted
        if not (mentioned or greeted):
            break
    return text, counts


def redact(text: str) -> str:
    """The text with prospect details replaced by placeholders; see the module docstring."""
    return redact_with_counts(text)[0]
