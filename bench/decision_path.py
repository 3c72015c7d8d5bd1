"""Decision path benchmark: a Keep pressed on a review card → attestation durable in the ledger (fsync) →
refreshed card in the invoke response, the way Teams drives it.

Every process is separate, as in production: the load generator (an aiohttp client holding N
connections), accessbot (the real app from ``bot.app``), and the anchor — a bare botbuilder
``CloudAdapter`` bot answering the same invoke with a card and doing nothing else. Bot Framework
authentication is on in both bots: every request carries an RS256 token signed with a local key that a
local OpenID metadata document and JWKS publish (bench/local_auth.py).

The tenant has N people (10,000 by default) who each review one item, plus N Global Administrator items
reviewed by one person, Alex. Four servers run side by side, each in its own process:

  anchor  the bare botbuilder bot;
  one     accessbot knowing one person: Alex, who decides his items;
  many    accessbot after N first contacts (a conversationUpdate from each person, timed), decisions
          spread evenly across the N people, each deciding their own item;
  grown   the same as ``many`` with its ledger grown to 100,000 records first.

The decisions go out in rounds, each round sending a slice to every server in turn, so a machine whose
load drifts during the run (other work, thermal limits) weighs on all four alike and the ratios hold.
It prints decisions/s, p50 and p99 of each, and the ratios: accessbot / anchor, N people / 1 person, and
100k ledger records / the few thousand of ``many``.

    .venv/bin/python -m bench.decision_path [--people 10000] [--decisions 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from bench.load import LoadResult, drive
from bench.local_auth import OpenIdServer, decide, first_contact
from bench.servers import Server, serve_accessbot, serve_anchor
from bench.tenants import display_name, person

ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
WARM_UP = 200


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=600) as response:  # noqa: S310 (127.0.0.1 only)
        return json.loads(response.read())


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310 (127.0.0.1 only)
        return json.loads(response.read())


class Load:
    """The load generator process; each call sends one batch of bodies and checks every answer."""

    def __init__(self, pool: ProcessPoolExecutor, token: str, concurrency: int) -> None:
        self.pool, self.token, self.concurrency = pool, token, concurrency

    def send(self, url: str | list[str], bodies: list[dict[str, Any]], expect: str) -> LoadResult:
        result = self.pool.submit(drive, url, bodies, self.token, self.concurrency, expect).result()
        if result.failures:
            raise SystemExit(f"{len(result.failures)} of {result.requests} requests failed, e.g. {result.failures[0]}")
        return result


def spread(own: list[list[str]], count: int) -> list[dict[str, Any]]:
    """``count`` decisions, each by a different person, evenly spaced over everyone."""
    step = max(1, len(own) // count)
    return [decide(reviewer, display_name(reviewer), item) for item, reviewer in own[::step][:count]]


def combined(results: list[LoadResult]) -> LoadResult:
    return LoadResult(sum(r.requests for r in results), sum(r.seconds for r in results),
                      [ms for r in results for ms in r.latencies_ms], [])


def line(label: str, result: LoadResult, note: str = "") -> str:
    return (f"  {label:<46} {result.rate:7.0f}/s   p50 {result.percentile(50):6.1f} ms   "
            f"p99 {result.percentile(99):6.1f} ms{note}")


def run(people: int, decisions: int, concurrency: int, ledger: int, rounds: int) -> None:
    if people < WARM_UP + decisions:
        raise SystemExit(f"--people must be at least --decisions + {WARM_UP}: every decision needs an item of its own")
    context = multiprocessing.get_context("spawn")
    with OpenIdServer() as openid, ProcessPoolExecutor(1, mp_context=context) as pool, contextlib.ExitStack() as stack:
        load = Load(pool, openid.token(), concurrency)
        pool.submit(time.sleep, 0).result()  # the load process is up before anything is timed
        servers = [Server(context, serve_anchor, openid.metadata_url)]
        servers += [Server(context, serve_accessbot, people, openid.metadata_url) for _ in range(3)]
        anchor, one, many, grown = (stack.enter_context(server) for server in servers)
        items = get(f"{one}/bench/items")  # the same tenant, opened the same way, in all three
        alex, own = items["alex"], items["own"]
        anchor_items = [f"anchor-item-{n}" for n in range(WARM_UP + decisions)]

        arrivals = [first_contact(person(n), display_name(person(n))) for n in range(people)]
        contacts = load.send(f"{many}/api/messages", arrivals, "")
        load.send(f"{grown}/api/messages", arrivals, "")
        known = get(f"{many}/bench/stats")
        grown_records = post(f"{grown}/bench/grow-ledger", {"records": ledger})["ledger_records"]

        work = {
            "anchor": (anchor, [decide(ALEX, "Alex Wilber", i) for i in anchor_items]),
            "one": (one, [decide(ALEX, "Alex Wilber", i) for i in alex[: WARM_UP + decisions]]),
            "many": (many, [decide(ALEX, "Alex Wilber", i) for i in alex[:WARM_UP]] + spread(own, decisions)),
            "grown": (grown, [decide(ALEX, "Alex Wilber", i) for i in alex[:WARM_UP]] + spread(own, decisions)),
        }
        for base, bodies in work.values():  # warm-up: imports, caches, first connections
            load.send(f"{base}/api/messages", bodies[:WARM_UP], "Kept by")
        before = {name: get(f"{base}/bench/stats") for name, (base, _) in work.items() if name != "anchor"}
        results: dict[str, list[LoadResult]] = {name: [] for name in work}
        size = -(-decisions // rounds)
        for start in range(WARM_UP, WARM_UP + decisions, size):
            for name, (base, bodies) in work.items():
                results[name].append(load.send(f"{base}/api/messages", bodies[start:start + size], "Kept by"))
        after = {name: get(f"{base}/bench/stats") for name, (base, _) in work.items() if name != "anchor"}

    r = {name: combined(parts) for name, parts in results.items()}
    writes = after["many"]["conversation_writes"] - before["many"]["conversation_writes"]
    print(f"decision path: {decisions:,} decisions per server in {rounds} interleaved rounds, {concurrency} connections, "
          "load generator in its own process, Bot Framework auth on (RS256 tokens, local JWKS)")
    print(line("botbuilder anchor (bare CloudAdapter)", r["anchor"]))
    print(line("accessbot, 1 person known", r["one"], f"   (ledger {after['one']['ledger_records']:,} records after)"))
    print(line(f"accessbot, {after['many']['conversations']:,} people known", r["many"],
               f"   (ledger {after['many']['ledger_records']:,} records after)"))
    print(line(f"accessbot, {after['grown']['conversations']:,} people, {grown_records:,}-record ledger", r["grown"]))
    print(f"  first contacts: {people:,} conversationUpdates in {contacts.seconds:.1f} s ({contacts.rate:.0f}/s, "
          f"p99 {contacts.percentile(99):.1f} ms), {known['conversation_writes']:,} group-committed writes")
    print(f"  conversation writes during the {decisions:,} spread decisions: {writes}")
    print("ratios (same run, interleaved):")
    print(f"  accessbot / anchor throughput       {r['one'].rate / r['anchor'].rate:.2f} (1 person), "
          f"{r['many'].rate / r['anchor'].rate:.2f} ({people:,} people)")
    print(f"  {people:,} people / 1 person        throughput {r['many'].rate / r['one'].rate:.2f} (target >= 0.9), "
          f"p99 {r['many'].percentile(99) / r['one'].percentile(99):.2f}")
    print(f"  {grown_records:,} / {after['many']['ledger_records']:,} ledger records  "
          f"throughput {r['grown'].rate / r['many'].rate:.2f}, p99 {r['grown'].percentile(99) / r['many'].percentile(99):.2f} "
          "(target <= 1.5)")
    print(f"targets: >= 500 decisions/s with p99 < 50 ms ({people:,} people known): "
          f"{r['many'].rate:.0f}/s, p99 {r['many'].percentile(99):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=2000, help="decisions per measured run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--ledger", type=int, default=100_000, help="ledger size of the 'grown' server")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run(args.people, args.decisions, args.concurrency, args.ledger, args.rounds)


if __name__ == "__main__":
    main()
