"""The leader's round over a CSP partner's customer campaigns, the follow poll, and a restart, at 1,000 customers.

Every customer gets the demo tenant's campaign under its own tenant id and name (the demo policy and snapshot,
``customer_policy``-style: the tenant replaced), on one store, each in its own ``ReviewService`` as a partner's
deployment holds them, with one ``LedgerFollower`` for all. Timed, in this process:

- opening the 1,000 campaigns (16 at once, as ``PartnerCampaigns.open_run`` does): set-up, printed for scale;
- the customers' clocks (``tick_customers``, what ``Scheduler.customer_round`` runs) with nothing due (the common round), five times;
- the round at which every customer's first reminder falls due (1,000 reminder records and their messages);
- a follow poll with nothing new (one read for every service), against what 1,001 services each reading
  would cost (the same empty read, 1,001 times);
- a restart: the ledger read once (``LedgerHistory``) and every service rebuilt from its share of it.

    .venv/bin/python -m bench.partner_rounds [--customers 1000] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import resource
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Awaitable, Callable

from bot.app import load_inputs
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.ledger_follower import LedgerFollower
from bot.ledger_history import LedgerHistory
from bot.policy import Policy
from bot.scheduler import tick_customers
from bot.service import FOLLOW_PAGE, ReviewService
from bot.store.factory import BackendStore, open_store
from bot.store.postgres_schema import upgrade
from checks.snapshot import TenantSnapshot
from tests.postgres import drop_schema, new_schema

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
AT_ONCE = 16


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def customers_of(policy: Policy, count: int) -> list[Policy]:
    made = uuid.UUID(int=0x5EED)
    return [dataclasses.replace(policy, tenant_id=str(uuid.uuid5(made, str(n))), tenant_name=f"Customer {n:04}")
            for n in range(count)]


async def timed(step: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await step()
    return time.perf_counter() - started


async def services_on(store: BackendStore, own_policy: Policy, customers: list[Policy], snapshot: TenantSnapshot,
                      clock: ManualClock, history: LedgerHistory) -> tuple[ReviewService, list[ReviewService], LedgerFollower]:
    """The partner's own service and every customer's, rebuilt from ``history``, one follower for all."""
    follower = LedgerFollower(store)
    own = ReviewService(store, own_policy, snapshot, clock)
    await own.start(history)
    follower.add(own)
    slots = asyncio.Semaphore(AT_ONCE)

    async def one(policy: Policy) -> ReviewService:
        async with slots:
            service = ReviewService(store, policy, snapshot, clock)
            await service.start(history)
            follower.add(service)
            return service

    return own, list(await asyncio.gather(*(one(p) for p in customers))), follower


async def bench(args: argparse.Namespace) -> None:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    clock = ManualClock(NOW)
    customers = customers_of(policy, args.customers)
    schema, database = ("", "")
    if args.postgres:
        schema, database = new_schema(args.database_url)
        upgrade(database)
    try:
        with tempfile.TemporaryDirectory() as folder:
            store = await open_store(database, Path(folder), clock=clock)
            own, services, follower = await services_on(store, policy, customers, snapshot, clock, LedgerHistory())
            slots = asyncio.Semaphore(AT_ONCE)

            async def open_one(service: ReviewService) -> None:
                async with slots:
                    await service.open_current_campaign()

            opening = await timed(lambda: asyncio.gather(*(open_one(s) for s in services)))
            items = sum(len(s.campaigns()[0].items) for s in services)
            print(f"{len(services):,} customer campaigns ({items:,} items) on {'PostgreSQL' if database else 'TinyDB'}, "
                  f"opened in {opening:.1f} s ({AT_ONCE} at once); peak RSS {rss_mb():.0f} MB")

            def round() -> Awaitable[None]:  # what Scheduler.customer_round runs each round
                return tick_customers(services)

            quiet = [await timed(round) for _ in range(5)]
            print(f"  round, nothing due:            median {statistics.median(quiet) * 1000:6.0f} ms, "
                  f"max {max(quiet) * 1000:6.0f} ms")
            clock.advance(timedelta(days=1, minutes=1))
            before = len(await store.ledger_records())
            reminding = await timed(round)
            reminded = len(await store.ledger_records()) - before
            print(f"  round, every first reminder due: {reminding:6.1f} s ({reminded:,} reminder records and their "
                  f"messages)")
            after = [await timed(round) for _ in range(5)]
            print(f"  round, nothing due (after):    median {statistics.median(after) * 1000:6.0f} ms")

            pages = follower.pages_read
            polls = [await timed(follower.catch_up) for _ in range(5)]
            last = own.followed
            each = await timed(lambda: asyncio.gather(*(store.ledger_records_after(last, FOLLOW_PAGE)
                                                        for _ in range(len(services) + 1))))
            print(f"  follow poll, nothing new:      median {statistics.median(polls) * 1000:6.1f} ms "
                  f"({(follower.pages_read - pages) // len(polls)} read per poll); "
                  f"{len(services) + 1:,} services each reading: {each * 1000:.0f} ms")
            await store.close()

            store = await open_store(database, Path(folder), clock=clock)
            started = time.perf_counter()
            history = await LedgerHistory.read(store)
            reading = time.perf_counter() - started
            _, again, _ = await services_on(store, policy, customers, snapshot, clock, history)
            restart = time.perf_counter() - started
            rebuilt = sum(len(s.campaigns()) for s in again)
            print(f"  restart: ledger read once ({sum(len(r) for r in history.records.values()):,} records) in "
                  f"{reading:.1f} s, {rebuilt:,} customer campaigns rebuilt in {restart:.1f} s in all; "
                  f"peak RSS {rss_mb():.0f} MB")
            await store.close()
    finally:
        if schema:
            drop_schema(args.database_url, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true", help="on PostgreSQL (--database-url) instead of TinyDB")
    parser.add_argument("--database-url", default=os.environ.get("ACCESSBOT_BENCH_POSTGRES_URL")
                        or "postgresql://postgres@127.0.0.1:5432/test")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
