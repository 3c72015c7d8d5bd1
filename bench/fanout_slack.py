"""Fan-out benchmark, Slack beside Teams: review requests to N reviewers (10,000 by default) through the app's
own notifier and Slack channel (slack_sdk over HTTP) into the local fake Slack, which refuses a second message
to one DM within the per-conversation window (429, as Slack does past about one a second) and throttles a share
of requests with 429 and a Retry-After.

Prints, from one run: messages sent, lost (queued, never accepted) and duplicated (accepted more than once), the
elapsed time, the rate achieved against the rate the channel's limits allow (their ratio), the busiest workspace
window, and the refusals. With Slack's limits as configured (1 a second per DM, 300 a minute per workspace)
10,000 reviewers take about 33 minutes of waiting that measures nothing more than the limiter, so by default
every window is a tenth as long (50 messages a second allowed, about 200 s, as Teams' fan-out); ``--scale 1``
runs Slack's own windows.

    .venv/bin/python -m bench.fanout_slack [--reviewers 10000] [--throttled 40] [--concurrency 16] [--scale 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bot.app import build_runtime, load_inputs
from bot.channels.slack import SlackSettings
from bot.channels.slack_people import ADDRESS_PREFIX
from bot.channels.teams import BotCredentials
from bot.clock import SystemClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.notifier import Notifier
from bot.ratelimit import SLACK_CONVERSATION, SLACK_PER_CONVERSATION, SLACK_PER_WORKSPACE, SLACK_WORKSPACE, RateLimiter, Window
from bot.store.base import OutboxMessage
from tests.fakes.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack


def scaled(windows: tuple[Window, ...], scale: float) -> tuple[Window, ...]:
    return tuple(Window(window.limit, window.seconds * scale) for window in windows)


def busiest(times: list[float], seconds: float) -> int:
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + seconds) - i for i, t in enumerate(ordered)), default=0)


async def run(reviewers: int, throttled: int, concurrency: int, scale: float) -> None:
    per_conversation, per_workspace = scaled(SLACK_PER_CONVERSATION, scale), scaled(SLACK_PER_WORKSPACE, scale)
    slack = await FakeSlack(channel_pace=per_conversation[0]).start()
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    with tempfile.TemporaryDirectory() as data_dir:
        runtime = await build_runtime(
            data_dir=Path(data_dir), policy=policy, snapshot=snapshot, clock=SystemClock(), credentials=BotCredentials(),
            slack=SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack.api_url),
        )
        people = [f"reviewer-{n:05d}" for n in range(reviewers)]
        members = {person: slack.add_user(f"{person}@contoso.com")["id"] for person in people}
        await asyncio.gather(*(  # each reviewer's DM opened before, as a first contact would have left it
            runtime.store.save_conversation(ADDRESS_PREFIX + person, {"user": members[person], "channel": slack.dm_of(members[person])})
            for person in people))
        now = SystemClock().now()
        queued = await runtime.store.enqueue([
            OutboxMessage(key=f"request:bench:{person}", recipient=person, kind="review_request",
                          payload={"text": f"The Contoso access review is open: 3 items need your answer ({n})."},
                          created_at=now + timedelta(microseconds=n), next_attempt_at=now)
            for n, person in enumerate(people)])
        slack.throttle("chat.postMessage", times=throttled, retry_after=max(1, round(scale)))
        notifier = Notifier(
            runtime.store, runtime.channels, runtime.service.clock, concurrency=concurrency,
            limiter=RateLimiter(limits={SLACK_CONVERSATION: per_conversation, SLACK_WORKSPACE: per_workspace}),
        )

        started = time.perf_counter()
        result = await notifier.drain()
        elapsed = time.perf_counter() - started

        deliveries = slack.deliveries()
        accepted = sum(deliveries.values())
        lost, duplicated = queued - len(deliveries), accepted - len(deliveries)
        allowed = min(window.limit / window.seconds for window in per_workspace)
        oks = [call.at for call in slack.calls_to("chat.postMessage") if call.ok]
        await runtime.store.close()
    await slack.stop()

    print(f"fan-out to {reviewers} reviewers through the fake Slack with Slack's limits"
          + (f" (windows scaled by {scale:g})" if scale != 1 else "")
          + f", {throttled} requests throttled with 429, concurrency {concurrency}")
    print(f"  messages queued     {queued}")
    print(f"  messages sent       {accepted}  (drain: {result.sent} sent, {result.deferred} deferred, "
          f"{result.undeliverable} undeliverable)")
    print(f"  lost                {lost}")
    print(f"  duplicated          {duplicated}")
    print(f"  elapsed             {elapsed:.1f} s")
    print(f"  achieved rate       {accepted / elapsed:.2f} msg/s")
    print(f"  allowed rate        {allowed:.2f} msg/s  ({per_workspace[0].limit} per {per_workspace[0].seconds:g} s "
          "per workspace; one message per DM)")
    print(f"  achieved / allowed  {accepted / elapsed / allowed:.3f}")
    print(f"  busiest {per_workspace[0].seconds:g} s      {busiest(oks, per_workspace[0].seconds)} accepted "
          f"(limit {per_workspace[0].limit})")
    print(f"  refusals            {slack.refused[429]} 429 ({slack.over_pace} over a DM's pace)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviewers", type=int, default=10_000)
    parser.add_argument("--throttled", type=int, default=40, help="requests refused with 429 on the way")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--scale", type=float, default=0.1, help="every window's length times this (1: Slack's own)")
    args = parser.parse_args()
    asyncio.run(run(args.reviewers, args.throttled, args.concurrency, args.scale))


if __name__ == "__main__":
    main()
