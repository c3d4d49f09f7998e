"""The chat model named by the settings, and one bounded, asynchronous structured call.

The model is built by langchain's `init_chat_model` from `FOURNIL_LLM=provider:model`, so
OpenAI, Anthropic, Mistral and Ollama are the same few lines here, and any OpenAI-compatible
server (vLLM, llama.cpp, LM Studio, a gateway) is `openai:` with `FOURNIL_LLM_BASE_URL`.
A call never makes a rep wait past `FOURNIL_LLM_TIMEOUT` (queueing for one of the
`FOURNIL_LLM_MAX_CONCURRENCY` slots included), is not retried (the embedded card is always
there to fall back on, a retry only makes the rep wait), and is never traced to LangSmith
even when the environment turns tracing on: the opener must not leave for a third party.
Every failure becomes an `LlmCallError` with a reason code; nothing else escapes.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from bot.core.errors import SetupError
from bot.llm.prompts import Reason
from bot.settings import Settings

if TYPE_CHECKING:  # langchain is imported only once an LLM is configured: a second at start
    from langchain_core.language_models import BaseChatModel


@dataclass(frozen=True)
class Provider:
    module: str  # the langchain integration init_chat_model imports
    extra: str | None  # fournil's extra that installs it (None: a regular dependency)
    key_variable: str | None  # the provider's own API key variable (None: no key needed)


PROVIDERS: dict[str, Provider] = {
    "openai": Provider("langchain_openai", None, "OPENAI_API_KEY"),
    "anthropic": Provider("langchain_anthropic", "anthropic", "ANTHROPIC_API_KEY"),
    "mistralai": Provider("langchain_mistralai", "mistralai", "MISTRAL_API_KEY"),
    "ollama": Provider("langchain_ollama", "ollama", None),
}
# A local OpenAI-compatible server wants no key, but the OpenAI client refuses to start
# without one: this stands in, and is only ever sent to FOURNIL_LLM_BASE_URL.
LOCAL_SERVER_KEY = "not-needed"


class LlmSetupError(SetupError):
    """FOURNIL_LLM (or a setting beside it) cannot work: the app stops with this one line."""

    lead = "the LLM cannot be used: "


@dataclass(frozen=True)
class LlmConfig:
    provider: str
    model: str
    base_url: str | None
    api_key: SecretStr | None
    timeout: float
    max_concurrency: int

    @property
    def label(self) -> str:
        """`provider:model`, as the card JSON's `llm.model` names it."""
        return f"{self.provider}:{self.model}"

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmConfig | None:
        """None when no LLM is configured; LlmSetupError when one is, but cannot work."""
        if not settings.llm:
            return None
        provider, sep, model = settings.llm.strip().partition(":")
        if not sep or not model.strip():
            raise LlmSetupError(
                f"'{settings.llm}' is not provider:model (for example openai:gpt-4.1-mini)", "FOURNIL_LLM"
            )
        if provider not in PROVIDERS:
            names = ", ".join(PROVIDERS)
            raise LlmSetupError(f"unknown provider '{provider}' (one of {names})", "FOURNIL_LLM")
        spec = PROVIDERS[provider]
        key = settings.llm_api_key
        if key is None and spec.key_variable and not os.environ.get(spec.key_variable):
            if provider == "openai" and settings.llm_base_url:
                key = SecretStr(LOCAL_SERVER_KEY)
            else:
                raise LlmSetupError(
                    f"{provider} needs an API key: set FOURNIL_LLM_API_KEY or {spec.key_variable}",
                    "FOURNIL_LLM_API_KEY",
                )
        return cls(
            provider=provider,
            model=model.strip(),
            base_url=settings.llm_base_url,
            api_key=key,
            timeout=settings.llm_timeout,
            max_concurrency=settings.llm_max_concurrency,
        )


def _check_package(config: LlmConfig) -> None:
    spec = PROVIDERS[config.provider]
    try:
        importlib.import_module(spec.module)
    except ImportError:
        extra = spec.extra or "the base install"
        raise LlmSetupError(
            f"{config.provider} needs the {spec.module.replace('_', '-')} package: "
            f"pip install 'fournil[{extra}]'",
            "FOURNIL_LLM",
        ) from None


def _model_kwargs(config: LlmConfig) -> dict[str, Any]:
    """What each integration calls the same few things (they differ for Ollama)."""
    kwargs: dict[str, Any] = {}
    if config.base_url:
        kwargs["base_url"] = config.base_url
    if config.provider == "ollama":
        kwargs["client_kwargs"] = {"timeout": config.timeout}
        return kwargs
    if config.api_key is not None:
        kwargs["api_key"] = config.api_key
    kwargs["timeout"] = config.timeout
    kwargs["max_retries"] = 0
    if config.provider == "openai":
        # The Chat Completions protocol is the one self-hosted servers speak; some model names
        # would otherwise switch langchain-openai to OpenAI's Responses API.
        kwargs["use_responses_api"] = False
    return kwargs


