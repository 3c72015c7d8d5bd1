"""The status charts' figures (channel-neutral) and their Teams form: every item counted once, every reviewer
in some bar, and a fallback that says the same numbers in words."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.engine.status import CampaignSummary, OwnerProgress
from dialogs.charts import MAX_BARS, owners_bars, progress_donut
from dialogs.render.teams_charts import chart_element


def summary(owners: int, *, kept: int = 5, revoked: int = 2, open_: int = 9, overdue: int = 4, excepted: int = 1) -> CampaignSummary:
    return CampaignSummary(
        campaign_id="t:2026-11-23T09:00", tenant_name="Contoso", period="2026-11-23T09:00",
        due=datetime(2026, 11, 28, 9, 30, tzinfo=UTC), total=kept + revoked + open_ + excepted, kept=kept,
        revoked=revoked, open=open_, overdue=overdue, excepted=excepted, expired=0, snapshot_complete=True,
        snapshot_missing=(), by_owner=tuple(OwnerProgress(f"id-{n}", open=owners - n, answered=n) for n in range(owners)),
    )


def test_progress_donut_counts_every_item_once_and_says_it_in_words() -> None:
    numbers = summary(3)
    donut = progress_donut(numbers)
    assert [(s.label, s.value) for s in donut.slices] == [("Answered", 7), ("Open", 5), ("Overdue", 4), ("Excepted", 1)]
    assert sum(s.value for s in donut.slices) == numbers.total
    assert donut.fallback == "7 answered · 5 open · 4 overdue · 1 excepted"
    assert [s.label for s in progress_donut(summary(3, excepted=0), "Unanswered").slices] == ["Answered", "Unanswered", "Overdue"]


def test_reviewers_past_the_bar_limit_share_one_bar_so_the_bars_still_add_up() -> None:
    numbers = summary(MAX_BARS + 5)
    bars = owners_bars(numbers, lambda object_id: object_id.upper()).bars
    assert len(bars) == MAX_BARS and bars[0].label == "ID-0" and bars[-1].label == "6 other reviewers"
    total = sum(segment.value for bar in bars for segment in bar.segments)
    assert total == sum(o.open + o.answered for o in numbers.by_owner)
    assert len(owners_bars(summary(MAX_BARS), str).bars) == MAX_BARS  # exactly at the limit: nobody folded


def test_teams_chart_elements_carry_their_data_and_a_fallback() -> None:
    donut = chart_element(progress_donut(summary(2)))
    assert donut["type"] == "Chart.Donut"
    assert donut["data"][2] == {"legend": "Overdue", "value": 4, "color": "attention"}
    assert donut["fallback"] == {"type": "TextBlock", "text": "**Progress**: 7 answered · 5 open · 4 overdue · 1 excepted",
                                 "wrap": True}
    owners_list = {"type": "FactSet", "facts": []}
    bars = chart_element(owners_bars(summary(2), str), owners_list)
    assert bars["type"] == "Chart.HorizontalBar.Stacked" and bars["fallback"] is owners_list
    assert bars["data"][1] == {"title": "id-1", "data": [{"legend": "Answered", "value": 1, "color": "good"},
                                                          {"legend": "Open", "value": 1, "color": "neutral"}]}
