"""A CSP partner's collection runs on the schedule, inside ``serve``: no worker to start by hand, no restart to take
up a new run.

- **The leader starts the period's run.** When the partner policy's schedule begins a period, the scheduler's
  leader (bot/leadership.py) reads the partner's GDAP customers and starts that period's full collection run,
  named after the period (``2026-11-23T09:00``), with a job per customer. Once: the store refuses a twin run
  (``CollectionJobs.start_run``), so a second instance, or a leader that took over after a restart, adds nothing.
- **Every instance that works collects.** ``work_forever`` claims and collects jobs in the background of each
  instance with ``workers`` > 0 (bot/collection_worker.py: leases, retries, a Graph budget per tenant), whichever
  instance started the run.
- **The leader opens the campaigns when the run settles** (no job pending or running): each customer's campaign
  of the period, through ``PartnerCampaigns.open_run``, which keeps each customer's service (a new snapshot, the
  new period's campaign; last period's stays held until signed off) and gives a customer whose collection
  failed no campaign (the roll-up shows it). Opening twice opens nothing twice: campaign ids name the tenant and
  the period, and the store refuses a twin campaign.
- **The leader prunes.** The runs of the last ``keep_periods`` periods stay, and each tenant's last complete
  snapshot always does (``CollectionJobs.prune``).

The leader's part is a step of the scheduler's rounds (``round``, one of its after-round steps): idempotent like
every round, so a failed one is tried again by the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from bot.clock import Clock
from bot.collection import GraphAccess
from bot.collection_jobs import CollectionJobs, Pruned, RunInfo
from bot.collection_worker import WorkerReport, WorkerSettings, customer_jobs, default_worker_id, read_partner, work_claimable
from bot.engine.campaigns import current_period
from bot.ledger_history import LedgerHistory
from bot.partner_campaigns import OpeningReport, PartnerCampaigns
from checks.graph.partner import PartnerView

log = logging.getLogger(__name__)

CustomerReader = Callable[[], Awaitable[PartnerView]]


@dataclass(frozen=True)
class RunSettings:
    """How a partner's deployment collects. ``access`` reaches Graph for the partner's GDAP listing and each
    customer (None: this deployment has no Graph credentials, so it collects nothing and only opens runs collected
    elsewhere); ``workers`` is how many customers this instance collects at once (0: it collects none);
    ``keep_periods`` how many review periods' runs pruning keeps; ``idle_seconds`` how often an idle worker looks
    for jobs; a GDAP listing that failed is read again after ``retry_after_failure``."""

    access: GraphAccess | None = None
    workers: int = 4
    keep_periods: int = 8
    idle_seconds: float = 30.0
    retry_after_failure: timedelta = timedelta(minutes=15)
    prune_every: timedelta = timedelta(hours=1)
    worker: WorkerSettings = field(default_factory=WorkerSettings)


class PartnerRuns:
    """The partner's runs as ``serve`` follows them: the leader's step (``round``) and each instance's worker."""

    def __init__(self, jobs: CollectionJobs, campaigns: PartnerCampaigns, clock: Clock, settings: RunSettings,
                 customers: CustomerReader | None = None, worker_id: str | None = None) -> None:
        """``customers`` reads the partner's GDAP customers (default: through ``settings.access`` as the partner's
        tenant); without either, no run is started here."""
        self.jobs = jobs
        self.campaigns = campaigns
        self.clock = clock
        self.settings = settings
        policy = campaigns.policy.base
        self.cron, self.timezone, self.partner_tenant = policy.schedule_cron, policy.timezone, policy.tenant_id
        if customers is None and settings.access is not None:
            access = settings.access
            customers = lambda: read_partner(access, self.partner_tenant, clock)  # noqa: E731
        self.customers = customers
        self.worker_id = worker_id or default_worker_id()
        self.serving: str | None = None  # the run whose campaigns were opened last
        self._listing_again_at: datetime | None = None
        self._prune_again_at: datetime | None = None
        self._work_wanted = asyncio.Event()
        self._opening = asyncio.Lock()  # one opening or taking up at a time: the leader's round and the follower

    @property
    def works(self) -> bool:
        """Whether this instance collects customers (it has Graph and workers)."""
        return self.settings.access is not None and self.settings.workers > 0

    def period(self) -> str:
        """The review period now, by the partner policy's schedule: the id of its full collection run."""
        return current_period(self.cron, self.timezone, self.clock.now())

    # ---- start-up ---------------------------------------------------------------------------------------

    async def take_up(self, run_id: str = "", history: LedgerHistory | None = None) -> OpeningReport | None:
        """At start: open (or take up, when open already) the customers' campaigns of ``run_id``, or without one of
        the latest settled full run; None when there is none yet (the leader's first round starts one). ``history``:
        the ledger as start-up read it once for every service.
        ``NotAFullRun`` when ``run_id`` is a change check or no run at all."""
        if not run_id:
            run = await self._latest_settled_full_run()
            if run is None:
                return None
            run_id = run.run_id
        return await self._open(run_id, history)

    async def _latest_settled_full_run(self) -> RunInfo | None:
        for run in await self.jobs.runs():
            if run.kind == "full" and not await self.jobs.open_jobs(run.run_id):
                return run
        return None

    # ---- the leader's step ------------------------------------------------------------------------------

    async def round(self) -> None:
        """Start the period's run when it is due, open its campaigns once it settled, prune when due."""
        await self.start_due_run()
        await self.open_settled_run()
        await self.prune_when_due()

    async def start_due_run(self) -> bool:
        """Start this period's full run unless it exists (True: started here). A GDAP listing that could not be
        read starts nothing (a run from a partial customer list would leave customers out without saying so)
        and is read again after ``retry_after_failure``."""
        period = self.period()
        if self.customers is None or await self.jobs.run(period) is not None:
            return False
        now = self.clock.now()
        if self._listing_again_at is not None and now < self._listing_again_at:
            return False
        partner = await self.customers()
        if partner.missing:
            self._listing_again_at = now + self.settings.retry_after_failure
            log.error("the partner's GDAP customers could not be read, so period %s's collection has not started "
                      "(tried again in %s): %s", period, self.settings.retry_after_failure, "; ".join(partner.missing))
            return False
        self._listing_again_at = None
        started = await self.jobs.start_run(RunInfo(period, "full", period, now), customer_jobs(partner), now)
        if started:
            log.info("started collection run %s: %d customers", period, len(partner.customer_tenants()))
            self._work_wanted.set()
        return started

    async def open_settled_run(self) -> OpeningReport | None:
        """Open the customers' campaigns of this period's newest full run once it settled, once (the store keeps
        when it was opened); None when there is nothing to open."""
        period = self.period()
        for run in await self.jobs.runs():
            if run.kind != "full" or run.period != period:
                continue
            if run.opened_at is not None or await self.jobs.open_jobs(run.run_id):
                return None  # opened already, or still collecting: an older run of the period is not what to open
            return await self._open(run.run_id)
        return None

    async def _open(self, run_id: str, history: LedgerHistory | None = None) -> OpeningReport:
        async with self._opening:
            report = await self.campaigns.open_run(run_id, history)
            self.serving = run_id
        for tenant_id, why in report.not_opened.items():
            log.warning("customer %s has no review from run %s: %s", tenant_id, run_id, why)
        await self.jobs.mark_opened(run_id, self.clock.now())
        log.info("run %s: %d customer campaigns opened, %d already open, %d without one", run_id, len(report.opened),
                 len(report.already_open), len(report.not_opened))
        return report

    async def prune_when_due(self) -> Pruned | None:
        now = self.clock.now()
        if self._prune_again_at is not None and now < self._prune_again_at:
            return None
        pruned = await self.jobs.prune(self.settings.keep_periods)
        self._prune_again_at = now + self.settings.prune_every
        if pruned.runs:
            log.info("pruned collection runs %s (%d jobs, %d snapshots)", ", ".join(pruned.runs), pruned.jobs,
                     pruned.snapshots)
        return pruned

    # ---- every instance ----------------------------------------------------------------------------------

    async def follow_opened(self) -> OpeningReport | None:
        """Take up the newest full run whose campaigns another instance (the leader) opened, once. Without this an
        instance that does not lead would hold none of a new period's customer campaigns until it restarted: a
        reviewer's click routed to it would find no such item, and its roll-up would show last period's. None
        when there is nothing new to take up."""
        for run in await self.jobs.runs():
            if run.kind != "full" or run.opened_at is None:
                continue
            if run.run_id == self.serving:
                return None
            async with self._opening:
                if run.run_id == self.serving:  # the leader's own round opened it meanwhile
                    return None
                report = await self.campaigns.open_run(run.run_id)
                self.serving = run.run_id
            log.info("took up run %s, opened by another instance: %d customer campaigns", run.run_id,
                     len(report.opened) + len(report.already_open))
            return report
        return None

    async def follow_forever(self) -> None:
        """Every instance, leader or not: take up what another opened, every ``idle_seconds``."""
        while True:
            try:
                await self.follow_opened()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("taking up the customers' campaigns another instance opened failed; trying again")
            await asyncio.sleep(self.settings.idle_seconds)

    # ---- every instance that works ----------------------------------------------------------------------

    async def work_once(self) -> WorkerReport:
        """Collect every job claimable now, of whichever run, ``workers`` customers at once."""
        assert self.settings.access is not None, "an instance without Graph access collects nothing (works is False)"
        return await work_claimable(self.jobs, self.settings.access, worker=self.worker_id, clock=self.clock,
                                    settings=replace(self.settings.worker, tenants_at_once=self.settings.workers))

    async def work_forever(self) -> None:
        """The background worker of ``serve``: collect what is claimable, then wait ``idle_seconds`` (or less, when
        this instance starts a run); a failed pass is logged and the next one tries again."""
        while True:
            self._work_wanted.clear()
            try:
                await self.work_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("collecting customers failed; the next pass will try again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._work_wanted.wait(), self.settings.idle_seconds)


__all__ = ["PartnerRuns", "RunSettings"]
