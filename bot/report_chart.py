"""The team report as a PNG chart, sized for a phone (1080 px wide, portrait).

Three panels from a `TeamReport`: the weekly median score of first versions and rewrites,
the weekly share of openers that end as a real question, and the most frequent findings.
matplotlib is imported here, lazily (about a second): no command pays for it unless it
draws. No pyplot: a bare `Figure` renders with Agg, so nothing global is touched but the
rc settings of a `rc_context` and, when the home is read-only, MPLCONFIGDIR.
"""

from __future__ import annotations

import io
import logging
import math
import os
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.core.report import TOP_CATEGORIES, ReportStrings, TeamReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

WIDTH_IN, HEIGHT_IN, DPI = 6.0, 9.0, 180  # 1080 x 1620 px
EMPTY_HEIGHT_IN = 4.0  # "no cards": 1080 x 720 px, still portrait-friendly in a chat
FONT_PT = 12  # the smallest text is FONT_PT - 1: 11 pt, ~28 px at 180 dpi
TITLE_CHARS = 44  # a bold 13 pt title line that fits the 6-inch width
MAX_WEEK_LABELS = 12
MAX_BAR_LABELS = 10
FIRST_COLOUR = "#9a6b3f"  # crust brown: first versions
REWRITE_COLOUR = "#2f7d4f"  # green: rewrites
QUESTION_COLOUR = "#3b6ea8"
CATEGORY_COLOUR = "#c0873f"
RC: dict[RcKeyType, Any] = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: works offline, has é, →, ↑
    "font.size": FONT_PT,
    "axes.titlesize": FONT_PT + 1,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": FONT_PT,
    "xtick.labelsize": FONT_PT - 1,
    "ytick.labelsize": FONT_PT - 1,
    "legend.fontsize": FONT_PT - 1,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.fonttype": "none",
}


