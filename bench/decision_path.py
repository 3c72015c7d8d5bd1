"""Decision path benchmark: a Keep pressed on a review card → attestation durable in the ledger (fsync) →
refreshed card in the invoke response, the way Teams drives it.

Every process is separate, as in production: the load generator (an aiohttp client holding N
connections), accessbot (the real app from ``bot.app``), and the anchor — a bare botbuilder
``CloudAdapter`` bot answering the same invoke with a card and doing nothing else. Bot Framework
authentication is on in both bots: every request carries an RS256 token signed with a local key that a
local OpenID metadata document and JWKS publish (bench/local_auth.py).

The tenant has N people (10,000 by default) who each review one item, plus N Global Administrator items
reviewed by one person, Alex. One run measures, in this order:

  1. the anchor;
  2. accessbot with one person known to it (Alex decides; his conversation reference is the only one);
  3. N first contacts (conversationUpdate from each person: the bot stores N conversation references);
  4. accessbot with N people known, decisions spread evenly across them (each decides their own item);
  5. the same after the ledger was grown to 100,000 records;
  6. the anchor again (the machine's drift during the run shows as the difference of the two).

and prints decisions/s, p50 and p99 of each, and the ratios: accessbot / anchor, N people / 1 person,
100k ledger records / the ledger of run 4.

    .venv/bin/python -m bench.decision_path [--people 10000] [--decisions 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
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

    def send(self, url: str, bodies: list[dict[str, Any]], expect: str) -> LoadResult:
        result = self.pool.submit(drive, url, bodies, self.token, self.concurrency, expect).result()
        if result.failures:
            raise SystemExit(f"{len(result.failures)} of {result.requests} requests failed, e.g. {result.failures[0]}")
        return result


def spread(own: list[list[str]], count: int, offset: int) -> list[dict[str, Any]]:
    """``count`` decisions, each by a different person, evenly spaced over everyone (then the next ones)."""
    step = max(1, len(own) // count)
    chosen = [own[(offset + n * step) % len(own)] for n in range(count)]
    return [decide(reviewer, display_name(reviewer), item) for item, reviewer in chosen]


def line(label: str, result: LoadResult, note: str = "") -> str:
    return (f"  {label:<44} {result.rate:7.0f}/s   p50 {result.percentile(50):6.1f} ms   "
            f"p99 {result.percentile(99):6.1f} ms{note}")


def run(people: int, decisions: int, concurrency: int, ledger: int) -> None:
    if 2 * decisions > people:
        raise SystemExit("--people must be at least twice --decisions: each spread decision needs its own item")
    context = multiprocessing.get_context("spawn")
    with OpenIdServer() as openid, ProcessPoolExecutor(1, mp_context=context) as pool:
        load = Load(pool, openid.token(), concurrency)
        pool.submit(time.sleep, 0).result()  # the load process is up before anything is timed
        with Server(context, serve_anchor, openid.metadata_url) as anchor, \
             Server(context, serve_accessbot, people, openid.metadata_url) as ours:
            anchor_url, ours_url = f"{anchor}/api/messages", f"{ours}/api/messages"
            items = get(f"{ours}/bench/items")
            alex, own = items["alex"], items["own"]
            fake_items = [f"anchor-item-{n}" for n in range(WARM_UP + 2 * decisions)]

            load.send(anchor_url, [decide(ALEX, "Alex Wilber", i) for i in fake_items[:WARM_UP]], "Kept by")
            load.send(ours_url, [decide(ALEX, "Alex Wilber", i) for i in alex[:WARM_UP]], "Kept by")

            anchor_before = load.send(anchor_url, [decide(ALEX, "Alex Wilber", i)
                                                   for i in fake_items[WARM_UP:WARM_UP + decisions]], "Kept by")
            one_person = load.send(ours_url, [decide(ALEX, "Alex Wilber", i)
                                              for i in alex[WARM_UP:WARM_UP + decisions]], "Kept by")
            records_one = get(f"{ours}/bench/stats")["ledger_records"]

            contacts = load.send(ours_url, [first_contact(person(n), display_name(person(n))) for n in range(people)], "")
            known = get(f"{ours}/bench/stats")

            many = load.send(ours_url, spread(own, decisions, 0), "Kept by")
            after_many = get(f"{ours}/bench/stats")
            records_many = after_many["ledger_records"]

            grown = post(f"{ours}/bench/grow-ledger", {"records": ledger})["ledger_records"]
            many_grown = load.send(ours_url, spread(own, decisions, 1), "Kept by")
            after_grown = get(f"{ours}/bench/stats")
            anchor_after = load.send(anchor_url, [decide(ALEX, "Alex Wilber", i)
                                                  for i in fake_items[WARM_UP + decisions:]], "Kept by")

    anchor_rate = (anchor_before.rate + anchor_after.rate) / 2
    print(f"decision path: {decisions:,} decisions per run, {concurrency} connections, load generator in its own "
          "process, Bot Framework auth on (RS256 tokens, local JWKS)")
    print(line("botbuilder anchor (bare CloudAdapter), first", anchor_before))
    print(line("accessbot, 1 person known", one_person, f"   (ledger {records_one:,} records after)"))
    print(line(f"accessbot, {known['conversations']:,} people known", many, f"   (ledger {records_many:,} records after)"))
    print(line(f"accessbot, {known['conversations']:,} people, {grown:,}-record ledger", many_grown))
    print(line("botbuilder anchor, last", anchor_after))
    print(f"  first contacts: {people:,} conversationUpdates in {contacts.seconds:.1f} s ({contacts.rate:.0f}/s, "
          f"p99 {contacts.percentile(99):.1f} ms), {known['conversation_writes']:,} group-committed writes")
    print(f"  conversation writes during the {2 * decisions:,} spread decisions: "
          f"{after_grown['conversation_writes'] - known['conversation_writes']}")
    print("ratios (same run):")
    print(f"  accessbot / anchor throughput     {one_person.rate / anchor_rate:.2f} (1 person), "
          f"{many.rate / anchor_rate:.2f} ({people:,} people); anchor = mean of its two runs, {anchor_rate:.0f}/s")
    print(f"  {people:,} people / 1 person          throughput {many.rate / one_person.rate:.2f} (target >= 0.9), "
          f"p99 {many.percentile(99) / one_person.percentile(99):.2f}")
    print(f"  {grown:,} / {records_many:,} ledger records  throughput {many_grown.rate / many.rate:.2f}, "
          f"p99 {many_grown.percentile(99) / many.percentile(99):.2f} (target <= 1.5)")
    print(f"targets: >= 500 decisions/s with p99 < 50 ms ({people:,} people): "
          f"{many.rate:.0f}/s, p99 {many.percentile(99):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=2000, help="decisions per measured run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--ledger", type=int, default=100_000, help="ledger size for the last accessbot run")
    args = parser.parse_args()
    run(args.people, args.decisions, args.concurrency, args.ledger)


if __name__ == "__main__":
    main()
