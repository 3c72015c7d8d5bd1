"""Collection as jobs in the store: one job per customer tenant per collection run, claimed by any instance.

Why jobs: a CSP partner has hundreds to thousands of customer tenants. Walking them one after another in one
process takes hours, and a process that dies loses its place. Here each tenant's collection is a row any
instance may claim; a claim is a lease, renewed while the collection runs, so a killed instance's job becomes
claimable again when its lease runs out and another instance resumes it. A job that fails is retried with
backoff (or at Graph's Retry-After, when the tenant was throttled); once its attempts are spent it is
``failed``, and the tenant's last complete snapshot stays in force: the roll-up says so, and
``snapshot_for_campaign`` refuses to open a campaign from it, since it is not this run's data.

Each run has a kind (``RunInfo``): a **full** collection, the data a review period's campaigns open from, or a
**change check** (delta queries between full collections), which never opens a campaign (``NotAFullRun``). It
belongs to a review period, by which old runs are pruned (``prune``): the runs of the last N periods stay, and
every tenant's last complete snapshot always does.

Two backends, one interface (``CollectionJobs``), one contract (tests/contract/test_collection_jobs_contract.py):
``PostgresCollectionJobs`` (tables ``collection_runs``, ``collection_jobs`` and ``tenant_snapshots``, migrations
0005 and 0007, claimed with ``FOR UPDATE SKIP LOCKED``) for several instances; ``LocalCollectionJobs`` (append-only
logs of run and job rows in the data directory, the snapshots in ``DATA_DIR/snapshots/``) for one instance on
TinyDB.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Literal, Protocol, Sequence

from bot.collection import SnapshotArchive
from bot.store.append_log import AppendLog
from bot.store.atomic_storage import replace_file
from bot.store.postgres_store import PostgresStore
from checks.snapshot import TenantSnapshot, snapshot_from_dict, snapshot_to_dict

JobState = Literal["pending", "running", "done", "failed"]
RunKind = Literal["full", "changes"]
_OPEN_STATES = ("pending", "running")


def period_of(moment: datetime) -> str:
    """A run's period when nobody named one: the minute it started, written like a review period (UTC)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class RunInfo:
    """One collection run: ``full`` (its snapshots are what a review period's campaigns open from) or ``changes``
    (a change check between full collections); ``period`` is the review period it belongs to (what pruning keeps
    by); ``opened_at`` is when the customers' campaigns of this run were opened (None: not yet)."""

    run_id: str
    kind: RunKind
    period: str
    created_at: datetime
    opened_at: datetime | None = None


@dataclass(frozen=True)
class Pruned:
    """What one pruning removed: whole runs (with their jobs), and snapshots of tenants no kept run names."""

    runs: tuple[str, ...] = ()
    jobs: int = 0
    snapshots: int = 0


class NotAFullRun(ValueError):
    """Campaigns open only from a full collection: a change check re-reads part of a tenant from an older
    snapshot, and a run nobody recorded is no run at all."""


class RunKindMismatch(ValueError):
    """Jobs of one kind added to a run of the other: a run is a full collection or a change check, never both."""


@dataclass(frozen=True)
class CollectionJob:
    """One tenant's collection in one run. ``payload`` is what the worker needs besides the tenant id (a CSP
    partner's relationships to that customer, so the snapshot names the partner's access)."""

    run_id: str
    tenant_id: str
    tenant_name: str
    next_attempt_at: datetime
    created_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    state: JobState = "pending"
    attempts: int = 0
    worker: str | None = None
    lease_until: datetime | None = None
    last_error: str = ""
    finished_at: datetime | None = None


@dataclass(frozen=True)
class TenantCollection:
    """Where one tenant's collection stands for a run, for the partner's roll-up: the job's state and error,
    and when the tenant's last complete snapshot (the one in force) was collected."""

    tenant_id: str
    tenant_name: str
    state: JobState
    attempts: int
    last_error: str
    last_complete_at: datetime | None


