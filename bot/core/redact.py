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
  → ``[name]``.

Company homepages (``https://acme.com``, ``acme.fr/pricing``), years, prices, counts, dates and
single-bracket template leftovers (``[Company]``, ``{first_name}``) are left as they are: the
coach needs them.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

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
_EMAIL_IN_URL = re.compile(r"[\w.%+-]+@[\w-]+\.[\w.-]+")

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
    r"|équipe|equipe|madame|monsieur|mademoiselle|sir|madam|mr|mrs|ms|dr"
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
    text, greeted = _redact_greeting_names(text)
    counts["name"] = marked + greeted
    return text, counts


def redact(text: str) -> str:
    """The text with prospect details replaced by placeholders; see the module docstring."""
    return redact_with_counts(text)[0]
