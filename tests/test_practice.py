"""The practice buyer: thirty scripted sessions through the real coach (FR and EN), the
engine case by case, the session's JSON round trip, the debrief, and `fournil practice`
as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from bot.core.buyers import BuyerLibrary, BuyerSheet
from bot.core.coach import Coach
from bot.core.language import LanguageDetector
from bot.core.models import Category, CoachCard, Finding
from bot.core.practice import (
    PracticeOver,
    PracticeSession,
    blocking,
    buyer_lines,
    start_session,
    take_turn,
)
from bot.core.practice_debrief import build_debrief, coaching_notes, render_debrief
from bot.core.practice_strings import PracticeStrings, load_practice_strings
from bot.core.practice_words import topic_hits

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = BuyerLibrary.load(ROOT / "prompts" / "buyers")
STRINGS = load_practice_strings(ROOT / "prompts" / "practice")
FOURNIL = [sys.executable, "-m", "bot"]

# (drill, lang, seed, turns), each turn (kind, text): see tests/data/practice_sessions.yaml.
Script = tuple[str, str, str, list[tuple[str, str]]]


def _scripts() -> list[Script]:
    raw = yaml.safe_load((ROOT / "tests" / "data" / "practice_sessions.yaml").read_text(encoding="utf-8"))
    return [
        (item["drill"], item["lang"], item["seed"], [next(iter(turn.items())) for turn in item["turns"]])
        for item in raw
    ]


SCRIPTS = _scripts()


def _sheet(name: str, lang: str) -> BuyerSheet:
    sheet = LIBRARY.find(name, lang)
    assert sheet is not None, f"no buyer for {name} in {lang}"
    return sheet


def _play(coach: Coach, script: Script) -> list[tuple[str, str, str, PracticeSession]]:
    """(kind, reaction, buyer line, session after) for each scripted turn."""
    name, lang, seed, turns = script
    sheet = _sheet(name, lang)
    session = start_session(sheet, f"{name}-{lang}-{seed}")
    played: list[tuple[str, str, str, PracticeSession]] = []
    for kind, text in turns:
        if session.over:
            break
        turn = take_turn(session, sheet, coach.coach(text, lang), text, STRINGS[lang].common)
        session = turn.session
        played.append((kind, turn.reaction, turn.buyer, session))
    return played


@pytest.fixture(scope="module")
def sessions(coach: Coach) -> list[tuple[Script, list[tuple[str, str, str, PracticeSession]]]]:
    return [(script, _play(coach, script)) for script in SCRIPTS]


def test_thirty_scripted_sessions_in_both_languages() -> None:
    assert len(SCRIPTS) == 30
    assert Counter(lang for _, lang, _, _ in SCRIPTS) == {"en": 15, "fr": 15}
    assert {name for name, _, _, _ in SCRIPTS} == {sheet.drill for sheet in LIBRARY.for_language("en")}


def test_a_pitch_or_a_meeting_grab_as_first_turn_never_engages(sessions) -> None:  # type: ignore[no-untyped-def]
    for script, played in sessions:
        kind, reaction, line, _ = played[0]
        assert kind == "bad"
        assert reaction != "engaged", f"{script[0]} {script[1]}: {line}"


def test_specific_open_questions_engage_at_least_nine_times_in_ten(sessions) -> None:  # type: ignore[no-untyped-def]
    outcomes = [
        (script, reaction) for script, played in sessions for kind, reaction, _, _ in played if kind == "open"
    ]
    engaged = sum(reaction == "engaged" for _, reaction in outcomes)
    missed = [
        f"{script[0]}.{script[1]}: {reaction}" for script, reaction in outcomes if reaction != "engaged"
    ]
    assert len(outcomes) >= 100
    assert engaged / len(outcomes) >= 0.9, f"{engaged}/{len(outcomes)} engaged; missed: {missed}"


def test_pitching_mid_session_never_engages(sessions) -> None:  # type: ignore[no-untyped-def]
    pitches = [reaction for _, played in sessions for kind, reaction, _, _ in played if kind == "pitch"]
    assert len(pitches) >= 4 and "engaged" not in pitches


def test_the_buyer_never_repeats_a_line_within_a_session(sessions) -> None:  # type: ignore[no-untyped-def]
    for script, played in sessions:
        final = played[-1][3]
        keys = [key for turn in final.turns for key in turn.lines]
        assert len(keys) == len(set(keys)), script[:3]
        replies = [line for _, _, line, _ in played]
        assert len(replies) == len(set(replies)), script[:3]


def test_every_reply_is_in_the_session_language(sessions) -> None:  # type: ignore[no-untyped-def]
    detector = LanguageDetector()
    for script, played in sessions:
        for _, _, line, _ in played:
            assert detector.detect(line).lang == script[1], f"{script[0]} {script[1]}: {line}"


def test_the_buyer_only_says_lines_of_its_sheet(sessions) -> None:  # type: ignore[no-untyped-def]
    """The engine writes nothing of its own: every reply is made of the sheet's lines."""
    for script, played in sessions:
        sheet = _sheet(script[0], script[1])
        said = buyer_lines(played[-1][3], sheet)
        own = set(dict(sheet.lines()).values())
        assert said and all(line in own for line in said)


