"""The worker that collects customer tenants as jobs (bot/collection_jobs.py), in any number of instances.

Each instance runs ``work_run``: it claims a job, collects that tenant through Graph with a budget of its own
(checks/graph/budget.py: one tenant answering only 429 pauses itself, not the instance), keeps the job's lease
alive while it works, and stores the snapshot with the job's completion. A tenant throttled past its budget
is given back until Graph's Retry-After; any other failure is retried with backoff, and a tenant whose
attempts are spent is marked failed, its last complete snapshot left in force.

``serve`` on a partner's deployment runs it in the background of every instance (bot/partner_runs.py), and
``accessbot collect --all-customers`` in the operator's shell. It also runs alone, on any machine, with
``python -m bot.collection_worker RUN_ID`` (the same ``ACCESSBOT_*`` settings as the server: database URL, Graph
credentials and base URL, and the partner's tenant as ``ACCESSBOT_GRAPH_TENANT_ID``); ``--schedule full`` (or
``changes``) first adds a job per GDAP customer to the run, recorded with that kind, which is idempotent, so every
instance may be started with it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from bot.clock import Clock, SystemClock
from bot.collection import GraphAccess, nothing_read
from bot.collection_jobs import Backoff, CollectionJob, CollectionJobs, RunKind
from checks.graph import RetrySettings, close_client, collect_tenant
from checks.graph.collector import recollect_tenant
from checks.graph.budget import TenantBudget, TenantThrottled
from checks.graph.partner import PartnerView, collect_partner, customer_payload, partner_of, with_partner_access
from checks.snapshot import TenantSnapshot

log = logging.getLogger(__name__)

KIOTA_RETRIES_OFF = RetrySettings(max_retries=0)
"""The budget retries throttled requests itself (per tenant); kiota's per-request retries would bypass it."""


@dataclass(frozen=True)
class WorkerSettings:
    """How one instance works: ``tenants_at_once`` jobs in parallel, each tenant with ``concurrency`` requests in
    flight and a lease of ``lease`` renewed every third of it; ``max_wait`` is the longest Retry-After a
    collection sits out before giving its tenant back."""

    lease: timedelta = timedelta(minutes=2)
    tenants_at_once: int = 4
    concurrency: int = 8
    max_wait: float = 30.0
    max_throttles: int = 20
    retry: RetrySettings = RetrySettings(max_retries=5)
    backoff: Backoff = field(default_factory=Backoff)
    idle_poll: float = 5.0


@dataclass
class WorkerReport:
    """What this instance did in a run (the store holds the outcome of every job, whoever ran it)."""

    collected: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    throttled: list[str] = field(default_factory=list)  # given back until the tenant's Retry-After
    failed: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # jobs whose lease ran out under this instance


async def schedule_customers(jobs: CollectionJobs, partner: PartnerView, run_id: str, clock: Clock,
                             mode: RunKind = "full", period: str | None = None) -> int:
    """A job for every customer the partner reaches through an active GDAP relationship; how many were new.
    ``mode`` ``changes`` makes each a change check (delta queries, checks/graph/collector.py ``recollect_tenant``)
    from the tenant's last complete snapshot; a review period's run is ``full``, the data its campaigns open from.
    The run is recorded with that kind (and ``period``), so no campaign ever opens from a change check."""
    return await jobs.schedule(run_id, customer_jobs(partner, mode), clock.now(), kind=mode, period=period)


def customer_jobs(partner: PartnerView, mode: RunKind = "full") -> list[tuple[str, str, dict[str, Any]]]:
    """(tenant id, name, payload) of a job per customer the partner reaches through an active GDAP relationship."""
    return [(tid, name, {**customer_payload(partner, tid), "mode": mode}) for tid, name in partner.customer_tenants()]