@dataclass(frozen=True)
class Backoff:
    """How a failed collection is retried: ``first`` doubling up to ``cap``, ``max_attempts`` in all; a
    throttled tenant is retried no sooner than Graph's Retry-After."""

    max_attempts: int = 5
    first: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=1)

    def next_attempt(self, attempts: int, now: datetime, not_before: datetime | None = None) -> datetime | None:
        """When to try again after ``attempts`` failed attempts; None once they are spent."""
        if attempts >= self.max_attempts:
            return None
        at = now + min(self.cap, self.first * 2 ** max(0, attempts - 1))
        return max(at, not_before) if not_before else at


class StaleSnapshot(RuntimeError):
    """This run did not collect the tenant: its last snapshot is older data, and no campaign opens from it."""


class CollectionJobs(Protocol):
    async def schedule(self, run_id: str, tenants: Sequence[tuple[str, str, dict[str, Any]]], now: datetime,
                       kind: RunKind = "full", period: str | None = None) -> int:
        """A pending job for each (tenant id, name, payload) the run does not have yet; how many were new. The run
        is recorded with ``kind`` and ``period`` (default: ``now``'s minute) if it is new; ``RunKindMismatch`` when it
        exists with the other kind. Idempotent: every worker may schedule the same run."""
        ...

    async def start_run(self, run: RunInfo, tenants: Sequence[tuple[str, str, dict[str, Any]]], now: datetime) -> bool:
        """Record the run and its jobs together, once: False, and nothing added, when the run exists already
        (another instance, or a leader before a restart, started it)."""
        ...

    async def run(self, run_id: str) -> RunInfo | None: ...

    async def runs(self) -> list[RunInfo]:
        """Every run, newest first."""
        ...

    async def open_jobs(self, run_id: str) -> int:
        """How many of the run's jobs are pending or running: 0 is a settled run."""
        ...

    async def mark_opened(self, run_id: str, now: datetime) -> None:
        """The customers' campaigns of this run were opened (so the leader does not open them every round)."""
        ...

    async def prune(self, keep_periods: int) -> Pruned:
        """Delete the runs (and their jobs) of all but the last ``keep_periods`` periods, except runs still open;
        then the snapshots of tenants only those runs named, except each one's last complete snapshot (a tenant
        with one keeps it, as its last snapshot too; a tenant with none keeps nothing)."""
        ...

    async def claim(self, worker: str, now: datetime, lease: timedelta) -> CollectionJob | None:
        """The next due job (pending and due, or running with a lease that ran out), now held by ``worker``
        until ``now + lease`` with one more attempt counted; None when nothing is claimable."""
        ...

    async def renew(self, job: CollectionJob, worker: str, now: datetime, lease: timedelta) -> bool:
        """Extend the lease; False when the job is no longer this worker's (its lease ran out and it was taken)."""
        ...

    async def complete(self, job: CollectionJob, worker: str, snapshot: TenantSnapshot, now: datetime) -> bool:
        """Store the tenant's snapshot (also as its last complete one when it is complete) and mark the job done,
        together; False, and nothing stored, when the job is no longer this worker's."""
        ...

    async def retry(self, job: CollectionJob, worker: str, error: str, at: datetime) -> bool:
        """The attempt failed: pending again, due at ``at``, with its error kept."""
        ...

    async def give_up(self, job: CollectionJob, worker: str, error: str, now: datetime) -> bool:
        """Attempts spent: ``failed``, its error kept; the tenant's last complete snapshot stays in force."""
        ...

    async def jobs(self, run_id: str) -> list[CollectionJob]:
        """Every job of the run, by tenant id."""
        ...

    async def job(self, run_id: str, tenant_id: str) -> CollectionJob | None:
        """One tenant's job in the run."""
        ...

    async def next_due(self, run_id: str) -> datetime | None:
        """When the run's next job becomes claimable (a due time or a lease's end); None when none is open."""
        ...

    async def complete_dates(self, run_id: str) -> dict[str, datetime]:
        """When the last complete snapshot of each tenant of the run was collected (tenants without one left out),
        without reading the snapshots themselves."""
        ...

    async def last_snapshot(self, tenant_id: str, *, complete: bool = False) -> TenantSnapshot | None:
        """The tenant's last stored snapshot, or its last complete one."""
        ...

    async def close(self) -> None: ...


