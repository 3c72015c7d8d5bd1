"""The evidence report of a large campaign: time to build its HTML and its PDF, and peak memory.

A campaign of the demo policy over a synthetic tenant with ``--admins`` extra Global Administrators is opened
and every item a security lead may answer is kept (each a ledger record, so each an attestation row in the
report); then the report is gathered from the store and rendered to HTML and to PDF, each timed on its own,
the way the server renders it (in a worker thread). Preparing the campaign is not counted.

    .venv/bin/python -m bench.report [--admins 2000]
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
from bot.engine.decisions import DecisionRequest
from bot.engine.model import Action
from bot.report.gather import gather_report, render_off_loop, same_period

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
SECURITY_LEAD = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"  # Alex Wilber in the demo policy


async def run(admins: int, data_dir: Path) -> None:
    policy, _ = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    runtime = await build_runtime(data_dir=data_dir, policy=policy, snapshot=synthetic_snapshot(admins),
                                  clock=ManualClock(MONDAY), credentials=BotCredentials())
    service = runtime.service
    state, _ = await service.open_current_campaign()
    for item in list(state.open_items()):
        if service.routing.may_act_for(SECURITY_LEAD, item.reviewers) and SECURITY_LEAD not in item.subject.holder_ids:
            await service.decide(DecisionRequest(item.id, Action.KEEP, SECURITY_LEAD, "Alex Wilber"))
    started = time.perf_counter()
    states = [s for c in same_period(await service.store.list_campaigns(), None)
              if (s := await service.campaign_state(c.id)) is not None]
    report = await gather_report(service.store, states, service.campaign_ledger, service.clock.now(), service.display_name)
    gathered = time.perf_counter() - started
    rows = sum(len(t.attestations) for t in report.tenants)
    print(f"campaign: {len(state.items)} items, {rows} attestations; gathered from the store in {gathered:.2f} s")
    for fmt in ("html", "pdf"):
        started, cpu = time.perf_counter(), time.process_time()
        body = await render_off_loop(report, fmt)
        print(f"{fmt}: {time.perf_counter() - started:.2f} s wall, {time.process_time() - cpu:.2f} s CPU, "
              f"{len(body) / 1e6:.1f} MB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process: {peak:.0f} MB")
    await runtime.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admins", type=int, default=2000, help="extra Global Administrators in the tenant")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        asyncio.run(run(args.admins, Path(data_dir)))


if __name__ == "__main__":
    main()
