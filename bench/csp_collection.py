"""A CSP partner with N customer tenants: collection as jobs on the real PostgreSQL, by one and by two instances,
against the fake Graph in its own process (bench/graph_server.py) with per-tenant throttling; then every
customer's campaign opened, and the partner's roll-up.

Runs, each a full collection of every customer through ``python -m bot.collection_worker`` processes:
1. reference: one instance, throttling off: the requests the collector needs when nothing is refused (the
   minimum the throttled runs are held against);
2. one instance, throttled: every tenant has a token bucket (``--per-second``, ``--burst``; a $batch costs one
   per item) and answers 429 with Retry-After beyond it;
3. two instances, throttled, sharing the run's jobs.
For each: wall time, HTTP requests (and how many answered 429), peak RSS and CPU time of each instance, and how
busy the fake Graph's own process was (its CPU time over the wall time: near 100 % it, not the collector, is the ceiling). Then, in this
process: the time to open all campaigns from run 3 (PostgreSQL store, the partner's policy) and the roll-up's
latency (``status`` for a partner security lead, first page).

    .venv/bin/python -m bench.csp_collection [--customers 1000] [--database-url postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bot.clock import SystemClock
from bot.collection_jobs import PostgresCollectionJobs
from bot.collection_worker import schedule_customers
from bot.partner_campaigns import PartnerCampaigns, load_partner_policy
from bot.store.postgres_schema import upgrade
from bot.store.postgres_store import PostgresStore
from checks.graph.client import AccessTokenCredential, close_client, graph_client
from checks.graph.partner import collect_partner
from dialogs.partner_status import rollup_page
from tests.postgres import drop_schema, new_schema

ROOT = Path(__file__).resolve().parents[1]
POLICY = """
[tenant]
id = "{partner}"
name = "Northwind IT Services"

