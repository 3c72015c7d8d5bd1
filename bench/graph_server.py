"""The fake Graph in a process of its own, serving a CSP partner and N generated customer tenants (most small,
one in a hundred large), so a bench measures the collector's processes and not the fake's CPU inside them.

It prints one JSON line (its URL, the partner's tenant id, the partner's staff by sign-in name) and serves until
SIGTERM. ``GET /_stats`` and ``/_reset`` read and clear its request counts; ``/_limit?per_second=R&burst=B``
sets the per-tenant throttling (``per_second=0`` switches it off).

    .venv/bin/python -c 'from bench.graph_server import main; main()' --customers 1000

(Not a benchmark of its own, so it has no ``__main__`` block: bench/csp_collection.py starts it.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from tests.fakes.fake_graph import FakeGraph
from tests.fakes.tenant_generator import TenantShape, generate_csp

SMALL = TenantShape(users=40, privileged_users=8, crowded_role_holders=3)
LARGE = TenantShape(users=2000, privileged_users=150, crowded_role_holders=60)


def shape_of(n: int) -> TenantShape:
    """Most customers are small businesses; one in a hundred is a large one."""
    return LARGE if n % 100 == 99 else SMALL


async def serve(customers: int, per_second: float, burst: float) -> None:
    partner, clients = generate_csp(customers, SMALL, shape_of=shape_of)
    fake = FakeGraph(partner, *clients)
    if per_second > 0:
        fake.limit_per_tenant(per_second, burst)
    await fake.start()
    staff = {user["userPrincipalName"].lower(): uid for uid, user in partner.users.items()}
    print(json.dumps({"url": fake.url, "partner": partner.tenant_id, "staff": staff, "customers": len(clients),
                      "large": sum(1 for n in range(customers) if shape_of(n) is LARGE)}), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--per-second", type=float, default=0.0, help="per-tenant request budget (0: none)")
    parser.add_argument("--burst", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(serve(args.customers, args.per_second, args.burst))
