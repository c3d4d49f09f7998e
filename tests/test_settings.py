"""Settings come from the environment or secret files, and secrets never print."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.logs import SecretFilter
from bot.settings import Settings


def test_secret_from_file_and_never_in_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "token"
    secret.write_text("123456789:AAH-very-secret-token-value-1234567890\n", encoding="utf-8")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN_FILE", str(secret))
    monkeypatch.setenv("FOURNIL_MANAGERS", "U1, U2;U3")
    settings = Settings()
    assert settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value().startswith("123456789:")
    assert "very-secret" not in repr(settings)
    assert settings.managers == ["U1", "U2", "U3"]


def test_unreadable_secret_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValidationError, match="SLACK_BOT_TOKEN_FILE"):
        Settings()


def test_default_database_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert str(tmp_path) in settings.resolved_database_url


def test_log_filter_masks_tokens() -> None:
    import logging

    record = logging.LogRecord("x", logging.INFO, "f", 1, "token %s", ("xoxb-1234567890-abcdefghij",), None)
    SecretFilter().filter(record)
    assert "xoxb" not in record.getMessage()