async def tenant_collections(jobs: CollectionJobs, run_id: str) -> list[TenantCollection]:
    """Each tenant of the run with its job's state and the date of the snapshot in force."""
    dates = await jobs.complete_dates(run_id)
    return [TenantCollection(job.tenant_id, job.tenant_name, job.state, job.attempts, job.last_error,
                             dates.get(job.tenant_id)) for job in await jobs.jobs(run_id)]


async def full_run(jobs: CollectionJobs, run_id: str) -> RunInfo:
    """The run, if campaigns may open from it: ``NotAFullRun`` for a change check or a run nobody recorded."""
    run = await jobs.run(run_id)
    if run is None:
        raise NotAFullRun(f"there is no collection run {run_id!r}: start one (`accessbot collect --all-customers`) "
                          "or name an existing one")
    if run.kind != "full":
        raise NotAFullRun(f"run {run_id!r} is a change check (delta re-collection from older snapshots): campaigns "
                          "open only from a full collection run")
    return run


def runs_to_prune(runs: Sequence[RunInfo], keep_periods: int, open_runs: set[str]) -> list[RunInfo]:
    """The runs outside the last ``keep_periods`` periods, less those with jobs still open."""
    kept = sorted({run.period for run in runs}, reverse=True)[:max(1, keep_periods)]
    return [run for run in runs if run.period not in kept and run.run_id not in open_runs]


async def snapshot_for_campaign(jobs: CollectionJobs, run_id: str, tenant_id: str) -> TenantSnapshot:
    """The snapshot this run collected for the tenant, the only one a campaign of this run may open from.

    ``StaleSnapshot`` when the run's job is not done (failed, or still open): the last snapshot is then older
    data, and a review opened from it would ask people to confirm access as it stood weeks ago."""
    job = await jobs.job(run_id, tenant_id.lower())
    if job is None or job.state != "done":
        state = "not part of this run" if job is None else f"{job.state}: {job.last_error or 'not finished'}"
        raise StaleSnapshot(f"tenant {tenant_id} was not collected in run {run_id} ({state})")
    snapshot = await jobs.last_snapshot(tenant_id)
    if snapshot is None:
        raise StaleSnapshot(f"tenant {tenant_id} has no stored snapshot")
    return snapshot


def _snapshot_text(snapshot: TenantSnapshot) -> str:
    return json.dumps(snapshot_to_dict(snapshot), ensure_ascii=False, separators=(",", ":"))


# ---- PostgreSQL ------------------------------------------------------------------------------------


_COLUMNS = ("run_id, tenant_id, tenant_name, payload, state, attempts, next_attempt_at, worker, lease_until, "
            "last_error, created_at, finished_at")


_RUN_COLUMNS = "run_id, kind, period, created_at, opened_at"
_KIND_NAMES = {"full": "full collection", "changes": "change check"}


def _job_from_row(row: Sequence[Any]) -> CollectionJob:
    (run_id, tenant_id, name, payload, state, attempts, due, worker, lease_until, error, created, finished) = row
    return CollectionJob(run_id=run_id, tenant_id=tenant_id, tenant_name=name, payload=json.loads(payload),
                         state=state, attempts=attempts, next_attempt_at=due, worker=worker,
                         lease_until=lease_until, last_error=error, created_at=created, finished_at=finished)


