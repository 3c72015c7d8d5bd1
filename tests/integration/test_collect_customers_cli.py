"""`accessbot collect --all-customers` as a collection run in the store: the operator's command starts a run (or
joins one), works it with the same workers as `serve`, and exits 0 when every customer is complete, 3 naming the
customers that failed, against the fake Graph serving the partner and its customers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.collection_jobs import LocalCollectionJobs, PostgresCollectionJobs
from bot.store.postgres_store import PostgresStore
from bot.store.tinydb_store import TinyDBStore
from tests.fakes.tenant_generator import TenantShape, generate_csp
from tests.integration.test_live_collection_cli import ThreadedGraph

runner = CliRunner()
SHAPE = TenantShape(users=30, privileged_users=10, crowded_role_holders=5)


def test_collect_all_customers_collects_every_customer_as_a_full_run_and_exits_0(tmp_path: Path) -> None:
    partner, customers = generate_csp(3, SHAPE)
    graph = ThreadedGraph(partner, *customers)
    try:
        result = runner.invoke(app, ["collect", "--tenant", partner.tenant_id, "--all-customers", "--data-dir",
                                     str(tmp_path / "data"), "--out", str(tmp_path / "out")],
                               env=graph.env(), catch_exceptions=False)
    finally:
        graph.stop()

    assert result.exit_code == 0, result.output
    assert all(f"{c.name} ({c.tenant_id}): complete" in result.stdout for c in customers)
    assert "3 tenant(s) in run collect-" in result.stdout
    jobs = LocalCollectionJobs(tmp_path / "data")
    try:
        [run] = asyncio.run(jobs.runs())
        ended = asyncio.run(jobs.jobs(run.run_id))
    finally:
        asyncio.run(jobs.close())
    assert run.kind == "full" and run.run_id in result.stdout
    assert sorted(j.tenant_id for j in ended) == sorted(c.tenant_id for c in customers)
    assert all(j.state == "done" for j in ended)
    for customer in customers:  # the snapshots where `collect` always put them, and one file each in --out
        assert (tmp_path / "data" / "snapshots" / f"{customer.tenant_id}.complete.json").exists()
        written = json.loads((tmp_path / "out" / f"{customer.tenant_id}.json").read_text())
        assert written["tenantId"] == customer.tenant_id and written["roleAssignments"]


def test_collect_all_customers_exits_3_naming_the_customer_whose_collection_failed(tmp_path: Path) -> None:
    partner, customers = generate_csp(3, SHAPE)
    broken = customers[1]
    graph = ThreadedGraph(partner, *customers)
    graph.fake.fail(r".", 500, tenant=broken.tenant_id)  # 500: not retried within an attempt
    try:
        result = runner.invoke(app, ["collect", "--tenant", partner.tenant_id, "--all-customers", "--attempts", "1",
                                     "--data-dir", str(tmp_path)], env=graph.env(), catch_exceptions=False)
    finally:
        graph.stop()

    assert result.exit_code == 3, result.output
    assert f"{broken.name} ({broken.tenant_id}): FAILED" in result.stdout
    assert f"could not read {broken.name} ({broken.tenant_id}): collection FAILED after 1 attempt(s)" in result.stderr
    assert "collection INCOMPLETE" in result.stderr
    assert all(f"{c.name} ({c.tenant_id}): complete" in result.stdout for c in customers if c is not broken)


def test_collect_all_customers_joins_a_named_run_on_postgresql_and_the_snapshots_are_in_the_database(
    tmp_path: Path, postgres_url: str,
) -> None:
    partner, customers = generate_csp(2, SHAPE)
    graph = ThreadedGraph(partner, *customers)
    env = {**graph.env(), "ACCESSBOT_DATABASE_URL": postgres_url}
    command = ["collect", "--tenant", partner.tenant_id, "--all-customers", "--run", "2026-11-23T09:00",
               "--data-dir", str(tmp_path)]
    try:
        first = runner.invoke(app, command, env=env, catch_exceptions=False)
        joined = runner.invoke(app, command, env=env, catch_exceptions=False)  # the same run: nothing collected again
        requests = len(graph.fake.requests)
    finally:
        graph.stop()

    async def stored() -> tuple[list, list]:  # type: ignore[type-arg]
        jobs = PostgresCollectionJobs(PostgresStore(postgres_url))
        try:
            return await jobs.jobs("2026-11-23T09:00"), [await jobs.last_snapshot(c.tenant_id) for c in customers]
        finally:
            await jobs.close()

    ended, snapshots = asyncio.run(stored())
    assert first.exit_code == 0 and joined.exit_code == 0, first.output + joined.output
    assert "snapshots in the database" in first.stdout
    assert [j.attempts for j in ended] == [1, 1]  # each customer collected once, by the first command
    assert all(s is not None and s.complete for s in snapshots)
    assert "2 tenant(s) in run 2026-11-23T09:00" in joined.stdout
    assert requests == len(graph.fake.requests)
    assert not (tmp_path / "snapshots").exists()


def test_collect_all_customers_is_refused_while_a_server_writes_the_data_directory(tmp_path: Path) -> None:
    partner, customers = generate_csp(1, SHAPE)
    graph = ThreadedGraph(partner, *customers)
    server = TinyDBStore(tmp_path)  # what `accessbot serve` holds: the data directory's writer lock
    try:
        result = runner.invoke(app, ["collect", "--tenant", partner.tenant_id, "--all-customers", "--data-dir",
                                     str(tmp_path)], env=graph.env(), catch_exceptions=False)
    finally:
        asyncio.run(server.close())
        graph.stop()

    assert result.exit_code == 4, result.output
    assert "in use by another accessbot process" in result.stderr
    assert not graph.fake.requests and not (tmp_path / "collection-jobs.jsonl").exists()
