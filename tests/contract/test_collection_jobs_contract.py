"""The collection jobs' contract, on both backends: what the workers and the partner's roll-up rely on."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

from bot.collection_jobs import (
    Backoff,
    CollectionJobs,
    LocalCollectionJobs,
    NotAFullRun,
    PostgresCollectionJobs,
    Pruned,
    RunInfo,
    RunKind,
    RunKindMismatch,
    StaleSnapshot,
    full_run,
    snapshot_for_campaign,
    tenant_collections,
)
from bot.store.postgres_store import PostgresStore
from checks.snapshot import TenantSnapshot
from tests.contract.samples import MONDAY

LEASE = timedelta(minutes=5)
RUN = "2026-11-23T09:00"
TENANTS = [("AAAA-1", "Alpine Ski House", {"partner": {"tenantId": "p-1"}}), ("bbbb-2", "Bellows College", {}),
           ("cccc-3", "Coho Winery", {})]

OpenJobs = Callable[[], CollectionJobs]


@pytest.fixture(params=["tinydb", "postgres"])
async def open_jobs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenJobs]:
    """Opens the jobs of this test's location (call again for a second instance, or a restart)."""
    opened: list[CollectionJobs] = []
    location = str(tmp_path / "data") if request.param == "tinydb" else request.getfixturevalue("postgres_url")

    def open_jobs() -> CollectionJobs:
        jobs: CollectionJobs
        if request.param == "tinydb":
            jobs = LocalCollectionJobs(Path(location))
        else:
            jobs = PostgresCollectionJobs(PostgresStore(location))
        opened.append(jobs)
        return jobs

    yield open_jobs
    for jobs in opened:
        await jobs.close()


@pytest.fixture
def jobs(open_jobs: OpenJobs) -> CollectionJobs:
    return open_jobs()


def snapshot(tenant_id: str, *, complete: bool = True, days: int = 0) -> TenantSnapshot:
    return TenantSnapshot(tenant_id=tenant_id, tenant_name=tenant_id, collected_at=MONDAY + timedelta(days=days),
                          complete=complete, missing=() if complete else ("users: could not be read (503)",))


async def test_each_scheduled_tenant_is_claimed_once_and_then_nothing_is_left(jobs: CollectionJobs) -> None:
    assert await jobs.schedule(RUN, TENANTS, MONDAY) == 3
    assert await jobs.schedule(RUN, TENANTS, MONDAY) == 0  # a second scheduler adds nothing

    claimed = [await jobs.claim(worker, MONDAY, LEASE) for worker in ("one", "two", "one")]

    assert sorted(job.tenant_id for job in claimed if job) == ["aaaa-1", "bbbb-2", "cccc-3"]
    assert all(job is not None and job.state == "running" and job.attempts == 1 for job in claimed)
    assert await jobs.claim("two", MONDAY, LEASE) is None
    assert claimed[0] is not None and claimed[0].payload == {"partner": {"tenantId": "p-1"}}


async def test_a_job_whose_lease_ran_out_is_resumed_by_another_worker_and_the_first_can_no_longer_finish_it(
    jobs: CollectionJobs,
) -> None:
    await jobs.schedule(RUN, TENANTS[:1], MONDAY)
    first = await jobs.claim("killed", MONDAY, LEASE)
    assert first is not None
    assert await jobs.claim("survivor", MONDAY + LEASE - timedelta(seconds=1), LEASE) is None

    resumed = await jobs.claim("survivor", MONDAY + LEASE, LEASE)

    assert resumed is not None and resumed.tenant_id == first.tenant_id and resumed.attempts == 2
    assert await jobs.renew(first, "killed", MONDAY + LEASE, LEASE) is False
    assert await jobs.complete(first, "killed", snapshot("aaaa-1"), MONDAY + LEASE) is False
    assert await jobs.last_snapshot("aaaa-1") is None
    assert await jobs.complete(resumed, "survivor", snapshot("aaaa-1"), MONDAY + LEASE) is True
    [done] = await jobs.jobs(RUN)
    assert (done.state, done.worker, done.attempts) == ("done", "survivor", 2)


async def test_a_renewed_lease_keeps_the_job_from_other_workers(jobs: CollectionJobs) -> None:
    await jobs.schedule(RUN, TENANTS[:1], MONDAY)
    job = await jobs.claim("one", MONDAY, LEASE)
    assert job is not None
    assert await jobs.renew(job, "one", MONDAY + timedelta(minutes=4), LEASE) is True

    assert await jobs.claim("two", MONDAY + LEASE, LEASE) is None


