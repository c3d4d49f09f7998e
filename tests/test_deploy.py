"""The deployment files promise settings and commands: every variable they set must be one
Fournil reads, and every command they run must exist, or a deploy fails at 3 a.m. with
nothing in the logs. (No container engine runs here: the image itself is not built.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import AliasChoices

from bot.cli import cli
from bot.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
# Variables that are not Fournil's own: PostgreSQL's image, compose interpolation, matplotlib.
FOREIGN = {
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_DB",
    "MPLCONFIGDIR",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "PIP_NO_CACHE_DIR",
}


def known_variables() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
    return names


def commands() -> set[str]:
    return set(cli.commands)


def compose() -> dict[str, object]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def kubernetes() -> list[dict[str, object]]:
    return [doc for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / "fournil.yaml").read_text()) if doc]


def test_example_env_sets_only_known_settings() -> None:
    names = [
        line.split("=", 1)[0]
        for line in (DEPLOY / "example.env").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert names, "example.env is empty"
    assert set(names) - known_variables() == set()


def test_example_env_lists_every_setting_an_operator_needs() -> None:
    text = (DEPLOY / "example.env").read_text(encoding="utf-8")
    for name in (
        "FOURNIL_DATABASE_URL",
        "FOURNIL_MANAGERS",
        "FOURNIL_TIMEZONE",
        "SLACK_BOT_TOKEN",
        "TELEGRAM_BOT_TOKEN",
        "FOURNIL_RETENTION_DAYS",
    ):
        assert f"\n{name}=" in f"\n{text}", name


def test_compose_services_run_real_commands_with_known_settings() -> None:
    services = compose()["services"]
    assert isinstance(services, dict)
    fournil = {
        name: s for name, s in services.items() if "command" in s and "image" in s and "fournil" in s["image"]
    }
    assert {"slack", "telegram"} <= set(fournil)
    for name, service in fournil.items():
        assert service["command"][0] in commands(), name
        assert set(service.get("environment", {})) - known_variables() - FOREIGN == set(), name


def test_kubernetes_runs_real_commands_with_known_settings() -> None:
    documents = kubernetes()
    kinds = {doc["kind"] for doc in documents}
    assert {"Deployment", "Service", "ConfigMap", "Secret"} <= kinds
    for doc in documents:
        if doc["kind"] in {"ConfigMap", "Secret"}:
            data = doc.get("data") or doc.get("stringData")
            assert isinstance(data, dict)
            assert set(data) - known_variables() == set(), doc["metadata"]
        if doc["kind"] == "Deployment":
            [container] = doc["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
            assert container["args"][0] in commands()
            probe = container.get("readinessProbe")
            assert probe is None or probe["httpGet"]["path"] == "/healthz"


def test_dockerfile_runs_a_real_command_and_ships_the_data() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    command = re.search(r'^CMD \["(\w+)"\]', dockerfile, re.MULTILINE)
    assert command is not None and command.group(1) in commands()
    for folder in ("bot", "knowledge", "prompts"):
        assert f"COPY {folder} ./{folder}" in dockerfile
    for name in re.findall(r"^\s*(FOURNIL_\w+)=", dockerfile, re.MULTILINE):
        assert name in known_variables()


@pytest.mark.parametrize("name", ["slack", "telegram", "serve", "report", "forget"])
def test_the_commands_deploy_files_rely_on_answer_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
