"""Opening a campaign of ~20,000 and ~100,000 items: wall time and peak memory of each, and their ratio.

The synthetic tenant has N Global Administrators, each giving a role item and a recovery-contact item,
so N=10,000 gives ~20,000 items — the size of a CSP partner's 200 customers x 100 items — and N=50,000
gives ~100,000. Opening covers the whole path: subjects, every check of the catalogue, routing, the
single write of the items file and the ledger record. The snapshot is built first and not counted (a
collection produces it). Each size opens in its own process and restarts in another, so each peak RSS is its own.

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
    items_mb: float
    rss_before_mb: float
    open_peak_rss_mb: float  # the process's peak when the campaign is open: what the target is about


@dataclass(frozen=True)
class Restarted:
    restart_seconds: float
    rss_before_mb: float
    peak_rss_mb: float


def open_once(admins: int, data_dir: str) -> Opened:
    return asyncio.run(_open_once(admins, Path(data_dir)))


async def _open_once(admins: int, data_dir: Path) -> Opened:
    policy, _ = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    snapshot = synthetic_snapshot(admins)
    before = rss_mb()
    runtime = await build_runtime(data_dir=data_dir, policy=policy, snapshot=snapshot, clock=ManualClock(NOW),
                                  credentials=BotCredentials())
    started = time.perf_counter()
    state, _ = await runtime.service.open_current_campaign()
    opened = time.perf_counter() - started
    open_peak = rss_mb()
    items_file = max(data_dir.glob("items-*.json"), key=lambda p: p.stat().st_size)
    await runtime.store.close()
    return Opened(state.campaign.item_count, admins, opened, items_file.stat().st_size / 1e6, before, open_peak)


def restart_once(admins: int, data_dir: str) -> Restarted:
    return asyncio.run(_restart_once(admins, Path(data_dir)))


async def _restart_once(admins: int, data_dir: Path) -> Restarted:
    """A new process over the data dir the opening left, as after a deploy or a crash: the store and the
    service rebuilt from the items file and the ledger. The tenant snapshot is built first and not counted
    (a real start-up loads the last collection), so the peak shows what the rebuild adds to it."""
    policy, _ = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    snapshot = synthetic_snapshot(admins)
    before = rss_mb()
    started = time.perf_counter()
    runtime = await build_runtime(data_dir=data_dir, policy=policy, snapshot=snapshot, clock=ManualClock(NOW),
                                  credentials=BotCredentials())
    reloaded = time.perf_counter() - started
    await runtime.store.close()
    return Restarted(reloaded, before, rss_mb())


def run(sizes: list[int]) -> None:
    results: list[tuple[Opened, Restarted]] = []
    spawn = multiprocessing.get_context("spawn")
    for admins in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = str(Path(tmp) / "data")
            with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
                opened = pool.submit(open_once, admins, data_dir).result()
            with ProcessPoolExecutor(1, mp_context=spawn, max_tasks_per_child=1) as pool:
                results.append((opened, pool.submit(restart_once, admins, data_dir).result()))
    for r, again in results:
        print(f"campaign of {r.items:,} items ({r.admins:,} extra admins)")
        print(f"  open: {r.open_seconds:.2f} s; items file {r.items_mb:.1f} MB written once")
        print(f"  peak RSS when open {r.open_peak_rss_mb:.0f} MB (target < 600 MB); "
              f"{r.rss_before_mb:.0f} MB before opening (snapshot built)")
        print(f"  restart in a new process (rebuild from store + ledger): {again.restart_seconds:.2f} s; "
              f"peak RSS {again.peak_rss_mb:.0f} MB (target < 600 MB), {again.rss_before_mb:.0f} MB of it the snapshot")
    if len(results) > 1:
        (small, _), (large, _) = results[0], results[-1]
        print(f"ratio {large.items:,} / {small.items:,} items: open time {large.open_seconds / small.open_seconds:.2f}x "
              f"(target <= 6x for 100k / 20k), peak RSS when open {large.open_peak_rss_mb / small.open_peak_rss_mb:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admins", type=int, nargs="+", default=[10_000, 50_000])
    run(parser.parse_args().admins)


if __name__ == "__main__":
    main()