async def test_a_retried_job_waits_for_its_time_and_counts_its_attempts(jobs: CollectionJobs) -> None:
    await jobs.schedule(RUN, TENANTS[:1], MONDAY)
    job = await jobs.claim("one", MONDAY, LEASE)
    assert job is not None
    at = Backoff().next_attempt(job.attempts, MONDAY, not_before=MONDAY + timedelta(minutes=7))
    assert at == MONDAY + timedelta(minutes=7)  # Graph's Retry-After was longer than the backoff
    assert await jobs.retry(job, "one", "429 throttled", at) is True

    assert await jobs.claim("two", at - timedelta(seconds=1), LEASE) is None
    assert await jobs.next_due(RUN) == at
    again = await jobs.claim("two", at, LEASE)
    assert again is not None and again.attempts == 2 and again.last_error == "429 throttled"


async def test_a_failed_tenant_keeps_its_last_complete_snapshot_which_opens_no_campaign(open_jobs: OpenJobs) -> None:
    jobs = open_jobs()
    last_week = "2026-11-16T09:00"
    await jobs.schedule(last_week, TENANTS[:1], MONDAY - timedelta(days=7))
    job = await jobs.claim("one", MONDAY - timedelta(days=7), LEASE)
    assert job is not None
    await jobs.complete(job, "one", snapshot("aaaa-1", days=-7), MONDAY - timedelta(days=7))

    await jobs.schedule(RUN, TENANTS[:1], MONDAY)
    job = await jobs.claim("one", MONDAY, LEASE)
    assert job is not None
    assert await jobs.give_up(job, "one", "503 after 5 attempts", MONDAY) is True

    reopened = open_jobs()  # what any instance (or a restart) reads
    [standing] = await tenant_collections(reopened, RUN)
    assert (standing.state, standing.last_error) == ("failed", "503 after 5 attempts")
    assert standing.last_complete_at == MONDAY - timedelta(days=7)
    kept = await reopened.last_snapshot("aaaa-1", complete=True)
    assert kept is not None and kept.collected_at == MONDAY - timedelta(days=7)
    with pytest.raises(StaleSnapshot, match="failed: 503 after 5 attempts"):
        await snapshot_for_campaign(reopened, RUN, "AAAA-1")
    assert (await snapshot_for_campaign(reopened, last_week, "aaaa-1")).collected_at == MONDAY - timedelta(days=7)


async def test_an_incomplete_collection_is_the_last_snapshot_but_not_the_last_complete_one(jobs: CollectionJobs) -> None:
    for days, complete in ((0, True), (7, False)):
        run = f"run-{days}"
        await jobs.schedule(run, TENANTS[1:2], MONDAY + timedelta(days=days))
        job = await jobs.claim("one", MONDAY + timedelta(days=days), LEASE)
        assert job is not None
        await jobs.complete(job, "one", snapshot("bbbb-2", complete=complete, days=days), MONDAY + timedelta(days=days))

    last = await jobs.last_snapshot("bbbb-2")
    complete = await jobs.last_snapshot("bbbb-2", complete=True)
    assert last is not None and not last.complete and last.collected_at == MONDAY + timedelta(days=7)
    assert complete is not None and complete.complete and complete.collected_at == MONDAY


async def test_backoff_doubles_to_its_cap_and_ends(jobs: CollectionJobs) -> None:
    policy = Backoff(max_attempts=4, first=timedelta(minutes=1), cap=timedelta(minutes=3))
    assert [policy.next_attempt(n, MONDAY) for n in (1, 2, 3, 4)] == [
        MONDAY + timedelta(minutes=1), MONDAY + timedelta(minutes=2), MONDAY + timedelta(minutes=3), None]


async def _collect(jobs: CollectionJobs, run: str, tenants: list[tuple[str, str, dict]], days: int,  # type: ignore[type-arg]
                   incomplete: frozenset[str] = frozenset(), kind: RunKind = "full") -> None:
    """Schedule ``run`` in the period ``days`` after MONDAY and collect every tenant (those in ``incomplete`` read
    in part)."""
    at = MONDAY + timedelta(days=days)
    await jobs.schedule(run, tenants, at, kind=kind, period=f"period-{days:03d}")
    while (job := await jobs.claim("one", at, LEASE)) is not None:
        await jobs.complete(job, "one", snapshot(job.tenant_id, complete=job.tenant_id not in incomplete, days=days), at)


