"""Charts as pictures (matplotlib): SVG for the evidence report, PNG for chat channels that show images.

The status charts take the very ``dialogs.charts`` values Teams draws natively, so Slack's image and Teams'
card never disagree. Only matplotlib's object API is used (``Figure`` with the Agg / SVG canvas), never
``pyplot``: pyplot keeps global state and is not safe from the worker threads these run in. matplotlib is
imported on first use, not at start-up: it costs most of a second, and the server must be ready fast.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import TYPE_CHECKING, Sequence

from dialogs.charts import Chart, DonutChart, Series, StackedBarChart

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# The same meaning, the same colour, everywhere (readable on white, and apart for the colour-blind).
COLOURS = {
    Series.ANSWERED: "#2e7d32",
    Series.KEPT: "#2e7d32",
    Series.OPEN: "#9e9e9e",
    Series.OVERDUE: "#c62828",
    Series.REVOKED: "#c62828",
    Series.EXCEPTED: "#f9a825",
}
SEVERITY_COLOURS = {"critical": "#8e0000", "high": "#c62828", "medium": "#ef6c00", "low": "#9e9e9e"}
_FONT = {"font.family": "DejaVu Sans", "font.size": 9, "svg.hashsalt": "accessbot", "svg.fonttype": "path"}


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    matplotlib.rcParams.update(_FONT)
    return Figure(figsize=(width, height), layout="constrained")


def _bytes(figure: Figure, fmt: str) -> bytes:
    out = io.BytesIO()
    # No date in the file: the same figures give the same bytes.
    figure.savefig(out, format=fmt, dpi=144 if fmt == "png" else 72, metadata={"Date": None} if fmt == "svg" else None)
    return out.getvalue()


def _donut(axes: Axes, chart: DonutChart) -> None:
    shown = [s for s in chart.slices if s.value]
    total = sum(s.value for s in chart.slices)
    axes.set_title(chart.title, fontweight="bold")
    axes.set_aspect("equal")
    if not shown:
        axes.text(0, 0, "no items", ha="center", va="center")
        axes.axis("off")
        return
    axes.pie([s.value for s in shown], colors=[COLOURS[s.series] for s in shown], startangle=90, counterclock=False,
             wedgeprops={"width": 0.38, "edgecolor": "white"})
    axes.text(0, 0, f"{total}\nitems", ha="center", va="center", fontsize=11, fontweight="bold")
    axes.legend([f"{s.label}: {s.value}" for s in shown], loc="upper center", bbox_to_anchor=(0.5, 0.02),
                ncols=2, frameon=False)


def _stacked(axes: Axes, chart: StackedBarChart) -> None:
    axes.set_title(chart.title, fontweight="bold")
    labels = [bar.label for bar in chart.bars][::-1]  # first bar on top
    left = [0] * len(labels)
    series = [(s.label, s.series) for s in chart.bars[0].segments] if chart.bars else []
    for index, (label, kind) in enumerate(series):
        values = [bar.segments[index].value for bar in chart.bars][::-1]
        bars = axes.barh(labels, values, left=left, color=COLOURS[kind], label=label, height=0.6)
        axes.bar_label(bars, labels=[str(v) if v else "" for v in values], label_type="center", color="white",
                       fontsize=8, fontweight="bold")
        left = [a + b for a, b in zip(left, values)]
    axes.spines[["top", "right"]].set_visible(False)
    axes.xaxis.get_major_locator().set_params(integer=True)
    if series:  # below the bars, never over them
        axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=len(series), frameon=False)


def _draw(axes: Axes, chart: Chart) -> None:
    (_donut if isinstance(chart, DonutChart) else _stacked)(axes, chart)  # type: ignore[operator]


def chart_image(chart: Chart, fmt: str = "svg") -> bytes:
    bars = len(chart.bars) if isinstance(chart, StackedBarChart) else 0
    figure = _figure(3.4, 3.0) if isinstance(chart, DonutChart) else _figure(6.0, 1.5 + 0.38 * max(bars, 1))
    _draw(figure.add_subplot(), chart)
    return _bytes(figure, fmt)


def status_png(charts: Sequence[Chart]) -> bytes:
    """The status card's charts side by side in one PNG: what Slack puts in its image block."""
    bars = max((len(c.bars) for c in charts if isinstance(c, StackedBarChart)), default=0)
    figure = _figure(3.2 + 5.0 * (len(charts) - 1), max(3.0, 1.5 + 0.38 * bars))
    widths = [3.2 if isinstance(c, DonutChart) else 5.0 for c in charts]
    for axes, chart in zip(figure.subplots(1, len(charts), width_ratios=widths, squeeze=False)[0], charts):
        _draw(axes, chart)
    return _bytes(figure, "png")


def completion_svg(points: Sequence[tuple[datetime, int]], total: int, opened: datetime, due: datetime) -> bytes:
    """Answered items over time: a step for each answer, from the opening to the deadline (or the last answer)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    figure = _figure(6.4, 2.6)
    axes = figure.add_subplot()
    axes.set_title("Completion over time", fontweight="bold")
    times = [opened, *(at for at, _ in points)]
    counts = [0, *(n for _, n in points)]
    end = max(due, times[-1])
    axes.step([*times, end], [*counts, counts[-1]], where="post", color=COLOURS[Series.ANSWERED], linewidth=2)
    axes.axhline(total, color="#616161", linestyle="--", linewidth=1)
    axes.annotate(f"{total} items", (opened, total), textcoords="offset points", xytext=(2, 3), fontsize=8)
    axes.axvline(due, color=COLOURS[Series.OVERDUE], linestyle=":", linewidth=1)
    axes.annotate("deadline", (due, 0), textcoords="offset points", xytext=(3, 3), fontsize=8,
                  color=COLOURS[Series.OVERDUE])
    axes.set_ylim(0, max(total, 1) * 1.15)
    axes.set_ylabel("items answered")
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.spines[["top", "right"]].set_visible(False)
    return _bytes(figure, "svg")


def severity_svg(by_severity: Sequence[tuple[str, int]]) -> bytes:
    figure = _figure(4.0, 0.6 + 0.4 * max(len(by_severity), 1))
    axes = figure.add_subplot()
    axes.set_title("Findings by severity", fontweight="bold")
    labels = [severity for severity, _ in by_severity][::-1]
    values = [count for _, count in by_severity][::-1]
    bars = axes.barh(labels, values, color=[SEVERITY_COLOURS.get(s, "#616161") for s in labels], height=0.6)
    axes.bar_label(bars, padding=3, fontsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    axes.xaxis.get_major_locator().set_params(integer=True)
    return _bytes(figure, "svg")
