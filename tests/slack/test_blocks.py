"""Block Kit rendering on tables of inputs: escaping, Slack's limits, French and English.

`assert_within_limits` walks any block list the way Slack's validator would reject it;
every renderer is run on ordinary cards from the real coach and on extreme ones (dozens
of findings, huge excerpts full of `&<>`), since one field over a limit loses the whole
message.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.channels.slack.blocks import (
    ACTION_REWROTE,
    MAX_BLOCKS,
    MAX_VIEW_BLOCKS,
    card_blocks,
    clip,
    comparison_blocks,
    escape,
    fit,
    home_view,
    mrkdwn,
    reply_blocks,
    reply_text,
    rewrite_modal,
    split_sections,
    text_blocks,
    user_mrkdwn,
)
from bot.channels.slack.payloads import CardRef, RewriteTarget
from bot.channels.slack.strings import SlackStrings, load_slack_strings, strings_for
from bot.core.coach import Coach
from bot.core.models import (
    Category,
    CoachCard,
    Comparison,
    ConversationKey,
    Finding,
    PrincipleRef,
    Reply,
    ReplyKind,
    ScoreLine,
)
from bot.core.ports import CardRecord
from bot.core.render import render_card, render_comparison
from tests.core_replies import drill_answer_reply, mrkdwn_objects, squash, summary_reply
from tests.slack.fakes import all_texts, find_button

EN_OPENER = "Hi Sarah, we are a leading provider of analytics. Would you be open to a 15-minute call?"
FR_OPENER = (
    "Bonjour Marie, nous sommes le leader des solutions d'analyse. "
    "Seriez-vous disponible jeudi pour une démo de 15 minutes ?"
)
NASTY = "<!channel> & <@U123|boss> <https://evil.example|click> &amp; > <"
REF = CardRef(conversation="C0123456789:1712345678.123456", owner="U0123456789", lang="en")
# Our own markup in mrkdwn: bold/italic markers, Slack date tokens; anything else
# starting with "<" would be unescaped user text.
_OWN_ANGLE = re.compile(r"<!date\^\d+\^[^|>]+\|[^>]+>|<https?://[^|>\s]+\|[^>]+>")


def assert_within_limits(blocks: list[dict[str, Any]], max_blocks: int = MAX_BLOCKS) -> None:
    assert 0 < len(blocks) <= max_blocks, len(blocks)
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
        if kind == "section":
            if "text" in block:
                _check_text(block["text"], 3000)
            for field in block.get("fields", []):
                _check_text(field, 2000)
            assert len(block.get("fields", [])) <= 10
            if "accessory" in block:
                _check_element(block["accessory"])
        if kind == "context":
            assert 0 < len(block["elements"]) <= 10
            for element in block["elements"]:
                _check_text(element, 3000)
        if kind == "actions":
            assert 0 < len(block["elements"]) <= 25
            for element in block["elements"]:
                _check_element(element)


def _check_text(text: dict[str, Any], limit: int) -> None:
    assert 0 < len(text["text"]) <= limit, len(text["text"])
    if text["type"] == "mrkdwn":
        stripped = _OWN_ANGLE.sub("", text["text"])
        assert "<" not in stripped and ">" not in stripped, stripped[:200]
        assert not re.search(r"&(?!amp;|lt;|gt;)", stripped), stripped[:200]


def _check_element(element: dict[str, Any]) -> None:
    assert element["type"] == "button"
    assert len(element["text"]["text"]) <= 75
    assert len(element["action_id"]) <= 255
    assert len(element["value"]) <= 2000


def extreme_card(lang: str = "en", findings: int = 60, size: int = 5000) -> CoachCard:
    categories = list(Category)
    return CoachCard(
        language=lang,
        score=7,
        findings=[
            Finding(
                rule=f"rule_{i}",
                category=categories[i % len(categories)],
                severity="high",
                excerpt=(NASTY * (size // len(NASTY) + 1))[:size],
                message=(NASTY + " why ") * 200,
                principle=f"principle-{i}",
            )
            for i in range(findings)
        ],
        questions=[(NASTY + " what?") * 300 for _ in range(12)],
        principles=[PrincipleRef(id=f"principle-{i}", title=NASTY * 20) for i in range(findings)],
        explanation=[ScoreLine(points=-3, reason=NASTY * 10) for _ in range(200)],
        buying_group_nudge=NASTY * 500,
    )


# --------------------------------------------------------------------------- text helpers


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a & b", "a &amp; b"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<!channel> now", "&lt;!channel&gt; now"),
        ("x > y < z", "x &gt; y &lt; z"),
        ("&amp; typed", "&amp;amp; typed"),
        ("*bold* _it_ `code`", "*bold* _it_ `code`"),
        ("« Comment gérez-vous… ? »", "« Comment gérez-vous… ? »"),
        ("", ""),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


@pytest.mark.parametrize("limit", [5, 10, 75, 150, 2000, 3000])
@pytest.mark.parametrize("text", ["&" * 5000, "a<b>" * 2000, "é" * 4000, "x" * 100, "ab &amp"])
def test_fit_never_exceeds_nor_cuts_an_entity(text: str, limit: int) -> None:
    out = fit(escape(text), limit)
    assert len(out) <= limit
    assert not re.search(r"&[a-z]{0,3}…$", out)
    assert not re.search(r"&(?!amp;|lt;|gt;)", out.rstrip("…"))
    assert len(clip(text, limit)) <= limit


@pytest.mark.parametrize(
    ("markdownish", "expected"),
    [
        ("**Score: 40/100**", "*Score: 40/100*"),
        ("_Principle: x_", "_Principle: x_"),
        ("- one\n- two", "• one\n• two"),
        ("## The idea", "*The idea*"),
        ("[Read](https://x.test/a?b=1&c=2)", "<https://x.test/a?b=1&amp;c=2|Read>"),
        ("<script> & </script>", "&lt;script&gt; &amp; &lt;/script&gt;"),
        ("“quoted” → ok", "“quoted” → ok"),
    ],
)
def test_mrkdwn_from_the_core_text(markdownish: str, expected: str) -> None:
    assert mrkdwn(markdownish) == expected


def test_split_sections_respects_the_limit() -> None:
    text = escape(("word & <more> " * 40 + "\n") * 300)
    pieces = split_sections(text)
    assert len(pieces) > 1
    assert all(0 < len(piece) <= 3000 for piece in pieces)
    assert all(not re.search(r"&[a-z]{0,3}$", piece) for piece in pieces)


@pytest.mark.parametrize("size", [0, 10, 3000, 3001, 200_000])
def test_text_blocks_any_size(size: int) -> None:
    blocks = text_blocks(("A paragraph & <stuff>. " * 10 + "\n\n") * (size // 240 + 1) if size else "")
    assert_within_limits(blocks)


# --------------------------------------------------------------------------- cards


@pytest.mark.parametrize(
    ("opener", "lang", "score_label", "rewrote", "why"),
    [
        (EN_OPENER, "en", "Conversation score:", "I rewrote it", "Why?"),
        (FR_OPENER, "fr", "Score de conversation", "Je l'ai réécrite", "Pourquoi ?"),
    ],
)
@pytest.mark.parametrize("surface", ["dm", "thread", "private"])
def test_real_cards_in_both_languages(
    coach: Coach, opener: str, lang: str, score_label: str, rewrote: str, why: str, surface: str
) -> None:
    card = coach.coach(opener)
    assert card.language == lang
    ui, strings = coach.strings(lang), strings_for(lang)
    blocks = card_blocks(card, ui, strings, ref=REF, surface=surface)  # type: ignore[arg-type]
    assert_within_limits(blocks)
    assert blocks[0]["text"]["text"].startswith(score_label)
    assert blocks[0]["text"]["text"].endswith(f"{card.score}/100")
    assert find_button(blocks, ACTION_REWROTE)["text"]["text"] == rewrote
    assert all(b["accessory"]["text"]["text"] == why for b in blocks if "accessory" in b)
    texts = all_texts(blocks)
    for finding in card.findings[:3]:
        assert ui.category(finding.category) in texts
        assert finding.principle in texts
    for question in card.questions:
        assert escape(question) in texts
    assert strings.text(f"invitation_{surface}") in texts


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("all_findings", [False, True])
@pytest.mark.parametrize("findings", [0, 1, 4, 45, 60])
def test_extreme_cards_stay_within_limits(coach: Coach, lang: str, all_findings: bool, findings: int) -> None:
    card = extreme_card(lang, findings)
    blocks = card_blocks(card, coach.strings(lang), strings_for(lang), ref=REF, all_findings=all_findings)
    assert_within_limits(blocks)
    assert blocks[-1]["type"] == "actions"  # the buttons survive the budget
    texts = all_texts(blocks)
    assert "<!channel>" not in texts and "<@U123" not in texts


def test_hidden_findings_get_a_count_and_a_button(coach: Coach) -> None:
    card = extreme_card(findings=5, size=20)
    blocks = card_blocks(card, coach.strings("en"), strings_for("en"), ref=REF)
    assert "2 more" in all_texts(blocks)
    buttons = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["fournil_rewrote", "fournil_all_findings"]
    full = card_blocks(card, coach.strings("en"), strings_for("en"), ref=REF, all_findings=True)
    assert sum(1 for b in full if "accessory" in b) == 5


def test_related_principles_are_listed(coach: Coach) -> None:
    card = coach.coach(EN_OPENER)
    extra = PrincipleRef(id="buying-group", title="The <buying> group & you")
    card = card.model_copy(update={"principles": [*card.principles, extra], "related": [extra.id]})
    blocks = card_blocks(card, coach.strings("en"), strings_for("en"), ref=REF)
    assert_within_limits(blocks)
    assert "The &lt;buying&gt; group &amp; you (buying-group)" in all_texts(blocks)


def test_a_card_without_a_conversation_has_no_rewrite_button(coach: Coach) -> None:
    blocks = card_blocks(coach.coach(EN_OPENER), coach.strings("en"), strings_for("en"), ref=None)
    assert not [b for b in blocks if b["type"] == "actions"]


# --------------------------------------------------------------------------- comparisons


@pytest.mark.parametrize(("lang", "title"), [("en", "Before / after"), ("fr", "Avant / après")])
def test_real_comparison(coach: Coach, lang: str, title: str) -> None:
    before = EN_OPENER if lang == "en" else FR_OPENER
    after = (
        "Hi Sarah, since Northwind opened the Lyon site, how are you splitting picking between sites?"
        if lang == "en"
        else "Bonjour Marie, depuis l'ouverture du site de Lyon, comment répartissez-vous la préparation ?"
    )
    comparison = coach.compare(before, after, lang)
    blocks = comparison_blocks(comparison, coach.strings(lang), strings_for(lang), ref=REF)
    assert_within_limits(blocks)
    assert blocks[0]["text"]["text"] == title
    texts = all_texts(blocks)
    assert f"{comparison.before.score}/100 → {comparison.after.score}/100" in texts
    find_button(blocks, ACTION_REWROTE)


@pytest.mark.parametrize("findings", [0, 3, 60])
def test_extreme_comparison(coach: Coach, findings: int) -> None:
    before, after = extreme_card(findings=60), extreme_card(findings=findings)
    comparison = Comparison(
        language="en",
        before=before,
        after=after,
        delta=after.score - before.score,
        resolved=list(Category),
        remaining=list(Category),
        new=list(Category),
    )
    blocks = comparison_blocks(comparison, coach.strings("en"), strings_for("en"), ref=REF)
    assert_within_limits(blocks)


# --------------------------------------------------------------------------- any reply


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_help_is_the_slack_help(coach: Coach, lang: str) -> None:
    reply = Reply(kind=ReplyKind.HELP, language=lang, text=coach.strings(lang).text("flow", "help"))
    blocks = reply_blocks(reply, coach.strings(lang), strings_for(lang))
    assert_within_limits(blocks)
    assert "/fournil coach" in all_texts(blocks)
    assert reply_text(reply, coach.strings(lang), strings_for(lang))


@pytest.mark.parametrize(
    "kind", [ReplyKind.NOTICE, ReplyKind.INVALID, ReplyKind.REFUSAL, ReplyKind.PRINCIPLE]
)
def test_text_replies_are_escaped_mrkdwn(coach: Coach, kind: ReplyKind) -> None:
    reply = Reply(kind=kind, language="en", text=f"**Title** {NASTY}\n- item\n" * 400)
    blocks = reply_blocks(reply, coach.strings("en"), strings_for("en"))
    assert_within_limits(blocks)
    assert "*Title*" in all_texts(blocks)
    assert len(reply_text(reply, coach.strings("en"), strings_for("en"))) <= 3000


@pytest.mark.parametrize("kind", [ReplyKind.CARD, ReplyKind.COMPARISON])
def test_a_private_drill_answer_is_its_whole_text(coach: Coach, kind: ReplyKind) -> None:
    """The coaching of a drill answer: the intro, the card and what a good answer shows,
    all of it, and no "I rewrote it" button (the drill thread is where to answer again)."""
    ui = coach.strings("en")
    card = coach.coach(EN_OPENER)
    text = (
        f"_Your answer (only you can see this)._\n\n**Score** {NASTY}\n\n**What a good answer shows:**\n- one"
    )
    reply = Reply(kind=kind, language="en", text=text, card=card, private=True)
    blocks = reply_blocks(reply, ui, strings_for("en"), ref=REF)
    assert_within_limits(blocks)
    texts = all_texts(blocks)
    assert "only you can see this" in texts and "What a good answer shows" in texts
    assert all(block["type"] == "section" for block in blocks)
    assert reply_text(reply, ui, strings_for("en"))


@pytest.mark.parametrize("kind", [ReplyKind.DRILL, ReplyKind.SUMMARY, ReplyKind.LESSON, ReplyKind.REPORT])
def test_team_replies_are_text(coach: Coach, kind: ReplyKind) -> None:
    reply = Reply(kind=kind, language="fr", text=f"**Exercice d'équipe** {NASTY}\n\n- point\n" * 200)
    blocks = reply_blocks(reply, coach.strings("fr"), strings_for("fr"))
    assert_within_limits(blocks)
    assert "*Exercice d'équipe*" in all_texts(blocks)


def test_injection_note_is_kept(coach: Coach) -> None:
    ui = coach.strings("en")
    card = coach.coach(EN_OPENER)
    note = ui.text("flow", "injection_note")
    reply = Reply(kind=ReplyKind.CARD, language="en", text=f"{note}\n\n...", card=card)
    blocks = reply_blocks(reply, ui, strings_for("en"), ref=REF)
    assert blocks[0]["type"] == "context" and note in all_texts(blocks[:1])


# --------------------------------------------------------------------------- modal, home


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_rewrite_modal(lang: str) -> None:
    target = RewriteTarget(
        conversation=REF.conversation,
        owner=REF.owner,
        lang=lang,
        channel="C0123456789",
        thread_ts="1712345678.123456",
        response_url="https://hooks.slack.com/actions/T0123/1234567890123/" + "x" * 24,
    )
    view = rewrite_modal(strings_for(lang), target.encode())
    for key in ("title", "submit", "close"):
        assert 0 < len(view[key]["text"]) <= 24
    assert len(view["private_metadata"]) <= 3000
    assert RewriteTarget.decode(view["private_metadata"]) == target
    assert view["blocks"][0]["element"]["max_length"] <= 3000
    with pytest.raises(ValueError, match="private_metadata"):
        rewrite_modal(strings_for(lang), "x" * 3001)


def _records(count: int) -> list[CardRecord]:
    key = ConversationKey(channel="slack", user_id="U1", conversation_id="D1")
    start = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    return [
        CardRecord(
            key=key,
            language="en",
            score=30 + (i * 7) % 60,
            categories=["pitch", "meeting_ask"] if i % 3 else [],
            is_rewrite=bool(i % 2),
            created_at=(start - timedelta(hours=i)).replace(tzinfo=None) if i % 2 else start,
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("count", [0, 1, 2, 50, 500])
def test_home_view(coach: Coach, lang: str, count: int) -> None:
    view = home_view(_records(count), coach.strings(lang), strings_for(lang))
    assert view["type"] == "home"
    assert_within_limits(view["blocks"], MAX_VIEW_BLOCKS)
    texts = all_texts(view["blocks"])
    assert strings_for(lang).home_progress in texts
    if count == 0:
        assert strings_for(lang).home_no_cards in texts
    else:
        assert "<!date^" in texts and "/100" in texts
    if count >= 2:
        assert strings_for(lang).home_rewrite in texts


# --------------------------------------------------------------------------- strings


def test_slack_strings_fit_their_widgets() -> None:
    table = load_slack_strings()
    assert set(table) == {"en", "fr"}
    for strings in table.values():
        assert isinstance(strings, SlackStrings)
        for key in ("why", "all_findings", "rewrote"):
            assert len(strings.text(key)) <= 75
        for key in ("modal_title", "modal_submit", "modal_close"):
            assert len(strings.text(key)) <= 24
        assert "{count}" in strings.more_findings


def test_button_values_fit() -> None:
    longest = CardRef(conversation="shortcut:" + "C" * 20 + ":" + "9" * 17, owner="U" * 20, lang="fr")
    assert len(longest.encode()) <= 255  # far under the 2000 allowed
    assert CardRef.decode(longest.encode()) == longest


# --------------------------------------------------------------------------- output safety
#
# What a rep typed (an opener, a rewrite, a drill answer shared in a summary, an id echoed in
# a notice) must never become a Slack link, mention or broadcast, whatever it contains. Each
# hostile string goes through every renderer that shows user text; in each, the mrkdwn
# Slack receives has no control sequence at all (these replies hold none of ours), every
# mrkdwn object is verbatim (no auto-linking of a bare URL, #channel or @here), the words
# show exactly as typed (escaped, no markdown link converted), and the fallback `text`,
# which Slack auto-links, leaves them out.

EVIL_LINK = "[see the plan](https://evil.example/login)"
HOSTILE = [
    pytest.param(EVIL_LINK, id="markdown-link"),
    pytest.param(f"Great call! {EVIL_LINK} and [x]( https://evil.example )", id="markdown-links-in-prose"),
    pytest.param("<!channel> please read", id="channel"),
    pytest.param("<!here|x> now", id="here-with-label"),
    pytest.param("<!everyone> <!subteam^S0123|@sales>", id="everyone-subteam"),
    pytest.param("<@U1> and <@U123|boss>", id="user-mentions"),
    pytest.param("<#C0123|general>", id="channel-link"),
    pytest.param("<https://evil.example|x>", id="slack-link"),
    pytest.param("<https://evil.example>", id="slack-bare-link"),
    pytest.param("https://evil.example/login and www.evil.example", id="bare-urls"),
    pytest.param("@here @channel #general", id="typed-broadcasts"),
    pytest.param("&lt;!channel&gt; &amp;lt; &#60;", id="entities-double-escaping"),
    pytest.param('<a href="https://evil.example">x</a> <b>bold</b> <script>', id="html-tags"),
    pytest.param("*bold* _it_ ~st~ `code` ```block``` **md**", id="markers-backticks"),
    pytest.param("> quoted\n- bullet\n## heading\n<!channel>", id="multiline-markers"),
    pytest.param("zero\u200bwidth https:\u200b//evil.example <\u200b!channel>", id="zero-width"),
    pytest.param("\u202eknil.live//:sptth\u202c \u2067<!here>\u2069", id="rtl-controls"),
    pytest.param("🚀👍🏽 👨‍👩‍👧 <@U1> 🔗", id="emoji"),
    pytest.param(("Call me <!channel> " + EVIL_LINK + " ") * 120, id="very-long"),
]


def assert_inert(blocks: list[dict[str, Any]], hostile: str, fallback: str | None = None) -> None:
    """No link, mention or broadcast anywhere; the rep's words shown as typed."""
    assert_within_limits(blocks)
    objects = mrkdwn_objects(blocks)
    assert objects
    for text in objects:
        assert text.get("verbatim") is True, text
        assert "<" not in text["text"] and ">" not in text["text"], text["text"][:300]
        assert not re.search(r"&(?!amp;|lt;|gt;)", text["text"]), text["text"][:300]
    shown = squash(all_texts(blocks))
    expected = squash(user_mrkdwn(hostile))[:1500]  # long ones are cut with an ellipsis
    assert expected in shown, (expected[:200], shown[:600])
    if fallback is not None:
        assert "<" not in fallback and ">" not in fallback, fallback[:300]
        assert "evil" not in fallback, fallback[:300]


