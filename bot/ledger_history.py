"""The ledger and the campaigns as start-up reads them, once for every review service of a deployment.

A CSP partner's deployment holds one ``ReviewService`` per customer on one store. Each rebuilds its campaigns
from its items and its ledger records at start; reading (and scanning) the whole ledger once per customer
would make a restart cost customers × ledger. So the ledger is read once, split by the tenant each record's
campaign names, and every service takes only its own share.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from bot.engine.campaigns import campaign_tenant
from bot.engine.model import Campaign
from bot.ledger import LedgerRecord
from bot.store.base import Store, campaign_of

NO_CAMPAIGN = ""  # every record the engine writes names its campaign; one that did not would be no tenant's


@dataclass
class LedgerHistory:
    """Every ledger record and campaign in the store, by tenant; ``last_seq``: where following starts."""

    last_seq: int = 0
    records: dict[str, list[LedgerRecord]] = field(default_factory=lambda: defaultdict(list))
    campaigns: dict[str, list[Campaign]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    async def read(cls, store: Store) -> LedgerHistory:
        history = cls()
        for record in await store.ledger_records():
            history.records[record_tenant(record)].append(record)
            history.last_seq = record.seq
        for campaign in await store.list_campaigns():
            history.campaigns[campaign.tenant_id.lower()].append(campaign)
        return history

    def records_of(self, tenant_id: str) -> list[LedgerRecord]:
        """The records of the tenant's campaigns, in ledger order."""
        return self.records.get(tenant_id.lower(), [])

    def campaigns_of(self, tenant_id: str) -> list[Campaign]:
        return list(self.campaigns.get(tenant_id.lower(), []))


def record_tenant(record: LedgerRecord) -> str:
    """The tenant whose campaign the record belongs to (``NO_CAMPAIGN`` when it names none)."""
    cid = campaign_of(record)
    return campaign_tenant(cid) if cid is not None else NO_CAMPAIGN
