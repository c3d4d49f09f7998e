"""Logging set-up: one format, and a filter so a token can never reach a log line."""

from __future__ import annotations

import logging
import re

_SECRETS = re.compile(
    r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b"  # Telegram bot tokens
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}\b"  # Slack bot/user tokens
    r"|\bxapp-[A-Za-z0-9-]{10,}\b"  # Slack app-level tokens
    r"|\bsk-[A-Za-z0-9_-]{16,}\b"  # LLM provider keys
)


class SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRETS.search(message):
            record.msg = _SECRETS.sub("[secret]", message)
            record.args = None
        return True


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter())
    handler.setLevel(level.upper())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Libraries that log every index build or telemetry decision at INFO/DEBUG.
    for noisy in ("alembic", "bm25s", "chromadb", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