# --- the engine, case by case ----------------------------------------------------------------


def _card(lang: str, *categories: Category, open_questions: int = 1, evidence: str = "") -> CoachCard:
    findings = [
        Finding(
            rule=f"test-{category.value}",
            category=category,
            severity="high",
            excerpt=evidence or category.value,
            message="(a finding)",
            principle="open-questions",
            evidence=evidence,
        )
        for category in categories
    ]
    return CoachCard(
        language=lang,
        score=80 if not findings else 20,
        findings=findings,
        questions=[],
        principles=[],
        open_questions=open_questions,
    )


FITNESS = LIBRARY.get("fitness-hr-director", "en")
FITNESS_FR = LIBRARY.get("fitness-hr-director", "fr")
SPECIFIC = "How is the HR team coping with the eight new clubs?"
COMMON = STRINGS["en"].common


@pytest.mark.parametrize("category", list(Category), ids=lambda c: c.value)
def test_each_finding_gets_the_sheets_reaction_for_its_category(category: Category) -> None:
    assert FITNESS is not None
    session = start_session(FITNESS, "per-category")
    turn = take_turn(session, FITNESS, _card("en", category), "Some message.", COMMON)
    assert turn.reaction == FITNESS.reactions[category].reaction
    assert turn.buyer in FITNESS.reactions[category].lines
    assert turn.session.turns[0].answered == category and turn.session.strikes == 1


def test_the_worst_finding_decides() -> None:
    assert FITNESS is not None
    turn = take_turn(
        start_session(FITNESS, "worst"),
        FITNESS,
        _card("en", Category.CLOSED_QUESTION, Category.JARGON, Category.MEETING_ASK),
        "x",
    )
    assert turn.session.turns[0].answered == Category.MEETING_ASK
    assert turn.buyer in FITNESS.reactions[Category.MEETING_ASK].lines


def test_a_specific_open_question_reveals_the_facts_in_order_then_a_next_step() -> None:
    assert FITNESS is not None
    session = start_session(FITNESS, "facts")
    for index, fact in enumerate(FITNESS.facts):
        turn = take_turn(session, FITNESS, _card("en"), SPECIFIC, COMMON)
        assert turn.reaction == "engaged" and turn.buyer.endswith(fact) and not turn.ended
        assert turn.session.facts_revealed == index + 1
        session = turn.session
    last = take_turn(session, FITNESS, _card("en"), SPECIFIC, COMMON)
    assert last.reaction == "engaged" and last.ended and last.session.status == "next_step"
    assert last.buyer in FITNESS.next_step
    with pytest.raises(PracticeOver):
        take_turn(last.session, FITNESS, _card("en"), SPECIFIC, COMMON)


def test_a_clean_but_vague_question_gets_a_guarded_answer() -> None:
    assert FITNESS is not None
    turn = take_turn(
        start_session(FITNESS, "vague"), FITNESS, _card("en"), "What keeps you up at night?", COMMON
    )
    assert turn.reaction == "neutral" and turn.buyer in FITNESS.vague_question


