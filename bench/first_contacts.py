"""First contacts: N people (10,000 by default) open a personal chat with the bot, each for the first time.

Teams posts a ``conversationUpdate`` for each; the bot stores their conversation reference (the address
for every later proactive message) and makes what was waiting for them due. Through the real HTTP app in
its own process, Bot Framework auth on (bench/local_auth.py), from a load generator in another process
holding 16 connections. Prints the wall time, and the time per contact in each tenth of the run: it must
stay flat, because the N-th person must cost what the first did.

    .venv/bin/python -m bench.first_contacts [--people 10000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

from bench.decision_path import Load, get
from bench.local_auth import OpenIdServer, first_contact
from bench.servers import Server, serve_accessbot
from bench.tenants import display_name, person

TARGET_SECONDS = 30.0


def run(people: int, concurrency: int) -> None:
    context = multiprocessing.get_context("spawn")
    with OpenIdServer() as openid, ProcessPoolExecutor(1, mp_context=context) as pool:
        load = Load(pool, openid.token(), concurrency)
        pool.submit(time.sleep, 0).result()
        with Server(context, serve_accessbot, people, openid.metadata_url) as server:
            url = f"{server}/api/messages"
            bodies = [first_contact(person(n), display_name(person(n))) for n in range(people)]
            tenth = max(1, people // 10)
            chunks = []
            for start in range(0, people, tenth):
                chunks.append(load.send(url, bodies[start:start + tenth], ""))
            stats = get(f"{server}/bench/stats")
    total = sum(chunk.seconds for chunk in chunks)
    print(f"first contacts: {people:,} people, conversationUpdate each, {concurrency} connections, auth on, "
          "load generator in its own process")
    print(f"  wall time        {total:.1f} s (target < {TARGET_SECONDS:.0f} s), {people / total:.0f} contacts/s")
    print("  per contact, by tenth of the run (ms, wall time / contacts): "
          + " ".join(f"{chunk.seconds / chunk.requests * 1000:.2f}" for chunk in chunks))
    print(f"  p99 latency      first tenth {chunks[0].percentile(99):.1f} ms, last tenth {chunks[-1].percentile(99):.1f} ms")
    print(f"  references known {stats['conversations']:,}, written in {stats['conversation_writes']:,} "
          "group-committed appends")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    run(args.people, args.concurrency)


if __name__ == "__main__":
    main()