async def test_a_run_records_its_kind_and_period_and_takes_no_jobs_of_the_other_kind(jobs: CollectionJobs) -> None:
    await jobs.schedule("changes-1", TENANTS, MONDAY, kind="changes", period="2026-11-23T09:00")
    assert await jobs.schedule("changes-1", TENANTS, MONDAY, kind="changes") == 0

    with pytest.raises(RunKindMismatch, match="change check: it takes no full collection jobs"):
        await jobs.schedule("changes-1", TENANTS, MONDAY, kind="full")
    run = await jobs.run("changes-1")
    assert run is not None and (run.kind, run.period, run.opened_at) == ("changes", "2026-11-23T09:00", None)
    with pytest.raises(NotAFullRun, match="is a change check"):
        await full_run(jobs, "changes-1")
    with pytest.raises(NotAFullRun, match="there is no collection run 'nowhere'"):
        await full_run(jobs, "nowhere")


async def test_a_run_is_started_once_and_a_twin_adds_nothing_even_after_a_restart(open_jobs: OpenJobs) -> None:
    first = open_jobs()
    run = RunInfo(RUN, "full", RUN, MONDAY)

    assert await first.start_run(run, TENANTS[:2], MONDAY) is True
    assert await first.start_run(run, TENANTS, MONDAY) is False  # again, with a longer customer list
    assert await open_jobs().start_run(run, TENANTS, MONDAY) is False  # a restarted leader

    assert [job.tenant_id for job in await open_jobs().jobs(RUN)] == ["aaaa-1", "bbbb-2"]
    assert await first.open_jobs(RUN) == 2
    await first.mark_opened(RUN, MONDAY)
    opened = await open_jobs().run(RUN)
    assert opened is not None and opened.opened_at == MONDAY


async def test_pruning_keeps_the_last_periods_runs_and_each_tenants_last_complete_snapshot(open_jobs: OpenJobs) -> None:
    jobs = open_jobs()
    alpine, bellows, coho = TENANTS
    await _collect(jobs, "week-0", [alpine, bellows, coho], 0)
    await _collect(jobs, "week-7", [alpine, bellows, coho], 7, incomplete=frozenset({"bbbb-2", "cccc-3"}))
    await _collect(jobs, "changes-15", [alpine], 15, kind="changes")
    await _collect(jobs, "week-21", [alpine], 21)
    await _collect(jobs, "week-28", [alpine], 28)
    await jobs.schedule("stuck", [coho], MONDAY + timedelta(days=8), period="period-008")  # never collected: open

    pruned = await jobs.prune(keep_periods=2)

    assert pruned.runs == ("changes-15", "week-0", "week-7") and pruned.jobs == 7
    reopened = open_jobs()  # what any instance (or a restart) reads
    assert sorted(run.run_id for run in await reopened.runs()) == ["stuck", "week-21", "week-28"]
    assert await reopened.jobs("week-0") == [] and len(await reopened.jobs("week-28")) == 1
    # Bellows College is named by no kept run: its incomplete last snapshot goes, its last complete one stays
    # (and is its last one now); Coho Winery is still named by the open run, so nothing of it is touched.
    kept = await reopened.last_snapshot("bbbb-2")
    assert kept is not None and kept.complete and kept.collected_at == MONDAY
    assert (await reopened.last_snapshot("bbbb-2", complete=True)) == kept
    coho_last = await reopened.last_snapshot("cccc-3")
    assert coho_last is not None and not coho_last.complete
    assert await reopened.prune(keep_periods=2) == Pruned()  # nothing more


async def test_a_tenant_only_pruned_runs_named_without_a_complete_snapshot_keeps_nothing(open_jobs: OpenJobs) -> None:
    jobs = open_jobs()
    await _collect(jobs, "week-0", TENANTS[1:2], 0, incomplete=frozenset({"bbbb-2"}))
    await _collect(jobs, "week-7", TENANTS[:1], 7)

    pruned = await jobs.prune(keep_periods=1)

    assert pruned == Pruned(("week-0",), 1, 1)
    assert await open_jobs().last_snapshot("bbbb-2") is None
    assert await open_jobs().last_snapshot("aaaa-1") is not None
