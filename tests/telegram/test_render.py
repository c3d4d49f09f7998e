"""Telegram rendering, pure functions on tables of inputs: escaping, HTML balance, splitting
under 4096 characters (UTF-16) on line boundaries, buttons and their data, FR/EN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.channels.telegram.callbacks import Callback, explain_data, findings_data, fits, parse_callback
from bot.channels.telegram.render import (
    MAX_MESSAGE_CHARS,
    Rendered,
    balanced,
    card_keyboard,
    card_lines,
    escape,
    plain_text,
    render_reply,
    split_html,
    text_lines,
    user_html,
    utf16_len,
)
from bot.channels.telegram.texts import TelegramStrings, default_telegram_strings, load_telegram_strings
from bot.core.coach import Coach
from bot.core.errors import KnowledgeError
from bot.core.models import (
    Category,
    CoachCard,
    Comparison,
    Finding,
    PrincipleRef,
    Reply,
    ReplyKind,
    ScoreLine,
)
from bot.core.render import render_card, render_comparison
from tests.core_replies import drill_answer_reply, squash, summary_reply
from tests.telegram.samples import FRENCH, WEAK


def labels(lang: str = "en") -> TelegramStrings:
    return default_telegram_strings()[lang]


def finding(excerpt: str, message: str = "Why it hurts.", principle: str = "open-questions") -> Finding:
    return Finding(
        rule="rule-x",
        category=Category.JARGON,
        severity="medium",
        excerpt=excerpt,
        message=message,
        principle=principle,
    )


def card(findings: list[Finding], questions: list[str] | None = None, lang: str = "en") -> CoachCard:
    return CoachCard(
        language=lang,
        score=42,
        findings=findings,
        questions=questions or ["How are you handling … today?"],
        principles=[PrincipleRef(id="open-questions", title="Ask open questions")],
        explanation=[ScoreLine(points=60, reason="Starting point"), ScoreLine(points=-18, reason="Jargon")],
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain words", "plain words"),
        ("a < b > c", "a &lt; b &gt; c"),
        ("R&D and Q&A", "R&amp;D and Q&amp;A"),
        ("<b>not bold</b>", "&lt;b&gt;not bold&lt;/b&gt;"),
        ("&amp; already", "&amp;amp; already"),
        ("\"quotes\" and 'apostrophes'", "\"quotes\" and 'apostrophes'"),
        ("emoji 🚀🙂 stay", "emoji 🚀🙂 stay"),
        ("« Comment gérez-vous… ? »", "« Comment gérez-vous… ? »"),
    ],
)
def test_escape(text: str, expected: str) -> None:
    assert escape(text) == expected
    assert plain_text(escape(text)) == text
    assert balanced(escape(text))


@pytest.mark.parametrize(
    ("fragment", "ok"),
    [
        ("<b>bold</b> and <i>italic</i>", True),
        ("<b><i>nested</i></b>", True),
        ("<blockquote>quote</blockquote>", True),
        ("<b>open", False),
        ("<b><i>crossed</b></i>", False),
        ("close</b>", False),
        ("a < b", False),
        ("a > b", False),
        ("R&D", False),
        ("R&amp;D &#128640; &lt;", True),
        ("<script>x</script>", False),
    ],
)
def test_balanced(fragment: str, ok: bool) -> None:
    assert balanced(fragment) is ok


@pytest.mark.parametrize(
    "excerpt",
    ["<script>alert(1)</script>", "R&D > sales & <marketing>", "🚀 rocket <b>", "a\nmulti\nline excerpt"],
)
def test_user_text_in_a_card_is_escaped(coach: Coach, excerpt: str) -> None:
    lines = card_lines(card([finding(excerpt, message="x < y & z")]), coach.strings("en"))
    html_text = "\n".join(lines)
    assert balanced(html_text)
    assert " ".join(excerpt.split()) in plain_text(html_text)
    assert "x < y & z" in plain_text(html_text)


@pytest.mark.parametrize(
    ("text", "lang", "score_line", "questions_title"),
    [
        (WEAK, "en", "Conversation score: {score}/100", "Angles to explore"),
        (FRENCH, "fr", "Score de conversation : {score}/100", "Pistes de questions"),
    ],
)
def test_real_cards_in_both_languages(
    coach: Coach, text: str, lang: str, score_line: str, questions_title: str
) -> None:
    coached = coach.coach(text)
    assert coached.language == lang
    reply = Reply(kind=ReplyKind.CARD, language=lang, text="", card=coached)
    rendered = render_reply(reply, coach.strings(lang), labels(lang), owner="42")
    assert len(rendered.chunks) == 1
    shown = plain_text(rendered.chunks[0])
    assert score_line.format(score=coached.score) in shown
    assert questions_title in shown
    assert all(question in shown for question in coached.questions)
    assert shown.count("• ") == min(3, len(coached.findings))
    data = [button.data for row in rendered.keyboard for button in row]
    assert data[-1] == "r"
    assert ("f:42" in data) is (len(coached.findings) > 3)
    labels_text = " ".join(button.label for row in rendered.keyboard for button in row)
    assert ("Pourquoi" in labels_text) is (lang == "fr")


def test_all_findings_are_shown_on_demand_without_the_button(coach: Coach) -> None:
    coached = coach.coach(WEAK)
    assert len(coached.findings) > 3
    reply = Reply(kind=ReplyKind.CARD, language="en", text="", card=coached, all_findings=True)
    rendered = render_reply(reply, coach.strings("en"), labels(), owner="42")
    assert plain_text("\n".join(rendered.chunks)).count("• ") == len(coached.findings)
    assert not any(button.data.startswith("f:") for row in rendered.keyboard for button in row)


def test_comparison_in_french(coach: Coach) -> None:
    comparison = coach.compare(
        "Bonjour, avez-vous 15 minutes pour une démo de notre plateforme ?",
        "Bonjour, comment vos équipes préparent-elles l'audit qualité de mars ?",
    )
    reply = Reply(kind=ReplyKind.COMPARISON, language="fr", text="", comparison=comparison)
    rendered = render_reply(reply, coach.strings("fr"), labels("fr"), owner="7")
    shown = plain_text("\n".join(rendered.chunks))
    assert "Avant / après" in shown and "Réglé" in shown
    assert f"{comparison.before.score}/100 → {comparison.after.score}/100" in shown
    assert rendered.keyboard[-1][0].label == "Je l'ai réécrite"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("**Bold** then text", ["<b>Bold</b> then text"]),
        ("_a summary_", ["<i>a summary</i>"]),
        ("self_focus and snake_case stay", ["self_focus and snake_case stay"]),
        ("- a bullet", ["• a bullet"]),
        ("> a quote & more", ["<blockquote>a quote &amp; more</blockquote>"]),
        ("**a _b** c_", ["<b>a _b</b> c_"]),
        ("<tag> & 🚀\nsecond", ["&lt;tag&gt; &amp; 🚀", "second"]),
        ("**crossed _markers** here_ x", ["<b>crossed _markers</b> here_ x"]),
    ],
)
def test_markdownish_text(text: str, expected: list[str]) -> None:
    assert text_lines(text) == expected
    assert all(balanced(line) for line in expected)


def test_help_text_in_french(coach: Coach) -> None:
    reply = Reply(kind=ReplyKind.HELP, language="fr", text=coach.strings("fr").text("flow", "help"))
    rendered = render_reply(reply, coach.strings("fr"), labels("fr"), owner="1")
    assert rendered.keyboard == ()
    assert plain_text(rendered.chunks[0]).startswith("Collez")


def test_injection_note_is_kept_above_the_card(coach: Coach) -> None:
    ui = coach.strings("en")
    note = ui.text("flow", "injection_note")
    coached = card([finding("x")])
    text = f"{note}\n\n{render_card(coached, ui)}"
    reply = Reply(kind=ReplyKind.CARD, language="en", text=text, card=coached)
    rendered = render_reply(reply, ui, labels(), owner="1")
    assert plain_text(rendered.chunks[0]).startswith(note)
    assert rendered.keyboard[-1][0].data == "r"  # drawn natively, with the card's buttons


def test_a_drill_answer_keeps_the_cores_framing_and_only_why_buttons(coach: Coach) -> None:
    """A card the core framed (a drill answer's intro, what a good answer shows) is shown as
    the core's text, nothing lost; the buttons that act on a conversation are left out."""
    ui = coach.strings("en")
    coached = coach.coach(WEAK, "en")
    intro = "_Your answer to the drill “X” (only you can see this)._"
    text = f"{intro}\n\n{render_card(coached, ui)}\n\n**Good:**\n- one"
    reply = Reply(kind=ReplyKind.CARD, language="en", text=text, card=coached, private=True)
    rendered = render_reply(reply, ui, labels(), owner="1")
    shown = plain_text("\n".join(rendered.chunks))
    assert shown.startswith("Your answer to the drill") and shown.endswith("• one")
    assert f"{coached.score}/100" in shown
    data = [button.data for row in rendered.keyboard for button in row]
    actions = {parse_callback(item).action for item in data}  # type: ignore[union-attr]
    assert data and actions == {"explain"}


def test_an_onboarding_verdict_is_not_lost(coach: Coach) -> None:
    ui = coach.strings("fr")
    rewrite = "Comment organisez-vous les tournées depuis l'ouverture du dépôt ?"
    comparison = coach.compare(FRENCH, rewrite, "fr")
    text = f"{render_comparison(comparison, ui, invite_next=False)}\n\n**Étape 1 validée.**"
    reply = Reply(
        kind=ReplyKind.COMPARISON, language="fr", text=text, comparison=comparison, card=comparison.after
    )
    shown = plain_text("\n".join(render_reply(reply, ui, labels("fr"), owner="1").chunks))
    assert "Avant / après" in shown and shown.endswith("Étape 1 validée.")


# --- splitting ------------------------------------------------------------------------------


def test_a_long_card_is_split_on_line_boundaries(coach: Coach) -> None:
    long_message = "This wording pushes the buyer away 🚫 & asks for <time> too early. " * 12
    findings = [finding(f"excerpt {n} 🚀", message=long_message) for n in range(12)]
    reply = Reply(kind=ReplyKind.CARD, language="en", text="", card=card(findings), all_findings=True)
    rendered = render_reply(reply, coach.strings("en"), labels(), owner="42")
    lines = card_lines(card(findings), coach.strings("en"), all_findings=True)
    assert len(rendered.chunks) > 1
    for chunk in rendered.chunks:
        assert utf16_len(chunk) <= MAX_MESSAGE_CHARS
        assert balanced(chunk)
        assert all(line in lines for line in chunk.split("\n") if line)  # never cut inside a line
    assert "\n".join(rendered.chunks).replace("\n", "") == "\n".join(lines).replace("\n", "")


def test_emoji_count_twice_towards_the_limit() -> None:
    line = "🚀" * 3000  # 3000 characters, 6000 UTF-16 code units
    chunks = split_html([line])
    assert len(chunks) == 2
    assert all(utf16_len(chunk) <= MAX_MESSAGE_CHARS for chunk in chunks)
    assert "".join(chunks) == line


def test_an_overlong_line_is_cut_between_words_and_keeps_its_tags() -> None:
    words = " ".join(f"word{n}" for n in range(2000))
    chunks = split_html([f"<b>{escape(words)} &amp; end</b>"])
    assert len(chunks) > 1
    for chunk in chunks:
        assert balanced(chunk) and chunk.startswith("<b>") and chunk.endswith("</b>")
        assert utf16_len(chunk) <= MAX_MESSAGE_CHARS
        assert not plain_text(chunk).startswith(" ")
    assert " ".join(plain_text(chunk) for chunk in chunks) == f"{words} & end"


def test_blank_lines_never_make_an_empty_message() -> None:
    assert split_html(["", "", "<b></b>", ""]) == []
    assert split_html(["", "text", ""]) == ["text"]


PIECES = st.sampled_from(["word", "R&D", "<x>", "🚀", "é", "«", "»", "a" * 30, "12/100", "…", "“q”"])
LINES = st.lists(PIECES, min_size=0, max_size=40).map(" ".join)
WRAPS = st.sampled_from(["{}", "<b>{}</b>", "<i>{}</i>", "<b><i>{}</i></b>", "• <b>{}</b> {}"])


@settings(max_examples=150, deadline=None)
@given(
    lines=st.lists(st.tuples(LINES, WRAPS), min_size=1, max_size=30),
    limit=st.integers(min_value=80, max_value=600),
)
def test_splitting_keeps_every_character_balanced_and_under_the_limit(
    lines: list[tuple[str, str]], limit: int
) -> None:
    html_lines = [wrap.format(escape(text), escape(text)) for text, wrap in lines]
    chunks = split_html(html_lines, limit)
    for chunk in chunks:
        assert utf16_len(chunk) <= limit
        assert balanced(chunk)
        assert plain_text(chunk).strip()
    seen = "".join("".join(plain_text(chunk).split()) for chunk in chunks)
    assert seen == "".join("".join(plain_text(line).split()) for line in html_lines)


# --- buttons --------------------------------------------------------------------------------


def test_buttons_fit_and_leave_out_what_does_not() -> None:
    long_id = "p" + "-x" * 40  # an id too long for 64 bytes of callback data
    findings = [finding("a"), finding("b", principle="plain-words"), finding("c", principle=long_id)]
    findings += [finding("d", principle="brevity")]
    rows = card_keyboard(card(findings), labels(), owner="9" * 12)
    data = [button.data for row in rows for button in row]
    assert data == ["f:999999999999", "x:en:open-questions", "x:en:plain-words", "r"]
    assert all(fits(item) and len(item.encode()) <= 64 for item in data)
    assert rows[1][0].label == "Why? Ask open questions"


def test_related_principles_are_listed_with_their_buttons(coach: Coach) -> None:
    related = card([]).model_copy(
        update={
            "principles": [PrincipleRef(id="trigger-events", title="Start from a trigger event")],
            "related": ["trigger-events"],
        }
    )
    shown = plain_text("\n".join(card_lines(related, coach.strings("en"))))
    assert "Read more\n– Start from a trigger event" in shown
    data = [button.data for row in card_keyboard(related, labels(), owner="3") for button in row]
    assert data == ["x:en:trigger-events", "r"]


def test_no_findings_button_when_everything_is_shown() -> None:
    rows = card_keyboard(card([finding("a")]), labels("fr"), owner="5")
    assert [button.data for row in rows for button in row] == ["x:en:open-questions", "r"]
    assert rows[-1][0].label == "Je l'ai réécrite"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (findings_data("123"), Callback("findings", owner="123")),
        (explain_data("fr", "open-questions"), Callback("explain", lang="fr", principle="open-questions")),
        ("r", Callback("rewrote")),
        ("f:abc", None),
        ("x:fr:Not An Id", None),
        ("", None),
        (None, None),
        ("something-from-an-older-version", None),
    ],
)
def test_callback_data_round_trip(data: str | None, expected: Callback | None) -> None:
    assert parse_callback(data) == expected


