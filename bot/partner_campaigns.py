"""A CSP partner's reviews: one campaign per customer tenant, each with its own owners, opened only from the
snapshot this run collected for it, and the partner's view across all of them.

The partner's policy is its ordinary policy file; a customer whose owners, reviewers or schedule differ has
an override file ``customers/<tenant id>.toml`` beside it, holding just the tables that differ
(``bot/policy.py``: ``customer_policy``). Each customer gets its own ``ReviewService`` on the shared store:
campaign ids name the customer's tenant, so campaigns, items and ledger records of different customers never
meet, and several instances opening the same customer's campaign open it once (the store refuses a twin).
People a customer's snapshot does not hold, such as the partner's own staff reviewing the partner's access
there, are resolved through ``people`` (names or object ids in the partner tenant).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from bot.clock import Clock
from bot.collection_jobs import (
    CollectionJobs,
    StaleSnapshot,
    TenantCollection,
    full_run,
    snapshot_for_campaign,
    tenant_collections,
)
from bot.engine.campaigns import period_start
from bot.engine.routing import UnresolvedPeople
from bot.exports import ExportLinks
from bot.ledger_follower import LedgerFollower
from bot.ledger_history import LedgerHistory
from bot.partner_status import CustomerStanding
from bot.remediation.graph_executor import GraphExecutor
from bot.policy import Policy, PolicyError, RemediationMode, customer_policy, load_policy
from bot.service import ReviewService
from bot.store.base import Store
from checks.snapshot import TenantSnapshot


OPENING_AT_ONCE = 16
"""Customers opened concurrently: their ledger appends then share group commits instead of one commit each."""


@dataclass(frozen=True)
class PartnerPolicy:
    """The partner's policy file and the customers that override part of it (tenant id -> file)."""

    path: Path
    base: Policy
    overrides: Mapping[str, Path] = field(default_factory=dict)

    def for_customer(self, tenant_id: str, tenant_name: str) -> Policy:
        return customer_policy(self.path, self.overrides.get(tenant_id.lower()), tenant_id, tenant_name)


def load_partner_policy(path: Path) -> PartnerPolicy:
    """The partner policy at ``path`` and every ``customers/<tenant id>.toml`` beside it, each checked now
    (``PolicyError`` names the file and line), so a mistake in one customer's file is found before a run."""
    base = load_policy(path)
    folder = path.parent / "customers"
    overrides = {p.stem.lower(): p for p in sorted(folder.glob("*.toml"))} if folder.is_dir() else {}
    for tenant_id, override in overrides.items():
        customer_policy(path, override, tenant_id, tenant_id)
    return PartnerPolicy(path, base, overrides)


@dataclass
class OpeningReport:
    opened: list[str] = field(default_factory=list)
    already_open: list[str] = field(default_factory=list)
    not_opened: dict[str, str] = field(default_factory=dict)  # tenant id -> why (collection failed, unresolved...)


