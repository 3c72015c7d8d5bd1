"""Which review service answers for what: the one place a CSP partner's deployment finds the service holding an
item, a customer's digest or a queued message.

A single tenant's deployment has one ``ReviewService``. A partner's has its own tenant's and one per customer
(bot/partner_campaigns.py), all on one store. A reviewer's click, a digest's submit or a redraw names an item (its
id is a hash, bot/engine/campaigns.py: ``item_id``), not a service; sending it to the partner's own service would
answer "unknown item" for every customer's item. The channels, the notifier and the card upkeep hold this
directory instead of a bare service, so Teams and Slack route alike and dialogs stay channel-neutral.
"""

from __future__ import annotations

from bot.partner_campaigns import PartnerCampaigns
from bot.service import ReviewService
from bot.store.base import OutboxMessage


class ReviewDirectory:
    def __init__(self, own: ReviewService, partner: PartnerCampaigns | None = None) -> None:
        """``own``: the deployment's own tenant's service (the partner's, on a partner's deployment), which also
        answers everything no customer holds: old cards, commands, sign-off confirmations."""
        self.own = own
        self.partner = partner

    def customers(self) -> list[ReviewService]:
        return list(self.partner.services.values()) if self.partner is not None else []

    def services(self) -> list[ReviewService]:
        return [self.own, *self.customers()]

    def holder(self, item_id: str) -> ReviewService | None:
        """The service whose live campaign holds the item, or None. The own tenant is asked first: on a single
        tenant's deployment (and for the partner's own items) that is the only lookup."""
        if self.own.holds_item(item_id):
            return self.own
        return next((service for service in self.customers() if service.holds_item(item_id)), None)

    def holding(self, item_id: str) -> ReviewService:
        """The service holding the item, else the own one (whose dialogs say the item is not open here)."""
        return self.holder(item_id) or self.own

    async def find(self, item_id: str) -> ReviewService:
        """As ``holding``, after catching up once with the ledger when no service holds the item yet: another
        instance may have opened the campaign a moment ago (one catch-up folds it into whichever service it is)."""
        found = self.holder(item_id)
        if found is None and item_id and await self.own.catch_up():
            found = self.holder(item_id)
        return found or self.own

    def of_tenant(self, tenant_id: str) -> ReviewService:
        """The customer's service for a tenant id this deployment reviews, else the own one."""
        if self.partner is None:
            return self.own
        return self.partner.services.get(tenant_id.strip().lower(), self.own)

    def notice_obsolete(self, message: OutboxMessage) -> str | None:
        """The notifier's last look before sending (``ReviewService.notice_obsolete``), asked of the service whose
        items the message is about: a reviewer who opened a customer's digest is engaged in that customer's
        review, not the partner's."""
        item_ids = message.payload.get("item_ids") or ()
        service = self.holding(str(item_ids[0])) if item_ids else self.own
        return service.notice_obsolete(message)

    def take_answered(self) -> set[str]:
        """Every item answered (in any service) since the last call: the cards the channels redraw."""
        answered: set[str] = set()
        for service in self.services():
            if service.decided_since:
                answered.update(service.decided_since)
                service.decided_since = set()
        return answered


__all__ = ["ReviewDirectory"]