def test_reusing_the_buyers_words_makes_a_question_specific_and_counts_as_listening() -> None:
    assert FITNESS is not None
    first = take_turn(start_session(FITNESS, "listen"), FITNESS, _card("en"), SPECIFIC, COMMON)
    # No topic of the sheet, but the buyer's own words from the first fact.
    text = "Gone within two months: what would make them stay longer?"
    assert topic_hits(text, FITNESS.topics) == []
    second = take_turn(first.session, FITNESS, _card("en"), text, COMMON)
    assert second.reaction == "engaged"
    assert second.signals.listened is True and second.signals.reused == ["gone", "months"]
    vague = take_turn(first.session, FITNESS, _card("en"), "What would make things better?", COMMON)
    assert vague.reaction == "neutral" and vague.signals.listened is False


def test_after_an_objection_pitching_ends_the_conversation() -> None:
    assert FITNESS is not None
    session = take_turn(start_session(FITNESS, "objection"), FITNESS, _card("en"), SPECIFIC, COMMON).session
    objection = take_turn(session, FITNESS, _card("en", Category.PITCH, open_questions=0), "x", COMMON)
    assert objection.reaction == "objection" and objection.buyer == FITNESS.objections[0]
    again = take_turn(objection.session, FITNESS, _card("en", Category.UNPROVEN_CLAIM), "x", COMMON)
    assert again.reaction == "closed" and again.ended and again.session.status == "left"
    assert again.buyer in FITNESS.farewell
    assert again.signals.stopped_pitching is False and again.session.turns[-1].pitched_after_objection


def test_after_an_objection_a_real_question_opens_the_buyer_again() -> None:
    assert FITNESS is not None
    session = take_turn(start_session(FITNESS, "recover"), FITNESS, _card("en"), SPECIFIC, COMMON).session
    objection = take_turn(session, FITNESS, _card("en", Category.MEETING_ASK), "x", COMMON)
    assert objection.reaction == "objection"
    recovered = take_turn(
        objection.session, FITNESS, _card("en"), "What does your HR system do for rotas?", COMMON
    )
    assert recovered.reaction == "engaged" and recovered.signals.stopped_pitching is True
    assert recovered.session.facts_revealed == 2


def test_the_buyer_leaves_when_patience_runs_out() -> None:
    assert FITNESS is not None
    session = start_session(FITNESS, "patience")
    for _ in range(FITNESS.patience - 1):
        turn = take_turn(
            session, FITNESS, _card("en", Category.CLOSED_QUESTION, open_questions=0), "x", COMMON
        )
        assert not turn.ended
        session = turn.session
    last = take_turn(session, FITNESS, _card("en", Category.JARGON), "x", COMMON)
    assert last.ended and last.reaction == "closed" and last.buyer in FITNESS.farewell


def test_a_figure_the_buyer_gave_is_not_an_unproven_claim_when_quoted_back() -> None:
    council = LIBRARY.get("council-digital-head", "en")
    assert council is not None
    first = take_turn(
        start_session(council, "echo"), council, _card("en"), "How are permits filed today?", COMMON
    )
    assert "1,200" in first.buyer
    quoted = _card("en", Category.UNPROVEN_CLAIM, evidence="1,200 applications")
    assert blocking(quoted.findings, first.buyer) == []
    turn = take_turn(first.session, council, quoted, "With 1,200 applications, who scans them?", COMMON)
    assert turn.reaction == "engaged"
    invented = _card("en", Category.UNPROVEN_CLAIM, evidence="cut by 45%")
    assert blocking(invented.findings, first.buyer) == [Category.UNPROVEN_CLAIM]


def test_wording_is_reproducible_by_session_id_and_varies_across_sessions() -> None:
    assert FITNESS is not None
    card = _card("en", Category.PITCH)
    same = {take_turn(start_session(FITNESS, "seed-1"), FITNESS, card, "x").buyer for _ in range(3)}
    assert len(same) == 1
    varied = {take_turn(start_session(FITNESS, f"seed-{n}"), FITNESS, card, "x").buyer for n in range(20)}
    assert varied == set(FITNESS.reactions[Category.PITCH].lines)