def _card_with(hostile: str, lang: str = "en") -> CoachCard:
    """A card quoting the rep's words the way the coach does (excerpt, evidence, a reason)."""
    return CoachCard(
        language=lang,
        score=38,
        findings=[
            Finding(
                rule="pitch_intro",
                category=Category.PITCH,
                severity="high",
                excerpt=hostile,
                message="Talks about us before them.",
                principle="buyer-world-first",
                evidence=hostile,
            ),
            Finding(
                rule="meeting_ask",
                category=Category.MEETING_ASK,
                severity="medium",
                excerpt="Can we book 15 minutes?",
                message="Asks for time before interest.",
                principle="interest-before-meeting",
            ),
        ],
        questions=["How are you handling … today?"],
        principles=[PrincipleRef(id="buyer-world-first", title="Start from the buyer's world")],
        explanation=[
            ScoreLine(points=60, reason="Base"),
            ScoreLine(points=5, reason=f'Context ("{hostile}")'),
        ],
    )


def test_a_shared_drill_answer_never_becomes_a_link_in_the_summary(coach: Coach) -> None:
    """The defect: a member's answer quoted in the channel-wide summary turned
    `[see the plan](https://evil.example/login)` into a clickable disguised link."""
    ui, strings = coach.strings("en"), strings_for("en")
    reply = summary_reply(coach, f"How are your teams handling Saturdays? {EVIL_LINK}")
    blocks = reply_blocks(reply, ui, strings, surface="thread")
    texts = all_texts(blocks)
    assert "<https://evil.example/login|see the plan>" not in texts
    assert "https://evil.example/login|" not in texts
    assert EVIL_LINK in texts  # shown as typed, not as a link
    assert "*Drill closed: The company brochure*" in texts  # our formatting stays
    assert_inert(blocks, EVIL_LINK, reply_text(reply, ui, strings))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_words_in_a_drill_summary(coach: Coach, hostile: str) -> None:
    ui, strings = coach.strings("en"), strings_for("en")
    reply = summary_reply(coach, hostile)
    assert_inert(
        reply_blocks(reply, ui, strings, surface="thread"),
        " ".join(hostile.split()),
        reply_text(reply, ui, strings),
    )


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_hostile_words_in_a_card(coach: Coach, hostile: str, lang: str) -> None:
    ui, strings = coach.strings(lang), strings_for(lang)
    card = _card_with(hostile, lang)
    blocks = card_blocks(card, ui, strings, ref=REF, surface="thread")
    assert_inert(blocks, hostile)
    reply = Reply(kind=ReplyKind.CARD, language=lang, text=render_card(card, ui), card=card)
    assert_inert(reply_blocks(reply, ui, strings, ref=REF), hostile, reply_text(reply, ui, strings))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_words_in_a_comparison(coach: Coach, hostile: str) -> None:
    ui, strings = coach.strings("en"), strings_for("en")
    before, after = _card_with("We are the leading platform."), _card_with(hostile)
    comparison = Comparison(
        language="en", before=before, after=after, delta=0, resolved=[], remaining=[Category.PITCH], new=[]
    )
    assert_inert(comparison_blocks(comparison, ui, strings, ref=REF), hostile)
    reply = Reply(
        kind=ReplyKind.COMPARISON,
        language="en",
        text=render_comparison(comparison, ui),
        comparison=comparison,
        card=after,
    )
    assert_inert(reply_blocks(reply, ui, strings, ref=REF), hostile, reply_text(reply, ui, strings))


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("compared", [False, True])
def test_hostile_words_in_a_drill_answers_private_coaching(
    coach: Coach, hostile: str, compared: bool
) -> None:
    """The private coaching of a drill answer is shown as the core's text: the card's
    excerpts are the rep's words, our framing around them keeps its formatting."""
    ui, strings = coach.strings("en"), strings_for("en")
    card = _card_with(hostile)
    comparison = (
        Comparison(
            language="en",
            before=_card_with("Our brochure."),
            after=card,
            delta=0,
            resolved=[],
            remaining=[],
            new=[Category.PITCH],
        )
        if compared
        else None
    )
    reply = drill_answer_reply(coach, card, comparison)
    blocks = reply_blocks(reply, ui, strings, ref=REF, surface="private")
    assert_inert(blocks, hostile, reply_text(reply, ui, strings))
    texts = all_texts(blocks)
    assert "*What a good answer shows:*" in texts and "• a question about their world" in texts


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_words_echoed_in_a_notice(coach: Coach, hostile: str) -> None:
    """`/fournil drill now <anything>`: the core echoes the unknown id back."""
    ui, strings = coach.strings("en"), strings_for("en")
    reply = Reply(kind=ReplyKind.NOTICE, language="en", text=ui.text("team", "drill_unknown", drill=hostile))
    assert_inert(reply_blocks(reply, ui, strings), hostile, reply_text(reply, ui, strings))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_user_mrkdwn_forms_no_control_sequence(hostile: str) -> None:
    out = user_mrkdwn(hostile)
    assert "<" not in out and ">" not in out
    assert out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == hostile


