"""Where a CSP partner's customer reviews stand, across customers: pure, from each customer's campaign summary
and collection state, so the same roll-up serves chat (dialogs/partner_status.py), the CLI and the bench.

Worst first: a customer whose collection failed has no campaign this period at all (nothing is being reviewed
there, and its last complete snapshot is older data), so it leads; then the most overdue items, then the most
open ones, then the name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from bot.collection_jobs import TenantCollection
from bot.engine.status import CampaignSummary


@dataclass(frozen=True)
class CustomerStanding:
    """One customer: its campaign's numbers (None when none opened this period) and its collection."""

    tenant_id: str
    tenant_name: str
    summary: CampaignSummary | None
    collection: TenantCollection | None

    @property
    def collection_failed(self) -> bool:
        return self.collection is not None and self.collection.state == "failed"

    @property
    def overdue(self) -> int:
        return self.summary.overdue if self.summary else 0

    @property
    def open(self) -> int:
        return self.summary.open if self.summary else 0

    def rank(self) -> tuple[int, int, int, str]:
        no_campaign = self.summary is None
        return (0 if self.collection_failed else 1 if no_campaign else 2, -self.overdue, -self.open,
                self.tenant_name.lower())


@dataclass(frozen=True)
class PartnerTotals:
    customers: int
    with_campaign: int
    collection_failed: int
    not_collected_yet: int  # jobs still pending or running
    items: int
    open: int
    overdue: int
    done: int
    customers_overdue: int


def worst_first(standings: Iterable[CustomerStanding]) -> list[CustomerStanding]:
    return sorted(standings, key=CustomerStanding.rank)


def totals(standings: Iterable[CustomerStanding]) -> PartnerTotals:
    every = list(standings)
    summaries = [s.summary for s in every if s.summary is not None]
    return PartnerTotals(
        customers=len(every),
        with_campaign=len(summaries),
        collection_failed=sum(1 for s in every if s.collection_failed),
        not_collected_yet=sum(1 for s in every if s.summary is None and s.collection is not None
                              and s.collection.state in ("pending", "running")),
        items=sum(s.total for s in summaries),
        open=sum(s.open for s in summaries),
        overdue=sum(s.overdue for s in summaries),
        done=sum(s.done for s in summaries),
        customers_overdue=sum(1 for s in summaries if s.overdue),
    )


def describe(standing: CustomerStanding) -> str:
    """One line for a customer: what a security lead needs to decide whether to look closer."""
    collection = standing.collection
    if standing.collection_failed:
        kept = (f"last complete snapshot {collection.last_complete_at:%d %b %Y} kept" if collection
                and collection.last_complete_at else "no complete snapshot yet")
        error = collection.last_error if collection else ""
        return f"collection FAILED ({_short(error)}); no review this period; {kept}"
    if standing.summary is None:
        state = collection.state if collection else "not scheduled"
        return f"not collected yet ({state})"
    summary = standing.summary
    line = f"{summary.overdue} overdue · {summary.open} open · {summary.done} of {summary.total} answered"
    line += f" · due {summary.due:%a %d %b}"
    if not summary.snapshot_complete:
        line += " · opened from an incomplete collection"
    return line


def _short(text: str, limit: int = 80) -> str:
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 1] + "…"


def stamp(moment: datetime) -> str:
    return f"{moment:%a %d %b %H:%M} UTC"


__all__ = ["CustomerStanding", "PartnerTotals", "describe", "stamp", "totals", "worst_first"]
