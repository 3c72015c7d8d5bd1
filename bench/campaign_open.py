"""Opening a campaign of ~20,000 and ~100,000 items: wall time and peak memory of each, and their ratio.

The synthetic tenant has N Global Administrators, each giving a role item and a recovery-contact item,
so N=10,000 gives ~20,000 items — the size of a CSP partner's 200 customers x 100 items — and N=50,000
gives ~100,000. Opening covers the whole path: subjects, every check of the catalogue, routing, the
single write of the items file and the ledger record. The snapshot is built first and not counted (a
collection produces it). Each size runs in its own process, so each peak RSS is its own.

    .venv/bin/python -m bench.campaign_open [--admins 10000 50000]
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
from datetime import datetime, timezone
from pathlib import Path

from bench.tenants import synthetic_snapshot
from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class Opened:
    items: int
    admins: int
    open_seconds: float
    restart_seconds: float
    items_mb: float
    rss_before_mb: float
    open_peak_rss_mb: float  # the process's peak when the campaign is open: what the target is about
    peak_rss_mb: float  # the peak after the restart too


def open_once(admins: int) -> Opened:
    return asyncio.run(_open_once(admins))


async def _open_once(admins: int) -> Opened:
    policy, _ = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    snapshot = synthetic_snapshot(admins)
    before = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        runtime = await build_runtime(data_dir=Path(tmp), policy=policy, snapshot=snapshot, clock=ManualClock(NOW),
                                      credentials=BotCredentials())
        started = time.perf_counter()
        state, _ = await runtime.service.open_current_campaign()
        opened = time.perf_counter() - started
        open_peak = rss_mb()
        items_file = max(Path(tmp).glob("items-*.json"), key=lambda p: p.stat().st_size)
        size_mb = items_file.stat().st_size / 1e6
        started = time.perf_counter()
        await runtime.store.close()
        restarted = await build_runtime(data_dir=Path(tmp), policy=policy, snapshot=snapshot, clock=ManualClock(NOW),
                                        credentials=BotCredentials())
        reloaded = time.perf_counter() - started
        await restarted.store.close()
    return Opened(state.campaign.item_count, admins, opened, reloaded, size_mb, before, open_peak, rss_mb())


def run(sizes: list[int]) -> None:
    results = []
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
        for admins in sizes:
            results.append(pool.submit(open_once, admins).result())
    for r in results:
        print(f"campaign of {r.items:,} items ({r.admins:,} extra admins)")
        print(f"  open: {r.open_seconds:.2f} s; items file {r.items_mb:.1f} MB written once")
        print(f"  peak RSS when open {r.open_peak_rss_mb:.0f} MB (target < 600 MB); "
              f"{r.rss_before_mb:.0f} MB before opening (snapshot built)")
        print(f"  restart (rebuild from store + ledger): {r.restart_seconds:.2f} s; peak RSS after it {r.peak_rss_mb:.0f} MB")
    if len(results) > 1:
        small, large = results[0], results[-1]
        print(f"ratio {large.items:,} / {small.items:,} items: open time {large.open_seconds / small.open_seconds:.2f}x "
              f"(target <= 6x for 100k / 20k), peak RSS when open {large.open_peak_rss_mb / small.open_peak_rss_mb:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admins", type=int, nargs="+", default=[10_000, 50_000])
    run(parser.parse_args().admins)


if __name__ == "__main__":
    main()
