"""``mine`` on a CSP partner's deployment: a partner staffer may own items in many customers' campaigns.

``mine`` shows their own tenant's reviews as on any deployment and, when customers' campaigns wait for them
too, one line per such customer (worst first: overdue, then most waiting), a page at a time so the message stays
within chat limits (the roll-up's ``PAGE_SIZE``, dialogs/partner_status.py); ``mine <page>`` turns the page and
``mine <customer>`` opens that customer's items: the same dialog as 'mine' (a card each for a few, the digest
for many) on that customer's review service; a digest's buttons carry the tenant back (dialogs/actions.py: TENANT).
Channel-neutral: it returns views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.partner_campaigns import PartnerCampaigns
from bot.service import ReviewService
from dialogs.partner_status import PAGE_SIZE
from dialogs.review import my_reviews
from dialogs.views import Actor, RollupRow, RollupView, StackView, StatusRow, TextView, Tone, View


@dataclass(frozen=True)
class CustomerQueue:
    """What waits for one person in one customer's campaign."""

    tenant_id: str
    name: str
    waiting: int
    overdue: int


def queues(partner: PartnerCampaigns, person: str) -> list[CustomerQueue]:
    """The customers whose campaigns wait for this person's answer, worst first."""
    found = []
    for tenant_id, service in partner.services.items():
        waiting = service.waiting_for(person)
        if waiting:
            now = service.clock.now()
            overdue = sum(1 for item, _ in waiting if item.overdue or now >= item.due)
            found.append(CustomerQueue(tenant_id, service.policy.tenant_name, len(waiting), overdue))
    return sorted(found, key=lambda q: (-q.overdue, -q.waiting, q.name.lower()))


def my_reviews_across(partner: PartnerCampaigns, service: ReviewService, actor: Actor, argument: str = "") -> View:
    """``mine`` (own reviews, then the customers' page 1), ``mine <page>`` or ``mine <customer>``."""
    if not actor.object_id:
        return my_reviews(service, actor)  # which says it cannot tell who is asking
    wanted = argument.strip()
    if wanted and not wanted.isdigit():
        return customer_digest(partner, actor, wanted)
    waiting = queues(partner, actor.object_id)
    for customer in waiting:  # they are looking at their reviews: "your review is open" there is stale
        partner.services[customer.tenant_id].engaged(actor.object_id)
    if wanted:
        return customers_page(waiting, int(wanted)) if waiting else my_reviews(service, actor)
    own = my_reviews(service, actor)
    if not waiting:
        return own
    page = customers_page(waiting, 1)
    return StackView((own, page)) if service.items_for(actor.object_id) else page


def customers_page(waiting: list[CustomerQueue], page: int) -> RollupView:
    pages = max(1, math.ceil(len(waiting) / PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = waiting[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    return RollupView(
        title=f"Your reviews in {len(waiting)} customer{'s' if len(waiting) != 1 else ''}",
        totals=(
            StatusRow("items waiting for you", str(sum(q.waiting for q in waiting))),
            StatusRow("of them overdue", str(sum(q.overdue for q in waiting))),
        ),
        rows=tuple(
            RollupRow(q.name, q.tenant_id, f"{q.waiting} waiting" + (f", {q.overdue} overdue" if q.overdue else ""),
                      Tone.ATTENTION if q.overdue else Tone.NORMAL)
            for q in shown
        ),
        page=page,
        pages=pages,
        next_hint=f"mine {page + 1}" if page < pages else "",
        footer="Worst first. 'mine <customer>' opens that customer's items.",
    )


def customer_digest(partner: PartnerCampaigns, actor: Actor, customer: str) -> View:
    """This person's items in one customer's campaign (named by tenant id, name, or its start): the same dialog as
    their own 'mine', on that customer's service: a card per item for a few, the digest for many."""
    assert actor.object_id
    found = [tid for tid in partner.find(customer) if tid in partner.services]
    if not found:
        return TextView(f"No customer called '{customer}' has a review open. Say 'mine' for yours.", Tone.WARNING)
    if len(found) > 1:
        names = ", ".join(sorted(partner.services[tid].policy.tenant_name for tid in found)[:10])
        return TextView(f"'{customer}' names {len(found)} customers ({names}): say more of the name.", Tone.WARNING)
    return my_reviews(partner.services[found[0]], actor)


__all__ = ["CustomerQueue", "customer_digest", "customers_page", "my_reviews_across", "queues"]
