"""prompts/llm/<lang>.yaml: complete, in its own language, and a broken file names itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.coach import Coach
from bot.core.errors import KnowledgeError
from bot.llm.guardrails import in_language
from bot.llm.prompts import REASONS, Part, load_llm_prompts
from bot.settings import Settings

PARTS: tuple[Part, ...] = ("second_opinion", "coaching_note", "ask")


def test_every_language_has_every_prompt_and_reason(settings: Settings, coach: Coach) -> None:
    prompts = load_llm_prompts(settings.prompts_dir / "llm")
    assert set(prompts) == set(coach.lexicons) == {"en", "fr"}
    for lang, file in prompts.items():
        for part in PARTS:
            system = file.system(part, categories="pitch, jargon", already_found="pitch")
            assert "{" not in system and file.guard in system
            assert in_language(system, lang, coach.detector, coach.lexicons), (lang, part)
        for reason in REASONS:
            notice = file.notice(reason, 10.0)
            assert in_language(notice, lang, coach.detector, coach.lexicons), notice
            assert "{" not in file.notice(reason, 10.0, "coaching_note")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda text: text.replace("lang: en", "lang: de"), "lang"),
        (lambda text: text.replace("  error: an unexpected error\n", ""), "reasons"),
        (
            lambda text: text.replace("coaching_note:\n  system:", "coaching_note:\n  sistem:"),
            "coaching_note",
        ),
        (lambda text: text + "\n  - : [\n", "yaml"),
    ],
    ids=["lang", "missing-reason", "misspelt-field", "broken-yaml"],
)
def test_a_broken_prompt_file_names_file_and_field(
    settings: Settings, tmp_path: Path, edit: object, field: str
) -> None:
    source = (settings.prompts_dir / "llm" / "en.yaml").read_text(encoding="utf-8")
    assert callable(edit)
    (tmp_path / "en.yaml").write_text(edit(source), encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_llm_prompts(tmp_path)
    assert caught.value.path == tmp_path / "en.yaml" and caught.value.field.startswith(field)
