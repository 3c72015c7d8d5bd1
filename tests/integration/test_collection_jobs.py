"""Customer tenants collected as jobs through the fake Graph: per-tenant throttling, a failed tenant keeping
its last complete snapshot, and two real worker processes sharing one PostgreSQL run, one killed mid-job."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import SystemClock
from bot.collection import GraphAccess
from bot.collection_jobs import (
    Backoff,
    LocalCollectionJobs,
    PostgresCollectionJobs,
    StaleSnapshot,
    snapshot_for_campaign,
    tenant_collections,
)
from bot.collection_worker import WorkerSettings, schedule_customers, work_run
from bot.store.postgres_store import PostgresStore
from checks.graph import GraphCredentials
from checks.graph.partner import collect_partner
from checks.graph.client import AccessTokenCredential, close_client, graph_client
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.tenant_generator import NOW, TenantShape, generate_csp

ROOT = Path(__file__).resolve().parents[2]
SMALL = TenantShape(users=30, privileged_users=10, crowded_role_holders=5)
FAST = WorkerSettings(lease=timedelta(seconds=30), tenants_at_once=1, concurrency=4, max_wait=5.0,
                      backoff=Backoff(max_attempts=2, first=timedelta(minutes=10)))


def access_to(fake: FakeGraph) -> GraphAccess:
    credentials = GraphCredentials(kind="access_token", tenant_id="organizations", access_token="fake-graph-token")
    return GraphAccess(credentials, f"{fake.url}/{{tenant}}/v1.0")


async def partner_view(fake: FakeGraph, partner_id: str):  # type: ignore[no-untyped-def]
    client = graph_client(AccessTokenCredential("fake-graph-token"), fake.base_url(partner_id))
    try:
        return await collect_partner(client, partner_id, now=NOW)
    finally:
        await close_client(client)


async def test_a_tenant_answering_only_429_is_given_back_until_its_retry_after_while_the_others_are_collected(
    tmp_path: Path,
) -> None:
    partner, customers = generate_csp(4, SMALL)
    noisy = min(customers, key=lambda c: c.tenant_id)  # claimed first: it would hold the one slot
    async with FakeGraph(partner, *customers) as fake:
        fake.throttle(r".", times=None, retry_after="120", tenant=noisy.tenant_id)
        jobs = LocalCollectionJobs(tmp_path / "data")
        try:
            await schedule_customers(jobs, await partner_view(fake, partner.tenant_id), "run-1", SystemClock())
            started = SystemClock().now()
            report = await asyncio.wait_for(
                work_run(jobs, access_to(fake), "run-1", worker="one", settings=FAST, wait_for_retries=False), 120)
            by_tenant = {job.tenant_id: job for job in await jobs.jobs("run-1")}
        finally:
            await jobs.close()

    quiet = sorted(c.tenant_id for c in customers if c is not noisy)
    assert sorted(report.collected) == quiet
    assert all(by_tenant[tid].state == "done" for tid in quiet)
    held = by_tenant[noisy.tenant_id]
    assert held.state == "pending" and "throttled" in held.last_error
    assert held.next_attempt_at >= started + timedelta(seconds=120)  # Graph's Retry-After, not our backoff
    # The noisy tenant was asked no more than its in-flight budget before it was given back.
    assert 0 < fake.tenant_requests(noisy.tenant_id) <= FAST.concurrency


async def test_a_retry_after_pauses_only_its_own_tenant_and_the_collection_completes(tmp_path: Path) -> None:
    partner, customers = generate_csp(2, SMALL)
    slowed = customers[0]
    async with FakeGraph(partner, *customers) as fake:
        fault = fake.throttle(r"^/roleManagement/directory/roleAssignments$", times=2, retry_after="1",
                              where="top", tenant=slowed.tenant_id)
        jobs = LocalCollectionJobs(tmp_path / "data")
        try:
            await schedule_customers(jobs, await partner_view(fake, partner.tenant_id), "run-1", SystemClock())
            report = await asyncio.wait_for(work_run(jobs, access_to(fake), "run-1", worker="one", settings=FAST), 120)
            snapshot = await snapshot_for_campaign(jobs, "run-1", slowed.tenant_id)
        finally:
            await jobs.close()
    assert sorted(report.collected) == sorted(c.tenant_id for c in customers)
    assert fault.fired == 2 and snapshot.complete and snapshot.role_assignments
    assert fake.tenant_requests(slowed.tenant_id, "GET /roleManagement/directory/roleAssignments") >= 3
    assert fake.tenant_requests(customers[1].tenant_id, "GET /roleManagement/directory/roleAssignments") >= 1


async def test_a_tenant_that_cannot_be_read_keeps_its_last_complete_snapshot_and_opens_no_campaign(
    tmp_path: Path,
) -> None:
    partner, customers = generate_csp(2, SMALL)
    broken = customers[0]
    settings = WorkerSettings(tenants_at_once=1, concurrency=4, retry=FAST.retry,
                              backoff=Backoff(max_attempts=1))
    async with FakeGraph(partner, *customers) as fake:
        jobs = LocalCollectionJobs(tmp_path / "data")
        try:
            view = await partner_view(fake, partner.tenant_id)
            await schedule_customers(jobs, view, "week-1", SystemClock())
            await asyncio.wait_for(work_run(jobs, access_to(fake), "week-1", worker="one", settings=settings), 120)
            first = await snapshot_for_campaign(jobs, "week-1", broken.tenant_id)

            fake.fail(r".", 503, tenant=broken.tenant_id)
            await schedule_customers(jobs, view, "week-2", SystemClock())
            report = await asyncio.wait_for(
                work_run(jobs, access_to(fake), "week-2", worker="one", settings=settings), 120)
            standing = {c.tenant_id: c for c in await tenant_collections(jobs, "week-2")}
            with pytest.raises(StaleSnapshot, match="failed"):
                await snapshot_for_campaign(jobs, "week-2", broken.tenant_id)
            kept = await jobs.last_snapshot(broken.tenant_id, complete=True)
        finally:
            await jobs.close()
    assert report.failed == [broken.tenant_id] and report.collected == [customers[1].tenant_id]
    assert standing[broken.tenant_id].state == "failed" and "503" in standing[broken.tenant_id].last_error
    assert standing[broken.tenant_id].last_complete_at == first.collected_at
    assert kept is not None and kept.collected_at == first.collected_at and kept.role_assignments


async def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    async def poll() -> None:
        while not await predicate():
            await asyncio.sleep(0.1)
    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_two_worker_processes_share_a_run_and_one_killed_mid_job_is_resumed_by_the_other(
    postgres_url: str,
) -> None:
    partner, customers = generate_csp(6, SMALL)
    stuck = customers[2]
    async with FakeGraph(partner, *customers) as fake:
        slow = fake.slow(r"^/organization$", 600, tenant=stuck.tenant_id)
        jobs = PostgresCollectionJobs(PostgresStore(postgres_url))
        env = {**os.environ, "ACCESSBOT_DATABASE_URL": postgres_url, "ACCESSBOT_GRAPH_CREDENTIAL": "access_token",
               "ACCESSBOT_GRAPH_ACCESS_TOKEN": "fake-graph-token", "ACCESSBOT_GRAPH_TENANT_ID": partner.tenant_id,
               "ACCESSBOT_GRAPH_BASE_URL": f"{fake.url}/{{tenant}}/v1.0"}
        workers = {}
        try:
            for name in ("one", "two"):  # each schedules the run (idempotent), then works it
                workers[name] = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot.collection_worker", "run-1", "--worker", name, "--lease", "3",
                    "--tenants-at-once", "1", "--schedule", "full", cwd=ROOT, env=env,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

            async def stuck_is_claimed() -> bool:
                return fake.tenant_requests(stuck.tenant_id, "GET /organization") > 0
            await _wait_for(stuck_is_claimed, 60, "a worker to start on the stuck tenant")
            holder = next(j.worker for j in await jobs.jobs("run-1") if j.tenant_id == stuck.tenant_id)
            survivor = "two" if holder == "one" else "one"
            workers[holder].send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(workers[holder].wait(), 30) == -signal.SIGKILL
            fake.faults.remove(slow)

            out, err = await asyncio.wait_for(workers[survivor].communicate(), 120)
            assert workers[survivor].returncode == 0, err.decode()[-2000:]
            finished = await jobs.jobs("run-1")
        finally:
            for process in workers.values():
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            await jobs.close()

    assert sorted(j.tenant_id for j in finished) == sorted(c.tenant_id for c in customers)  # none skipped
    assert all(j.state == "done" for j in finished)
    resumed = next(j for j in finished if j.tenant_id == stuck.tenant_id)
    assert (resumed.worker, resumed.attempts) == (survivor, 2)
    for job in finished:
        if job.tenant_id != stuck.tenant_id:  # none collected twice: one claim, one collection each
            assert job.attempts == 1
            assert fake.tenant_requests(job.tenant_id, "GET /organization") == 1
    assert fake.tenant_requests(stuck.tenant_id, "GET /organization") == 2
    assert {j.worker for j in finished} <= {"one", "two"}
