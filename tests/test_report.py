"""The team report: figures from hand-built cards, text in both languages, the chart, the CLI."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from bot.core.errors import KnowledgeError
from bot.core.models import ConversationKey
from bot.core.ports import CardRecord
from bot.core.report import (
    TREND_POINTS,
    TeamReport,
    build_team_report,
    load_report_strings,
    render_team_report,
)
from bot.report_chart import render_report_png, report_figure
from bot.store.sql import SqlStore

ROOT = Path(__file__).resolve().parent.parent
REPORT_DIR = ROOT / "prompts" / "report"
STRINGS = load_report_strings(REPORT_DIR)
FOURNIL = [sys.executable, "-m", "bot"]
MONDAY = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
TWO_WEEKS = (MONDAY, MONDAY + timedelta(days=14))
NBSP = "\u00a0"


def card(
    score: int = 50,
    *,
    at: timedelta = timedelta(hours=10),
    rewrite: bool = False,
    question: bool = False,
    categories: Sequence[str] = (),
    user: str = "u1",
    conversation: str = "dm",
    channel: str = "slack",
) -> CardRecord:
    return CardRecord(
        key=ConversationKey(channel=channel, user_id=user, conversation_id=conversation),
        language="en",
        score=score,
        categories=list(categories),
        is_rewrite=rewrite,
        has_question=question,
        created_at=MONDAY + at,
    )


def report(cards: Sequence[CardRecord], named: dict[tuple[str, str], str] | None = None) -> TeamReport:
    return build_team_report(cards, *TWO_WEEKS, named=named)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


# --- figures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("firsts", "rewrites", "median_first", "median_rewrite"),
    [
        ([40, 60, 50], [70, 90], 50.0, 80.0),
        ([40, 61], [], 50.5, None),
        ([], [70], None, 70.0),
        ([10, 20, 30, 95], [55, 65, 99], 25.0, 65.0),
    ],
)
def test_medians_of_first_versions_and_rewrites(
    firsts: list[int], rewrites: list[int], median_first: float | None, median_rewrite: float | None
) -> None:
    cards = [card(s, at=hours(i), user=f"u{i}") for i, s in enumerate(firsts)]
    cards += [card(s, at=hours(20 + i), rewrite=True, user=f"u{i}") for i, s in enumerate(rewrites)]
    result = report(cards)
    assert (result.median_first, result.median_rewrite) == (median_first, median_rewrite)
    assert (result.cards, result.first_versions, result.rewrites) == (
        len(cards),
        len(firsts),
        len(rewrites),
    )


@pytest.mark.parametrize(
    ("versions", "ends_as_question"),
    [
        ([False], False),
        ([True], True),
        ([False, True], True),  # the rewrite fixed it
        ([True, False], False),  # the last rewrite lost the question
        ([False, False, True], True),
        ([True, True, False], False),
    ],
)
def test_a_conversation_counts_by_its_last_version(versions: list[bool], ends_as_question: bool) -> None:
    cards = [
        card(60, at=hours(index), rewrite=index > 0, question=question)
        for index, question in enumerate(versions)
    ]
    random.Random(3).shuffle(cards)  # the order cards arrive in does not matter, their time does
    result = report(cards)
    assert result.conversations == 1
    assert result.ending_with_question == int(ends_as_question)
    assert result.question_share == (1.0 if ends_as_question else 0.0)


def test_a_reused_key_holds_one_conversation_per_opener() -> None:
    """Telegram and Slack DMs reuse the conversation key: each opener starts a conversation."""
    cards = [
        card(40, at=hours(1), question=False),
        card(70, at=hours(2), rewrite=True, question=True),  # ends as a question
        card(45, at=hours(30), question=True),
        card(50, at=hours(31), rewrite=True, question=False),  # lost it
        card(55, at=hours(50), question=True),  # no rewrite: ends as a question
        card(60, at=hours(60), user="u2", question=False),  # another rep, another key
    ]
    result = report(cards)
    assert result.conversations == 4
    assert result.ending_with_question == 2
    assert result.question_share == 0.5


def test_rewrites_of_an_opener_before_the_period_are_not_conversations() -> None:
    before = CardRecord(
        key=ConversationKey(channel="slack", user_id="u1", conversation_id="dm"),
        language="en",
        score=30,
        categories=[],
        is_rewrite=False,
        created_at=MONDAY - timedelta(days=1),
    )
    cards = [before, card(80, at=hours(1), rewrite=True, question=True), card(50, at=hours(5))]
    result = report(cards)
    assert (result.cards, result.rewrites, result.conversations, result.ending_with_question) == (2, 1, 1, 0)
    assert result.median_rewrite == 80.0


def test_cards_outside_the_period_or_undated_are_left_out() -> None:
    undated = card(99).model_copy(update={"created_at": None})
    cards = [
        card(10, at=timedelta(seconds=-1)),
        card(20, at=timedelta(0)),  # since is included
        card(30, at=timedelta(days=14) - timedelta(seconds=1)),
        card(40, at=timedelta(days=14)),  # until is excluded
        undated,
    ]
    result = report(cards)
    assert result.cards == 2 and result.median_first == 25.0


def test_naive_timestamps_read_as_utc() -> None:
    naive = card(70).model_copy(update={"created_at": datetime(2025, 3, 3, 12, 0)})
    assert report([naive]).cards == 1


def _trend_cards(first: tuple[int, int], second: tuple[int, int]) -> list[CardRecord]:
    """(cards with the category, first versions) in the first week, then in the second."""
    cards: list[CardRecord] = []
    for offset, (with_category, total) in ((0, first), (7, second)):
        for index in range(total):
            categories = ["meeting_ask"] if index < with_category else ["jargon"]
            cards.append(card(50, at=timedelta(days=offset + 1, minutes=index), categories=categories))
    return cards


@pytest.mark.parametrize(
    ("first", "second", "trend"),
    [
        ((10, 10), (2, 10), "down"),
        ((2, 10), (8, 10), "up"),
        ((20, 40), (5, 40), "down"),
        ((5, 25), (9, 25), "up"),  # 20 % then 36 %: rising, not "steady"
        ((30, 60), (38, 60), "up"),  # 13 points
        ((10, 100), (15, 100), "up"),  # exactly 5 points (4.999… in floating point)
        ((40, 100), (35, 100), "down"),
        ((10, 100), (14, 100), "flat"),  # 4 points: below the stated threshold
        ((21, 100), (17, 100), "flat"),
        ((0, 0), (5, 10), "flat"),  # nothing to compare with
    ],
)
def test_category_trend_compares_the_two_halves(
    first: tuple[int, int], second: tuple[int, int], trend: str
) -> None:
    result = report(_trend_cards(first, second))
    stat = next(s for s in result.top_categories if s.category == "meeting_ask")
    assert stat.trend == trend
    assert stat.count == first[0] + second[0]
    assert stat.share == pytest.approx(stat.count / (first[1] + second[1]))


def test_top_categories_count_first_versions_only_and_keep_five() -> None:
    cards = [
        card(at=hours(1), categories=["pitch", "meeting_ask", "jargon"]),
        card(at=hours(2), categories=["pitch", "meeting_ask", "pitch"]),  # counted once
        card(at=hours(3), categories=["pitch", "too_long", "pressure", "self_focus"]),
        card(at=hours(4), rewrite=True, categories=["template_leftover"] * 1),
    ]
    top = report(cards).top_categories
    assert [(s.category, s.count) for s in top] == [
        ("pitch", 3),
        ("meeting_ask", 2),
        ("jargon", 1),
        ("pressure", 1),
        ("self_focus", 1),
    ]
    assert top[0].share == 1.0


def test_weekly_buckets_start_on_monday() -> None:
    since = MONDAY + timedelta(days=2)  # a Wednesday: the first bucket is still Monday's week
    until = MONDAY + timedelta(days=15)  # into a third week
    cards = [
        card(40, at=timedelta(days=2, hours=9), question=False),
        card(80, at=timedelta(days=2, hours=10), rewrite=True, question=True),
        card(60, at=timedelta(days=6, hours=23)),  # Sunday night: still week one
        card(70, at=timedelta(days=7, hours=1), user="u2", question=True),  # Monday: week two
    ]
    result = build_team_report(cards, since, until)
    assert [w.week_start for w in result.weeks] == [date(2025, 3, 3), date(2025, 3, 10), date(2025, 3, 17)]
    one, two, three = result.weeks
    assert (one.cards, one.median_first, one.median_rewrite) == (3, 50.0, 80.0)
    assert (one.conversations, one.question_share) == (2, 0.5)
    assert (two.cards, two.median_first, two.median_rewrite, two.question_share) == (1, 70.0, None, 1.0)
    assert (three.cards, three.median_first, three.question_share) == (0, None, None)


def test_an_empty_period_is_a_report_not_an_error() -> None:
    result = report([])
    assert result.empty and result.cards == result.reps == 0
    assert result.median_first is None and result.question_share is None
    assert result.top_categories == () and len(result.weeks) == 2
    assert "No cards in this period." in render_team_report(result, STRINGS["en"])
    assert "Aucune fiche sur cette période." in render_team_report(result, STRINGS["fr"])


def test_reps_are_counted_never_listed_unless_named() -> None:
    cards = [
        card(40, at=hours(1), user="U_ANA"),
        card(80, at=hours(2), user="U_ANA", rewrite=True),
        card(55, at=hours(3), user="U_SECRET_BOB"),
        card(65, at=hours(4), user="U_ANA", channel="telegram"),  # same id, other channel: another rep
    ]
    anonymous = report(cards)
    assert anonymous.reps == 3 and anonymous.named_reps == ()
    named = report(cards, named={("slack", "U_ANA"): "Ana", ("slack", "U_GONE"): "Gone"})
    assert [(r.label, r.cards, r.median_first, r.median_rewrite) for r in named.named_reps] == [
        ("Ana", 2, 40.0, 80.0)
    ]  # a rep who opted in but made no card in the period is not listed
    for result in (anonymous, named):
        dumped = result.model_dump_json()
        for text in (
            dumped,
            render_team_report(result, STRINGS["en"]),
            render_team_report(result, STRINGS["fr"]),
        ):
            assert "U_SECRET_BOB" not in text and "U_ANA" not in text


def test_the_period_must_end_after_it_starts() -> None:
    with pytest.raises(ValueError, match="end after"):
        build_team_report([], MONDAY, MONDAY)


# --- text -----------------------------------------------------------------------------------


def _sample() -> TeamReport:
    cards = [
        card(40, at=hours(1), categories=["meeting_ask", "pitch"], user="alice"),
        card(81, at=hours(2), rewrite=True, question=True, user="alice"),
        card(50, at=hours(30), categories=["pitch"], user="U_SECRET_BOB"),
        card(60, at=timedelta(days=8), categories=["closed_question"], user="carol"),
        card(70, at=timedelta(days=8, hours=1), rewrite=True, question=True, user="carol"),
    ]
    return report(cards, named={("slack", "alice"): "Alice"})


def test_text_report_in_english() -> None:
    text = render_team_report(_sample(), STRINGS["en"])
    assert text.startswith("**Team report · 3 Mar – 16 Mar 2025**")
    for expected in (
        "5 cards: 3 first versions, 2 rewrites, from 3 reps",
        "Median score: 50/100 for first versions, 75.5/100 for rewrites",
        "real question: 67% (2 of 3)",
        "- Pitch: 2 (67%)",
        "- Early meeting ask: 1 (33%)",
        "Week of 3 Mar: 3 cards, median 45 → 81, 50% end as a question",
        "Week of 10 Mar: 2 cards, median 60 → 70, 100% end as a question",
        "- Alice: 2 cards, median 40 → 81",
    ):
        assert expected in text, expected
    assert "U_SECRET_BOB" not in text and "carol" not in text and "alice" not in text


def test_text_report_in_french() -> None:
    text = render_team_report(_sample(), STRINGS["fr"])
    assert text.startswith("**Bilan de l'équipe · 3 mars – 16 mars 2025**")
    for expected in (
        "5 fiches : 3 premières versions, 2 réécritures, par 3 commerciaux",
        "75,5/100 pour les réécritures",
        f"67{NBSP}% (2 sur 3)",
        f"- Argumentaire : 2 (67{NBSP}%)",
        "- Rendez-vous trop tôt : 1",
        "Semaine du 10 mars : 2 fiches, médiane 60 → 70",
        "- Alice : 2 fiches, médiane 40 → 81",
    ):
        assert expected in text, expected
    assert "U_SECRET_BOB" not in text and "Pitch" not in text


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_report_states_its_trend_threshold(lang: str) -> None:
    text = render_team_report(_sample(), STRINGS[lang])
    assert TREND_POINTS == 5
    note = STRINGS[lang].text("trend_note", points=TREND_POINTS)
    assert "5 points" in note
    lines = text.splitlines()
    # right after the findings it qualifies, and only when there are findings
    assert lines[lines.index(f"_{note}_") - 1].startswith("- ")
    assert note not in render_team_report(report([card(60)]), STRINGS[lang])


def test_both_languages_say_the_same_things() -> None:
    en, fr = STRINGS["en"].data, STRINGS["fr"].data
    for section in ("categories", "trend", "trend_arrow", "text", "chart"):
        assert set(getattr(en, section)) == set(getattr(fr, section)), section
    assert en.categories != fr.categories  # translated, not copied


@pytest.mark.parametrize(
    ("lang", "edit", "field"),
    [
        ("fr", lambda t: t.replace("  title: Bilan de l'équipe\n", "", 1), "text.title"),
        ("fr", lambda t: t.replace("{cards} fiches", "{card} fiches"), "text.counts"),
        ("en", lambda t: t.replace("  jargon: Jargon\n", ""), "categories.jargon"),
        ("en", lambda t: t.replace("lang: en", "lang: fr"), "lang"),
        ("fr", lambda t: t + "\n  extra: [", "yaml"),
        ("en", lambda t: t.replace('  decimal_separator: "."\n', ""), "format.decimal_separator"),
    ],
)
def test_a_broken_strings_file_names_the_file_and_field(
    tmp_path: Path, lang: str, edit: object, field: str
) -> None:
    shutil.copytree(REPORT_DIR, tmp_path / "report")
    path = tmp_path / "report" / f"{lang}.yaml"
    assert callable(edit)
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_report_strings(tmp_path / "report")
    assert caught.value.path == path
    assert caught.value.field == field


def test_a_missing_language_file_is_named(tmp_path: Path) -> None:
    shutil.copytree(REPORT_DIR, tmp_path / "report")
    (tmp_path / "report" / "fr.yaml").unlink()
    with pytest.raises(KnowledgeError, match=r"fr\.yaml"):
        load_report_strings(tmp_path / "report")


# --- chart ------------------------------------------------------------------------------------


def _png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_chart_is_a_portrait_png_sized_for_a_phone(lang: str) -> None:
    image = _png(render_report_png(_sample(), STRINGS[lang]))
    width, height = image.size
    assert width >= 900 and height > width
    colours = image.convert("RGB").getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 50  # drawn, not a blank page


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_every_chart_panel_over_weeks_is_dated(lang: str) -> None:
    """A phone shows one panel at a time: the scores panel carries the week dates too."""
    sample = _sample()
    figure = report_figure(sample, STRINGS[lang])
    scores, questions = figure.axes[0], figure.axes[1]
    weeks = [STRINGS[lang].date(week.week_start, short=True) for week in sample.weeks]
    assert len(weeks) == 2
    for axes in (scores, questions):
        shown = [tick.label1.get_text() for tick in axes.xaxis.get_major_ticks() if tick.label1.get_visible()]
        assert shown == weeks, axes.get_title()


def test_chart_handles_an_empty_period_and_a_single_week() -> None:
    empty = _png(render_report_png(report([]), STRINGS["en"]))
    assert empty.size[0] >= 900
    one_day = build_team_report([card(40, categories=["pitch"])], MONDAY, MONDAY + timedelta(days=1))
    assert len(one_day.weeks) == 1
    single = _png(render_report_png(one_day, STRINGS["fr"]))
    assert single.size[0] >= 900 and single.size[1] > single.size[0]


def test_chart_leaves_no_global_pyplot_state() -> None:
    render_report_png(_sample(), STRINGS["en"])
    assert "matplotlib.pyplot" not in sys.modules


def test_a_read_only_home_gets_a_private_matplotlib_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import tempfile

    from bot import report_chart

    # setenv then delenv: monkeypatch then restores the variable as it was, whatever
    # _ensure_config_dir writes (delenv alone records nothing when it is unset)
    monkeypatch.setenv("MPLCONFIGDIR", "unset-by-this-test")
    monkeypatch.delenv("MPLCONFIGDIR")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # nothing under the real /tmp
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    report_chart._ensure_config_dir()
    assert os.environ["MPLCONFIGDIR"] == str(tmp_path / f"fournil-matplotlib-{os.getuid()}")

    monkeypatch.setenv("MPLCONFIGDIR", "/somewhere/chosen")  # an explicit choice is kept
    report_chart._ensure_config_dir()
    assert os.environ["MPLCONFIGDIR"] == "/somewhere/chosen"


# --- command line ---------------------------------------------------------------------------


def _seed(url: str, cards: Sequence[CardRecord], consenting: Sequence[tuple[str, str]] = ()) -> None:
    async def main() -> None:
        store = await SqlStore.open(url)
        try:
            for record in cards:
                await store.record_card(record)
            for channel, user in consenting:
                await store.set_share_consent(channel, user, True)
        finally:
            await store.close()

    asyncio.run(main())


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FOURNIL, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def team_env(cli_env: dict[str, str], db_url: str) -> dict[str, str]:
    return {**cli_env, "FOURNIL_DATABASE_URL": db_url, "FOURNIL_LANGUAGE": "en"}


def test_cli_report_reads_the_database_and_draws_the_chart(
    team_env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    cards = [
        *_sample_cards(),
        card(99, at=timedelta(days=17), user="alice"),  # after --until: left out
    ]
    _seed(db_url, cards, consenting=[("slack", "alice")])
    out = tmp_path / "team.png"
    result = _run(["report", "--since", "2025-03-03", "--until", "2025-03-16", "--png", str(out)], team_env)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "5 cards: 3 first versions, 2 rewrites, from 3 reps" in text
    assert "Median score: 50/100 for first versions, 75.5/100 for rewrites" in text
    assert "67% (2 of 3)" in text
    assert "alice: 2 cards, median 40 → 81" in text  # opted in: named by id
    # rendered for the terminal, not raw Markdown
    assert "**" not in text and "_No rep is named" not in text
    assert text.lstrip().startswith("Team report · 3 Mar – 16 Mar 2025")
    assert "• Pitch: 2 (67%) ↓ falling, 100% then 0%" in text
    assert "No rep is named unless they chose to share their figures." in text
    assert "U_SECRET_BOB" not in text and "carol" not in text
    assert f"chart written to {out}" in text
    image = _png(out.read_bytes())
    assert image.size[0] >= 900 and image.size[1] > image.size[0]

    french = _run(["report", "--since", "2025-03-03", "--until", "2025-03-16", "--lang", "fr"], team_env)
    assert "5 fiches : 3 premières versions" in french.stdout

    as_json = _run(["report", "--since", "2025-03-03", "--until", "2025-03-16", "--json"], team_env)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert (data["cards"], data["median_first"], data["median_rewrite"]) == (5, 50.0, 75.5)
    assert [rep["label"] for rep in data["named_reps"]] == ["alice"]
    assert "U_SECRET_BOB" not in as_json.stdout


def _sample_cards() -> list[CardRecord]:
    return [
        card(40, at=hours(10), categories=["meeting_ask", "pitch"], user="alice"),
        card(81, at=hours(10.5), rewrite=True, question=True, user="alice"),
        card(50, at=hours(34), categories=["pitch"], user="U_SECRET_BOB"),
        card(60, at=timedelta(days=8), categories=["closed_question"], user="carol", channel="telegram"),
        card(
            70, at=timedelta(days=8, hours=1), rewrite=True, question=True, user="carol", channel="telegram"
        ),
    ]


def test_cli_report_defaults_to_the_last_28_days(team_env: dict[str, str], db_url: str) -> None:
    now = datetime.now(UTC)
    recent = card(64).model_copy(update={"created_at": now - timedelta(days=2)})
    old = card(20, user="u2").model_copy(update={"created_at": now - timedelta(days=40)})
    _seed(db_url, [recent, old])
    result = _run(["report"], team_env)
    assert result.returncode == 0, result.stderr
    assert "1 cards: 1 first versions" in result.stdout and "64/100" in result.stdout


def test_cli_report_on_an_empty_database(team_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "empty.png"
    result = _run(["report", "--since", "2025-01-01", "--png", str(out)], team_env)
    assert result.returncode == 0, result.stderr
    assert "No cards in this period." in result.stdout
    _png(out.read_bytes())


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--since", "yesterday"], "--since: expected a date as YYYY-MM-DD"),
        (["--since", "2025-02-30"], "--since: '2025-02-30' is not a valid date"),
        (["--until", "03/01/2025"], "--until: expected a date"),
        (["--since", "2025-03-10", "--until", "2025-03-01"], "is after --until"),
        (["--lang", "de"], "--lang"),
    ],
)
def test_cli_report_bad_dates_exit_2_with_one_line(
    team_env: dict[str, str], args: list[str], reason: str
) -> None:
    result = _run(["report", *args], team_env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and reason in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_forget_deletes_a_user_everywhere_and_nobody_else(team_env: dict[str, str], db_url: str) -> None:
    cards = [
        card(40, user="alice"),
        card(70, at=hours(11), rewrite=True, user="alice"),
        card(50, user="alice", channel="telegram"),
        card(60, user="bob"),
    ]
    _seed(db_url, cards, consenting=[("slack", "alice")])

    only_telegram = _run(["forget", "alice", "--channel", "telegram"], team_env)
    assert only_telegram.returncode == 0, only_telegram.stderr
    assert "forgot alice: 1 row(s)" in only_telegram.stdout

    everywhere = _run(["forget", "alice"], team_env)
    assert everywhere.returncode == 0, everywhere.stderr
    assert "forgot alice: 3 row(s)" in everywhere.stdout  # two cards and the consent row

    async def rows() -> tuple[int, int, int]:
        store = await SqlStore.open(db_url)
        try:
            return (
                await store.count_user_rows("slack", "alice"),
                await store.count_user_rows("telegram", "alice"),
                await store.count_user_rows("slack", "bob"),
            )
        finally:
            await store.close()

    assert asyncio.run(rows()) == (0, 0, 1)
    again = _run(["forget", "alice"], team_env)
    assert "forgot alice: 0 row(s)" in again.stdout


@pytest.mark.parametrize("user", ["", "   "])
def test_cli_forget_needs_a_user(team_env: dict[str, str], user: str) -> None:
    result = _run(["forget", user], team_env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "USER is empty" in result.stderr


def test_demo_seed_gives_a_team_that_improves(team_env: dict[str, str], tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    seeded = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "seed_demo_team.py"), str(database)],
        env=team_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    since = (datetime.now(UTC) - timedelta(weeks=8) + timedelta(days=1)).date().isoformat()
    env = {**team_env, "FOURNIL_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    result = _run(["report", "--since", since, "--json"], env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["reps"] == 6 and data["cards"] > 150
    assert data["median_rewrite"] > data["median_first"]
    weeks = [w for w in data["weeks"] if w["median_first"] is not None]
    assert weeks[-1]["median_first"] > weeks[0]["median_first"]
    assert {c["category"] for c in data["top_categories"][:2]} == {"meeting_ask", "pitch"}
    assert {c["trend"] for c in data["top_categories"][:2]} == {"down"}
    assert [rep["label"] for rep in data["named_reps"]] == ["demo-ana", "demo-chloe"]