def build_chat_model(config: LlmConfig) -> BaseChatModel:
    """The langchain chat model, or LlmSetupError naming the extra to install."""
    from langchain.chat_models import init_chat_model

    _check_package(config)
    try:
        model: BaseChatModel = init_chat_model(
            config.model, model_provider=config.provider, **_model_kwargs(config)
        )
    except (ValueError, TypeError, ImportError) as exc:  # a setting the integration refuses
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LlmSetupError(f"{config.label}: {first}", "FOURNIL_LLM") from None
    return model


@dataclass(frozen=True)
class CallResult:
    """A structured answer as plain JSON data, with what it cost."""

    data: dict[str, Any]
    seconds: float
    input_tokens: int = 0
    output_tokens: int = 0


class LlmCallError(Exception):
    """A call that gave nothing usable: `reason` says why (timeout, rate_limited…)."""

    def __init__(
        self, reason: Reason, seconds: float = 0.0, detail: str = "", tokens: tuple[int, int] = (0, 0)
    ) -> None:
        self.reason: Reason = reason
        self.seconds = seconds
        self.detail = detail
        self.tokens = tokens  # input, output: a malformed answer is billed all the same
        super().__init__(f"{reason}: {detail}" if detail else reason)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def classify(exc: BaseException) -> Reason:
    """The reason code for whatever a provider's client raised. Integrations raise their
    own classes (openai's, anthropic's, httpx's, ollama's), so this reads what they share:
    an HTTP status, a class name that says timeout or connection, a parse error."""
    for error in _chain(exc):
        name = type(error).__name__.lower()
        status = _status(error)
        if status == 429 or "ratelimit" in name:
            return "rate_limited"
        if isinstance(error, TimeoutError) or "timeout" in name:
            return "timeout"
        if status is not None and not 200 <= status < 300:
            return "http_error"
        if status is not None or isinstance(error, ValueError | json.JSONDecodeError):
            return "malformed"  # a 200 whose body is not what the protocol says
        if "connect" in name or isinstance(error, OSError):
            return "unreachable"
    return "error"


def _usage(message: object) -> tuple[int, int]:
    usage = getattr(message, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0) or 0), int(usage.get("output_tokens", 0) or 0)


class LlmClient:
    """One chat model shared by every channel and user: `structured` is safe to call
    concurrently; the slots keep the calls in flight under FOURNIL_LLM_MAX_CONCURRENCY."""

    def __init__(self, config: LlmConfig, model: BaseChatModel) -> None:
        self.config = config
        self.model = model
        # The calls in flight: a call waits here for a slot, within its timeout.
        self.slots = asyncio.Semaphore(config.max_concurrency)

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmClient | None:
        config = LlmConfig.from_settings(settings)
        return None if config is None else cls(config, build_chat_model(config))

    async def structured(self, schema: dict[str, Any], system: str, user: str) -> CallResult:
        """The model's answer to `user` as a JSON object shaped by `schema` (the provider's
        structured output: JSON schema or tool calling), or LlmCallError."""
        from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
        from langsmith import tracing_context

        messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(user)]
        runnable = self.model.with_structured_output(schema, include_raw=True)
        loop = asyncio.get_running_loop()
        started: float | None = None
        try:
            async with asyncio.timeout_at(loop.time() + self.config.timeout), self.slots:
                started = time.perf_counter()
                with tracing_context(enabled=False):
                    result: Any = await runnable.ainvoke(messages)
        except TimeoutError:
            reason: Reason = "timeout" if started is not None else "busy"
            raise LlmCallError(reason, _since(started)) from None
        except Exception as exc:  # any provider failure falls back to the embedded card
            raise LlmCallError(classify(exc), _since(started), type(exc).__name__) from exc
        seconds = _since(started)
        raw = result.get("raw") if isinstance(result, dict) else None
        tokens = _usage(raw)
        if not isinstance(result, dict) or result.get("parsing_error") is not None:
            detail = type(result.get("parsing_error")).__name__ if isinstance(result, dict) else ""
            raise LlmCallError("malformed", seconds, detail, tokens)
        parsed = result.get("parsed")
        if isinstance(parsed, str):  # some servers return the JSON object as a string
            try:
                parsed = json.loads(parsed)
            except ValueError:
                raise LlmCallError("malformed", seconds, "string", tokens) from None
        if not isinstance(parsed, dict):
            raise LlmCallError("malformed", seconds, type(parsed).__name__, tokens)
        return CallResult(parsed, seconds, *tokens)


def _since(started: float | None) -> float:
    return time.perf_counter() - started if started is not None else 0.0
