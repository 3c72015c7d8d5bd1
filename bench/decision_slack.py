"""Decision path in Slack, beside Teams: a Keep pressed on a review card in Slack → Bolt's acknowledgement →
the decision durable in the ledger (fsync) → the card redrawn in place (chat.update), the way Slack drives it.

Every process is separate, as in production: the load generator (bench/load.py), the fake Slack
(tests/fakes/fake_slack.py) answering accessbot's Web API calls, and each server under test:

  slack anchor   a bare slack-bolt ``AsyncApp`` on aiohttp: verifies the signature, acknowledges the
                 ``block_actions``, does nothing else;
  accessbot      the real app (``bot.app``) with Slack attached over HTTP, signing secret on; N people, each
                 a Slack member matched by e-mail, each reviewing one item;
  teams          the same app on the Teams path of bench/decision_path.py, Bot Framework auth on.

Every Slack request is signed with Slack's v0 scheme when it is sent and posted as Slack posts an interaction:
a form body whose one field, ``payload``, holds the ``block_actions`` JSON. Before anything is timed each
person types ``/access-review mine`` in their DM (the bot looks them up in Slack, opens the DM and posts
their card there, in the fake Slack), so every click is on a card the bot really posted.

Bolt acknowledges first and the decision is recorded after, so the HTTP answer is not the end of the work:
after each round the benchmark waits until the ledger holds every decision of the round, and reports that
time too. At the end it counts the ledger's decisions per clicked item: every click recorded once, none lost,
none twice. The rounds interleave the three servers, so a load that drifts weighs on all alike.

    .venv/bin/python -m bench.decision_slack [--people 2000] [--decisions 1000] [--concurrency 16] [--rounds 5]
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

from bench.decision_path import Load, combined, get, line, spread
from bench.load import LoadResult, drive_slack
from bench.local_auth import OpenIdServer, first_contact
from bench.servers import Server, serve_accessbot, serve_accessbot_slack
from bench.slack_servers import serve_fake_slack, serve_slack_anchor
from bench.tenants import display_name, person
from tests.fakes.fake_slack import SIGNING_SECRET

WARM_UP = 200
DURABLE_WITHIN = 300.0  # seconds a round's decisions may take to be in the ledger before the run is a failure


def post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310 (127.0.0.1 only)
        return json.loads(response.read())


def decisions_in_ledger(base: str) -> dict[str, int]:
    return get(f"{base}/bench/stats")["decisions"]


def wait_durable(base: str, items: list[str]) -> float:
    """Seconds until the ledger holds a decision for every one of ``items`` (polled every 20 ms)."""
    started = time.perf_counter()
    while True:
        decided = decisions_in_ledger(base)
        if all(item in decided for item in items):
            return time.perf_counter() - started
        if time.perf_counter() - started > DURABLE_WITHIN:
            missing = sum(item not in decided for item in items)
            raise SystemExit(f"{missing} of {len(items)} acknowledged clicks were not in the ledger "
                             f"after {DURABLE_WITHIN:.0f} s")
        time.sleep(0.02)


class SlackLoad:
    """The load generator process, posting signed form bodies to a /slack/events."""

    def __init__(self, pool: ProcessPoolExecutor, concurrency: int) -> None:
        self.pool, self.concurrency = pool, concurrency

    def send(self, url: str, forms: list[str]) -> LoadResult:
        # Bolt's acknowledgement is an empty 200: any 2xx is an answer, a 401 (bad signature) a failure.
        result = self.pool.submit(drive_slack, url, forms, SIGNING_SECRET, self.concurrency, "").result()
        if result.failures:
            raise SystemExit(f"{len(result.failures)} of {result.requests} requests failed, e.g. {result.failures[0]}")
        return result


def run(people: int, decisions: int, concurrency: int, rounds: int) -> None:
    if people < WARM_UP + decisions:
        raise SystemExit(f"--people must be at least --decisions + {WARM_UP}: every decision needs an item of its own")
    context = multiprocessing.get_context("spawn")
    with OpenIdServer() as openid, ProcessPoolExecutor(1, mp_context=context) as pool, contextlib.ExitStack() as stack:
        load, slack_load = Load(pool, openid.token(), concurrency), SlackLoad(pool, concurrency)
        pool.submit(time.sleep, 0).result()  # the load process is up before anything is timed
        control = stack.enter_context(Server(context, serve_fake_slack, people))
        api_url = get(f"{control}/bench/info")["api_url"]
        anchor = stack.enter_context(Server(context, serve_slack_anchor, api_url))
        slack = stack.enter_context(Server(context, serve_accessbot_slack, people, openid.metadata_url, api_url))
        teams = stack.enter_context(Server(context, serve_accessbot, people, openid.metadata_url))
        slack_events, anchor_events, teams_messages = f"{slack}/slack/events", f"{anchor}/slack/events", f"{teams}/api/messages"

        # Before the clock: everyone opens their DM with the bot (Slack) or their personal chat (Teams).
        slack_load.send(slack_events, post(f"{control}/bench/commands", {"people": list(range(people))}))
        started = time.perf_counter()
        while get(f"{control}/bench/info")["cards"] < people:
            if time.perf_counter() - started > DURABLE_WITHIN:
                raise SystemExit("the bot did not post every person's card in Slack")
            time.sleep(0.1)
        load.send(teams_messages, [first_contact(person(n), display_name(person(n))) for n in range(people)], "")

        # Clicks spread over everyone, each person once, on their own item; the first WARM_UP warm up.
        clickers = [k * people // (WARM_UP + decisions) for k in range(WARM_UP + decisions)]
        clicks = post(f"{control}/bench/clicks", {"people": clickers})
        forms, slack_items = clicks["forms"], clicks["items"]
        own = get(f"{teams}/bench/items")["own"]  # [item, reviewer] with person n reviewing own[n - 1]'s item
        teams_bodies = spread(own, WARM_UP + decisions)

        slack_load.send(anchor_events, forms[:WARM_UP])  # warm-up: imports, caches, first connections
        slack_load.send(slack_events, forms[:WARM_UP])
        wait_durable(slack, slack_items[:WARM_UP])
        load.send(teams_messages, teams_bodies[:WARM_UP], "Kept by")

        results: dict[str, list[LoadResult]] = {"anchor": [], "slack": [], "teams": []}
        durable: list[float] = []
        size = -(-decisions // rounds)
        for start in range(WARM_UP, WARM_UP + decisions, size):
            end = min(start + size, WARM_UP + decisions)
            results["anchor"].append(slack_load.send(anchor_events, forms[start:end]))
            results["slack"].append(slack_load.send(slack_events, forms[start:end]))
            durable.append(wait_durable(slack, slack_items[start:end]))
            results["teams"].append(load.send(teams_messages, teams_bodies[start:end], "Kept by"))
        in_ledger = decisions_in_ledger(slack)
        teams_ledger = decisions_in_ledger(teams)
        cards = get(f"{control}/bench/info")

    r = {name: combined(parts) for name, parts in results.items()}
    clicked = slack_items[WARM_UP:]
    lost = sum(in_ledger.get(item, 0) == 0 for item in clicked)
    twice = sum(in_ledger.get(item, 0) > 1 for item in clicked)
    recorded = sum(in_ledger.values())
    until_durable = r["slack"].seconds + sum(durable)
    teams_items = [body["value"]["action"]["data"]["item"] for body in teams_bodies]
    teams_lost = sum(teams_ledger.get(item, 0) != 1 for item in teams_items)
    print(f"decision path in Slack: {decisions:,} decisions per server in {rounds} interleaved rounds, "
          f"{concurrency} connections, {people:,} people (Slack members matched by e-mail), load generator and fake "
          "Slack each in their own process, every Slack request signed (v0), Teams with Bot Framework auth on")
    print(line("slack-bolt anchor (bare AsyncApp, ack only)", r["anchor"]))
    print(line("accessbot Slack, until the ack", r["slack"]))
    print(f"  {'accessbot Slack, until durable in the ledger':<46} {decisions / until_durable:7.0f}/s   "
          f"(the last decision of a round in the ledger {max(durable) * 1000:.0f} ms after its last ack at worst)")
    print(line("accessbot Teams (decision_path's server)", r["teams"]))
    print(f"  Slack clicks: {decisions:,} acknowledged, {recorded - WARM_UP:,} decisions in the ledger, "
          f"{lost} lost, {twice} recorded twice; Teams: {teams_lost} not recorded exactly once "
          f"({cards['cards']:,} cards posted in Slack before the clock, {cards['redrawn']:,} redrawn in place by "
          f"chat.update, {cards['refused']} Web API calls refused)")
    print("ratios (same run, interleaved):")
    print(f"  accessbot Slack / Slack anchor   throughput {r['slack'].rate / r['anchor'].rate:.2f}, "
          f"p99 {r['slack'].percentile(99) / r['anchor'].percentile(99):.2f}")
    print(f"  Slack / Teams (accessbot)        throughput {r['slack'].rate / r['teams'].rate:.2f} until the ack, "
          f"{decisions / until_durable / r['teams'].rate:.2f} until durable; "
          f"p99 {r['slack'].percentile(99) / r['teams'].percentile(99):.2f}")
    if lost or twice or recorded - WARM_UP != decisions or teams_lost or cards["refused"]:
        raise SystemExit("decisions were lost or recorded twice")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--decisions", type=int, default=1000, help="decisions per server")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run(args.people, args.decisions, args.concurrency, args.rounds)


if __name__ == "__main__":
    main()