def _ensure_config_dir() -> None:
    """matplotlib writes a font cache under ~/.config; in a container with a read-only home
    it would warn and make a new temporary one on every run: choose one ourselves."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "matplotlib"
    probe = base
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if os.access(probe, os.W_OK):
        return
    os.environ["MPLCONFIGDIR"] = str(Path(tempfile.gettempdir()) / f"fournil-matplotlib-{os.getuid()}")


def render_report_png(report: TeamReport, strings: ReportStrings) -> bytes:
    import matplotlib

    figure = report_figure(report, strings)
    with matplotlib.rc_context(RC):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def report_figure(report: TeamReport, strings: ReportStrings) -> Figure:
    """The chart as a matplotlib `Figure` (not yet rendered)."""
    _ensure_config_dir()
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # no "generated new fontManager"
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        height = EMPTY_HEIGHT_IN if report.empty else HEIGHT_IN  # same width: same text size
        figure = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
        figure.suptitle(
            f"{_wrap(strings.chart('title'), 34)}\n{strings.period(report)}",
            fontsize=FONT_PT + 4,
            fontweight="bold",
        )
        if report.empty:
            _draw_empty(figure, strings)
        else:
            scores, questions, categories = figure.subplots(3, 1, height_ratios=[1.15, 0.95, 1.1])
            labels = [strings.date(week.week_start, short=True) for week in report.weeks]
            _draw_scores(scores, report, strings, labels)
            _draw_questions(questions, report, strings, labels)
            _draw_categories(categories, report, strings)
    return figure


def _wrap(text: str, width: int = TITLE_CHARS) -> str:
    """Titles come from translations of any length: wrap rather than let the edge cut them."""
    return "\n".join(textwrap.wrap(text, width)) or text


def _draw_empty(figure: Figure, strings: ReportStrings) -> None:
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(
        0.5,
        0.5,
        _wrap(strings.chart("no_data"), 30),
        ha="center",
        va="center",
        fontsize=FONT_PT + 3,
        color="#555555",
    )


def _week_ticks(axes: Axes, labels: list[str]) -> None:
    """One tick per week; beyond five weeks the dates are slanted, beyond twelve only every
    second (third…) one is written, so they never run into each other on a phone."""
    step = math.ceil(len(labels) / MAX_WEEK_LABELS)
    axes.set_xticks(range(len(labels)))
    axes.set_xlim(-0.5, len(labels) - 0.5)
    shown = [label if index % step == 0 else "" for index, label in enumerate(labels)]
    rotate = len(labels) > 5
    axes.set_xticklabels(shown, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    if rotate:
        axes.tick_params(axis="x", pad=2)


def _draw_scores(axes: Axes, report: TeamReport, strings: ReportStrings, labels: list[str]) -> None:
    positions = list(range(len(report.weeks)))
    nan = float("nan")
    first = [w.median_first if w.median_first is not None else nan for w in report.weeks]
    rewrite = [w.median_rewrite if w.median_rewrite is not None else nan for w in report.weeks]
    for values, marker, colour, key in (
        (first, "o", FIRST_COLOUR, "first_versions"),
        (rewrite, "s", REWRITE_COLOUR, "rewrites"),
    ):
        axes.plot(
            positions,
            values,
            marker=marker,
            markersize=7,
            linewidth=2.5,
            color=colour,
            label=strings.chart(key),
        )
    axes.set_title(_wrap(strings.chart("scores_title")))
    axes.set_ylabel(strings.chart("score_axis"))
    axes.set_ylim(0, 100)
    axes.set_yticks([0, 25, 50, 75, 100])
    _week_ticks(axes, labels)  # dated here too: a phone shows one panel at a time
    axes.legend(loc="best", frameon=True, framealpha=0.9, edgecolor="none", ncols=2)


def _draw_questions(axes: Axes, report: TeamReport, strings: ReportStrings, labels: list[str]) -> None:
    positions = list(range(len(report.weeks)))
    shares = [(w.question_share or 0.0) * 100 for w in report.weeks]
    bars = axes.bar(positions, shares, width=0.6, color=QUESTION_COLOUR)
    if len(report.weeks) <= MAX_BAR_LABELS:  # beyond, the labels would touch: the axis says it
        for bar, week in zip(bars, report.weeks, strict=True):
            if week.question_share is None:
                continue
            axes.annotate(
                strings.percent(week.question_share),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=FONT_PT - 1,
            )
    axes.set_title(_wrap(strings.chart("questions_title")))
    axes.set_ylabel(strings.chart("question_axis"))
    axes.set_ylim(0, 118)  # room for the labels above a 100 % bar
    axes.set_yticks([0, 50, 100])
    axes.grid(axis="x", visible=False)
    _week_ticks(axes, labels)
    axes.set_xlabel(strings.chart("week_axis"))


def _draw_categories(axes: Axes, report: TeamReport, strings: ReportStrings) -> None:
    """Names above the bars, not beside them: translated names are long, and a left margin
    wide enough for them would squeeze every panel of the figure."""
    from matplotlib.ticker import MaxNLocator

    stats = list(report.top_categories)
    axes.set_title(_wrap(strings.chart("categories_title")))
    if not stats:
        axes.set_axis_off()
        axes.text(0.5, 0.5, strings.chart("no_data"), ha="center", va="center", transform=axes.transAxes)
        return
    counts = [stat.count for stat in stats]
    rows = max(TOP_CATEGORIES, len(stats))  # same bar size whatever the count; the first on top
    bars = axes.barh([rows - 1 - i for i in range(len(stats))], counts, height=0.4, color=CATEGORY_COLOUR)
    axes.set_yticks([])
    axes.spines["left"].set_visible(False)
    axes.set_ylim(-0.4, rows - 0.25)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlim(0, max(counts) * 1.3)  # room for "12 (40 %) ↓" after the longest bar
    axes.set_xlabel(strings.chart("count_axis"))
    axes.grid(axis="y", visible=False)
    for bar, stat in zip(bars, stats, strict=True):
        middle = bar.get_y() + bar.get_height() / 2
        axes.text(0, bar.get_y() + bar.get_height() + 0.05, strings.category(stat.category), va="bottom")
        axes.annotate(
            f"{stat.count} ({strings.percent(stat.share)}) {strings.arrow(stat.trend)}",
            (bar.get_width(), middle),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=FONT_PT - 1,
        )