class PostgresCollectionJobs:
    """The jobs in the shared database: any number of instances claim them, none the same job at once."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    async def schedule(self, run_id: str, tenants: Sequence[tuple[str, str, dict[str, Any]]], now: datetime,
                       kind: RunKind = "full", period: str | None = None) -> int:
        async with self.store.transaction(write=True) as conn:
            await conn.execute(
                "INSERT INTO collection_runs (run_id, kind, period, created_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (run_id) DO NOTHING", (run_id, kind, period or period_of(now), now))
            row = await (await conn.execute("SELECT kind FROM collection_runs WHERE run_id = %s", (run_id,))).fetchone()
            if row is not None and row[0] != kind:
                raise RunKindMismatch(f"run {run_id!r} is a {_KIND_NAMES[row[0]]}: it takes no {_KIND_NAMES[kind]} jobs")
            return await self._insert_jobs(conn, run_id, tenants, now)

    async def start_run(self, run: RunInfo, tenants: Sequence[tuple[str, str, dict[str, Any]]], now: datetime) -> bool:
        async with self.store.transaction(write=True) as conn:
            row = await (await conn.execute(
                "INSERT INTO collection_runs (run_id, kind, period, created_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (run_id) DO NOTHING RETURNING 1", (run.run_id, run.kind, run.period, run.created_at))).fetchone()
            if row is None:
                return False
            await self._insert_jobs(conn, run.run_id, tenants, now)
            return True

    @staticmethod
    async def _insert_jobs(conn: Any, run_id: str, tenants: Sequence[tuple[str, str, dict[str, Any]]], now: datetime) -> int:
        rows = [(run_id, tid.lower(), name, json.dumps(payload), now, now) for tid, name, payload in tenants]
        if not rows:
            return 0
        cursor = conn.cursor()
        await cursor.executemany(
            "INSERT INTO collection_jobs (run_id, tenant_id, tenant_name, payload, next_attempt_at, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, tenant_id) DO NOTHING", rows)
        return int(cursor.rowcount)

    async def run(self, run_id: str) -> RunInfo | None:
        async with self.store.transaction() as conn:
            row = await (await conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM collection_runs WHERE run_id = %s", (run_id,))).fetchone()
        return None if row is None else RunInfo(*row)

    async def runs(self) -> list[RunInfo]:
        async with self.store.transaction() as conn:
            rows = await (await conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM collection_runs ORDER BY created_at DESC, run_id DESC")).fetchall()
        return [RunInfo(*row) for row in rows]

    async def open_jobs(self, run_id: str) -> int:
        async with self.store.transaction() as conn:
            row = await (await conn.execute(
                "SELECT count(*) FROM collection_jobs WHERE run_id = %s AND state IN ('pending', 'running')",
                (run_id,))).fetchone()
        return int(row[0]) if row else 0

    async def mark_opened(self, run_id: str, now: datetime) -> None:
        async with self.store.transaction(write=True) as conn:
            await conn.execute("UPDATE collection_runs SET opened_at = coalesce(opened_at, %s) WHERE run_id = %s",
                               (now, run_id))

    async def prune(self, keep_periods: int) -> Pruned:
        async with self.store.transaction(write=True) as conn:
            runs = [RunInfo(*row) for row in await (await conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM collection_runs FOR UPDATE")).fetchall()]
            open_runs = {row[0] for row in await (await conn.execute(
                "SELECT DISTINCT run_id FROM collection_jobs WHERE state IN ('pending', 'running')")).fetchall()}
            gone = [run.run_id for run in runs_to_prune(runs, keep_periods, open_runs)]
            if not gone:
                return Pruned()
            tenants = [row[0] for row in await (await conn.execute(
                "DELETE FROM collection_jobs WHERE run_id = ANY(%s) RETURNING tenant_id", (gone,))).fetchall()]
            await conn.execute("DELETE FROM collection_runs WHERE run_id = ANY(%s)", (gone,))
            unnamed = "tenant_id = ANY(%s) AND NOT EXISTS (SELECT 1 FROM collection_jobs j WHERE j.tenant_id = s.tenant_id)"
            deleted = await conn.execute(f"DELETE FROM tenant_snapshots s WHERE complete_doc IS NULL AND {unnamed}",
                                         (list(set(tenants)),))
            reset = await conn.execute(
                "UPDATE tenant_snapshots s SET last_doc = complete_doc, last_collected_at = complete_collected_at "
                f"WHERE complete_doc IS NOT NULL AND last_collected_at <> complete_collected_at AND {unnamed}",
                (list(set(tenants)),))
        return Pruned(tuple(sorted(gone)), len(tenants), deleted.rowcount + reset.rowcount)

    async def claim(self, worker: str, now: datetime, lease: timedelta) -> CollectionJob | None:
        async with self.store.transaction(write=True) as conn:
            row = await (await conn.execute(
                f"UPDATE collection_jobs SET state = 'running', worker = %s, lease_until = %s, attempts = attempts + 1 "
                f"WHERE (run_id, tenant_id) = ("
                f"  SELECT run_id, tenant_id FROM collection_jobs"
                f"  WHERE (state = 'pending' AND next_attempt_at <= %s) OR (state = 'running' AND lease_until <= %s)"
                f"  ORDER BY coalesce(lease_until, next_attempt_at), tenant_id LIMIT 1 FOR UPDATE SKIP LOCKED) "
                f"RETURNING {_COLUMNS}", (worker, now + lease, now, now))).fetchone()
        return None if row is None else _job_from_row(row)

    async def renew(self, job: CollectionJob, worker: str, now: datetime, lease: timedelta) -> bool:
        return await self._update(job, worker, "lease_until = %s", (now + lease,))

    async def complete(self, job: CollectionJob, worker: str, snapshot: TenantSnapshot, now: datetime) -> bool:
        text = _snapshot_text(snapshot)
        async with self.store.transaction(write=True) as conn:
            if not await self._held(conn, job, worker, "state = 'done', finished_at = %s, lease_until = NULL", (now,)):
                return False
            complete = (text, snapshot.collected_at) if snapshot.complete else (None, None)
            await conn.execute(
                "INSERT INTO tenant_snapshots (tenant_id, last_doc, last_collected_at, complete_doc, complete_collected_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant_id) DO UPDATE SET last_doc = EXCLUDED.last_doc, "
                "last_collected_at = EXCLUDED.last_collected_at, "
                "complete_doc = coalesce(EXCLUDED.complete_doc, tenant_snapshots.complete_doc), "
                "complete_collected_at = coalesce(EXCLUDED.complete_collected_at, tenant_snapshots.complete_collected_at)",
                (job.tenant_id, text, snapshot.collected_at, *complete))
        return True

    async def retry(self, job: CollectionJob, worker: str, error: str, at: datetime) -> bool:
        return await self._update(job, worker, "state = 'pending', next_attempt_at = %s, last_error = %s, "
                                  "worker = NULL, lease_until = NULL", (at, error))

    async def give_up(self, job: CollectionJob, worker: str, error: str, now: datetime) -> bool:
        return await self._update(job, worker, "state = 'failed', finished_at = %s, last_error = %s, lease_until = NULL",
                                  (now, error))

    async def _update(self, job: CollectionJob, worker: str, assignments: str, values: tuple[Any, ...]) -> bool:
        async with self.store.transaction(write=True) as conn:
            return await self._held(conn, job, worker, assignments, values)

    @staticmethod
    async def _held(conn: Any, job: CollectionJob, worker: str, assignments: str, values: tuple[Any, ...]) -> bool:
        """Apply ``assignments`` only while the job still runs under this worker's claim."""
        row = await (await conn.execute(
            f"UPDATE collection_jobs SET {assignments} WHERE run_id = %s AND tenant_id = %s AND state = 'running' "
            f"AND worker = %s RETURNING 1", (*values, job.run_id, job.tenant_id, worker))).fetchone()
        return row is not None

    async def jobs(self, run_id: str) -> list[CollectionJob]:
        async with self.store.transaction() as conn:
            rows = await (await conn.execute(
                f"SELECT {_COLUMNS} FROM collection_jobs WHERE run_id = %s ORDER BY tenant_id", (run_id,))).fetchall()
        return [_job_from_row(row) for row in rows]

    async def job(self, run_id: str, tenant_id: str) -> CollectionJob | None:
        async with self.store.transaction() as conn:
            row = await (await conn.execute(
                f"SELECT {_COLUMNS} FROM collection_jobs WHERE run_id = %s AND tenant_id = %s",
                (run_id, tenant_id.lower()))).fetchone()
        return None if row is None else _job_from_row(row)

    async def complete_dates(self, run_id: str) -> dict[str, datetime]:
        async with self.store.transaction() as conn:
            rows = await (await conn.execute(
                "SELECT s.tenant_id, s.complete_collected_at FROM tenant_snapshots s JOIN collection_jobs j "
                "ON j.tenant_id = s.tenant_id WHERE j.run_id = %s AND s.complete_collected_at IS NOT NULL",
                (run_id,))).fetchall()
        return {tenant_id: at for tenant_id, at in rows}

    async def next_due(self, run_id: str) -> datetime | None:
        async with self.store.transaction() as conn:
            row = await (await conn.execute(
                "SELECT min(CASE WHEN state = 'running' THEN lease_until ELSE next_attempt_at END) FROM collection_jobs "
                "WHERE run_id = %s AND state IN ('pending', 'running')", (run_id,))).fetchone()
        return row[0] if row else None

    async def last_snapshot(self, tenant_id: str, *, complete: bool = False) -> TenantSnapshot | None:
        column = "complete_doc" if complete else "last_doc"
        async with self.store.transaction() as conn:
            row = await (await conn.execute(
                f"SELECT {column} FROM tenant_snapshots WHERE tenant_id = %s", (tenant_id.lower(),))).fetchone()
        return None if row is None or row[0] is None else snapshot_from_dict(json.loads(row[0]))

    async def close(self) -> None:
        await self.store.close()


