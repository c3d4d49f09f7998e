"""Prospect details never leave the process or reach the store: emails, phone numbers
(French and international formats), personal profile URLs and the name in a greeting are
replaced by placeholders before anything is saved or logged."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?(?:\(0\))?[\s.-]?|0)\d(?:[\s.-]?\d{2}){4}(?!\d)"  # FR / EU
    r"|(?<![\w+])(?:\+1[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)"  # North America
    r"|(?<![\w+])\+\d{1,3}(?:[\s.-]?\d){7,12}(?!\d)"  # other international
)
_PROFILE_URL = re.compile(
    r"https?://(?:[\w-]+\.)?(?:linkedin\.com/in|t\.me|twitter\.com|x\.com|facebook\.com|"
    r"instagram\.com|calendly\.com)/[^\s)>\]]+",
    re.IGNORECASE,
)
_GREETING_NAME = re.compile(
    r"^(\s*(?:hi|hello|hey|dear|bonjour|bonsoir|salut|hello|coucou|cher|chère)"
    r"(?:\s+(?:mr\.?|mrs\.?|ms\.?|dr\.?|madame|monsieur|mme|m\.))?)"
    r"\s+([A-ZÀ-Ý][\w'’-]+(?:\s+[A-ZÀ-Ý][\w'’-]+)?)(?=\s*[,!\n])",
    re.IGNORECASE | re.MULTILINE,
)


def redact(text: str) -> str:
    text = _PROFILE_URL.sub("[profile-url]", text)
    text = _EMAIL.sub("[email]", text)
    text = _PHONE.sub("[phone]", text)
    return _GREETING_NAME.sub(lambda m: f"{m.group(1)} [name]", text)