def test_the_session_survives_a_json_round_trip_and_goes_on_identically() -> None:
    assert FITNESS_FR is not None
    common = STRINGS["fr"].common
    session = take_turn(
        start_session(FITNESS_FR, "restart"), FITNESS_FR, _card("fr"), "Comment vont les salles ?", common
    )
    restored = PracticeSession.model_validate_json(session.session.model_dump_json())
    assert restored == session.session
    text = "Comment les directeurs de salle font-ils les plannings ?"
    go_on = take_turn(session.session, FITNESS_FR, _card("fr"), text, common)
    after_restart = take_turn(restored, FITNESS_FR, _card("fr"), text, common)
    assert go_on == after_restart


def test_a_sheet_of_another_buyer_is_refused() -> None:
    assert FITNESS is not None and FITNESS_FR is not None
    with pytest.raises(ValueError, match="not the buyer"):
        take_turn(start_session(FITNESS, "mismatch"), FITNESS_FR, _card("fr"), "x")


# --- debrief ---------------------------------------------------------------------------------


def _labels(coach: Coach, lang: str) -> dict[str, str]:
    return coach.strings(lang).data.categories


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_debrief_names_what_opened_the_buyer_and_asks_a_question_to_think_about(
    coach: Coach, lang: str
) -> None:
    script = next(s for s in SCRIPTS if s[0] == "fifteen-minute-demo" and s[1] == lang)
    played = _play(coach, script)
    session, sheet, strings = played[-1][3], _sheet(script[0], lang), STRINGS[lang]
    debrief = build_debrief(session, sheet, strings, _labels(coach, lang))
    assert [t.turn for t in debrief.turns] == list(range(1, len(played) + 1))
    first_engaged = next(
        index for index, (_, reaction, _, _) in enumerate(played, start=1) if reaction == "engaged"
    )
    assert debrief.opened_at == first_engaged > 1
    assert debrief.facts_revealed == sum(reaction == "engaged" for _, reaction, _, _ in played)
    assert debrief.focus == "meeting_ask"  # the first turn's meeting grab
    assert debrief.try_next == strings.text("try_next", "meeting_ask") and debrief.try_next.endswith("?")
    text = render_debrief(debrief, strings)
    assert debrief.opened_by in text and debrief.try_next in text
    assert LanguageDetector().detect(text).lang == lang


def test_debrief_of_a_buyer_who_never_opened_names_what_they_reacted_to(coach: Coach) -> None:
    assert FITNESS is not None
    session = start_session(FITNESS, "never")
    for _ in range(2):
        session = take_turn(session, FITNESS, _card("en", Category.PITCH, open_questions=0), "x").session
    debrief = build_debrief(session, FITNESS, STRINGS["en"], _labels(coach, "en"))
    assert debrief.opened_at is None and debrief.focus == "pitch"
    assert "Pitch" in debrief.opened_by
    empty = build_debrief(start_session(FITNESS, "empty"), FITNESS, STRINGS["en"], _labels(coach, "en"))
    assert empty.opened_by == STRINGS["en"].text("debrief", "no_turns") and empty.focus == "deeper"


def test_pitching_after_an_objection_is_the_thing_to_think_about(coach: Coach) -> None:
    assert FITNESS is not None
    session = take_turn(start_session(FITNESS, "focus"), FITNESS, _card("en"), SPECIFIC, COMMON).session
    session = take_turn(session, FITNESS, _card("en", Category.PITCH), "x").session
    session = take_turn(session, FITNESS, _card("en", Category.PITCH), "x").session
    debrief = build_debrief(session, FITNESS, STRINGS["en"], _labels(coach, "en"))
    assert debrief.outcome == "left" and debrief.focus == "pitched_after_objection"


def test_coaching_notes_in_each_language() -> None:
    assert FITNESS_FR is not None
    common = STRINGS["fr"].common
    first = take_turn(
        start_session(FITNESS_FR, "notes"), FITNESS_FR, _card("fr"), "Comment vont les salles ?", common
    )
    text = "Un tiers des agents d'accueil partis en deux mois : pourquoi partent-ils ?"
    second = take_turn(first.session, FITNESS_FR, _card("fr"), text, common)
    notes = coaching_notes(second.signals, 1, STRINGS["fr"])
    assert notes[0].startswith("Vous avez repris ses mots") and "accueil" in notes[0]
    assert notes[1] == STRINGS["fr"].text("coaching", "one_question")
    strings: PracticeStrings = STRINGS["en"]
    assert FITNESS is not None
    silent = take_turn(
        start_session(FITNESS, "notes"), FITNESS, _card("en", Category.NO_QUESTION, open_questions=0), "x"
    )
    assert coaching_notes(silent.signals, 0, strings) == [strings.text("coaching", "no_open_question")]


