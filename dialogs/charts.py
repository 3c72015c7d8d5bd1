"""The figures of a campaign as charts, with no idea which channel draws them.

Teams draws them as Adaptive Card charts (``dialogs/render/teams_charts.py``); Slack and the evidence report
draw the same values as an image (``bot/report/charts.py``). A chart here is its data plus ``fallback``: the
one line of text a host that cannot draw it shows instead, so no host ever shows less than the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # the views stay plain values: only the builders below read a summary
    from bot.engine.status import CampaignSummary

MAX_BARS = 8  # bars on a chart: the reviewers with most open, then one bar that adds up all the others


class Series(StrEnum):
    """What a slice or segment counts; each renderer picks its own colour for it, the same everywhere."""

    ANSWERED = "answered"
    OPEN = "open"
    OVERDUE = "overdue"
    EXCEPTED = "excepted"
    KEPT = "kept"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Slice:
    label: str
    value: int
    series: Series


@dataclass(frozen=True)
class DonutChart:
    """Parts of one whole (answered / open / overdue of a campaign's items)."""

    title: str
    slices: tuple[Slice, ...]

    @property
    def fallback(self) -> str:
        return " · ".join(f"{s.value} {s.label.lower()}" for s in self.slices)


@dataclass(frozen=True)
class Bar:
    label: str
    segments: tuple[Slice, ...]


@dataclass(frozen=True)
class StackedBarChart:
    """One bar per reviewer (or tenant), each cut into the same series."""

    title: str
    bars: tuple[Bar, ...]

    @property
    def fallback(self) -> str:
        return "; ".join(f"{bar.label}: " + ", ".join(f"{s.value} {s.label.lower()}" for s in bar.segments)
                         for bar in self.bars)


Chart = DonutChart | StackedBarChart


def progress_donut(summary: CampaignSummary, left: str = "Open") -> DonutChart:
    """Answered, open (not yet overdue), overdue — and accepted exceptions when there are any: every item once.
    ``left`` names what is not answered: "Unanswered" once signed off, when nothing is open any more."""
    slices = [
        Slice("Answered", summary.done, Series.ANSWERED),
        Slice(left, summary.open - summary.overdue, Series.OPEN),
        Slice("Overdue", summary.overdue, Series.OVERDUE),
    ]
    if summary.excepted:
        slices.append(Slice("Excepted", summary.excepted, Series.EXCEPTED))
    return DonutChart("Progress", tuple(slices))


def owners_bars(summary: CampaignSummary, name_of: Callable[[str], str], left: str = "Open") -> StackedBarChart:
    """Answered and still open per reviewer, most open first (the order ``summarize`` gives). Past
    ``MAX_BARS`` the rest share one bar, so the bars still add up to the campaign."""
    def bar(label: str, answered: int, still_open: int) -> Bar:
        return Bar(label, (Slice("Answered", answered, Series.ANSWERED), Slice(left, still_open, Series.OPEN)))

    owners = summary.by_owner
    shown = owners if len(owners) <= MAX_BARS else owners[:MAX_BARS - 1]
    bars = [bar(name_of(o.reviewer_id), o.answered, o.open) for o in shown]
    rest = owners[len(shown):]
    if rest:
        bars.append(bar(f"{len(rest)} other reviewers", sum(o.answered for o in rest), sum(o.open for o in rest)))
    return StackedBarChart("By reviewer", tuple(bars))
