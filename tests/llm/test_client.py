"""From settings to a chat model: what is accepted, and the one line for what is not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.coach import Coach
from bot.llm import LlmCoach, LlmConfig, LlmSetupError
from bot.llm.client import LlmClient, build_chat_model
from bot.settings import Settings, load_settings
from tests.llm.conftest import OPENERS, good_script
from tests.llm.stub_server import StubLlm, running


def settings(**values: object) -> Settings:
    return load_settings(data_dir=Path("unused-data-dir"), **values)


def test_no_llm_set_means_no_llm(coach: Coach) -> None:
    assert LlmCoach.from_settings(settings(), coach) is None
    assert LlmCoach.from_settings(settings(llm=""), coach) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("gpt-4.1-mini", "is not provider:model"),
        ("openai:", "is not provider:model"),
        ("groq:llama-3.1-8b", "unknown provider 'groq' (one of openai, anthropic, mistralai, ollama)"),
    ],
)
def test_a_malformed_llm_setting_is_one_line_naming_it(value: str, words: str) -> None:
    with pytest.raises(LlmSetupError) as caught:
        LlmConfig.from_settings(settings(llm=value))
    message = str(caught.value)
    assert words in message and message.endswith("check FOURNIL_LLM") and "\n" not in message


def test_a_cloud_provider_without_a_key_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(
        LlmSetupError, match=r"openai needs an API key: set FOURNIL_LLM_API_KEY or OPENAI_API_KEY"
    ):
        LlmConfig.from_settings(settings(llm="openai:gpt-4.1-mini"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-provider-variable")
    config = LlmConfig.from_settings(settings(llm="openai:gpt-4.1-mini"))
    assert config is not None and config.api_key is None  # the provider's variable is read by its client


def test_a_local_openai_compatible_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = LlmConfig.from_settings(
        settings(llm="openai:qwen2.5-7b-instruct", llm_base_url="http://127.0.0.1:8080/v1")
    )
    assert config is not None and config.label == "openai:qwen2.5-7b-instruct"
    assert config.api_key is not None  # a stand-in the OpenAI client insists on


def test_an_ollama_model_name_keeps_its_tag() -> None:
    config = LlmConfig.from_settings(settings(llm="ollama:qwen2.5:7b"))
    assert config is not None and (config.provider, config.model) == ("ollama", "qwen2.5:7b")


@pytest.mark.parametrize(
    ("provider", "module"),
    [
        ("anthropic", "langchain_anthropic"),
        ("mistralai", "langchain_mistralai"),
        ("ollama", "langchain_ollama"),
    ],
)
def test_a_provider_whose_package_is_missing_names_the_extra(
    provider: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as on a machine without the extra: import fails
    config = LlmConfig.from_settings(settings(llm=f"{provider}:some-model", llm_api_key="k"))
    assert config is not None
    with pytest.raises(LlmSetupError) as caught:
        build_chat_model(config)
    message = str(caught.value)
    assert f"pip install 'fournil[{provider}]'" in message and "\n" not in message
    assert message.startswith("the LLM cannot be used: ") and message.endswith("check FOURNIL_LLM")


@pytest.mark.parametrize(
    ("provider", "module"),
    [
        ("anthropic", "langchain_anthropic"),
        ("mistralai", "langchain_mistralai"),
        ("ollama", "langchain_ollama"),
    ],
)
def test_an_installed_provider_gets_the_base_url_and_timeout(provider: str, module: str) -> None:
    """Runs where the extra is installed (`pip install 'fournil[anthropic]'`…): the same
    settings reach each integration under its own names. No call is made."""
    pytest.importorskip(module)
    config = LlmConfig.from_settings(
        settings(
            llm=f"{provider}:some-model", llm_api_key="k", llm_base_url="http://127.0.0.1:9/x", llm_timeout=7
        )
    )
    assert config is not None
    model = build_chat_model(config)
    fields = model.model_dump()
    assert "http://127.0.0.1:9/x" in {str(v) for v in fields.values()}
    if provider == "ollama":
        assert fields["client_kwargs"] == {"timeout": 7.0}
    else:
        assert 7.0 in fields.values() and fields["max_retries"] == 0


async def test_the_key_from_a_file_is_sent_and_never_shown(tmp_path: Path, coach: Coach) -> None:
    key_file = tmp_path / "llm-key"
    key_file.write_text("sk-test-from-file\n", encoding="utf-8")
    async with running(StubLlm(good_script("en"))) as stub:
        configured = settings(llm="openai:stub-model", llm_base_url=stub.base_url, llm_api_key_file=key_file)
        assert "sk-test-from-file" not in repr(configured)
        llm_coach = LlmCoach.from_settings(configured, coach)
        assert llm_coach is not None
        outcome = await llm_coach.enrich_card(coach.coach(OPENERS["en"]), OPENERS["en"])
    assert outcome.status.status == "used"
    assert {r.headers["Authorization"] for r in stub.received} == {"Bearer sk-test-from-file"}
    assert {r.body["model"] for r in stub.received} == {"stub-model"}


def test_an_unreadable_key_file_stops_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="FOURNIL_LLM_API_KEY_FILE: cannot read"):
        settings(llm="openai:gpt-4.1-mini", llm_api_key_file=tmp_path / "missing")


def test_the_client_is_built_lazily_from_settings() -> None:
    assert LlmClient.from_settings(settings()) is None


@pytest.mark.parametrize("plain", [True, False], ids=["langchain-alone", "fournil"])
def test_no_opener_goes_to_langsmith_even_with_tracing_on(plain: bool, cli_env: dict[str, str]) -> None:
    """LANGSMITH_TRACING=true in a deployment's environment would send every prompt, the
    opener included, to LangSmith: langchain alone does (the control), Fournil's calls don't."""
    root = Path(__file__).resolve().parents[2]
    env = {**cli_env, "PYTHONPATH": f"{cli_env['PYTHONPATH']}{os.pathsep}{root}"}
    command = [sys.executable, "-m", "tests.llm.tracing_probe", *(["--plain"] if plain else [])]
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=120, check=True)
    hits = json.loads(done.stdout.strip().splitlines()[-1])
    assert bool(hits) is plain, hits


def test_without_an_llm_langchain_is_not_even_imported(cli_env: dict[str, str]) -> None:
    """No LLM set: everything as before, start-up time included (langchain costs a second)."""
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys; from pathlib import Path; from bot.app import build_coach; from bot.llm import LlmCoach;"
        "from bot.settings import load_settings; s = load_settings(data_dir=Path('unused'));"
        "assert LlmCoach.from_settings(s, build_coach(s)) is None;"
        "print(sorted(m for m in sys.modules if m.startswith(('langchain', 'langsmith', 'openai'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=cli_env, cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
