"""Collecting a tenant through Graph: requests per collection, wall time and retries, against the fake Graph.

Each size is collected twice through msgraph-sdk (only the base URL points at the local fake): once
clean, where no request may be retried, and once throttled, where the fake answers 429 with
``Retry-After: 1`` to a share of the batched requests and to one top-level request, which must all be
retried and nothing else. The request count is compared with the target: at most ⌈P / 20⌉ requests per
per-user call (6 of them: user, registration details, email methods, phone methods, authentication methods,
sign-ins) plus a
constant.

Then, per tenant, the requests of a steady-state week: a full collection and six daily change checks.

    .venv/bin/python -m bench.graph_collection [--sizes 5000:500,20000:5000] [--week 40:8,2000:150]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from dataclasses import dataclass

from checks.graph import RetrySettings, close_client, collect_tenant, graph_client
from checks.graph.client import AccessTokenCredential
from checks.graph.collector import recollect_tenant
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.tenant_generator import NOW, TenantShape, generate_tenant

PER_USER_CALLS = 6
RETRY = RetrySettings(max_retries=5, backoff_factor=0.05, backoff_max=1.0)


@dataclass(frozen=True)
class Run:
    seconds: float
    requests: int
    batches: int
    batched_items: int
    throttled: int
    complete: bool


async def collect_once(users: int, privileged: int, *, throttle: bool) -> Run:
    tenant = generate_tenant(TenantShape(users=users, privileged_users=privileged, crowded_role_holders=privileged // 5))
    async with FakeGraph(tenant) as fake:
        if throttle:
            fake.throttle(r"/authentication/phoneMethods$", times=max(1, privileged // 10), retry_after="1", where="batch")
            fake.throttle(r"^/roleManagement/directory/roleAssignments$", times=1, retry_after="1", where="top")
        client = graph_client(AccessTokenCredential("fake-graph-token"), fake.base_url(), retry=RETRY)
        started = time.perf_counter()
        snapshot = await collect_tenant(client, tenant.tenant_id, now=NOW, retry=RETRY)
        seconds = time.perf_counter() - started
        await close_client(client)
        return Run(
            seconds=seconds,
            requests=fake.total_requests(),
            batches=fake.requests["POST /$batch"],
            batched_items=sum(fake.batched.values()),
            throttled=fake.sent[("top", 429)] + fake.sent[("batch", 429)],
            complete=snapshot.complete,
        )


async def steady_state_week(users: int, privileged: int) -> None:
    """Requests one tenant costs in a steady-state week: the weekly full collection a review opens from, and a
    change check on each of the six other days (delta queries, checks/graph/collector.py ``recollect_tenant``),
    with a few changes on one of those days. The first change check ever also pays for starting the tracking
    (every user and group once); that one-off cost is printed apart."""
    tenant = generate_tenant(TenantShape(users=users, privileged_users=privileged, crowded_role_holders=privileged // 5))
    async with FakeGraph(tenant) as fake:
        client = graph_client(AccessTokenCredential("fake-graph-token"), fake.base_url(), retry=RETRY)
        try:
            def spent() -> tuple[int, int]:
                counts = (fake.total_requests(), sum(fake.batched.values()))
                fake.reset_counts()
                return counts

            full = await collect_tenant(client, tenant.tenant_id, now=NOW, retry=RETRY)
            full_cost = spent()
            tracked = await recollect_tenant(client, full, now=NOW, retry=RETRY)
            start_cost = spent()
            days = []
            snapshot = tracked
            for day in range(6):
                if day == 2:  # an admin disabled, a new Global Administrator, someone joins the role group
                    tenant.change_user(tenant.privileged_user_ids[-1], accountEnabled=False)
                    newcomer = next(u for u in tenant.users if u not in tenant.privileged_user_ids)
                    tenant.grant_role(newcomer, tenant.role_definitions[0]["id"])
                    joiner = next(u for u in tenant.users if u not in tenant.privileged_user_ids)
                    tenant.add_group_member(tenant.role_group_ids[0], joiner)
                snapshot = await recollect_tenant(client, snapshot, now=NOW, retry=RETRY)
                days.append(spent())
            weekly = await collect_tenant(client, tenant.tenant_id, now=NOW, retry=RETRY, previous=snapshot)
            assert weekly.delta_links == snapshot.delta_links and snapshot.complete
        finally:
            await close_client(client)
    quiet = [d for n, d in enumerate(days) if n != 2]
    week = full_cost[0] + sum(d[0] for d in days)
    print(f"{users:,} users, {privileged:,} privileged users: a steady-state week")
    print(f"  full collection (weekly)   {full_cost[0]:5} requests ({full_cost[1]:,} batched items)")
    print(f"  change check, quiet day    {quiet[0][0]:5} requests ({quiet[0][1]:,} batched items)")
    print(f"  change check, 3 changes    {days[2][0]:5} requests ({days[2][1]:,} batched items)")
    print(f"  week: 1 full + 6 change checks = {week} requests "
          f"({full_cost[1] + sum(d[1] for d in days):,} batched items); daily full collections instead: "
          f"{7 * full_cost[0]} requests ({7 * full_cost[1]:,} batched items)")
    print(f"  once, to start tracking: {start_cost[0]} requests ({start_cost[1]:,} batched items)")


async def run(sizes: list[tuple[int, int]]) -> None:
    for users, privileged in sizes:
        bound = PER_USER_CALLS * math.ceil(privileged / 20)
        clean = await collect_once(users, privileged, throttle=False)
        throttled = await collect_once(users, privileged, throttle=True)
        print(f"{users:,} users, {privileged:,} privileged users")
        for label, result in (("clean", clean), ("throttled", throttled)):
            print(
                f"  {label:9} {result.seconds:6.2f} s  {result.requests:5} requests ({result.batches} $batch, "
                f"{result.requests - result.batches} other)  {result.batched_items:,} batched items  "
                f"{result.throttled} answered 429  complete={result.complete}"
            )
        print(
            f"  retries: clean run none (nothing throttled); "
            f"throttled run +{throttled.requests - clean.requests} requests, "
            f"+{throttled.batched_items - clean.batched_items} batch items re-sent for {throttled.throttled} 429s"
        )
        print(
            f"  target: {bound} batches for the per-user calls ({PER_USER_CALLS} x ceil({privileged}/20)) + a constant; measured "
            f"{clean.batches} batches ({clean.batched_items / max(clean.batches, 1):.1f} items each, incl. the "
            f"per-app, per-partner and lookup items) + {clean.requests - clean.batches} list pages"
        )


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        users, privileged = part.split(":")
        sizes.append((int(users), int(privileged)))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("5000:500,20000:5000"),
                        help="users:privileged pairs, comma separated")
    parser.add_argument("--week", type=parse_sizes, default=parse_sizes("40:8,2000:150"),
                        help="users:privileged pairs whose steady-state week of requests to count")
    args = parser.parse_args()
    asyncio.run(run(args.sizes))
    for users, privileged in args.week:
        asyncio.run(steady_state_week(users, privileged))


if __name__ == "__main__":
    main()
