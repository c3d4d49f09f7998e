"""Logging set-up: one format, and filters so that neither a token nor personal data can
reach a log line.

- `SecretFilter`: tokens and keys, wherever they appear.
- `BoltBodyFilter`: slack_bolt writes request bodies (a rep's email, phone number,
  opener) into some of its lines, e.g. at INFO "Invalid request signature detected
  (signature: …, timestamp: …, body: …)" on every request whose signature check fails (a
  clock five minutes off is enough); the body is withheld, the rest of the line kept.
- `SqlDataFilter`: aiosqlite logs every statement with its parameters at DEBUG, and
  SQLAlchemy (echo, or its loggers at INFO/DEBUG) parameters and result rows; the rows and
  the parameters never get through, at any level. The store's engine also hides
  parameters (`hide_parameters=True`), in its log lines and in its exceptions' messages.

Filters on a logger apply to the records made on that logger whatever handlers are
attached (pytest's caplog included), so the body and SQL filters are put on the loggers
that write such records (`guard_bolt_loggers`, `guard_sql_loggers`) as well as on the
handler `setup_logging` installs.
"""

from __future__ import annotations

import logging
import re

_SECRETS = re.compile(
    r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b"  # Telegram bot tokens
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}\b"  # Slack bot/user tokens
    r"|\bxapp-[A-Za-z0-9-]{10,}\b"  # Slack app-level tokens
    r"|\bsk-[A-Za-z0-9_-]{16,}\b"  # LLM provider keys
)

# The logger Fournil hands Bolt (`AsyncApp(logger=…)`): Bolt copies its level, handlers
# and filters onto every logger it makes (`slack_bolt.RequestVerification`, …).
BOLT_LOGGER = "fournil.slack.bolt"
_BOLT_PREFIXES = ("slack_bolt", BOLT_LOGGER)
# Where Bolt's lines carry a request (or response) body, to the end of the line:
# "… body: {…})", "request body: …", "Unhandled request ({…})",
# "… without providing a response for the request ({…})".
_BOLT_BODY = re.compile(r"(\bbody:|\brequest \()(.*)", re.IGNORECASE | re.DOTALL)
WITHHELD = "[withheld]"

_SQL_LOGGERS = ("aiosqlite", "sqlalchemy.engine.Engine")


class SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRETS.search(message):
            record.msg = _SECRETS.sub("[secret]", message)
            record.args = None
        return True


def _withhold(match: re.Match[str]) -> str:
    lead = match.group(1)
    return f"{lead}{WITHHELD})" if lead.endswith("(") else f"{lead} {WITHHELD}"


class BoltBodyFilter(logging.Filter):
    """Withholds the request bodies in slack_bolt's records (other records pass as they are)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_BOLT_PREFIXES):
            return True
        message = record.getMessage()
        if _BOLT_BODY.search(message):
            record.msg = _BOLT_BODY.sub(_withhold, message, count=1)
            record.args = None
        return True


class SqlDataFilter(logging.Filter):
    """No SQL parameters or result rows in a log line: aiosqlite's DEBUG records (each
    statement with its parameters) and SQLAlchemy's (rows) are dropped; SQLAlchemy's
    parameter lines (an engine without `hide_parameters`) keep only their timing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(_SQL_LOGGERS):
            return True
        if record.levelno < logging.INFO:
            return False
        if record.name.startswith("sqlalchemy") and isinstance(record.msg, str) and record.msg.endswith("%r"):
            # "[generated in 0.0001s] %r" % (stats, parameters)
            stats = record.args[0] if isinstance(record.args, tuple) and record.args else ""
            record.msg = f"[{stats}] [SQL parameters withheld]"
            record.args = None
        return True


_BOLT_FILTER = BoltBodyFilter()
_SQL_FILTER = SqlDataFilter()


def _guard(logger: logging.Logger, kind: type[logging.Filter], instance: logging.Filter) -> None:
    if not any(isinstance(existing, kind) for existing in logger.filters):
        logger.addFilter(instance)


def guard_bolt_loggers() -> None:
    """Puts `BoltBodyFilter` on the logger Fournil hands Bolt (Bolt copies it onto the
    loggers it makes later) and on every slack_bolt logger that exists already. Idempotent."""
    existing = [name for name in logging.root.manager.loggerDict if name.startswith(_BOLT_PREFIXES)]
    names = [BOLT_LOGGER, *existing]
    for name in names:
        _guard(logging.getLogger(name), BoltBodyFilter, _BOLT_FILTER)


def guard_sql_loggers() -> None:
    """Puts `SqlDataFilter` on the loggers that write statements, parameters and rows. Idempotent."""
    for name in _SQL_LOGGERS:
        _guard(logging.getLogger(name), SqlDataFilter, _SQL_FILTER)


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter())
    handler.addFilter(_BOLT_FILTER)
    handler.addFilter(_SQL_FILTER)
    handler.setLevel(level.upper())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Libraries that log every index build or telemetry decision at INFO/DEBUG.
    for noisy in ("alembic", "bm25s", "chromadb", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The LLM's clients and their HTTP layers: at DEBUG some openai versions log whole
    # requests (the opener in them), and every connection step is logged.
    for llm in ("openai", "anthropic", "langchain", "langsmith", "httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(llm).setLevel(logging.WARNING)
    # Libraries that log SQL (and, unfiltered, its parameters and rows): quiet at any level.
    for sql in ("aiosqlite", "sqlalchemy"):
        logging.getLogger(sql).setLevel(logging.WARNING)
    guard_bolt_loggers()
    guard_sql_loggers()
