"""Two accessbot instances on one PostgreSQL database against one, and against TinyDB, in the same run.

The decision path as in ``bench/decision_path.py`` (authentication on, load generator in its own process,
each decision by a different person on their own item), against three set-ups started side by side:
**TinyDB** (one instance, the embedded store), **PostgreSQL, one instance**, and **PostgreSQL, two
instances** sharing one schema, the load spread over both in turn as a load balancer would. Every answer
goes through the store's conditional append (bot/store/concurrency.py); on two instances each checks,
under the ledger's advisory lock, that nobody answered the item meanwhile. The decisions go out in
interleaved rounds so the machine's drifting load weighs on all three alike.

The PostgreSQL server is ``ACCESSBOT_BENCH_POSTGRES_URL`` (else ``ACCESSBOT_TEST_POSTGRES_URL``); each set-up
gets a schema of its own, dropped at the end.

    .venv/bin/python -m bench.instances [--people 3000] [--decisions 1000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench.decision_path import ALEX, WARM_UP, Load, combined, get, line, spread
from bench.load import LoadResult
from bench.local_auth import OpenIdServer, decide
from bench.servers import Server, serve_accessbot, serve_accessbot_on
from bot.ledger_signing import LedgerSigner, write_key_pair
from bot.store.postgres_schema import upgrade
from tests.postgres import drop_schema, new_schema


def run(people: int, decisions: int, concurrency: int, rounds: int) -> None:
    server_url = os.environ.get("ACCESSBOT_BENCH_POSTGRES_URL") or os.environ.get("ACCESSBOT_TEST_POSTGRES_URL")
    if not server_url:
        raise SystemExit("set ACCESSBOT_BENCH_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    if people < WARM_UP + decisions:
        raise SystemExit(f"--people must be at least --decisions + {WARM_UP}: every decision needs an item of its own")
    context = multiprocessing.get_context("spawn")
    schemas = [new_schema(server_url) for _ in range(2)]
    try:
        for _, url in schemas:
            upgrade(url)
        with tempfile.TemporaryDirectory() as keys, OpenIdServer() as openid, \
                ProcessPoolExecutor(1, mp_context=context) as pool, contextlib.ExitStack() as stack:
            key_file = Path(keys) / "ledger.key"
            write_key_pair(LedgerSigner.generate(), key_file)
            load = Load(pool, openid.token(), concurrency)
            pool.submit(time.sleep, 0).result()
            (_, one_url), (_, two_url) = schemas
            tinydb = stack.enter_context(Server(context, serve_accessbot, people, openid.metadata_url))
            pg_one = stack.enter_context(Server(context, serve_accessbot_on, one_url, str(key_file), people,
                                                openid.metadata_url))
            pg_two = [stack.enter_context(Server(context, serve_accessbot_on, two_url, str(key_file), people,
                                                 openid.metadata_url)) for _ in range(2)]
            items = get(f"{tinydb}/bench/items")  # the same tenant, opened the same way, everywhere
            alex, own = items["alex"], items["own"]
            bodies = [decide(ALEX, "Alex Wilber", i) for i in alex[:WARM_UP]] + spread(own, decisions)
            work: dict[str, tuple[Any, list[dict[str, Any]]]] = {
                "tinydb": (f"{tinydb}/api/messages", bodies),
                "pg_one": (f"{pg_one}/api/messages", bodies),
                "pg_two": ([f"{base}/api/messages" for base in pg_two], bodies),
            }
            for target, sent in work.values():
                load.send(target, sent[:WARM_UP], "Kept by")
            results: dict[str, list[LoadResult]] = {name: [] for name in work}
            size = -(-decisions // rounds)
            for start in range(WARM_UP, WARM_UP + decisions, size):
                for name, (target, sent) in work.items():
                    results[name].append(load.send(target, sent[start:start + size], "Kept by"))
    finally:
        for schema, _ in schemas:
            drop_schema(server_url, schema)
    r = {name: combined(parts) for name, parts in results.items()}
    print(f"instances: {decisions:,} decisions per set-up ({people:,} people) in {rounds} interleaved rounds, "
          f"{concurrency} connections, auth on, load generator in its own process")
    print(line("TinyDB, one instance", r["tinydb"]))
    print(line("PostgreSQL, one instance", r["pg_one"]))
    print(line("PostgreSQL, two instances (load spread)", r["pg_two"]))
    print("ratios (same run, interleaved):")
    print(f"  PostgreSQL / TinyDB, one instance     {r['pg_one'].rate / r['tinydb'].rate:.2f} (target >= 0.8)")
    print(f"  two / one instance on PostgreSQL      {r['pg_two'].rate / r['pg_one'].rate:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--decisions", type=int, default=1000, help="decisions per set-up")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run(args.people, args.decisions, args.concurrency, args.rounds)


if __name__ == "__main__":
    main()
