"""Start-up with past weekly campaigns in the store: time until the service is ready, and peak memory.

Four weekly campaigns of ~20,000 items each (10,000 extra Global Administrators) are opened a week apart;
every week but the last is signed off, as a security lead does at the end of a review. Then a fresh process
builds the runtime on that data directory — open the store, ``ReviewService.start()`` — which is what stands
between ``accessbot serve`` and its first ``/healthz`` answer, and reports its wall time, peak RSS and how many
campaigns and items it holds in memory. Preparing the data is not counted (it takes a few minutes).

The data directory also holds the keys of ``--sent`` messages (1,000,000 by default) that left the outbox
within the sent horizon — a month of a large deployment's notices — in ``outbox-sent.jsonl``, line for line
what ``TinyDBStore.mark_sent`` appends (``[key, sent_at]``, canonical JSON): start-up reads that file to refuse
their twins. They are written directly, because sending a million messages through a channel is the fan-out
bench's business, not this one's.

    .venv/bin/python -m bench.past_campaigns [--admins 10000] [--weeks 4] [--sent 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.tenants import synthetic_snapshot
from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.ledger import canonical_json

FIRST_WEEK = datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)
SECURITY_LEAD = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"  # Alex Wilber in the demo policy


@dataclass(frozen=True)
class Started:
    seconds: float
    peak_rss_mb: float
    campaigns_held: int
    items_held: int


def prepare(data_dir: str, admins: int, weeks: int) -> int:
    """Open ``weeks`` weekly campaigns, signing off all but the last; returns the items stored."""
    return asyncio.run(_prepare(Path(data_dir), admins, weeks))


async def _prepare(data_dir: Path, admins: int, weeks: int) -> int:
    policy, _ = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    clock = ManualClock(FIRST_WEEK)
    runtime = await build_runtime(data_dir=data_dir, policy=policy, snapshot=synthetic_snapshot(admins), clock=clock,
                                  credentials=BotCredentials())
    stored = 0
    for week in range(weeks):
        state, _ = await runtime.service.open_current_campaign()
        stored += len(state.items)
        if week < weeks - 1:
            outcome = await runtime.service.sign_off(SECURITY_LEAD, "Alex Wilber", confirmed=True)
            assert outcome.ok, outcome.message
            clock.advance(timedelta(days=7))
    await runtime.store.close()
    return stored


def start(data_dir: str, weeks: int) -> Started:
    return asyncio.run(_start(Path(data_dir), weeks))


async def _start(data_dir: Path, weeks: int) -> Started:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    clock = ManualClock(FIRST_WEEK + timedelta(days=7 * (weeks - 1), hours=1))
    started = time.perf_counter()
    runtime = await build_runtime(data_dir=data_dir, policy=policy, snapshot=snapshot, clock=clock,
                                  credentials=BotCredentials())
    seconds = time.perf_counter() - started
    held = runtime.service.campaigns()
    await runtime.store.close()
    return Started(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(held),
                   sum(len(state.items) for state in held))


def add_sent_keys(data_dir: Path, count: int, last_week: datetime) -> None:
    """``count`` sent keys spread over the week before the last campaign, appended as the store appends them."""
    with (data_dir / "outbox-sent.jsonl").open("ab") as sent:
        for n in range(count):
            at = last_week - timedelta(seconds=n * 604_800 / max(count, 1))
            sent.write(canonical_json([f"reminder:bench:{n}", at.isoformat()]) + b"\n")


def run(admins: int, weeks: int, sent: int) -> None:
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
            stored = pool.submit(prepare, tmp, admins, weeks).result()
        add_sent_keys(Path(tmp), sent, FIRST_WEEK + timedelta(days=7 * (weeks - 1)))
        with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
            result = pool.submit(start, tmp, weeks).result()
        with (Path(tmp) / "ledger.jsonl").open("rb") as ledger:
            records = sum(1 for _ in ledger)
    print(f"{weeks} weekly campaigns, {stored:,} items stored ({weeks - 1} signed off, the last open), "
          f"{records:,} ledger records, {sent:,} sent keys within the horizon")
    print(f"  start-up (store opened, service started): {result.seconds:.2f} s (target < 1.5 s to /healthz)")
    print(f"  peak RSS {result.peak_rss_mb:.0f} MB; held in memory: {result.campaigns_held} campaign(s), "
          f"{result.items_held:,} items")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admins", type=int, default=10_000)
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--sent", type=int, default=1_000_000)
    arguments = parser.parse_args()
    run(arguments.admins, arguments.weeks, arguments.sent)


if __name__ == "__main__":
    main()
