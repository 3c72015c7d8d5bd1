"""Reading what the report needs from the store: the campaigns of one period (one per customer tenant for a
CSP partner), each campaign's own ledger records (read by campaign, off the event loop), the ledger's head,
its latest signed checkpoint and public key. The server and the CLI both come through here."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Awaitable, Callable, Sequence

from bot.engine.model import Campaign
from bot.engine.state import CampaignState
from bot.ledger import EMPTY_HEAD, LedgerRecord
from bot.ledger_signing import fingerprint, load_public_key
from bot.report import render_report
from bot.report.figures import EvidenceReport, evidence_report, tenant_report
from bot.store.base import Store


class NoSuchCampaign(LookupError):
    """The campaign asked for is not in the store."""


def same_period(campaigns: Sequence[Campaign], campaign_id: str | None) -> list[Campaign]:
    """The campaign asked for and every other tenant's campaign of its period (the newest period when none
    is named): a CSP partner's report covers all its customers' reviews of one week, a page per tenant."""
    if not campaigns:
        raise NoSuchCampaign("no campaign has been opened yet")
    if campaign_id is None:
        chosen = max(campaigns, key=lambda c: (c.period, c.opened_at))
    else:
        chosen = next((c for c in campaigns if c.id == campaign_id), None)  # type: ignore[assignment]
        if chosen is None:
            raise NoSuchCampaign(f"no campaign {campaign_id!r}")
    return sorted((c for c in campaigns if c.period == chosen.period), key=lambda c: c.tenant_name)


async def gather_report(
    store: Store,
    states: Sequence[CampaignState],
    records_of: Callable[[str], Awaitable[list[LedgerRecord]]],
    now: datetime,
    name_of: Callable[[str], str],
) -> EvidenceReport:
    """``records_of`` gives a campaign's own records (the server: ``store.ledger_records_of``; the CLI: only
    what a signed checkpoint covers)."""
    tenants = [tenant_report(state, await records_of(state.campaign.id), now, name_of) for state in states]
    public_key = store.ledger_public_key()
    key_fingerprint = fingerprint(load_public_key(public_key)) if public_key else ""
    return evidence_report(tenants, await store.ledger_anchor() or EMPTY_HEAD, now, await store.latest_checkpoint(),
                           public_key, key_fingerprint)


async def render_off_loop(report: EvidenceReport, fmt: str) -> bytes:
    """Charts and page layout take a while: a worker thread, so the event loop keeps answering clicks."""
    return await asyncio.to_thread(render_report, report, fmt)
