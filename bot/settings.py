"""Every setting Fournil reads, in one typed place.

This is the only module that reads the environment (and `.env`). Secrets are `SecretStr`
so they never appear in a repr or a log line, and each may instead be given as a file
(`TELEGRAM_BOT_TOKEN_FILE=/run/secrets/telegram`), the way container platforms mount them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Language = Literal["fr", "en"]

_PACKAGE_DIR = Path(__file__).resolve().parent
_SECRET_FIELDS = (
    "telegram_bot_token",
    "telegram_webhook_secret",
    "slack_bot_token",
    "slack_app_token",
    "slack_signing_secret",
    "llm_api_key",
)


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


def _resource_dir(name: str) -> Path:
    """Knowledge and prompts ship inside the wheel; a source checkout uses the repo's copy."""
    packaged = _PACKAGE_DIR / "_resources" / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parent / name


ENV_FILE = ".env"  # read from the working directory: the command line's own settings
# [ \t], not \s: a \s* at each line start would re-read every blank line below it.
_ENV_LINE = re.compile(r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)$", re.MULTILINE)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(Path("data"), validation_alias=_env("FOURNIL_DATA_DIR"))
    database_url: str | None = Field(None, validation_alias=_env("FOURNIL_DATABASE_URL"))
    chroma_url: str | None = Field(None, validation_alias=_env("FOURNIL_CHROMA_URL"))
    # The optional LLM (bot/llm/): `provider:model` as langchain's init_chat_model takes it;
    # unset, no LLM and every card is the embedded coach's alone.
    llm: str | None = Field(None, validation_alias=_env("FOURNIL_LLM"))
    llm_base_url: str | None = Field(None, validation_alias=_env("FOURNIL_LLM_BASE_URL"))
    llm_api_key: SecretStr | None = Field(None, validation_alias=_env("FOURNIL_LLM_API_KEY"))
    llm_api_key_file: Path | None = Field(None, validation_alias=_env("FOURNIL_LLM_API_KEY_FILE"))
    # Seconds one LLM call may take, waiting for a free slot included: past it the card goes
    # out without the LLM part. The slots bound the calls in flight (the provider's rate limit).
    llm_timeout: float = Field(10.0, gt=0, validation_alias=_env("FOURNIL_LLM_TIMEOUT"))
    llm_max_concurrency: int = Field(4, ge=1, validation_alias=_env("FOURNIL_LLM_MAX_CONCURRENCY"))
    language: Language = Field("en", validation_alias=_env("FOURNIL_LANGUAGE"))
    force_language: Language | None = Field(None, validation_alias=_env("FOURNIL_FORCE_LANGUAGE"))
    managers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("FOURNIL_MANAGERS")
    )
    host: str = Field("0.0.0.0", validation_alias=_env("FOURNIL_HOST"))
    port: int = Field(3000, validation_alias=_env("FOURNIL_PORT"))
    log_level: str = Field("INFO", validation_alias=_env("FOURNIL_LOG_LEVEL"))
    knowledge_dir: Path = Field(
        default_factory=lambda: _resource_dir("knowledge"),
        validation_alias=_env("FOURNIL_KNOWLEDGE_DIR"),
    )
    prompts_dir: Path = Field(
        default_factory=lambda: _resource_dir("prompts"),
        validation_alias=_env("FOURNIL_PROMPTS_DIR"),
    )
    max_input_chars: int = Field(8000, validation_alias=_env("FOURNIL_MAX_INPUT_CHARS"))
    # The learned sentence detectors beside the rules (knowledge/detectors/); off: rules only.
    learned_detectors: bool = Field(True, validation_alias=_env("FOURNIL_LEARNED_DETECTORS"))
    timezone: str = Field("UTC", validation_alias=_env("FOURNIL_TIMEZONE"))
    drill_hours: float = Field(24.0, gt=0, validation_alias=_env("FOURNIL_DRILL_HOURS"))
    retention_days: int = Field(90, ge=1, validation_alias=_env("FOURNIL_RETENTION_DAYS"))
    clock_seconds: float = Field(30.0, gt=0, validation_alias=_env("FOURNIL_CLOCK_SECONDS"))
    # How long a replica's claim on a platform event holds before a retry of it (the
    # replica died mid-work) may take it over (bot/core/delivery.py). At least 5 s: the
    # endpoints answer before it runs out (Slack within 2.5 s, the Telegram webhook within
    # half of it), so no platform sends an event again while a live replica holds its claim.
    claim_lease_seconds: float = Field(30.0, ge=5, validation_alias=_env("FOURNIL_CLAIM_LEASE_SECONDS"))

    telegram_bot_token: SecretStr | None = Field(None, validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_bot_token_file: Path | None = Field(None, validation_alias=_env("TELEGRAM_BOT_TOKEN_FILE"))
    telegram_api_base_url: str | None = Field(None, validation_alias=_env("TELEGRAM_API_BASE_URL"))
    telegram_webhook_url: str | None = Field(None, validation_alias=_env("TELEGRAM_WEBHOOK_URL"))
    telegram_webhook_secret: SecretStr | None = Field(None, validation_alias=_env("TELEGRAM_WEBHOOK_SECRET"))
    telegram_webhook_secret_file: Path | None = Field(
        None, validation_alias=_env("TELEGRAM_WEBHOOK_SECRET_FILE")
    )
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_bot_token_file: Path | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN_FILE"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_app_token_file: Path | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN_FILE"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=_env("SLACK_SIGNING_SECRET"))
    slack_signing_secret_file: Path | None = Field(None, validation_alias=_env("SLACK_SIGNING_SECRET_FILE"))
    slack_api_base_url: str | None = Field(None, validation_alias=_env("SLACK_API_BASE_URL"))

    @field_validator("managers", mode="before")
    @classmethod
    def _split_managers(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use a name such as Europe/Paris)") from None
        return value

    @field_validator(
        "force_language", "database_url", "chroma_url", "llm", "llm_base_url", *_SECRET_FIELDS, mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        for name in _SECRET_FIELDS:
            path: Path | None = getattr(self, f"{name}_file")
            if getattr(self, name) is None and path is not None:
                try:
                    secret = path.read_text(encoding="utf-8").strip()
                except OSError as exc:
                    variable = _variable(f"{name}_file")
                    raise ValueError(f"{variable}: cannot read {path}: {exc.strerror}") from None
                setattr(self, name, SecretStr(secret))
        return self

    @property
    def resolved_database_url(self) -> str:
        """SQLite in the data dir unless a database URL is configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'fournil.db').resolve()}"


def _variable(field: str) -> str:
    """The environment variable of a settings field (`llm_api_key_file` →
    FOURNIL_LLM_API_KEY_FILE)."""
    alias = Settings.model_fields[field].validation_alias
    return str(alias.choices[0]) if isinstance(alias, AliasChoices) else field.upper()


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, `.env` and explicit overrides (CLI flags, tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]


def variable_names() -> list[str]:
    """Every environment variable Fournil reads (`FOURNIL_DATA_DIR`, `SLACK_BOT_TOKEN_FILE`…)."""
    names: list[str] = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names += [str(choice) for choice in alias.choices]
        elif isinstance(alias, str):
            names.append(alias)
    return names


def setting_origin(name: str) -> str:
    """Where the value of the variable `name` comes from, as the end of a sentence: "is set
    in the environment", "is set in /srv/fournil/.env", or "is not set: its default
    applies". The environment wins over the `.env` file, as when the settings are read."""
    wanted = name.upper()
    for key, value in os.environ.items():
        if key.upper() == wanted:
            return f"is set{_empty(value)} in the environment"
    env_file = Path(ENV_FILE)
    try:
        text = env_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for key, value in _ENV_LINE.findall(text):
        if key.upper() == wanted:
            return f"is set{_empty(value)} in {env_file.resolve()}"
    return "is not set: its default applies"


def _empty(value: str) -> str:
    return " to an empty value" if value.strip() in {"", '""', "''"} else ""


def with_setting_origin(message: str) -> str:
    """A one-line error that names a setting, completed with where that setting's value
    came from (the first variable it names: the one at fault), so that a `.env` left in
    the working directory, or a variable exported long ago, is found at once."""
    names = set(variable_names())
    named = (match.group(0) for match in re.finditer(r"\b[A-Z][A-Z0-9_]+\b", message))
    culprit = next((name for name in named if name in names), None)
    if culprit is None:
        return message
    origin = setting_origin(culprit)
    if origin.startswith("is not set") and f"{culprit} is not set" in message:
        return message  # the message already says so
    return f"{message.rstrip()} ({culprit} {origin})"
