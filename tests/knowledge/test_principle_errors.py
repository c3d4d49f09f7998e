"""A broken knowledge file gets a clear error that names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.errors import KnowledgeError
from bot.knowledge.principles import load_principle

GOOD = """---
id: sample-principle
title: A sample
lang: en
summary: One sentence that states the sample principle clearly.
tags: [sample]
sources: ["Someone, Some Book, 2000"]
related: []
---

## Idea
Text.

## Why it works
Text.

## Weak example
> Weak.

## Strong example
> Strong.
"""


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        (GOOD.replace("title: A sample\n", ""), "title"),
        (GOOD.replace("tags: [sample]", "tags: [sample"), "front matter"),
        (GOOD.replace("id: sample-principle", "id: Sample Principle"), "id"),
        (GOOD.replace("related: []", "related: []\naliases: [Old Name]"), "aliases"),
        (GOOD.replace("related: []", "related: []\naliases: old-name"), "aliases"),
        (GOOD.replace("lang: en", "lang: fr"), "id/lang"),
        (GOOD.replace("## Why it works\nText.", "## Why it works\n"), "Why it works"),
        (GOOD.split("## Idea")[0], "body"),
        ("no front matter at all", "front matter"),
    ],
)
def test_broken_principle_names_file_and_field(tmp_path: Path, broken: str, field: str) -> None:
    path = tmp_path / "sample-principle.en.md"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_principle(path)
    message = str(caught.value)
    assert "sample-principle.en.md" in message and field in message


def test_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "sample-principle.en.md"
    path.write_text(GOOD, encoding="utf-8")
    assert load_principle(path).title == "A sample"
    path.write_text(GOOD.replace("related: []", "related: []\naliases: [old-name, older-name]"), "utf-8")
    assert load_principle(path).aliases == ("old-name", "older-name")
