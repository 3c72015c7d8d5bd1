"""Fan-out benchmark: review requests to N reviewers (10,000 by default) through the app's own notifier and
Teams channel (botbuilder, msrest, HTTP) into a fake Bot Connector that enforces Teams' real limits (7/1 s,
8/2 s, 60/30 s, 1,800/h per conversation; 50/s per app and tenant) and refuses a share of requests with 429
and a Retry-After.

Prints, from one run: messages sent, lost (queued, never accepted) and duplicated (accepted more than once),
the elapsed time, the rate achieved against the rate Teams' limits allow (and their ratio), the busiest
second the connector saw, and its refusals. With the real limits 10,000 reviewers take about 200 s.

    .venv/bin/python -m bench.fanout [--reviewers 10000] [--fault-rate 0.02] [--concurrency 16] [--scale 1.0]

With ``--postgres-url`` (a server where it may create and drop a schema of its own), the same fan-out also
runs on PostgreSQL in the same run: drained by one notifier process, then by two at once, each an
instance's runtime claiming from the shared outbox and pacing itself by the budget they share in the
database. Their rate is measured at the connector, from its first accepted message to its last (a
process's start-up is not counted).

    .venv/bin/python -m bench.fanout --reviewers 2000 --scale 0.1 --postgres-url postgresql://postgres@127.0.0.1:5432/test

``--scale 0.1`` shortens every window (and the 429s' Retry-After) to a tenth, for a quick run: 1,000
reviewers in about 2 s at 500 messages/s allowed. The tests assert what must hold at any pace (never over
a window, nothing lost or repeated) on virtual time; how close the real pace comes to the allowed one is
measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import SystemClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.notifier import Notifier
from bot.ratelimit import TEAMS_PER_CONVERSATION, TEAMS_PER_TENANT, RateLimiter, Window
from bot.store.base import OutboxMessage
from bot.store.base import Store
from bot.store.postgres_schema import upgrade
from bot.store.postgres_store import PostgresStore
from tests.integration.fake_connector import FakeConnector
from tests.postgres import drop_schema, new_schema

REPO = Path(__file__).resolve().parents[1]


def reviewer(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


async def queue_fan_out(store: Store, url: str, people: list[str]) -> int:
    """A conversation reference and one review request per person, as installs and a campaign opening
    would leave them (the references saved at once, as a burst of installs would arrive)."""
    await asyncio.gather(
        *(
            store.save_conversation(
                person,
                {
                    "bot": {"id": "28:accessbot", "name": "accessbot"},
                    "user": {"id": f"29:{person}", "aadObjectId": person},
                    "conversation": {"id": f"a:personal-{person}", "conversationType": "personal"},
                    "channelId": "msteams",
                    "serviceUrl": url,
                },
            )
            for person in people
        )
    )
    now = SystemClock().now()
    return await store.enqueue(
        [
            OutboxMessage(
                key=f"request:bench:{person}>{person}",
                recipient=person,
                kind="review_request",
                payload={"text": f"The Contoso access review is open: 3 items need your answer ({n}).", "item_ids": []},
                created_at=now + timedelta(microseconds=n),
                next_attempt_at=now,
            )
            for n, person in enumerate(people)
        ]
    )


def scaled(windows: tuple[Window, ...], scale: float) -> tuple[Window, ...]:
    return tuple(Window(window.limit, window.seconds * scale) for window in windows)


async def run(reviewers: int, fault_rate: float, retry_after: float, concurrency: int, scale: float) -> None:
    per_conversation, per_tenant = scaled(TEAMS_PER_CONVERSATION, scale), scaled(TEAMS_PER_TENANT, scale)
    connector = FakeConnector(
        per_conversation=per_conversation, per_tenant=per_tenant,
        fault_rate=fault_rate, fault_statuses=(429,), fault_retry_after=retry_after * scale,
    )
    await connector.start()
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    with tempfile.TemporaryDirectory() as data_dir:
        runtime = await build_runtime(
            data_dir=Path(data_dir), policy=policy, snapshot=snapshot, clock=SystemClock(), credentials=BotCredentials()
        )
        people = [reviewer(n) for n in range(reviewers)]
        queued = await queue_fan_out(runtime.store, connector.url, people)
        app = runtime.notifier  # the default retry policy, as the server runs it; Teams' limits, scaled
        notifier = Notifier(
            runtime.store, runtime.teams, runtime.service.clock, limiter=RateLimiter(per_conversation, per_tenant),
            retry=app.retry, on_undeliverable=app.on_undeliverable, concurrency=concurrency,
        )

        started = time.perf_counter()
        result = await notifier.drain()
        elapsed = time.perf_counter() - started

        deliveries = connector.deliveries()
        accepted = sum(deliveries.values())
        lost = queued - len(deliveries)
        duplicated = accepted - len(deliveries)
        achieved = accepted / elapsed
        allowed = notifier.limiter.allowed_rate()
        await runtime.store.close()
    await connector.stop()

    print(
        f"fan-out to {reviewers} reviewers through a fake Bot Connector with Teams' limits"
        + (f" (windows scaled by {scale:g})" if scale != 1 else "")
        + f", {fault_rate:.1%} of requests refused with 429 (Retry-After {retry_after * scale:g} s), concurrency {concurrency}"
    )
    print(f"  messages queued     {queued}")
    print(f"  messages sent       {accepted}  (drain: {result.sent} sent, {result.deferred} deferred, "
          f"{result.undeliverable} undeliverable)")
    print(f"  lost                {lost}")
    print(f"  duplicated          {duplicated}")
    print(f"  elapsed             {elapsed:.1f} s")
    print(f"  achieved rate       {achieved:.2f} msg/s")
    print(f"  allowed rate        {allowed:.2f} msg/s  (50 per {per_tenant[0].seconds:g} s per app and tenant; "
          "one message per conversation)")
    print(f"  achieved / allowed  {achieved / allowed:.3f}")
    print(f"  busiest {per_tenant[0].seconds:g} s       {connector.busiest(per_tenant[0].seconds)} accepted "
          f"(limit {per_tenant[0].limit})")
    injected = sum(connector.injected.values())
    print(f"  refusals            {injected} injected 429, {connector.over_limit} over the limit")


async def run_postgres(
    url: str, reviewers: int, processes: int, fault_rate: float, retry_after: float, scale: float
) -> None:
    """The fan-out on PostgreSQL, drained by ``processes`` notifier processes sharing the outbox and the budget."""
    per_conversation, per_tenant = scaled(TEAMS_PER_CONVERSATION, scale), scaled(TEAMS_PER_TENANT, scale)
    connector = FakeConnector(per_conversation=per_conversation, per_tenant=per_tenant, fault_rate=fault_rate,
                              fault_statuses=(429,), fault_retry_after=retry_after * scale)
    await connector.start()
    schema, scoped = new_schema(url)
    try:
        upgrade(scoped)
        store = PostgresStore(scoped)
        queued = await queue_fan_out(store, connector.url, [reviewer(n) for n in range(reviewers)])
        await store.close()
        workers = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.outbox_worker", scoped, f"bench-{n}", "300", str(scale),
            cwd=REPO, stdout=asyncio.subprocess.DEVNULL) for n in range(processes)]
        for worker in workers:
            await worker.wait()
        deliveries = connector.deliveries()
        accepted = sum(deliveries.values())
        times = sorted(r.at for r in connector.received)
        elapsed = times[-1] - times[0] if len(times) > 1 else float("nan")
        allowed = per_tenant[0].limit / per_tenant[0].seconds
        print(f"PostgreSQL, {processes} notifier process(es), {reviewers} reviewers: sent {accepted}, "
              f"lost {queued - len(deliveries)}, duplicated {accepted - len(deliveries)}, "
              f"{elapsed:.1f} s first to last, {accepted / elapsed:.1f} msg/s = {accepted / elapsed / allowed:.3f} of "
              f"the allowed {allowed:.0f}/s; busiest {per_tenant[0].seconds:g} s {connector.busiest(per_tenant[0].seconds)} "
              f"(limit {per_tenant[0].limit}); {connector.over_limit} refused over the limit, "
              f"{sum(connector.injected.values())} injected 429")
    finally:
        drop_schema(url, schema)
        await connector.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviewers", type=int, default=10_000)
    parser.add_argument("--fault-rate", type=float, default=0.02, help="share of requests refused with 429")
    parser.add_argument("--retry-after", type=float, default=1.0, help="the Retry-After of those 429s, in seconds")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--scale", type=float, default=1.0, help="every window's length times this (0.1: ten times quicker)")
    parser.add_argument("--postgres-url", default="",
                        help="also run on PostgreSQL (one notifier process, then two) in a schema created here")
    args = parser.parse_args()
    asyncio.run(run(args.reviewers, args.fault_rate, args.retry_after, args.concurrency, args.scale))
    if args.postgres_url:
        for processes in (1, 2):
            asyncio.run(run_postgres(args.postgres_url, args.reviewers, processes, args.fault_rate, args.retry_after,
                                     args.scale))


if __name__ == "__main__":
    main()