# --- the Telegram-only strings ----------------------------------------------------------------


def test_shipped_strings_cover_both_languages() -> None:
    strings = load_telegram_strings()
    assert set(strings) == {"en", "fr"}
    assert list(strings["en"].commands) == list(strings["fr"].commands)
    assert {"start", "help", "coach", "ask", "lang", "new", "forget"} <= set(strings["en"].commands)
    assert {"drill", "report", "onboard", "privacy", "share"} <= set(strings["en"].commands)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("en: {send_text: x, apology: y, not_yours: z, dm_needed: '{link}', dm_ready: w, "
         "buttons: {findings: a, explain: b}, commands: {h: d}}", "en.buttons.rewrote"),
        ("en: {send_text: x, apology: y, not_yours: z, dm_needed: '{link}', dm_ready: w, "
         "buttons: {findings: a, explain: b, rewrote: c}, commands: {Bad-Name: d}}", "en.commands"),
        ("en: {send_text: x, apology: y, not_yours: z, dm_needed: no link, dm_ready: w, "
         "buttons: {findings: a, explain: b, rewrote: c}, commands: {h: d}}", "en.dm_needed"),
        ("- just a list", "(file)"),
    ],
)  # fmt: skip
def test_broken_strings_name_the_field(tmp_path: Path, content: str, field: str) -> None:
    path = tmp_path / "strings.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(KnowledgeError) as caught:
        load_telegram_strings(path)
    assert caught.value.field == field


