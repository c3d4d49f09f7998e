"""The deployment files promise settings and commands: every variable they set must be one
Fournil reads, and every command they run must exist, or a deploy fails at 3 a.m. with
nothing in the logs. (No container engine runs here: the image itself is not built.)"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import AliasChoices

from bot.cli import cli
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
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
    assert set(names) - known_variables() == {"POSTGRES_PASSWORD"}  # compose's, for PostgreSQL


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
            ports = {port["name"] for port in container["ports"]}
            for kind in ("readinessProbe", "livenessProbe"):  # every bot serves /healthz
                probe = container.get(kind)
                assert probe is not None, (doc["metadata"], kind)
                assert probe["httpGet"]["path"] == "/healthz" and probe["httpGet"]["port"] in ports


def test_kubernetes_pulls_a_pushed_and_pinned_image() -> None:
    """A cluster cannot see an image built on a laptop: the file names a registry, a tag
    that changes with each release, a pull policy, and says how to push."""
    text = (DEPLOY / "kubernetes" / "fournil.yaml").read_text(encoding="utf-8")
    assert "docker push" in text and "docker build -f deploy/Dockerfile" in text
    for doc in kubernetes():
        if doc["kind"] != "Deployment":
            continue
        [container] = doc["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
        image = container["image"]
        registry, _, rest = image.partition("/")
        assert "." in registry and rest, image  # a registry host, not a local name
        assert ":" in rest and not rest.endswith(":latest"), image
        assert container.get("imagePullPolicy") in {"IfNotPresent", "Always"}, image


def test_the_deployment_env_file_is_not_the_command_lines() -> None:
    """Compose reads deploy/.env; the `fournil` command line reads a .env in the directory
    it runs from (the repository, usually): the README's step must not put one there."""
    env_file = compose()["x-fournil"]["env_file"]  # type: ignore[index]
    assert (DEPLOY / env_file).resolve() == (DEPLOY / ".env").resolve() != (ROOT / ".env").resolve()
    for path in (ROOT / "README.md", DEPLOY / "compose.yaml", DEPLOY / "example.env"):
        text = path.read_text(encoding="utf-8")
        assert "cp deploy/example.env deploy/.env" in text, path
        assert "cp deploy/example.env .env" not in text, path
    assert "--env-file deploy/.env" in (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()  # any directory


def test_compose_requires_a_postgres_password() -> None:
    def strings(node: object) -> list[str]:
        if isinstance(node, dict):
            return [text for value in node.values() for text in strings(value)]
        if isinstance(node, list):
            return [text for value in node for text in strings(value)]
        return [node] if isinstance(node, str) else []

    values = strings(compose())
    assert not [value for value in values if "change-me" in value]
    uses = [use for value in values for use in re.findall(r"\$\{POSTGRES_PASSWORD([^}]*)\}", value)]
    # the database's own setting and the URL of each Fournil service: no fallback password
    assert len(uses) >= 2 and all(use.startswith(":?") for use in uses), uses
    assert "\nPOSTGRES_PASSWORD=\n" in (DEPLOY / "example.env").read_text(encoding="utf-8")


def test_dockerfile_runs_a_real_command_and_ships_the_data() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    command = re.search(r'^CMD \["(\w+)"\]', dockerfile, re.MULTILINE)
    assert command is not None and command.group(1) in commands()
    for folder in ("bot", "knowledge", "prompts"):
        assert f"COPY {folder} ./{folder}" in dockerfile
    for name in re.findall(r"^\s*(FOURNIL_\w+)=", dockerfile, re.MULTILINE):
        assert name in known_variables()


def _dockerignored(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders wins
    (`**/x` also matches x at the top)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    excluded = False
    for pattern in patterns:
        glob = pattern.lstrip("!").rstrip("/")
        globs = {glob, glob.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(prefix, candidate) for prefix in prefixes for candidate in globs):
            excluded = not pattern.startswith("!")
    return excluded


def test_dockerignore_keeps_the_build_context_to_what_the_image_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    copied = [
        source
        for line in re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE)
        for source in line.split()[:-1]
    ]
    assert {"bot", "knowledge", "prompts", "pyproject.toml", "LICENSE"} <= set(copied)
    for source in copied:
        assert not _dockerignored(patterns, source), source
        assert not _dockerignored(patterns, f"{source}/core/coach.py" if source == "bot" else source)
    for heavy_or_secret in (
        ".venv/lib/python3.11/site-packages/numpy/__init__.py",
        "data/fournil.db",
        ".git/HEAD",
        ".env",
        "deploy/.env",
        "bot/.env",
        "bot/core/__pycache__/coach.cpython-311.pyc",
        "tests/data/openers.jsonl",
    ):
        assert _dockerignored(patterns, heavy_or_secret), heavy_or_secret


def test_the_license_file_is_the_one_pyproject_names() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^license = "Apache-2.0"$', pyproject, re.MULTILINE)
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    for clause in (
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "END OF TERMS AND CONDITIONS",
    ):
        assert clause in text
    assert len(text.split()) > 1500  # the full text, not a pointer to it


def test_no_pointer_to_a_design_document_a_clone_does_not_carry() -> None:
    """The contracts live in docs/contracts.md, which every clone has."""
    assert (ROOT / "docs" / "contracts.md").is_file()
    files = [ROOT / "README.md", *DEPLOY.rglob("*"), *(ROOT / "docs").rglob("*.md")]
    for path in files:
        if path.is_file() and path.suffix != ".png":
            assert "DESIGN.md" not in path.read_text(encoding="utf-8"), path
    for command in (["coach", "--help"], ["ask", "--help"], ["compare", "--help"], ["--help"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0 and "DESIGN.md" not in result.output, command
    assert "docs/contracts.md" in CliRunner().invoke(cli, ["coach", "--help"]).output


def test_setup_writes_the_marker_the_test_script_checks(tmp_path: Path) -> None:
    """scripts/test.sh installs again when pyproject.toml is newer than its marker: the
    install in scripts/setup.sh must leave that marker, or every run reinstalls. (pip is
    replaced by a stand-in that only records its arguments: nothing is downloaded.)"""
    test_script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    [marker] = set(re.findall(r"pyproject\.toml -nt (\S+) ", test_script))
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "setup.sh").write_bytes((ROOT / "scripts" / "setup.sh").read_bytes())
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/../pip-calls"\n', encoding="utf-8")
    python.chmod(0o755)
    result = subprocess.run(
        ["bash", "scripts/setup.sh", "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "install" in (tmp_path / ".venv" / "pip-calls").read_text(encoding="utf-8")
    written = tmp_path / marker
    assert written.is_file(), f"setup.sh does not write {marker}"
    # the test script's own check now says "up to date"
    check = subprocess.run(["test", "pyproject.toml", "-nt", marker], cwd=tmp_path, timeout=10)
    assert check.returncode != 0
    assert written.stat().st_mtime >= (tmp_path / "pyproject.toml").stat().st_mtime


@pytest.mark.parametrize("name", ["slack", "telegram", "serve", "report", "forget"])
def test_the_commands_deploy_files_rely_on_answer_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