[reviewers]
fallback = ["agent1@northwindit.com"]
security_leads = ["agent0@northwindit.com"]
"""


@dataclass(frozen=True)
class Run:
    label: str
    seconds: float
    requests: int
    throttled: int
    batched_items: int
    rss_mb: list[float]
    done: int
    failed: int


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.loads(answer.read())


def _wait_with_rusage(process: subprocess.Popen[bytes], out: list[tuple[int, float, float]]) -> None:
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    out.append((process.returncode, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime))


def run_workers(run_id: str, instances: int, env: dict[str, str],
                tenants_at_once: int) -> tuple[float, list[float], list[float]]:
    """Wall time, and each instance's peak RSS (MB) and CPU time (s)."""
    started = time.perf_counter()
    processes = [subprocess.Popen(
        [sys.executable, "-m", "bot.collection_worker", run_id, "--worker", f"instance-{n + 1}",
         "--tenants-at-once", str(tenants_at_once)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        for n in range(instances)]
    results: list[tuple[int, float, float]] = []
    waiters = [threading.Thread(target=_wait_with_rusage, args=(p, results)) for p in processes]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join(timeout=3600)
    seconds = time.perf_counter() - started
    if any(code != 0 for code, _, _ in results):
        raise SystemExit(f"a worker failed: exit codes {[code for code, _, _ in results]}")
    return seconds, [rss for _, rss, _ in results], [cpu for _, _, cpu in results]


async def bench(args: argparse.Namespace) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", "from bench.graph_server import main; main()", "--customers", str(args.customers)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    schema = ""
    try:
        assert server.stdout is not None
        hello = json.loads(server.stdout.readline())
        url, partner_id, staff = hello["url"], hello["partner"], hello["staff"]
        schema, database = new_schema(args.database_url)
        upgrade(database)
        env = {**os.environ, "ACCESSBOT_DATABASE_URL": database, "ACCESSBOT_GRAPH_CREDENTIAL": "access_token",
               "ACCESSBOT_GRAPH_ACCESS_TOKEN": "fake-graph-token", "ACCESSBOT_GRAPH_TENANT_ID": partner_id,
               "ACCESSBOT_GRAPH_BASE_URL": f"{url}/{{tenant}}/v1.0"}
        client = graph_client(AccessTokenCredential("fake-graph-token"), f"{url}/{partner_id}/v1.0")
        try:
            partner = await collect_partner(client, partner_id, now=SystemClock().now())
        finally:
            await close_client(client)
        jobs = PostgresCollectionJobs(PostgresStore(database))
        print(f"{hello['customers']:,} customer tenants ({hello['large']} large: 2,000 users, 150 privileged; the rest "
              f"40 users, 8 privileged); per-tenant throttling {args.per_second:g} requests/s, burst {args.burst:g}, "
              f"Retry-After 1 s; {args.tenants_at_once} tenants at once per instance")
        runs = []
        plan = [("reference, no throttling", False, 1), ("one instance", True, 1), ("two instances", True, 2)]
        for label, throttle, instances in plan[: 1 if args.reference_only else 3]:
            run_id = f"bench-{len(runs) + 1}"
            await schedule_customers(jobs, partner, run_id, SystemClock())
            limit = f"per_second={args.per_second}&burst={args.burst}" if throttle else "per_second=0"
            _get(f"{url}/_limit?{limit}")
            _get(f"{url}/_reset")
            cpu_before = _get(f"{url}/_stats")["cpu_ms"]
            seconds, rss, cpu = run_workers(run_id, instances, env, args.tenants_at_once)
            stats = _get(f"{url}/_stats")
            busy = (stats["cpu_ms"] - cpu_before) / 1000 / seconds  # the fake Graph's share of one core
            states = [job.state for job in await jobs.jobs(run_id)]
            runs.append(Run(label, seconds, stats["requests"], stats["throttled"], stats["batched_items"], rss,
                            states.count("done"), states.count("failed")))
            last = runs[-1]
            print(f"  {label:26} {last.seconds:7.1f} s  {last.requests:7,} requests ({last.throttled:,} answered 429, "
                  f"{last.batched_items:,} batched items)  peak RSS {', '.join(f'{m:.0f} MB' for m in rss)}  "
                  f"{last.done} done, {last.failed} failed; CPU {', '.join(f'{c:.0f} s' for c in cpu)} "
                  f"({sum(cpu) / seconds:.2f} cores); the fake Graph's process busy {busy:.0%} of one core")
        await jobs.close()

        with tempfile.TemporaryDirectory() as folder:
            policy = Path(folder) / "partner.toml"
            policy.write_text(POLICY.format(partner=partner_id))
            store = PostgresStore(database, max_connections=8)
            jobs = PostgresCollectionJobs(store)
            campaigns = PartnerCampaigns(store, jobs, load_partner_policy(policy), SystemClock(),
                                         people=lambda name: staff.get(name.lower()))
            started = time.perf_counter()
            report = await campaigns.open_run(f"bench-{len(runs)}")
            opening = time.perf_counter() - started
            rss_open = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            latencies = []
            for _ in range(5):
                started = time.perf_counter()
                view = rollup_page(campaigns, 1)
                latencies.append(time.perf_counter() - started)
            items = sum(len(s.campaigns()[0].items) for s in campaigns.services.values() if s.campaigns())
            await store.close()

        print(f"  campaigns opened: {len(report.opened):,} ({items:,} items) in {opening:.1f} s, not opened "
              f"{len(report.not_opened)}; peak RSS of this process {rss_open:.0f} MB")
        print(f"  roll-up ({view.pages} pages of {len(view.rows)}): median {statistics.median(latencies) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms")
        if args.reference_only:
            return
        reference, one, two = runs
        minimum = reference.requests
        print("  against the targets:")
        print(f"    full collection, throttled, one instance: {one.seconds:.0f} s (target < 600 s)")
        print(f"    requests: {one.requests / minimum:.3f} x the reference (one instance), "
              f"{two.requests / minimum:.3f} x (two) (target <= 1.2)")
        print(f"    two instances: {one.seconds / two.seconds:.2f} x one (target >= 1.6)")
        print(f"    peak RSS per instance: {max(one.rss_mb + two.rss_mb):.0f} MB (target < 500 MB)")
        print(f"    opening all campaigns: {opening:.1f} s (target < 60 s)")
        print(f"    roll-up: {max(latencies) * 1000:.0f} ms (target < 1,000 ms)")
    finally:
        server.terminate()
        server.wait(timeout=30)
        if schema:
            drop_schema(args.database_url, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--database-url", default=os.environ.get("ACCESSBOT_TEST_POSTGRES_URL")
                        or "postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--per-second", type=float, default=50.0, help="each tenant's request budget per second")
    parser.add_argument("--burst", type=float, default=60.0)
    parser.add_argument("--tenants-at-once", type=int, default=8)
    parser.add_argument("--reference-only", action="store_true",
                        help="collect once (no throttling), then open the campaigns and time the roll-up")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