def test_real_coaching_of_a_hostile_opener(coach: Coach) -> None:
    """The real coach on an opener full of Slack syntax: whatever it quotes stays inert."""
    opener = (
        f"Hi <@U123>, we are the leading <!channel> platform {EVIL_LINK}. "
        "Would you be open to a 15-minute call? <https://evil.example|book here>"
    )
    card = coach.coach(opener, "en")
    assert card.findings
    ui, strings = coach.strings("en"), strings_for("en")
    for blocks in (
        card_blocks(card, ui, strings, ref=REF),
        reply_blocks(drill_answer_reply(coach, card), ui, strings, surface="private"),
    ):
        assert_within_limits(blocks)
        for text in mrkdwn_objects(blocks):
            assert text["verbatim"] is True
            assert "<" not in text["text"] and ">" not in text["text"], text["text"][:300]


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_our_own_links_keep_their_formatting(coach: Coach, lang: str) -> None:
    """A markdown link we wrote in prompts/ui stays a link; the same link typed by a rep
    (or any other link) does not."""
    ui = coach.strings(lang)
    own = "[the guide](https://fournil.example/guide?a=1&b=2)"
    team = {**ui.data.team, "summary_example": f"{ui.data.team['summary_example']} {own}"}
    ours = dataclasses.replace(ui, data=ui.data.model_copy(update={"team": team}))
    reply = summary_reply(coach, f"Read {own} or {EVIL_LINK}", lang)
    reply = reply.model_copy(
        update={"text": reply.text.replace(ui.data.team["summary_example"], team["summary_example"])}
    )
    texts = all_texts(reply_blocks(reply, ours, strings_for(lang)))
    assert texts.count("<https://fournil.example/guide?a=1&amp;b=2|the guide>") == 1  # ours, not the rep's
    assert f"Read {escape(own)} or {EVIL_LINK}" in texts
    notice = Reply(kind=ReplyKind.NOTICE, language=lang, text=f"**Unknown** {EVIL_LINK}")
    assert "<https://evil" not in all_texts(reply_blocks(notice, ours, strings_for(lang)))
    assert mrkdwn(own) == "<https://fournil.example/guide?a=1&amp;b=2|the guide>"  # bot text: trusted


def test_every_mrkdwn_object_is_verbatim(coach: Coach) -> None:
    ui, strings = coach.strings("en"), strings_for("en")
    card = coach.coach(EN_OPENER)
    views = [
        card_blocks(card, ui, strings, ref=REF),
        comparison_blocks(coach.compare(EN_OPENER, FR_OPENER, "en"), ui, strings, ref=REF),
        text_blocks(strings.help),
        home_view(_records(5), ui, strings)["blocks"],
    ]
    for blocks in views:
        objects = mrkdwn_objects(blocks)
        assert objects and all(text["verbatim"] is True for text in objects)
