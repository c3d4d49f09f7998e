"""A one-shot card starts lean without changing what it says (issue 16, item 12).

`fournil coach` and `compare` find a card's related principles in the copy of the index's
matrix that the data dir keeps (bot/knowledge/related.py) instead of opening Chroma, and
import neither Chroma nor the SQL store; the YAML files are read with libyaml. These tests
hold the one-shot card to the card the long-running path (the bots, `chat`) computes in
process with the index open, and check that a changed knowledge base or a damaged copy
is never used. How long a start takes is measured by bench/startup.py, never here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from bot.app import LazySearch, build_coach, load_principles, principles_fingerprint, related_copy_path
from bot.core import yaml_text
from bot.knowledge.related import RelatedMatrix, documents_fingerprint, stored_fingerprint
from bot.settings import Settings, load_settings
from tests.test_cli import run

ROOT = Path(__file__).resolve().parent.parent
OPENERS = [
    "Bonjour Marie, seriez-vous disponible jeudi pour une démo de notre plateforme ?",
    "Hi Sarah, I'm Tom from DataCorp. We are a leading provider of AI-powered analytics solutions. "
    "Would you be open to a 15-minute call next week to see a demo?",
    "Saw your post on line changeovers at the Lyon plant. How are you handling the shift from 3 to 5 "
    "SKUs a week today?",
    "Just following up on my last three emails. Did you get a chance to look? Let me know.",
    "Bonjour, je me permets de vous relancer. Notre solution leader du marché réduit vos coûts de 40 %. "
    "Quand pouvons-nous échanger ?",
    "Why did you pick Lisbon over Porto for the new office?",
]
# What a one-shot card must not import (each costs 0.1–0.5 s to load).
HEAVY = ("chromadb", "bm25s", "sqlalchemy", "alembic", "langchain", "matplotlib", "apscheduler", "faker")
PROBE = (
    "import json, sys\n"
    "from bot.cli import main\n"
    "try:\n"
    "    main()\n"
    "except SystemExit as exc:\n"
    "    assert not exc.code, exc.code\n"
    f"heavy = {HEAVY!r}\n"
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)), file=sys.stderr)\n"
)


def _cards(settings: Settings, one_shot: bool) -> tuple[list[dict[str, Any]], LazySearch]:
    coach = build_coach(settings, with_search=True, one_shot=one_shot)
    assert isinstance(coach.search, LazySearch)
    return [coach.coach(text).model_dump(mode="json") for text in OPENERS], coach.search


@pytest.fixture(scope="module")
def long_running(cli_data_dir: Path) -> tuple[Settings, list[dict[str, Any]]]:
    """The cards of the long-running path, in process, with the index open (which also
    writes the copy of its matrix into the data dir)."""
    settings = load_settings(data_dir=cli_data_dir)
    cards, search = _cards(settings, one_shot=False)
    assert search.opened
    # Every card has related principles (beyond those its findings cite) to compare.
    assert all(len(card["principles"]) > len(_cited(card)) for card in cards)
    return settings, cards


def _cited(card: dict[str, Any]) -> list[str]:
    """The principles a card's findings cite (the JSON lists them first, then the related)."""
    return list(dict.fromkeys(finding["principle"] for finding in card["findings"]))


def test_one_shot_coach_gives_the_long_running_cards_without_opening_the_index(
    long_running: tuple[Settings, list[dict[str, Any]]],
) -> None:
    settings, expected = long_running
    cards, search = _cards(settings, one_shot=True)
    assert cards == expected
    assert not search.opened  # found from the copy


def test_fournil_coach_prints_the_long_running_cards(
    long_running: tuple[Settings, list[dict[str, Any]]], cli_env: dict[str, str], tmp_path: Path
) -> None:
    _, expected = long_running
    batch = tmp_path / "openers.txt"
    batch.write_text("\n".join(OPENERS), encoding="utf-8")
    result = run(["coach", "--batch", str(batch), "--json"], cli_env)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.decode().splitlines()] == expected
    single = run(["coach", "--json", OPENERS[0]], cli_env)
    assert single.returncode == 0, single.stderr
    assert json.loads(single.stdout) == expected[0]


