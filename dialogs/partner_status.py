"""``status`` for a CSP partner's security leads: the roll-up across customers, worst first, a page at a time;
``status <customer>`` for one customer's campaign; ``status <page number>`` for a further page.

Channel-neutral: it returns views (``RollupView``, ``StatusView``, ``TextView``). A page holds at most
``PAGE_SIZE`` customers, one line each, so it stays well inside what a chat message may carry in every
channel: an Adaptive Card in Teams (``CARD_BUDGET_BYTES`` of card JSON, dialogs/render/teams.py) and a Block
Kit message in Slack (50 blocks, one per customer line plus a few for the title, totals and footer).
"""

from __future__ import annotations

import math
from datetime import datetime

from bot.partner_campaigns import PartnerCampaigns
from bot.partner_status import CustomerStanding, describe, stamp, totals, worst_first
from dialogs.status import campaign_status
from dialogs.views import Actor, RollupRow, RollupView, StatusRow, StatusView, TextView, Tone, View

PAGE_SIZE = 25
BLOCK_KIT_BLOCKS = 50  # Slack's limit per message: a page's lines and its fixed blocks must fit


def partner_status(partner: PartnerCampaigns, actor: Actor, argument: str = "") -> View:
    """What a partner's security lead asked: the roll-up (``""`` or a page number) or one customer."""
    if not partner.is_partner_lead(actor.object_id):
        return TextView("Only the partner's security leads can see where every customer's review stands.",
                        Tone.WARNING)
    wanted = argument.strip()
    if not wanted or wanted.isdigit():
        return rollup_page(partner, int(wanted) if wanted else 1)
    return customer_status(partner, wanted)


def rollup_page(partner: PartnerCampaigns, page: int = 1) -> RollupView:
    return rollup_view(partner.standings(), page, partner.clock.now())


def rollup_view(standings: list[CustomerStanding], page: int, now: datetime) -> RollupView:
    """Page ``page`` of the roll-up of ``standings`` (pages beyond the last show the last)."""
    ordered = worst_first(standings)
    pages = max(1, math.ceil(len(ordered) / PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = ordered[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    sums = totals(standings)
    return RollupView(
        title=f"Reviews across {sums.customers} customers",
        totals=(
            StatusRow("overdue items", str(sums.overdue)),
            StatusRow("customers with overdue items", str(sums.customers_overdue)),
            StatusRow("open items", str(sums.open)),
            StatusRow(f"of {sums.items} answered", str(sums.done)),
            StatusRow("collections failed", str(sums.collection_failed)),
            StatusRow("not collected yet", str(sums.not_collected_yet)),
        ),
        rows=tuple(_row(s) for s in shown),
        page=page,
        pages=pages,
        next_hint=f"status {page + 1}" if page < pages else "",
        footer=f"Worst first. 'status <customer>' for one. As of {stamp(now)}.",
    )


def customer_status(partner: PartnerCampaigns, customer: str) -> View:
    found = partner.find(customer)
    if not found:
        return TextView(f"No customer is called '{customer}'. Say 'status' for the list.", Tone.WARNING)
    if len(found) > 1:
        names = ", ".join(sorted(partner.collections[tid].tenant_name for tid in found)[:10])
        return TextView(f"'{customer}' names {len(found)} customers ({names}): say more of the name.", Tone.WARNING)
    tenant_id = found[0]
    service = partner.services.get(tenant_id)
    if service is not None and service.campaigns():
        return campaign_status(service)
    collection = partner.collections[tenant_id]
    standing = CustomerStanding(tenant_id, collection.tenant_name, None, collection)
    rows = (StatusRow("Collection", collection.state), StatusRow("Attempts", str(collection.attempts)))
    if collection.last_complete_at:
        rows += (StatusRow("Last complete snapshot", stamp(collection.last_complete_at)),)
    return StatusView(f"{collection.tenant_name}: no review open this period", rows, (), (describe(standing),))


def _row(standing: CustomerStanding) -> RollupRow:
    tone = Tone.ATTENTION if standing.collection_failed or standing.overdue else Tone.NORMAL
    return RollupRow(standing.tenant_name, standing.tenant_id, describe(standing), tone)


__all__ = ["BLOCK_KIT_BLOCKS", "PAGE_SIZE", "customer_status", "partner_status", "rollup_page", "rollup_view"]