async def read_partner(access: GraphAccess, partner_tenant_id: str, clock: Clock) -> PartnerView:
    """The partner tenant's GDAP relationships (who its customers are), read with the partner's own sign-in;
    what could not be read is in the view's ``missing``."""
    client = access.client_for(partner_tenant_id)
    try:
        return await collect_partner(client, partner_tenant_id, now=clock.now())
    finally:
        await close_client(client)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def work_run(
    jobs: CollectionJobs,
    access: GraphAccess,
    run_id: str,
    *,
    worker: str | None = None,
    clock: Clock | None = None,
    settings: WorkerSettings = WorkerSettings(),
    progress: Callable[[CollectionJob, str], None] | None = None,
    wait_for_retries: bool = True,
) -> WorkerReport:
    """Claim and collect jobs until the run has none open (another instance's running job included: a lease
    that runs out is taken over here). ``progress(job, outcome)`` is told of each job this instance ends.
    Without ``wait_for_retries`` it returns once nothing is claimable now, leaving retries due later (a tenant
    given back until its Retry-After) to a later round."""
    return await _work(jobs, access, run_id if wait_for_retries else None, worker or default_worker_id(),
                       clock or SystemClock(), settings, progress)


async def work_claimable(jobs: CollectionJobs, access: GraphAccess, *, worker: str, clock: Clock,
                         settings: WorkerSettings = WorkerSettings()) -> WorkerReport:
    """Collect every job claimable now, of whichever run, then return: what ``serve`` does in the background on
    each instance that works (bot/partner_runs.py), so a run started by the leader is shared by all of them.
    Jobs waiting for a retry are left to a later call."""
    return await _work(jobs, access, None, worker, clock, settings, None)


async def _work(jobs: CollectionJobs, access: GraphAccess, waiting_for: str | None, worker: str, clock: Clock,
                settings: WorkerSettings, progress: Callable[[CollectionJob, str], None] | None) -> WorkerReport:
    """``settings.tenants_at_once`` slots claiming jobs; with ``waiting_for`` a run id, a slot that finds nothing
    claimable waits for that run's next due job until none is open."""
    report = WorkerReport()

    async def one_slot() -> None:
        while True:
            job = await jobs.claim(worker, clock.now(), settings.lease)
            if job is None:
                due = await jobs.next_due(waiting_for) if waiting_for is not None else None
                if due is None:
                    return
                await asyncio.sleep(min(settings.idle_poll, max(0.05, (due - clock.now()).total_seconds())))
                continue
            outcome = await _run_job(jobs, access, job, worker, clock, settings)
            getattr(report, outcome).append(job.tenant_id)
            if progress is not None:
                progress(job, outcome)

    await asyncio.gather(*(one_slot() for _ in range(max(1, settings.tenants_at_once))))
    return report


async def _run_job(jobs: CollectionJobs, access: GraphAccess, job: CollectionJob, worker: str, clock: Clock,
                   settings: WorkerSettings) -> str:
    keeper = asyncio.create_task(_keep_lease(jobs, job, worker, clock, settings.lease))
    try:
        snapshot = await _collect(jobs, access, job, clock, settings)
    except TenantThrottled as throttled:
        outcome = await _failed(jobs, job, worker, clock, settings, str(throttled), throttled.retry_after)
        return "throttled" if outcome == "retried" else outcome
    except Exception as failure:  # one customer that cannot be read must not stop the others
        log.exception("collecting tenant %s (%s) failed", job.tenant_name, job.tenant_id)
        return await _failed(jobs, job, worker, clock, settings, f"{type(failure).__name__}: {failure}", 0.0)
    finally:
        keeper.cancel()
    if nothing_read(snapshot):  # a total outage is a failed attempt, not a tenant without admins
        return await _failed(jobs, job, worker, clock, settings, "; ".join(snapshot.missing[:3]), 0.0)
    partner = partner_of(job.payload, snapshot.collected_at)
    if partner is not None:  # only now: the partner's own relationships are not something read from the tenant
        snapshot = with_partner_access(snapshot, partner)
    if await jobs.complete(job, worker, snapshot, clock.now()):
        return "collected"
    return "lost"


