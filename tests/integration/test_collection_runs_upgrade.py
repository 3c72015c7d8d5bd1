"""Runs scheduled before runs were recorded (migration 0007, ``collection-runs.jsonl``) are read back from their
jobs, with the kind their jobs were scheduled as: an upgraded deployment's change check still opens no campaign."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from bot.collection_jobs import LocalCollectionJobs, NotAFullRun, PostgresCollectionJobs, full_run
from bot.store.postgres_schema import upgrade
from bot.store.postgres_store import PostgresStore
from tests.contract.samples import MONDAY

JOBS = [("week-1", "aaaa-1", {"mode": "full"}, MONDAY), ("week-1", "bbbb-2", {"mode": "full"}, MONDAY),
        ("changes-1", "aaaa-1", {"mode": "changes"}, MONDAY + timedelta(days=2))]


async def test_runs_from_before_0006_are_read_back_from_their_jobs_on_postgresql(empty_postgres_url: str) -> None:
    upgrade(empty_postgres_url, "0005")
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
        for run_id, tenant_id, payload, at in JOBS:
            conn.execute("INSERT INTO collection_jobs (run_id, tenant_id, tenant_name, payload, next_attempt_at, "
                         "created_at) VALUES (%s, %s, %s, %s, %s, %s)", (run_id, tenant_id, tenant_id, json.dumps(payload), at, at))
    upgrade(empty_postgres_url)

    jobs = PostgresCollectionJobs(PostgresStore(empty_postgres_url))
    try:
        await _assert_read_back(jobs)
    finally:
        await jobs.close()


async def test_runs_from_before_collection_runs_jsonl_are_read_back_from_their_jobs(tmp_path: Path) -> None:
    (tmp_path / "collection-jobs.jsonl").write_text("".join(
        json.dumps({"run_id": run_id, "tenant_id": tenant_id, "tenant_name": tenant_id, "payload": payload,
                    "next_attempt_at": at.isoformat(), "created_at": at.isoformat()}) + "\n"
        for run_id, tenant_id, payload, at in JOBS))

    jobs = LocalCollectionJobs(tmp_path)
    try:
        await _assert_read_back(jobs)
    finally:
        await jobs.close()


async def _assert_read_back(jobs: PostgresCollectionJobs | LocalCollectionJobs) -> None:
    full = await full_run(jobs, "week-1")
    assert (full.kind, full.period, full.created_at) == ("full", MONDAY.strftime("%Y-%m-%dT%H:%M"), MONDAY)
    with pytest.raises(NotAFullRun, match="change check"):
        await full_run(jobs, "changes-1")
    assert [run.run_id for run in await jobs.runs()] == ["changes-1", "week-1"]
