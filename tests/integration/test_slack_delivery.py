"""Slack's outbound side: fanning out to ten thousand reviewers under Slack's limits through the same outbox as
Teams, and Socket Mode for a deployment without a public URL."""

from __future__ import annotations

import asyncio
import bisect
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator, Iterable

import pytest
from aiohttp import web

from bot.app import Runtime, build_runtime, create_app, load_inputs
from bot.channels.slack import SlackSettings
from bot.channels.slack_people import ADDRESS_PREFIX
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.notifier import DrainResult, Notifier
from bot.ratelimit import SLACK_LIMITS, SLACK_PER_WORKSPACE, RateLimiter, Window
from bot.store.base import OutboxMessage
from tests.fakes.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.integration.virtual_time import VirtualTime

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
async def slack(time: VirtualTime) -> AsyncIterator[FakeSlack]:
    """The fake counts on the test's virtual time, and refuses a second message to one DM within a second."""
    fake = await FakeSlack(channel_pace=Window(1, 1.0), clock=time).start()
    yield fake
    await fake.stop()


async def slack_runtime(data_dir: Path, slack: FakeSlack, **settings: object) -> Runtime:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    return await build_runtime(
        data_dir=data_dir, policy=policy, snapshot=snapshot, clock=ManualClock(MONDAY), credentials=BotCredentials(),
        slack=SlackSettings(**{"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET, "api_url": slack.api_url, **settings}),  # type: ignore[arg-type]
    )


def busiest(times: Iterable[float], seconds: float) -> int:
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + seconds) - i for i, t in enumerate(ordered)), default=0)


async def test_ten_thousand_reviewers_are_notified_in_slack_under_its_limits_with_nothing_lost_or_sent_twice(
    tmp_path: Path, slack: FakeSlack, time: VirtualTime
) -> None:
    """Each reviewer's DM was opened before (their address is stored); 50 of them get three messages, which
    must each wait a second for the last; 40 requests are throttled with Retry-After on the way."""
    runtime = await slack_runtime(tmp_path, slack)
    people = [f"reviewer-{n:05d}" for n in range(10_000)]
    members = {person: slack.add_user(f"{person}@contoso.com")["id"] for person in people}
    dms = {person: slack.dm_of(member) for person, member in members.items()}
    await asyncio.gather(*(  # all at once, as the store group-commits them
        runtime.store.save_conversation(ADDRESS_PREFIX + person, {"user": members[person], "channel": dms[person]})
        for person in people))
    messages = [
        OutboxMessage(key=f"review_request:week-48:{n}>{person}", recipient=person, kind="review_request",
                      payload={"text": f"Your access review is open (message {n})."},
                      created_at=MONDAY + timedelta(microseconds=n), next_attempt_at=MONDAY)
        for n in range(3) for person in (people if n == 0 else people[:50])
    ]
    queued = await runtime.store.enqueue(messages)
    slack.throttle("chat.postMessage", times=40, retry_after=2)
    notifier = Notifier(
        runtime.store, runtime.channels, runtime.service.clock, sleep=time.sleep,
        limiter=RateLimiter(limits=SLACK_LIMITS, clock=time),
    )

    result = await time.run(notifier.drain())

    assert result == DrainResult(sent=queued, deferred=0) and queued == 10_100
    deliveries = slack.deliveries()
    assert len(deliveries) == queued and max(deliveries.values()) == 1
    for person in people[:50]:
        assert [m.text for m in slack.posted(dms[person])] == [f"Your access review is open (message {n})." for n in range(3)]
    accepted = [call.at for call in slack.calls_to("chat.postMessage") if call.ok]
    assert slack.over_pace == 0 and busiest(accepted, 60.0) <= SLACK_PER_WORKSPACE[0].limit
    assert slack.refused[429] == 40  # only the injected ones: the pace never made Slack refuse
    await runtime.store.close()


async def test_in_socket_mode_the_bot_connects_out_and_answers_commands_over_the_socket(
    tmp_path: Path,
) -> None:
    slack = await FakeSlack().start()
    alex = slack.add_user("alexw@contoso.com")["id"]
    runtime = await slack_runtime(tmp_path, slack, socket_mode=True, app_token=APP_TOKEN, signing_secret="")
    runner = web.AppRunner(create_app(runtime, background=False))
    await runner.setup()  # starts the Socket Mode connection
    try:
        await slack.wait_connected()
        assert all(resource.canonical != "/slack/events" for resource in runner.app.router.resources())
        envelope = await slack.push("slash_commands", slack.slash_command(alex, "status"))
        await slack.wait_ack(envelope)
        async with asyncio.timeout(10):
            while not slack.posted(slack.dm_of(alex)):
                await asyncio.sleep(0.01)
        assert "No review campaign is open yet" in str(slack.posted(slack.dm_of(alex))[0].blocks)
    finally:
        await runner.cleanup()
        await slack.stop()
