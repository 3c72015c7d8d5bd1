"""Opening a campaign of ~20,000 items: wall time and peak memory, measured in this one process.

The synthetic tenant has N Global Administrators, each giving a role item and a recovery-contact item,
so N=10,000 gives ~20,000 items — the size of a CSP partner's 200 customers x 100 items. Opening covers
the whole path: subjects, every check of the catalogue, routing, the single write of the items file and
the ledger record. The snapshot is built first and not counted (a collection produces it).

    .venv/bin/python -m bench.campaign_open [--admins 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
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


async def run(admins: int) -> None:
    policy, _ = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    snapshot = synthetic_snapshot(admins)
    before = rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        runtime = await build_runtime(data_dir=Path(tmp), policy=policy, snapshot=snapshot, clock=ManualClock(NOW),
                                      credentials=BotCredentials())
        started = time.perf_counter()
        state, _ = await runtime.service.open_current_campaign()
        opened = time.perf_counter() - started
        items_file = max(Path(tmp).glob("items-*.json"), key=lambda p: p.stat().st_size)
        size_mb = items_file.stat().st_size / 1e6
        started = time.perf_counter()
        await runtime.store.close()
        restarted = await build_runtime(data_dir=Path(tmp), policy=policy, snapshot=snapshot, clock=ManualClock(NOW),
                                        credentials=BotCredentials())
        reloaded = time.perf_counter() - started
        await restarted.store.close()
    print(f"campaign of {state.campaign.item_count:,} items ({admins:,} extra admins)")
    print(f"  open: {opened:.2f} s (target < 5 s); items file {size_mb:.1f} MB written once")
    print(f"  restart (rebuild from store + ledger): {reloaded:.2f} s")
    print(f"  peak RSS {rss_mb():.0f} MB (target < 300 MB); {before:.0f} MB before opening (snapshot built)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admins", type=int, default=10_000)
    asyncio.run(run(parser.parse_args().admins))


if __name__ == "__main__":
    main()
