"""Signed conditional appends straight to the store, PostgreSQL against TinyDB, in the same run.

What ``bench/instances.py`` measures end to end (HTTP, authentication, the bot) has the store's group commit
inside it; this measures that group commit alone, so a change to it shows without the noise of the rest. Each
append is what an answer writes: one decision on an item of its own, appended only if the item and the
campaign's sign-off are unchanged (``append_if_current``), signed (an Ed25519 checkpoint per group commit).
``--concurrency`` callers append at once, so the store groups what arrives while a commit runs, as under load.
The two stores take turns in interleaved rounds so the machine's drifting load weighs on both alike.

The PostgreSQL server is ``ACCESSBOT_BENCH_POSTGRES_URL`` (else ``ACCESSBOT_TEST_POSTGRES_URL``), in a schema of
its own, dropped at the end.

    .venv/bin/python -m bench.ledger_appends [--appends 4000] [--concurrency 16] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bot.engine.model import LedgerEvent
from bot.ledger_signing import LedgerSigner
from bot.store.base import Store
from bot.store.postgres_schema import upgrade
from bot.store.postgres_store import PostgresStore
from bot.store.tinydb_store import TinyDBStore
from tests.postgres import drop_schema, new_schema

AT = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)


async def append_answers(store: Store, first: int, count: int, concurrency: int) -> float:
    """Seconds ``concurrency`` callers take to append answers on items ``first`` … ``first + count - 1``."""
    items = iter(range(first, first + count))

    async def caller() -> None:
        for n in items:
            answer = LedgerEvent("decision", {"campaign_id": "c1", "item_id": f"i{n}", "action": "keep",
                                              "by": f"person-{n}", "comment": "still needs the role for the audit"})
            appended = await store.append_if_current([answer], {f"item:i{n}": 0, "signed:c1": 0}, AT)
            if appended.refused:
                raise SystemExit(f"item i{n} was refused: the bench expects every answer to land")

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - started


async def run(appends: int, concurrency: int, rounds: int) -> None:
    server_url = os.environ.get("ACCESSBOT_BENCH_POSTGRES_URL") or os.environ.get("ACCESSBOT_TEST_POSTGRES_URL")
    if not server_url:
        raise SystemExit("set ACCESSBOT_BENCH_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    signer = LedgerSigner.generate()
    schema, url = new_schema(server_url)
    try:
        upgrade(url)
        with tempfile.TemporaryDirectory() as data_dir:
            stores: dict[str, Store] = {"TinyDB": TinyDBStore(Path(data_dir), signer=signer),
                                        "PostgreSQL": PostgresStore(url, signer=signer)}
            seconds = dict.fromkeys(stores, 0.0)
            try:
                for store in stores.values():
                    await store.append_ledger([LedgerEvent("campaign_opened", {"campaign_id": "c1"})], AT)
                size = -(-appends // rounds)
                for first in range(0, appends, size):
                    for name, store in stores.items():
                        seconds[name] += await append_answers(store, first, min(size, appends - first), concurrency)
            finally:
                for store in stores.values():
                    await store.close()
    finally:
        drop_schema(server_url, schema)
    rates = {name: appends / spent for name, spent in seconds.items()}
    print(f"ledger appends: {appends:,} signed conditional appends per store, {concurrency} callers at once, "
          f"{rounds} interleaved rounds")
    for name, rate in rates.items():
        print(f"  {name:<12} {rate:7.0f} appends/s")
    print(f"  PostgreSQL / TinyDB  {rates['PostgreSQL'] / rates['TinyDB']:.2f} (same run, interleaved)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appends", type=int, default=4000, help="appends per store")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(run(args.appends, args.concurrency, args.rounds))


if __name__ == "__main__":
    main()