# --- the command line ----------------------------------------------------------------------


def _run(args: list[str], env: dict[str, str], stdin: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*FOURNIL, "--no-search", "practice", *args],
        input=stdin.encode(),
        env=env,
        capture_output=True,
        timeout=180,
    )


def test_cli_json_contract(cli_env: dict[str, str]) -> None:
    turns = "\n".join(
        [
            "Hi Claire, we are the leading HR platform. Can I get 15 minutes next week for a demo?",
            "",
            "ok",
            "How is the HR team coping with the hiring for the eight new clubs?",
        ]
    )
    result = _run(
        ["--drill", "fifteen-minute-demo", "--lang", "en", "--json", "--seed", "t1"], cli_env, turns
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(lines) == 4
    first, error, second, last = lines
    for turn in (first, second):
        assert set(turn) == {"turn", "buyer", "reaction", "card", "coaching", "ended"}
        assert turn["reaction"] in {"engaged", "neutral", "objection", "closed"}
        assert {"language", "score", "findings", "questions", "principles"} <= set(turn["card"])
        assert set(turn["coaching"]) == {"listened", "reused", "one_open_question", "stopped_pitching"}
    assert (first["turn"], second["turn"]) == (1, 2)
    assert first["reaction"] != "engaged" and {"meeting_ask", "pitch"} <= {
        f["category"] for f in first["card"]["findings"]
    }
    assert second["reaction"] == "engaged"
    assert error == {"line": 3, "error": error["error"]} and error["error"]
    debrief = last["debrief"]
    assert [t["reaction"] for t in debrief["turns"]] == [first["reaction"], "engaged"]
    assert debrief["opened_at"] == 2 and debrief["try_next"].endswith("?")
    again = _run(["--drill", "fifteen-minute-demo", "--lang", "en", "--json", "--seed", "t1"], cli_env, turns)
    assert again.stdout == result.stdout


def test_cli_json_in_french_stops_reading_once_the_buyer_has_left(cli_env: dict[str, str]) -> None:
    pressure = (
        "Dernière chance ! Notre offre expire vendredi, vos concurrents ont déjà signé, ne passez pas à côté."
    )
    turns = "\n".join([pressure] * 6 + ["Comment comparerez-vous les fournisseurs de caisses en septembre ?"])
    result = _run(["--drill", "last-chance-offer", "--lang", "fr", "--json"], cli_env, turns)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    played = [line for line in lines if "turn" in line]
    assert played[-1]["ended"] is True and all(not line["ended"] for line in played[:-1])
    assert len(played) <= 4 and all(line["reaction"] != "engaged" for line in played)
    assert all(LanguageDetector().detect(line["buyer"]).lang == "fr" for line in played)
    assert lines[-1]["debrief"]["outcome"] == "left" and lines[-1]["debrief"]["lang"] == "fr"


def test_cli_interactive_session_in_the_terminal(cli_env: dict[str, str]) -> None:
    turns = "I saw you started evening consultations in two clinics. How are the evening slots going?\n/end\n"
    result = _run(["--drill", "call-opener", "--lang", "en", "--seed", "t2"], cli_env, turns)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    sheet = _sheet("call-opener", "en")
    assert sheet.role in out and "Buyer" in out and "Debrief" in out
    assert any(fact[:40] in out.replace("\n", " ") for fact in sheet.facts[:1])


def test_cli_unknown_drill_is_one_line_and_exit_2(cli_env: dict[str, str]) -> None:
    result = _run(["--drill", "no-such-drill", "--lang", "fr", "--json"], cli_env, "")
    assert result.returncode == 2
    err = result.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "no-such-drill" in err and "fifteen-minute-demo" in err
