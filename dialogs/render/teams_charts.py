"""The channel-neutral charts (``dialogs/charts.py``) as Teams' Adaptive Card charts.

Teams draws ``Chart.Donut`` and ``Chart.HorizontalBar.Stacked``; other hosts (older clients, Outlook, the
official ``adaptivecards`` renderer) do not know them and render the element's ``fallback`` instead: the
text the card showed before it had charts, so no host shows less. Colours are Teams' well-known chart
colour names.
"""

from __future__ import annotations

from typing import Any

from dialogs.charts import Chart, DonutChart, Series, Slice

_COLOUR = {
    Series.ANSWERED: "good",
    Series.OPEN: "neutral",
    Series.OVERDUE: "attention",
    Series.EXCEPTED: "warning",
    Series.KEPT: "good",
    Series.REVOKED: "attention",
}


def _points(slices: tuple[Slice, ...]) -> list[dict[str, Any]]:
    return [{"legend": s.label, "value": s.value, "color": _COLOUR[s.series]} for s in slices]


def chart_element(chart: Chart, fallback: dict[str, Any] | None = None) -> dict[str, Any]:
    """One chart element; ``fallback`` is what a host without charts shows (by default the chart's figures
    as one line of text)."""
    if fallback is None:
        fallback = {"type": "TextBlock", "text": f"**{chart.title}**: {chart.fallback}", "wrap": True}
    if isinstance(chart, DonutChart):
        return {"type": "Chart.Donut", "title": chart.title, "data": _points(chart.slices), "fallback": fallback}
    return {
        "type": "Chart.HorizontalBar.Stacked",
        "title": chart.title,
        "data": [{"title": bar.label, "data": _points(bar.segments)} for bar in chart.bars],
        "fallback": fallback,
    }