# --- output safety ----------------------------------------------------------------------------
#
# What a rep typed (an opener, a rewrite, a drill answer shared in a summary, an id echoed in a
# notice) must never become Telegram markup, whatever it contains. Each hostile string goes
# through every renderer that shows user text; in each, the HTML is balanced, holds only the
# tags we write (bold, italic, our quotes), never a link, and the reader sees the words
# exactly as typed: any tag, bold, bullet or quote made of them would eat characters.

EVIL_LINK = "[see the plan](https://evil.example/login)"
HOSTILE = [
    pytest.param(EVIL_LINK, id="markdown-link"),
    pytest.param('<a href="https://evil.example">x</a> <a href="tg://user?id=1">boss</a>', id="a-href"),
    pytest.param("<b>bold</b> <i>it</i> <u>u</u> <s>s</s> <script>x</script>", id="html-tags"),
    pytest.param("</b></i></blockquote> unbalanced", id="closing-tags"),
    pytest.param('<tg-spoiler>s</tg-spoiler> <span class="tg-spoiler">x</span>', id="spoilers"),
    pytest.param('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', id="custom-emoji"),
    pytest.param(
        '<pre><code class="language-python">x</code></pre> <blockquote expandable>q</blockquote>', id="pre"
    ),
    pytest.param("&lt;b&gt;x&lt;/b&gt; &amp;lt; &#60;b&#62; &#x3C;", id="entities-double-escaping"),
    pytest.param("**bold** __u__ _it_ ~~s~~ ||spoiler|| `code` ```block```", id="markers-backticks"),
    pytest.param("> quoted\n- bullet\n**x**", id="multiline-markers"),
    pytest.param("<!channel> <!here|x> <@U1> <https://evil.example|x>", id="slack-syntax"),
    pytest.param("@durov #hashtag /start https://evil.example [x](tg://user?id=1)", id="telegram-entities"),
    pytest.param("zero\u200bwidth <\u200bb>x</b> https:\u200b//evil.example", id="zero-width"),
    pytest.param("\u202eknil.live//:sptth\u202c \u2067<b>x</b>\u2069", id="rtl-controls"),
    pytest.param("🚀👍🏽 👨‍👩‍👧 <b>🔗</b>", id="emoji"),
    pytest.param(("Call me <b>now</b> **please** " + EVIL_LINK + " ") * 150, id="very-long"),
]
_OUR_TAGS = {"b", "i", "blockquote"}