class PartnerCampaigns:
    """Every customer's review service for one run, and what the partner's security leads may ask across them."""

    def __init__(self, store: Store, jobs: CollectionJobs, policy: PartnerPolicy, clock: Clock,
                 people: Callable[[str], str | None] | None = None, links: ExportLinks | None = None,
                 follower: LedgerFollower | None = None,
                 executors: Callable[[str], GraphExecutor] | None = None) -> None:
        """``links`` signs the customers' export links (the status chart) as the server that serves them does;
        ``follower`` reads the shared ledger once for every customer's service (and the partner's own).
        ``executors`` gives the Graph client that removes access in a customer's tenant (through the partner's GDAP
        access), asked for only for a customer whose policy says ``remediation = "apply"``: every other customer's
        service holds no writing client at all."""
        self.follower = follower or LedgerFollower(store)
        self.store = store
        self.links = links
        self.jobs = jobs
        self.policy = policy
        self.clock = clock
        self.people = people or (lambda _: None)
        self.executors = executors
        self.services: dict[str, ReviewService] = {}
        self.collections: dict[str, TenantCollection] = {}
        self.leads = frozenset((self.people(lead) or lead).lower() for lead in policy.base.security_leads)

    async def open_run(self, run_id: str, history: LedgerHistory | None = None) -> OpeningReport:
        """Open this period's campaign of every customer whose collection in ``run_id`` is done; a customer whose
        collection failed (or has not finished) gets none, and says why, rather than one from older data.
        Each customer's service first rebuilds what the ledger holds of it (``history``: read once for all).

        ``NotAFullRun`` when ``run_id`` is a change check (or no run at all): campaigns open only from a full
        collection. A customer who has a service already (an earlier run's) keeps it: it takes the new snapshot
        and opens the new period's campaign, and its earlier campaigns stay held until they are signed off."""
        run = await full_run(self.jobs, run_id)
        report = OpeningReport()
        history = history if history is not None else await LedgerHistory.read(self.store)
        slots = asyncio.Semaphore(OPENING_AT_ONCE)

        async def one(collection: TenantCollection) -> None:
            self.collections[collection.tenant_id] = collection
            async with slots:
                try:
                    snapshot = await snapshot_for_campaign(self.jobs, run_id, collection.tenant_id)
                    known = self.services.get(collection.tenant_id)
                    policy = known.policy if known else self.policy.for_customer(collection.tenant_id,
                                                                                 collection.tenant_name)
                    if snapshot.collected_at < period_start(policy.schedule_cron, policy.timezone, self.clock.now()):
                        raise StaleSnapshot(f"run {run_id} (period {run.period}) was collected before this review "
                                            "period began: waiting for this period's run")
                    service = self._service_for(collection.tenant_id, policy, snapshot)
                except (StaleSnapshot, UnresolvedPeople, PolicyError) as refused:
                    report.not_opened[collection.tenant_id] = str(refused)
                    return
                await service.start(history)
                self.follower.add(service)
                _, opened = await service.open_current_campaign()
            self.services[collection.tenant_id] = service
            (report.opened if opened else report.already_open).append(collection.tenant_id)

        await asyncio.gather(*(one(c) for c in await tenant_collections(self.jobs, run_id)))
        return report

    def _service_for(self, tenant_id: str, policy: Policy, snapshot: TenantSnapshot) -> ReviewService:
        """The customer's service, given the run's snapshot: the one it has (``use_snapshot``, which refuses a
        snapshot in which the policy's people cannot be found), else a new one."""
        service = self.services.get(tenant_id)
        if service is not None:
            service.use_snapshot(snapshot)
            return service
        applies = policy.remediation is RemediationMode.APPLY
        executor = self.executors(tenant_id) if applies and self.executors is not None else None
        return ReviewService(self.store, policy, snapshot, self.clock, self.links, executor, outsiders=self.people)

    def is_partner_lead(self, object_id: str | None) -> bool:
        return bool(object_id) and object_id.lower() in self.leads  # type: ignore[union-attr]

    def standings(self) -> list[CustomerStanding]:
        """Every customer of the run: its campaign's numbers (if one opened) and its collection."""
        found = []
        for tenant_id, collection in self.collections.items():
            service = self.services.get(tenant_id)
            states = service.campaigns() if service else []
            summary = service.summary(states[0]) if service and states else None
            found.append(CustomerStanding(tenant_id, collection.tenant_name, summary, collection))
        return found

    def service_of_campaign(self, campaign_id: str) -> ReviewService | None:
        """The service of the customer whose campaign ``campaign_id`` is: a campaign id starts with its tenant's
        id (bot/engine/campaigns.py: ``campaign_id``). None for a campaign of no customer of this run."""
        return self.services.get(campaign_id.partition(":")[0].lower())

    def find(self, customer: str) -> list[str]:
        """Tenant ids of the customers ``customer`` names: a tenant id, or a name (whole, else its start)."""
        wanted = customer.strip().lower()
        if wanted in self.collections:
            return [wanted]
        named = [tid for tid, c in self.collections.items() if c.tenant_name.lower() == wanted]
        return named or [tid for tid, c in self.collections.items() if c.tenant_name.lower().startswith(wanted)]


__all__ = ["OpeningReport", "PartnerCampaigns", "PartnerPolicy", "load_partner_policy"]