# ---- one instance (TinyDB deployments) --------------------------------------------------------------


def _job_line(job: CollectionJob | RunInfo) -> bytes:
    """A job's (or a run's) line of the log. Its fields are read as they are, not through ``asdict``, whose deep
    copy of every value made writing a pruned 60,000-job log again take a minute instead of a second."""
    document = {f.name: _plain(getattr(job, f.name)) for f in fields(job)}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _job_from_line(line: bytes) -> CollectionJob:
    document = json.loads(line)
    for key in ("next_attempt_at", "created_at", "lease_until", "finished_at"):
        if document.get(key):
            document[key] = datetime.fromisoformat(document[key])
    return CollectionJob(**document)


def _run_from_line(line: bytes) -> RunInfo:
    document = json.loads(line)
    for key in ("created_at", "opened_at"):
        if document.get(key):
            document[key] = datetime.fromisoformat(document[key])
    return RunInfo(**document)


def _runs_of_jobs(jobs: Iterable[CollectionJob]) -> dict[str, RunInfo]:
    """Runs scheduled before runs were recorded, read back from their jobs (as migration 0007 does)."""
    runs: dict[str, RunInfo] = {}
    for job in sorted(jobs, key=lambda j: j.created_at):
        kind: RunKind = "changes" if job.payload.get("mode") == "changes" else "full"
        known = runs.get(job.run_id)
        if known is None:
            runs[job.run_id] = RunInfo(job.run_id, kind, period_of(job.created_at), job.created_at)
        elif kind == "changes" and known.kind != kind:
            runs[job.run_id] = replace(known, kind=kind)
    return runs