def assert_inert(rendered: Rendered, hostile: str) -> None:
    assert rendered.chunks
    for chunk in rendered.chunks:
        assert balanced(chunk), chunk[:300]
        assert utf16_len(chunk) <= MAX_MESSAGE_CHARS
        assert set(re.findall(r"</?([a-zA-Z][\w-]*)", chunk)) <= _OUR_TAGS, chunk[:300]
    shown = squash(plain_text("\n".join(rendered.chunks)))
    assert squash(hostile) in shown, (squash(hostile)[:200], shown[:600])


def _card_with(hostile: str, lang: str = "en") -> CoachCard:
    """A card quoting the rep's words the way the coach does (excerpt, evidence, a reason)."""
    quoted = finding(hostile).model_copy(update={"evidence": hostile})
    return card(
        [quoted, finding("Can we book 15 minutes?", principle="open-questions")], lang=lang
    ).model_copy(
        update={
            "explanation": [
                ScoreLine(points=60, reason="Base"),
                ScoreLine(points=5, reason=f'Context ("{hostile}")'),
            ]
        }
    )


def test_a_shared_drill_answer_in_a_summary_is_shown_as_typed(coach: Coach) -> None:
    ui = coach.strings("en")
    answer = f"How are your teams handling Saturdays? **Really** _now_ {EVIL_LINK} <b>x</b>"
    rendered = render_reply(summary_reply(coach, answer), ui, labels(), owner="1")
    [chunk] = rendered.chunks
    assert chunk.startswith("<b>Drill closed: The company brochure</b>")  # our formatting stays
    assert f"<blockquote>{escape(answer)} (97/100)</blockquote>" in chunk  # theirs: escaped only
    assert_inert(rendered, answer)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_words_in_a_drill_summary(coach: Coach, hostile: str) -> None:
    rendered = render_reply(summary_reply(coach, hostile), coach.strings("en"), labels(), owner="1")
    assert_inert(rendered, hostile)


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_hostile_words_in_a_card(coach: Coach, hostile: str, lang: str) -> None:
    ui = coach.strings(lang)
    coached = _card_with(hostile, lang)
    for text in ("", render_card(coached, ui)):  # drawn natively either way
        reply = Reply(kind=ReplyKind.CARD, language=lang, text=text, card=coached)
        assert_inert(render_reply(reply, ui, labels(lang), owner="1"), hostile)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_words_in_a_comparison(coach: Coach, hostile: str) -> None:
    ui = coach.strings("en")
    before, after = _card_with("We are the leading platform."), _card_with(hostile)
    comparison = Comparison(
        language="en", before=before, after=after, delta=0, resolved=[], remaining=[Category.JARGON], new=[]
    )
    reply = Reply(kind=ReplyKind.COMPARISON, language="en", text="", comparison=comparison, card=after)
    assert_inert(render_reply(reply, ui, labels(), owner="1"), hostile)


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("compared", [False, True])
def test_hostile_words_in_a_drill_answers_private_coaching(
    coach: Coach, hostile: str, compared: bool
) -> None:
    """Shown as the core's text: the card's excerpts are the rep's words, our framing
    around them keeps its formatting."""
    ui = coach.strings("en")
    coached = _card_with(hostile)
    comparison = (
        Comparison(
            language="en",
            before=_card_with("Our brochure."),
            after=coached,
            delta=0,
            resolved=[],
            remaining=[],
            new=[Category.JARGON],
        )
        if compared
        else None
    )
    rendered = render_reply(drill_answer_reply(coach, coached, comparison), ui, labels(), owner="1")
    assert_inert(rendered, hostile)
    html_text = "\n".join(rendered.chunks)
    assert "<b>What a good answer shows:</b>" in html_text and "• a question about their world" in html_text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_words_echoed_in_a_notice(coach: Coach, hostile: str) -> None:
    """`/drill now <anything>`: the core echoes the unknown id back."""
    ui = coach.strings("en")
    reply = Reply(kind=ReplyKind.NOTICE, language="en", text=ui.text("team", "drill_unknown", drill=hostile))
    assert_inert(render_reply(reply, ui, labels(), owner="1"), hostile)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_user_html_opens_no_tag(hostile: str) -> None:
    out = user_html(hostile)
    assert "<" not in out and ">" not in out and balanced(out)
    assert plain_text(out) == hostile


def test_real_coaching_of_a_hostile_opener(coach: Coach) -> None:
    opener = (
        'Hi <b>Sarah</b>, we are the **leading** platform <a href="https://evil.example">x</a>. '
        f"Would you be open to a 15-minute call? {EVIL_LINK}"
    )
    coached = coach.coach(opener, "en")
    assert coached.findings
    ui = coach.strings("en")
    for reply in (
        Reply(kind=ReplyKind.CARD, language="en", text="", card=coached),
        drill_answer_reply(coach, coached),
    ):
        for chunk in render_reply(reply, ui, labels(), owner="1").chunks:
            assert balanced(chunk)
            assert set(re.findall(r"</?([a-zA-Z][\w-]*)", chunk)) <= _OUR_TAGS, chunk[:300]