@pytest.mark.parametrize("search", [[], ["--no-search"]])
def test_a_one_shot_card_imports_neither_chroma_nor_the_store(
    long_running: tuple[Settings, list[dict[str, Any]]], cli_env: dict[str, str], search: list[str]
) -> None:
    _, expected = long_running
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *search, "coach", "--json", OPENERS[1]],
        env=cli_env,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    if search:
        assert [p["id"] for p in card["principles"]] == _cited(card)
    else:
        assert card == expected[1]
    assert json.loads(result.stderr.decode().strip().splitlines()[-1]) == []


def test_a_changed_knowledge_base_is_never_read_from_an_old_copy(
    long_running: tuple[Settings, list[dict[str, Any]]], tmp_path: Path
) -> None:
    settings, _ = long_running
    knowledge, data = tmp_path / "knowledge", tmp_path / "data"
    shutil.copytree(settings.knowledge_dir, knowledge)
    shutil.copytree(settings.data_dir, data)  # the index and the copy, in step with the shipped files
    principle = knowledge / "principles" / "open-questions.en.md"
    principle.write_text(
        principle.read_text(encoding="utf-8") + "\nA demo next week, a call on Thursday: ask first.\n",
        encoding="utf-8",
    )
    changed = load_settings(data_dir=data, knowledge_dir=knowledge)
    copy = related_copy_path(changed)
    assert copy is not None
    now = principles_fingerprint(load_principles(changed))
    assert stored_fingerprint(copy) != now  # the copy was written for the shipped files

    cards, search = _cards(changed, one_shot=True)
    assert search.opened  # the stale copy was not used: the index was opened and synced
    assert stored_fingerprint(copy) == now  # and the copy written again from it
    again, search = _cards(changed, one_shot=True)
    assert not search.opened and again == cards
    reference, _ = _cards(changed, one_shot=False)
    assert cards == reference


def test_kb_index_writes_the_copy(
    long_running: tuple[Settings, list[dict[str, Any]]], cli_env: dict[str, str], tmp_path: Path
) -> None:
    settings, _ = long_running
    data = tmp_path / "data"
    shutil.copytree(settings.data_dir, data)
    copy = data / "related-principles.npz"
    copy.unlink()
    result = run(["kb", "index"], dict(cli_env, FOURNIL_DATA_DIR=str(data)))
    assert result.returncode == 0, result.stderr
    assert stored_fingerprint(copy) == principles_fingerprint(load_principles(settings))


def test_a_damaged_or_foreign_copy_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "related-principles.npz"
    ids = ["open-questions:en:head", "brevity:fr:s0.1", "open-questions:fr:ask0"]
    vectors = np.eye(3, 4, dtype=np.float32)
    matrix = RelatedMatrix.of(ids, vectors)
    fingerprint = documents_fingerprint([(doc_id, "digest") for doc_id in ids])
    assert matrix.save(path, fingerprint)
    loaded = RelatedMatrix.load(path, fingerprint)
    assert loaded is not None
    assert loaded.nearest(np.array([1, 0, 0, 0], dtype=np.float32)) == matrix.nearest(
        np.array([1, 0, 0, 0], dtype=np.float32)
    )
    assert [name for name, _ in loaded.nearest(np.array([0, 1, 0, 0], dtype=np.float32))] == [
        "brevity",
        "open-questions",
    ]
    assert RelatedMatrix.load(path, documents_fingerprint([("open-questions:en:head", "other")])) is None
    path.write_bytes(b"not a zip file at all")
    assert RelatedMatrix.load(path, fingerprint) is None and stored_fingerprint(path) is None
    assert RelatedMatrix.load(tmp_path / "missing.npz", fingerprint) is None


def test_no_copy_with_a_chroma_server(settings: Settings) -> None:
    """A server stays the one source: its outage must show on cards (tests/test_outages.py)."""
    assert related_copy_path(settings.model_copy(update={"chroma_url": "http://127.0.0.1:8000"})) is None
    assert related_copy_path(settings) == settings.data_dir / "related-principles.npz"


def test_every_yaml_file_reads_the_same_with_libyaml() -> None:
    if yaml.__with_libyaml__:
        assert yaml_text.SAFE_LOADER is yaml.CSafeLoader  # the fast parser is the one used
    files = sorted(path for folder in ("knowledge", "prompts") for path in (ROOT / folder).rglob("*.yaml"))
    assert len(files) > 50
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert yaml_text.load_yaml(text) == yaml.load(text, Loader=yaml.SafeLoader), path


def test_a_broken_yaml_file_raises_the_same_error_class() -> None:
    with pytest.raises(yaml.YAMLError):
        yaml_text.load_yaml("key: [unclosed\nother: 1\n")