async def _failed(jobs: CollectionJobs, job: CollectionJob, worker: str, clock: Clock, settings: WorkerSettings,
                  error: str, retry_after: float) -> str:
    now = clock.now()
    at = settings.backoff.next_attempt(job.attempts, now, now + timedelta(seconds=retry_after) if retry_after else None)
    if at is None:
        return "failed" if await jobs.give_up(job, worker, error, now) else "lost"
    return "retried" if await jobs.retry(job, worker, error, at) else "lost"


async def _keep_lease(jobs: CollectionJobs, job: CollectionJob, worker: str, clock: Clock, lease: timedelta) -> None:
    while True:
        await asyncio.sleep(lease.total_seconds() / 3)
        if not await jobs.renew(job, worker, clock.now(), lease):
            log.warning("lost the lease on tenant %s: another instance has taken it over", job.tenant_id)
            return


async def _collect(jobs: CollectionJobs, access: GraphAccess, job: CollectionJob, clock: Clock,
                   settings: WorkerSettings) -> TenantSnapshot:
    previous = await jobs.last_snapshot(job.tenant_id, complete=True)
    budget = TenantBudget(job.tenant_id, concurrency=settings.concurrency, max_wait=settings.max_wait,
                          max_throttles=settings.max_throttles)
    client = access.client_for(job.tenant_id, retry=KIOTA_RETRIES_OFF)
    try:
        if job.payload.get("mode") == "changes" and previous is not None:
            snapshot = await recollect_tenant(client, previous, now=clock.now(), concurrency=settings.concurrency,
                                              retry=settings.retry, budget=budget)
        else:
            snapshot = await collect_tenant(client, job.tenant_id, now=clock.now(), concurrency=settings.concurrency,
                                            previous=previous, retry=settings.retry, budget=budget)
    finally:
        await close_client(client)
    return snapshot


async def _main(run_id: str, worker: str | None, lease_seconds: float, tenants_at_once: int,
                schedule: str | None) -> None:
    from bot.collection import graph_access
    from bot.collection_jobs import PostgresCollectionJobs
    from bot.config import Settings
    from bot.store.postgres_store import PostgresStore

    settings = Settings()
    url = settings.database_url.get_secret_value()
    if not url:
        raise SystemExit("collection workers share jobs through PostgreSQL: set ACCESSBOT_DATABASE_URL")
    jobs = PostgresCollectionJobs(PostgresStore(url))
    try:
        access = graph_access(settings, settings.graph_tenant_id or "organizations")
        if schedule:
            if not settings.graph_tenant_id:
                raise SystemExit("--schedule reads the partner tenant: set ACCESSBOT_GRAPH_TENANT_ID")
            partner = await read_partner(access, settings.graph_tenant_id, SystemClock())
            if partner.missing:
                raise SystemExit("the partner tenant's GDAP relationships could not be read: " + "; ".join(partner.missing))
            added = await schedule_customers(jobs, partner, run_id, SystemClock(), mode=schedule)
            print(f"scheduled {added} customer tenants in run {run_id} ({schedule})", flush=True)
        report = await work_run(jobs, access, run_id, worker=worker, settings=WorkerSettings(
            lease=timedelta(seconds=lease_seconds), tenants_at_once=tenants_at_once))
    finally:
        await jobs.close()
    print(f"collected {len(report.collected)}, retried {len(report.retried)}, throttled {len(report.throttled)}, "
          f"failed {len(report.failed)}, "
          f"lost {len(report.lost)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id")
    parser.add_argument("--worker", default=None, help="this instance's name in the jobs table (default host:pid)")
    parser.add_argument("--lease", type=float, default=120.0, help="lease in seconds, renewed every third of it")
    parser.add_argument("--tenants-at-once", type=int, default=4)
    parser.add_argument("--schedule", choices=("full", "changes"), default=None,
                        help="first read the partner's GDAP customers and add a job per customer to the run "
                             "(idempotent: another instance scheduling the same run adds nothing)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_main(args.run_id, args.worker, args.lease, args.tenants_at_once, args.schedule))


if __name__ == "__main__":
    main()
