"""Collecting a tenant through Graph: requests per collection, wall time and retries, against the fake Graph.

Each size is collected twice through msgraph-sdk (only the base URL points at the local fake): once
clean, where no request may be retried, and once throttled, where the fake answers 429 with
``Retry-After: 1`` to a share of the batched requests and to one top-level request, which must all be
retried and nothing else. The request count is compared with the target: at most ⌈P / 20⌉ requests per
per-user call (6 of them: user, registration details, email methods, phone methods, authentication methods,
sign-ins) plus a
constant.

    .venv/bin/python -m bench.graph_collection [--sizes 5000:500,20000:5000]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from dataclasses import dataclass

from checks.graph import RetrySettings, close_client, collect_tenant, graph_client
from checks.graph.client import AccessTokenCredential
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
    args = parser.parse_args()
    asyncio.run(run(args.sizes))


if __name__ == "__main__":
    main()