class LocalCollectionJobs:
    """The same jobs for one instance: every change of a job is a line appended to ``collection-jobs.jsonl``
    (the last line of a job wins), so a 1,000-tenant run never rewrites a file per job; the snapshots are the
    snapshot archive's files. A restarted instance resumes a job it held once that job's lease has run out."""

    def __init__(self, data_dir: Path) -> None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self.archive = SnapshotArchive(Path(data_dir))
        self._log = AppendLog(Path(data_dir) / "collection-jobs.jsonl")
        self._runs_log = AppendLog(Path(data_dir) / "collection-runs.jsonl")
        self._jobs: dict[tuple[str, str], CollectionJob] = {}
        for line in self._log.lines():
            job = _job_from_line(line)
            self._jobs[(job.run_id, job.tenant_id)] = job
        self._runs: dict[str, RunInfo] = _runs_of_jobs(self._jobs.values())  # runs from before runs were recorded
        for line in self._runs_log.lines():
            run = _run_from_line(line)
            self._runs[run.run_id] = run
        self._lock = asyncio.Lock()

    def _write(self, jobs: Sequence[CollectionJob], runs: Sequence[RunInfo] = ()) -> None:
        if runs:  # the run before its jobs: a crash between leaves a run without jobs, never jobs of no run
            self._runs_log.append([_job_line(run) for run in runs])
        self._log.append([_job_line(job) for job in jobs])
        for run in runs:
            self._runs[run.run_id] = run
        for job in jobs:
            self._jobs[(job.run_id, job.tenant_id)] = job

    def _new_jobs(self, run_id: str, tenants: Sequence[tuple[str, str, dict[str, Any]]], now: datetime) -> list[CollectionJob]:
        new = {tid.lower(): CollectionJob(run_id, tid.lower(), name, now, now, dict(payload))
               for tid, name, payload in tenants if (run_id, tid.lower()) not in self._jobs}
        return list(new.values())

    async def schedule(self, run_id: str, tenants: Sequence[tuple[str, str, dict[str, Any]]], now: datetime,
                       kind: RunKind = "full", period: str | None = None) -> int:
        async with self._lock:
            known = self._runs.get(run_id)
            if known is not None and known.kind != kind:
                raise RunKindMismatch(f"run {run_id!r} is a {_KIND_NAMES[known.kind]}: it takes no {_KIND_NAMES[kind]} jobs")
            runs = [] if known is not None else [RunInfo(run_id, kind, period or period_of(now), now)]
            new = self._new_jobs(run_id, tenants, now)
            await asyncio.to_thread(self._write, new, runs)
            return len(new)

    async def start_run(self, run: RunInfo, tenants: Sequence[tuple[str, str, dict[str, Any]]], now: datetime) -> bool:
        async with self._lock:
            if run.run_id in self._runs:
                return False
            await asyncio.to_thread(self._write, self._new_jobs(run.run_id, tenants, now), [run])
            return True

    async def run(self, run_id: str) -> RunInfo | None:
        return self._runs.get(run_id)

    async def runs(self) -> list[RunInfo]:
        return sorted(self._runs.values(), key=lambda run: (run.created_at, run.run_id), reverse=True)

    async def open_jobs(self, run_id: str) -> int:
        return sum(1 for (run, _), job in self._jobs.items() if run == run_id and job.state in _OPEN_STATES)

    async def mark_opened(self, run_id: str, now: datetime) -> None:
        async with self._lock:
            run = self._runs.get(run_id)
            if run is not None and run.opened_at is None:
                await asyncio.to_thread(self._write, [], [replace(run, opened_at=now)])

    async def prune(self, keep_periods: int) -> Pruned:
        async with self._lock:
            open_runs = {run for (run, _), job in self._jobs.items() if job.state in _OPEN_STATES}
            gone = {run.run_id for run in runs_to_prune(list(self._runs.values()), keep_periods, open_runs)}
            if not gone:
                return Pruned()
            dropped = [job for (run, _), job in self._jobs.items() if run in gone]
            return await asyncio.to_thread(self._rewrite, gone, dropped)

    def _rewrite(self, gone: set[str], dropped: list[CollectionJob]) -> Pruned:
        """Write the logs again without the pruned runs (each file replaced whole, atomically), then thin the
        snapshots of tenants no remaining job names down to their last complete one."""
        jobs = {key: job for key, job in self._jobs.items() if key[0] not in gone}
        runs = {run_id: run for run_id, run in self._runs.items() if run_id not in gone}
        for log, lines, path in ((self._log, [_job_line(job) for job in jobs.values()], self._log_path),
                                 (self._runs_log, [_job_line(run) for run in runs.values()], self._runs_path)):
            log.close()
            replace_file(path, b"".join(lines))
        self._log, self._runs_log = AppendLog(self._log_path), AppendLog(self._runs_path)
        self._jobs, self._runs = jobs, runs
        named = {tenant for _, tenant in jobs}
        thinned = sum(self.archive.keep_only_complete(tenant)
                      for tenant in {job.tenant_id for job in dropped} - named)
        return Pruned(tuple(sorted(gone)), len(dropped), thinned)

    @property
    def _log_path(self) -> Path:
        return self.archive.folder.parent / "collection-jobs.jsonl"

    @property
    def _runs_path(self) -> Path:
        return self.archive.folder.parent / "collection-runs.jsonl"

    async def claim(self, worker: str, now: datetime, lease: timedelta) -> CollectionJob | None:
        async with self._lock:
            claimable = [j for j in self._jobs.values()
                         if (j.state == "pending" and j.next_attempt_at <= now)
                         or (j.state == "running" and j.lease_until is not None and j.lease_until <= now)]
            if not claimable:
                return None
            job = min(claimable, key=lambda j: (j.lease_until or j.next_attempt_at, j.tenant_id))
            claimed = replace(job, state="running", worker=worker, lease_until=now + lease, attempts=job.attempts + 1)
            await asyncio.to_thread(self._write, [claimed])
            return claimed

    async def _change(self, job: CollectionJob, holder: str, **changes: Any) -> bool:
        """Apply ``changes`` only while the job still runs under ``holder``'s claim."""
        current = self._jobs.get((job.run_id, job.tenant_id))
        if current is None or current.state != "running" or current.worker != holder:
            return False
        await asyncio.to_thread(self._write, [replace(current, **changes)])
        return True

    async def renew(self, job: CollectionJob, worker: str, now: datetime, lease: timedelta) -> bool:
        async with self._lock:
            return await self._change(job, worker, lease_until=now + lease)

    async def complete(self, job: CollectionJob, worker: str, snapshot: TenantSnapshot, now: datetime) -> bool:
        async with self._lock:
            current = self._jobs.get((job.run_id, job.tenant_id))
            if current is None or current.state != "running" or current.worker != worker:
                return False
            await asyncio.to_thread(self.archive.keep, snapshot)
            return await self._change(job, worker, state="done", finished_at=now, lease_until=None)

    async def retry(self, job: CollectionJob, worker: str, error: str, at: datetime) -> bool:
        async with self._lock:
            return await self._change(job, worker, state="pending", next_attempt_at=at, last_error=error,
                                      worker=None, lease_until=None)

    async def give_up(self, job: CollectionJob, worker: str, error: str, now: datetime) -> bool:
        async with self._lock:
            return await self._change(job, worker, state="failed", finished_at=now, last_error=error, lease_until=None)

    async def jobs(self, run_id: str) -> list[CollectionJob]:
        return sorted((j for (run, _), j in self._jobs.items() if run == run_id), key=lambda j: j.tenant_id)

    async def job(self, run_id: str, tenant_id: str) -> CollectionJob | None:
        return self._jobs.get((run_id, tenant_id.lower()))

    async def complete_dates(self, run_id: str) -> dict[str, datetime]:
        dates = {}
        for job in await self.jobs(run_id):
            snapshot = await self.last_snapshot(job.tenant_id, complete=True)
            if snapshot is not None:
                dates[job.tenant_id] = snapshot.collected_at
        return dates

    async def next_due(self, run_id: str) -> datetime | None:
        times = [(j.lease_until if j.state == "running" else j.next_attempt_at)
                 for (run, _), j in self._jobs.items() if run == run_id and j.state in _OPEN_STATES]
        return min((t for t in times if t is not None), default=None)

    async def last_snapshot(self, tenant_id: str, *, complete: bool = False) -> TenantSnapshot | None:
        return await asyncio.to_thread(self.archive.last, tenant_id, complete=complete)

    async def close(self) -> None:
        self._log.close()
        self._runs_log.close()


__all__ = [
    "Backoff",
    "NotAFullRun",
    "Pruned",
    "RunInfo",
    "RunKind",
    "RunKindMismatch",
    "full_run",
    "period_of",
    "CollectionJob",
    "CollectionJobs",
    "LocalCollectionJobs",
    "PostgresCollectionJobs",
    "StaleSnapshot",
    "TenantCollection",
    "snapshot_for_campaign",
    "tenant_collections",
]
