"""Pruning a partner's collection runs (bot/collection_jobs.py ``prune``), the leader's hourly step, at scale.

A partner with ``--customers`` customers and ``--periods`` weekly review periods behind it, each with a full run
and six daily change checks (seven runs a period, a job per customer in each), every job done; the last period's
runs name one customer fewer (its GDAP relationship ended). Pruning keeps ``--keep`` periods. Measured on the
real PostgreSQL (a schema of its own, ``ACCESSBOT_BENCH_POSTGRES_URL``) and on the data directory (one instance on
TinyDB), which also pays to read its job log at start and to write it again whole.

    .venv/bin/python -m bench.run_pruning --customers 1000 --periods 12 --keep 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from bot.collection_jobs import CollectionJobs, LocalCollectionJobs, PostgresCollectionJobs, RunInfo
from bot.store.postgres_schema import upgrade
from bot.store.postgres_store import PostgresStore
from tests.postgres import drop_schema, new_schema

START = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
RUNS_A_PERIOD = 7


def runs(periods: int) -> list[RunInfo]:
    found = []
    for week in range(periods):
        start = START + timedelta(weeks=week)
        period = start.strftime("%Y-%m-%dT%H:%M")
        found.append(RunInfo(period, "full", period, start))
        found.extend(RunInfo(f"changes-{start + timedelta(days=day):%Y-%m-%d}", "changes", period,
                             start + timedelta(days=day)) for day in range(1, RUNS_A_PERIOD))
    return found


def tenants(customers: int) -> list[str]:
    return [f"{n:08d}-0000-4000-8000-000000000000" for n in range(customers)]


def job_rows(all_runs: list[RunInfo], customers: list[str]) -> list[tuple[RunInfo, str]]:
    last = all_runs[-1].period
    return [(run, tenant) for run in all_runs for tenant in (customers[1:] if run.period == last else customers)]


def snapshot_text(tenant: str, at: datetime) -> str:
    return json.dumps({"tenantId": tenant, "tenantName": tenant, "collectedAt": at.isoformat(), "complete": True})


async def fill_postgres(url: str, all_runs: list[RunInfo], customers: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO collection_runs (run_id, kind, period, created_at, opened_at) "
                               "VALUES (%s, %s, %s, %s, %s)",
                               [(r.run_id, r.kind, r.period, r.created_at, r.created_at) for r in all_runs])
            with cursor.copy("COPY collection_jobs (run_id, tenant_id, tenant_name, payload, state, attempts, "
                             "next_attempt_at, created_at, finished_at) FROM STDIN") as copy:
                for run, tenant in job_rows(all_runs, customers):
                    copy.write_row((run.run_id, tenant, tenant, json.dumps({"mode": run.kind}), "done", 1,
                                    run.created_at, run.created_at, run.created_at))
            at = all_runs[-1].created_at
            cursor.executemany("INSERT INTO tenant_snapshots (tenant_id, last_doc, last_collected_at, complete_doc, "
                               "complete_collected_at) VALUES (%s, %s, %s, %s, %s)",
                               [(t, snapshot_text(t, at), at, snapshot_text(t, at), at) for t in customers])


def fill_folder(folder: Path, all_runs: list[RunInfo], customers: list[str]) -> None:
    def stamp(moment: datetime) -> str:
        return moment.isoformat()

    with (folder / "collection-runs.jsonl").open("w") as out:
        for run in all_runs:
            out.write(json.dumps({"run_id": run.run_id, "kind": run.kind, "period": run.period,
                                  "created_at": stamp(run.created_at), "opened_at": stamp(run.created_at)}) + "\n")
    with (folder / "collection-jobs.jsonl").open("w") as out:
        for run, tenant in job_rows(all_runs, customers):
            out.write(json.dumps({"run_id": run.run_id, "tenant_id": tenant, "tenant_name": tenant,
                                  "payload": {"mode": run.kind}, "state": "done", "attempts": 1,
                                  "next_attempt_at": stamp(run.created_at), "created_at": stamp(run.created_at),
                                  "finished_at": stamp(run.created_at)}) + "\n")
    snapshots = folder / "snapshots"
    snapshots.mkdir()
    at = all_runs[-1].created_at
    for tenant in customers:
        for name in (f"{tenant}.json", f"{tenant}.complete.json"):
            (snapshots / name).write_text(snapshot_text(tenant, at))


async def timed_prune(jobs: CollectionJobs, keep: int) -> tuple[float, int, int]:
    started = time.perf_counter()
    pruned = await jobs.prune(keep)
    return time.perf_counter() - started, len(pruned.runs), pruned.jobs


async def bench(args: argparse.Namespace) -> None:
    all_runs, customers = runs(args.periods), tenants(args.customers)
    rows = len(job_rows(all_runs, customers))
    print(f"{args.customers} customers, {len(all_runs)} runs in {args.periods} periods, {rows:,} job rows; "
          f"keeping {args.keep} periods")

    url = os.environ.get("ACCESSBOT_BENCH_POSTGRES_URL", "")
    if not url:
        raise SystemExit("set ACCESSBOT_BENCH_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    schema, scoped = new_schema(url)
    try:
        upgrade(scoped)
        await fill_postgres(scoped, all_runs, customers)
        jobs = PostgresCollectionJobs(PostgresStore(scoped))
        try:
            seconds, pruned_runs, pruned_jobs = await timed_prune(jobs, args.keep)
            again, _, _ = await timed_prune(jobs, args.keep)
        finally:
            await jobs.close()
        print(f"PostgreSQL: pruned {pruned_runs} runs, {pruned_jobs:,} jobs in {seconds:.2f} s; "
              f"the next round, nothing to prune: {again * 1000:.0f} ms")
    finally:
        drop_schema(url, schema)

    with tempfile.TemporaryDirectory(prefix="accessbot-bench-pruning-") as folder:
        fill_folder(Path(folder), all_runs, customers)
        started = time.perf_counter()
        local = LocalCollectionJobs(Path(folder))
        opened = time.perf_counter() - started
        try:
            seconds, pruned_runs, pruned_jobs = await timed_prune(local, args.keep)
            again, _, _ = await timed_prune(local, args.keep)
        finally:
            await local.close()
        size = (Path(folder) / "collection-jobs.jsonl").stat().st_size
        print(f"data directory: read {rows:,} job rows at start in {opened:.2f} s; pruned {pruned_runs} runs, "
              f"{pruned_jobs:,} jobs in {seconds:.2f} s (job log now {size / 1e6:.1f} MB); "
              f"the next round: {again * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--periods", type=int, default=12)
    parser.add_argument("--keep", type=int, default=8)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
