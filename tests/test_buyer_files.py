"""Every practice buyer sheet, one test each, failures naming the file; the practice strings;
and the validator's messages on broken sheets (each names the file and the field)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.core.buyers import MIN_WORDINGS, BuyerLibrary, BuyerSheet, check_buyer_sheets, load_buyer
from bot.core.drills import DrillLibrary
from bot.core.errors import KnowledgeError
from bot.core.language import LanguageDetector
from bot.core.models import Category
from bot.core.practice_strings import practice_string_problems

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "prompts"
BUYERS = PROMPTS / "buyers"
BUYER_FILES = sorted(BUYERS.glob("*.yaml"))
LANGUAGES = ("en", "fr")
LIBRARY = BuyerLibrary.load(BUYERS)
DRILLS = DrillLibrary.load(PROMPTS / "drills")


def _concerning(problems: list[str], path: Path) -> list[str]:
    return [problem for problem in problems if problem.startswith(f"{path}:")]


@pytest.mark.parametrize("path", BUYER_FILES, ids=lambda p: p.name)
def test_buyer_sheet(path: Path) -> None:
    """Loads; covers every finding category with at least three wordings; has its
    translation with the same structure; links an existing drill; every line reads as the
    sheet's language to the project's detector."""
    sheet = load_buyer(path)
    assert set(sheet.reactions) == set(Category), f"{path.name}: categories"
    for category, case in sheet.reactions.items():
        assert len(case.lines) >= MIN_WORDINGS, f"{path.name}: reactions.{category.value}: {len(case.lines)}"
        assert case.reaction in {"neutral", "objection", "closed"}, f"{path.name}: {category.value}"
    for name in ("open_question", "vague_question", "next_step", "farewell"):
        assert len(getattr(sheet, name)) >= MIN_WORDINGS, f"{path.name}: {name}"
    assert len(sheet.facts) >= 3 and len(sheet.objections) >= 2, path.name
    other = "fr" if sheet.lang == "en" else "en"
    twin = LIBRARY.get(sheet.id, other)
    assert twin is not None, f"{path.name}: no {other} translation"
    assert twin.shape() == sheet.shape(), f"{path.name}: structure differs from its {other} translation"
    assert sheet.drill is not None and DRILLS.get(sheet.drill, sheet.lang) is not None, path.name
    problems = _concerning(LIBRARY.problems(LANGUAGES, DRILLS) + LIBRARY.language_problems(), path)
    assert not problems, "\n".join(problems)


def test_buyer_collection_is_varied() -> None:
    """At least twelve buyers, in both languages, over every channel, each on its own drill."""
    assert len(LIBRARY.ids()) >= 12
    for lang in LANGUAGES:
        sheets = LIBRARY.for_language(lang)
        assert len(sheets) == len(LIBRARY.ids()), lang
        assert {sheet.channel for sheet in sheets} == {"email", "linkedin", "phone", "telegram", "event"}
        drills = [sheet.drill for sheet in sheets]
        assert len(set(drills)) == len(drills), f"{lang}: two buyers on one drill"


def test_the_whole_check_passes_on_the_shipped_files() -> None:
    assert check_buyer_sheets(PROMPTS) == []


def test_practice_strings_say_everything_in_both_languages() -> None:
    assert practice_string_problems(PROMPTS / "practice", LANGUAGES) == []


def test_library_finds_a_buyer_by_drill_or_by_id() -> None:
    sheet = LIBRARY.find("fifteen-minute-demo", "fr")
    assert sheet is not None and sheet.id == "fitness-hr-director" and sheet.lang == "fr"
    assert LIBRARY.find("fitness-hr-director", "en") == LIBRARY.get("fitness-hr-director", "en")
    assert LIBRARY.find("no-such-drill", "en") is None


# --- broken sheets ------------------------------------------------------------------------


def _good() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((BUYERS / "fitness-hr-director.en.yaml").read_text(encoding="utf-8"))
    return raw


def _write(directory: Path, data: dict[str, Any], name: str = "fitness-hr-director.en.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _edit(change: str) -> dict[str, Any]:
    data = _good()
    if change == "missing category":
        del data["reactions"]["jargon"]
    elif change == "two wordings":
        data["reactions"]["pitch"]["lines"] = data["reactions"]["pitch"]["lines"][:2]
    elif change == "engaged on a pitch":
        data["reactions"]["pitch"]["reaction"] = "engaged"
    elif change == "unknown category":
        data["reactions"]["shouting"] = data["reactions"]["pitch"]
    elif change == "repeated line":
        data["farewell"][1] = data["farewell"][0]
    elif change == "lead-in runs on":
        data["open_question"][0] = "Since you ask,"
    elif change == "short topic":
        data["topics"] = [*data["topics"], "hr"]
    elif change == "unknown channel":
        data["channel"] = "fax"
    elif change == "patience":
        data["patience"] = 0
    elif change == "extra key":
        data["mood"] = "grumpy"
    return data


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ("missing category", "reactions", "jargon"),
        ("two wordings", "reactions.pitch.lines", "at least 3"),
        ("engaged on a pitch", "reactions.pitch.reaction", "neutral"),
        ("unknown category", "reactions.shouting.[key]", "pitch"),
        ("repeated line", "(file)", "farewell.1 repeats farewell.0"),
        ("lead-in runs on", "open_question", "end a sentence"),
        ("short topic", "topics", "'hr'"),
        ("unknown channel", "channel", "email"),
        ("patience", "patience", "greater than or equal to 2"),
        ("extra key", "mood", "not permitted"),
    ],
)
def test_broken_sheet_names_file_and_field(tmp_path: Path, change: str, field: str, words: str) -> None:
    path = _write(tmp_path, _edit(change))
    with pytest.raises(KnowledgeError) as caught:
        load_buyer(path)
    assert caught.value.path == path
    assert caught.value.field == field, str(caught.value)
    assert words in str(caught.value)


def test_file_name_must_match_id_and_language(tmp_path: Path) -> None:
    path = _write(tmp_path, _good(), "fitness-hr-director.fr.yaml")
    with pytest.raises(KnowledgeError) as caught:
        load_buyer(path)
    assert caught.value.field == "lang"


def _prompts_with(tmp_path: Path, en: dict[str, Any], fr: dict[str, Any] | None) -> Path:
    root = tmp_path / "prompts"
    _write(root / "buyers", en)
    if fr is not None:
        _write(root / "buyers", fr, "fitness-hr-director.fr.yaml")
    (root / "drills").mkdir(parents=True)
    (root / "practice").mkdir(parents=True)
    for name in ("fifteen-minute-demo.en.yaml", "fifteen-minute-demo.fr.yaml"):
        (root / "drills" / name).write_bytes((PROMPTS / "drills" / name).read_bytes())
    for name in ("en.yaml", "fr.yaml"):
        (root / "practice" / name).write_bytes((PROMPTS / "practice" / name).read_bytes())
    return root


def _french() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((BUYERS / "fitness-hr-director.fr.yaml").read_text(encoding="utf-8"))
    return raw


def test_a_copy_of_the_shipped_pair_checks_clean(tmp_path: Path) -> None:
    """The baseline the next tests break one thing of."""
    assert check_buyer_sheets(_prompts_with(tmp_path, _good(), _french())) == []


def test_missing_translation_is_named(tmp_path: Path) -> None:
    root = _prompts_with(tmp_path, _good(), None)
    path = root / "buyers" / "fitness-hr-director.en.yaml"
    assert check_buyer_sheets(root) == [f"{path}: missing translation 'fr'"]


def test_translation_of_another_shape_is_named(tmp_path: Path) -> None:
    french = _french()
    french["facts"] = french["facts"][:3]
    french["reactions"]["pressure"]["reaction"] = "neutral"
    root = _prompts_with(tmp_path, _good(), french)
    path = root / "buyers" / "fitness-hr-director.fr.yaml"
    problems = check_buyer_sheets(root)
    assert f"{path}: facts: differs from fitness-hr-director.en.yaml" in problems
    assert f"{path}: reactions.pressure: differs from fitness-hr-director.en.yaml" in problems


def test_a_line_in_the_wrong_language_is_named(tmp_path: Path) -> None:
    french = _french()
    french["reactions"]["jargon"]["lines"][1] = (
        "I am sorry, I really do not understand what that means in practice."
    )
    root = _prompts_with(tmp_path, _good(), french)
    path = root / "buyers" / "fitness-hr-director.fr.yaml"
    problems = check_buyer_sheets(root)
    assert len(problems) == 1 and problems[0].startswith(f"{path}: reactions.jargon.1: reads as en, not fr")


def test_a_link_to_an_unknown_drill_is_named(tmp_path: Path) -> None:
    english, french = _good(), _french()
    english["drill"] = french["drill"] = "no-such-drill"
    root = _prompts_with(tmp_path, english, french)
    problems = check_buyer_sheets(root)
    assert (
        f"{root / 'buyers' / 'fitness-hr-director.en.yaml'}: drill: no drill 'no-such-drill' in 'en'"
        in problems
    )
    assert len(problems) == 2


def test_a_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    root = _prompts_with(tmp_path, _edit("missing category"), _french())
    (root / "buyers" / "other-buyer.en.yaml").write_text("id: other-buyer\nlang: en\nfacts: [unclosed\n")
    problems = check_buyer_sheets(root)
    assert any(
        p.startswith(f"{root / 'buyers' / 'fitness-hr-director.en.yaml'}: reactions:") for p in problems
    )
    assert any(p.startswith(f"{root / 'buyers' / 'other-buyer.en.yaml'}: yaml:") for p in problems)


def test_practice_strings_problems_are_named(tmp_path: Path) -> None:
    directory = tmp_path / "practice"
    directory.mkdir()
    english = yaml.safe_load((PROMPTS / "practice" / "en.yaml").read_text(encoding="utf-8"))
    french = yaml.safe_load((PROMPTS / "practice" / "fr.yaml").read_text(encoding="utf-8"))
    english["try_next"]["deeper"] = "Think about what surprised you most in the buyer's answers."
    english["cli"]["extra"] = "Only the English file has this key, and it is long enough."
    del french["debrief"]["title"]
    (directory / "en.yaml").write_text(yaml.safe_dump(english, allow_unicode=True), encoding="utf-8")
    (directory / "fr.yaml").write_text(yaml.safe_dump(french, allow_unicode=True), encoding="utf-8")
    problems = practice_string_problems(directory, LANGUAGES)
    assert f"{directory / 'fr.yaml'}: debrief.title: missing" in problems
    french["debrief"]["title"] = "Bilan"
    (directory / "fr.yaml").write_text(yaml.safe_dump(french, allow_unicode=True), encoding="utf-8")
    problems = practice_string_problems(directory, LANGUAGES)
    assert f"{directory / 'fr.yaml'}: cli.extra: missing (present in en.yaml)" in problems
    assert (
        f"{directory / 'en.yaml'}: try_next.deeper: must be a question to think about (end with ?)"
        in problems
    )
    assert practice_string_problems(tmp_path / "absent", ["en"]) == [
        f"{tmp_path / 'absent' / 'en.yaml'}: missing (practice strings for 'en')"
    ]


def test_every_shipped_line_is_unique_within_its_sheet_and_keyed() -> None:
    """The engine tracks what was said by key; every key resolves to its own line."""
    detector = LanguageDetector()
    for sheet in [LIBRARY.get(buyer_id, lang) for buyer_id in LIBRARY.ids() for lang in LANGUAGES]:
        assert isinstance(sheet, BuyerSheet)
        keyed = dict(sheet.lines())
        assert len(set(keyed.values())) == len(keyed), sheet.id
        assert all(sheet.line(key) == line for key, line in keyed.items())
        assert detector.detect(sheet.situation).lang == sheet.lang
    with pytest.raises(KeyError):
        LIBRARY.get("fitness-hr-director", "en").line("facts.99")  # type: ignore[union-attr]
