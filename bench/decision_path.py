"""Decision path benchmark: HTTP invoke → attestation durable in the ledger → refreshed card in the reply.

Runs the real aiohttp app (Teams channel, authentication off) in-process against a synthetic tenant and
measures, side by side in one run:
  1. decisions/s and p50/p99 latency of accessbot (connector and user-token clients cached per service
     URL, msrest's ClientRetryPolicy.safe_codes a frozenset) against the same bot with botbuilder as
     shipped (clients built per turn, the 999 x 502 list scan in each: docs/dependency-notes.md#per-turn-clients);
  2. p99 with 1,000 ledger records against p99 with 100,000 (the cost must not grow with history).

    .venv/bin/python -m bench.decision_path [--decisions 2000] [--concurrency 16] [--unsigned-ledger]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from msrest.universal_http.requests import ClientRetryPolicy

from bench.tenants import synthetic_snapshot
from bot.app import build_runtime, create_app, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.model import LedgerEvent
from bot.ledger_signing import LedgerSigner

ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
STOCK_SAFE_CODES = [i for i in range(500) if i != 408] + [501, 505]


def invoke(item_id: str) -> dict[str, Any]:
    return {
        "type": "invoke", "name": "adaptiveCard/action", "id": str(uuid.uuid4()), "channelId": "msteams",
        "serviceUrl": "http://127.0.0.1:9/", "from": {"id": "29:1alex", "name": "Alex Wilber", "aadObjectId": ALEX},
        "conversation": {"conversationType": "personal", "id": "a:alex"}, "recipient": {"id": "28:bot"},
        "value": {"action": {"type": "Action.Execute", "verb": "decide", "data": {"item": item_id, "action": "keep"}}},
    }


async def measure(runtime, item_ids: list[str], concurrency: int) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    runner = web.AppRunner(create_app(runtime, background=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/api/messages"  # type: ignore[union-attr]
    queue: asyncio.Queue[str] = asyncio.Queue()
    for item_id in item_ids:
        queue.put_nowait(item_id)
    latencies: list[float] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            item_id = queue.get_nowait()
            started = time.perf_counter()
            async with session.post(url, json=invoke(item_id)) as response:
                body = await response.json()
                assert response.status == 200 and "Kept by" in str(body), body
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await runner.cleanup()
    return len(item_ids) / elapsed, latencies


def p(latencies: list[float], q: float) -> float:
    return statistics.quantiles(latencies, n=100)[q - 1] * 1000 if len(latencies) >= 100 else max(latencies) * 1000


async def run(decisions: int, concurrency: int, signed: bool) -> None:
    policy, _ = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    snapshot = synthetic_snapshot(decisions * 2)
    with tempfile.TemporaryDirectory() as tmp:
        runtime = await build_runtime(data_dir=Path(tmp), policy=replace(policy), snapshot=snapshot,
                                      clock=ManualClock(NOW), credentials=BotCredentials(),
                                      ledger_signer=LedgerSigner.generate() if signed else None)
        state, _ = await runtime.service.open_current_campaign()
        mine = [i.id for i in state.items.values() if ALEX in i.reviewers and i.subject.title.startswith("Admin ")]
        size = decisions // 2
        batches = [mine[n * size:(n + 1) * size] for n in range(4)]
        await measure(runtime, batches[3][:200], concurrency)  # warm-up: imports, caches, first connections

        # botbuilder as shipped: a ConnectorClient per turn, msrest's 999 x 502 list scan in each
        ClientRetryPolicy.safe_codes = STOCK_SAFE_CODES  # type: ignore[assignment]
        runtime.teams.connectors.resize(0)
        built = runtime.teams.connectors.built
        stock_rate, stock_lat = await measure(runtime, batches[0], concurrency)
        stock_built = runtime.teams.connectors.built - built
        # accessbot: clients cached per service URL, safe_codes a frozenset
        ClientRetryPolicy.safe_codes = frozenset(STOCK_SAFE_CODES)  # type: ignore[assignment]
        runtime.teams.connectors.resize(64)
        built = runtime.teams.connectors.built
        fixed_rate, fixed_lat = await measure(runtime, batches[1], concurrency)
        fixed_built = runtime.teams.connectors.built - built
        records_small = len(await runtime.store.ledger_records())

        filler = [LedgerEvent("bench_filler", {"n": n}) for n in range(1000)]
        while len(await runtime.store.ledger_records()) < 100_000:
            await runtime.store.append_ledger(filler, NOW)
        records_large = len(await runtime.store.ledger_records())
        large_rate, large_lat = await measure(runtime, batches[2], concurrency)
        await runtime.store.close()

    print(f"decision path, {len(batches[0])} decisions per run, {concurrency} concurrent clients, "
          f"{'signed' if signed else 'UNSIGNED'} ledger")
    print(f"  botbuilder as shipped         : {stock_rate:7.0f}/s  p50 {p(stock_lat, 50):6.1f} ms  p99 {p(stock_lat, 99):6.1f} ms")
    print(f"  accessbot (cached clients)    : {fixed_rate:7.0f}/s  p50 {p(fixed_lat, 50):6.1f} ms  p99 {p(fixed_lat, 99):6.1f} ms"
          f"  ({records_small} ledger records)")
    print(f"  accessbot, {records_large:,} ledger records: {large_rate:7.0f}/s  p50 {p(large_lat, 50):6.1f} ms  p99 {p(large_lat, 99):6.1f} ms")
    print(f"clients built: {stock_built} as shipped, {fixed_built} with the cache")
    print(f"ratios: accessbot/as-shipped throughput {fixed_rate / stock_rate:.2f}x; "
          f"p99 at {records_large:,} / p99 at {records_small:,} records = {p(large_lat, 99) / p(fixed_lat, 99):.2f} (target <= 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--unsigned-ledger", action="store_true", help="no checkpoint signatures (to see their cost)")
    args = parser.parse_args()
    asyncio.run(run(args.decisions, args.concurrency, not args.unsigned_ledger))


if __name__ == "__main__":
    main()
