"""Proactive delivery from the outbox at scale: the real Teams channel (botbuilder, msrest, HTTP) into a
fake Bot Connector that enforces Teams' limits and fails on purpose.

Teams' real windows (7 messages per 1 s, 8 per 2 s, 60 per 30 s, 1,800 per hour per conversation; 50 per
second per app and tenant) run on virtual time shared by the notifier's limiter, its waits and the fake
connector (tests/integration/virtual_time.py): a thousand reviewers take twenty virtual seconds and no
real waiting, and what the connector sees depends on the notifier's logic alone, never on how busy the
machine is. How fast delivery really is, is measured in bench/fanout.py, not asserted here.
"""

from __future__ import annotations

import asyncio
import bisect
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable

import pytest
from urllib3.connection import HTTPConnection

from bot.app import Runtime, build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.notifier import DrainResult, Notifier, RetryPolicy
from bot.ratelimit import TEAMS_PER_CONVERSATION, TEAMS_PER_TENANT, RateLimiter, Window
from bot.store.base import OutboxMessage, Store
from tests.integration.fake_connector import FakeConnector, Received
from tests.integration.virtual_time import VirtualTime

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
FAR_FUTURE = MONDAY + timedelta(days=365)
MEGAN = "36e5377f-c245-4eca-a6eb-0f97e46e9dcc"
ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
LYNNE = "0352574e-9ccb-4a60-b927-66c30c6c9a04"
PATTI = "f66eb8b7-79c8-407b-8b95-85a879f2381e"

StartConnector = Callable[..., Awaitable[FakeConnector]]


@pytest.fixture
def time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
async def start_connector(time: VirtualTime) -> AsyncIterator[StartConnector]:
    """Fake Bot Connectors on the test's virtual time (Teams' windows unless a test says otherwise)."""
    started: list[FakeConnector] = []

    async def start(**settings: object) -> FakeConnector:
        connector = FakeConnector(clock=time, **settings)  # type: ignore[arg-type]
        await connector.start()
        started.append(connector)
        return connector

    yield start
    for connector in started:
        await connector.stop()


async def runtime_at(data_dir: Path) -> Runtime:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    return await build_runtime(
        data_dir=data_dir, policy=policy, snapshot=snapshot, clock=ManualClock(MONDAY), credentials=BotCredentials()
    )


def notifier_for(runtime: Runtime, time: VirtualTime, **settings: object) -> Notifier:
    """The app's notifier (Teams' limits, its retry policy and undeliverable report) on virtual time."""
    return Notifier(
        runtime.store,
        runtime.teams,
        runtime.service.clock,
        limiter=settings.pop("limiter", None) or RateLimiter(clock=time),  # type: ignore[arg-type]
        retry=settings.pop("retry", None) or runtime.notifier.retry,  # type: ignore[arg-type]
        on_undeliverable=runtime.notifier.on_undeliverable,
        sleep=time.sleep,
        **settings,  # type: ignore[arg-type]
    )


async def drain(notifier: Notifier, time: VirtualTime) -> DrainResult:
    return await time.run(notifier.drain())


def busiest(times: Iterable[float], seconds: float) -> int:
    """The most of ``times`` within any ``seconds``-long interval (end exclusive, as the windows count)."""
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + seconds) - i for i, t in enumerate(ordered)), default=0)


def assert_within_teams_limits(connector: FakeConnector) -> None:
    """What the connector accepted, per conversation and in all, never exceeds any of Teams' windows."""
    accepted: dict[str, list[float]] = {}
    for request in connector.received:
        accepted.setdefault(request.conversation_id, []).append(request.at)
    for window in TEAMS_PER_TENANT:
        assert busiest([r.at for r in connector.received], window.seconds) <= window.limit
    for times in accepted.values():
        for window in TEAMS_PER_CONVERSATION:
            assert busiest(times, window.seconds) <= window.limit


def reviewers(count: int) -> list[str]:
    return [f"0000{n:04d}-0000-4000-8000-000000000000" for n in range(count)]


def conversation_of(person: str) -> str:
    return f"a:personal-{person}"


async def remember(store: Store, people: Iterable[str], service_url: str) -> None:
    """Store a Teams conversation reference for each person, as their install would have (all at once, as
    a burst of installs arrives: the store group-commits them)."""
    await asyncio.gather(
        *(
            store.save_conversation(
                person,
                {
                    "bot": {"id": "28:accessbot", "name": "accessbot"},
                    "user": {"id": f"29:{person}", "aadObjectId": person},
                    "conversation": {"id": conversation_of(person), "conversationType": "personal"},
                    "channelId": "msteams",
                    "serviceUrl": service_url,
                },
            )
            for person in people
        )
    )


def review_request(person: str, n: int = 0, *, kind: str = "review_request", text: str | None = None) -> OutboxMessage:
    return OutboxMessage(
        key=f"{kind}:week-48:{n}>{person}",
        recipient=person,
        kind=kind,
        payload={
            "text": text or f"The Contoso access review is open (message {n}): 3 items need your answer by Mon 30 Nov.",
            "item_ids": [f"item-{person}-{n}"],
        },
        created_at=MONDAY + timedelta(microseconds=n),
        next_attempt_at=MONDAY,
    )


async def queue_fan_out(runtime: Runtime, connector: FakeConnector, people: list[str], extra: int = 0) -> int:
    """One review request for each person, and ``extra`` more for the first 50 of them; returns how many."""
    await remember(runtime.store, people, connector.url)
    messages = [review_request(person) for person in people]
    messages += [review_request(person, n) for person in people[:50] for n in range(1, extra + 1)]
    return await runtime.store.enqueue(messages)


def assert_each_arrived_once_in_order(connector: FakeConnector, people: list[str], per_person: dict[str, int]) -> None:
    deliveries = connector.deliveries()
    assert max(deliveries.values()) == 1, [d for d, times in deliveries.items() if times > 1][:5]
    assert len(deliveries) == sum(per_person.values())
    for person in people:
        expected = [review_request(person, n).payload["text"] for n in range(per_person[person])]
        assert connector.texts_in(conversation_of(person)) == expected


async def test_fan_out_to_1000_reviewers_through_injected_faults_loses_and_repeats_nothing(
    tmp_path: Path, start_connector: StartConnector, time: VirtualTime
) -> None:
    """6 % of requests are refused before delivery (429 with a 1 s Retry-After, 412, 502, 504); 50
    reviewers get three messages each, which must arrive in order despite the retries."""
    connector = await start_connector(
        per_conversation=TEAMS_PER_CONVERSATION, per_tenant=TEAMS_PER_TENANT, fault_rate=0.06, seed=7
    )
    runtime = await runtime_at(tmp_path)
    people = reviewers(1000)
    queued = await queue_fan_out(runtime, connector, people, extra=2)

    result = await drain(notifier_for(runtime, time), time)

    assert result == DrainResult(sent=queued, deferred=0, undeliverable=0)
    assert set(connector.injected) == {429, 412, 502, 504} and sum(connector.injected.values()) > 30
    assert_each_arrived_once_in_order(connector, people, {p: 3 if i < 50 else 1 for i, p in enumerate(people)})
    assert connector.over_limit == 0
    assert_within_teams_limits(connector)
    assert await runtime.store.due_messages(FAR_FUTURE, 10) == []
    await runtime.store.close()


async def test_the_pace_stays_within_teams_limits_so_the_connector_never_refuses_for_pace(
    tmp_path: Path, start_connector: StartConnector, time: VirtualTime
) -> None:
    """200 reviewers get one message and 20 get thirteen, so both the tenant's window and each busy
    conversation's own windows bind. The connector, counting on the same clock as the limiter, never
    has to refuse one."""
    connector = await start_connector(per_conversation=TEAMS_PER_CONVERSATION, per_tenant=TEAMS_PER_TENANT)
    runtime = await runtime_at(tmp_path)
    people = reviewers(220)
    queued = await queue_fan_out(runtime, connector, people[:200], extra=0)
    queued += await queue_fan_out(runtime, connector, people[200:], extra=12)  # 13 each: their own windows bind

    result = await drain(notifier_for(runtime, time), time)

    assert result.sent == queued == 200 + 20 * 13
    assert connector.over_limit == 0 and not connector.refused
    assert_within_teams_limits(connector)
    assert_each_arrived_once_in_order(connector, people, {p: 13 if i >= 200 else 1 for i, p in enumerate(people)})


async def test_without_the_limiter_the_connector_refuses_for_pace_and_the_retries_still_deliver_everything(
    tmp_path: Path, start_connector: StartConnector, time: VirtualTime
) -> None:
    """The control for the test above: the fake really enforces the windows, and its 429s are survived.

    Without a limiter every worker sends at once, and virtual time stands still while requests are in
    flight, so more than 50 requests meet the tenant's one-second window at the same instant: refusals
    for pace are certain, whatever the machine's speed. Enough tries that no message runs out of them
    while sixteen workers take turns at 50 a second; twenty reviewers get ten messages each."""
    connector = await start_connector(per_conversation=TEAMS_PER_CONVERSATION, per_tenant=TEAMS_PER_TENANT)
    runtime = await runtime_at(tmp_path)
    people = reviewers(120)
    queued = await queue_fan_out(runtime, connector, people[:100], extra=0)
    queued += await queue_fan_out(runtime, connector, people[100:], extra=9)
    unlimited = RateLimiter([Window(10**6, 1.0)], [Window(10**6, 1.0)], clock=time)

    result = await drain(notifier_for(runtime, time, limiter=unlimited, retry=RetryPolicy(attempts=100)), time)

    assert connector.over_limit > 0 and set(connector.refused) == {429}
    assert result.sent == queued
    assert_within_teams_limits(connector)  # the fake's own windows held
    assert_each_arrived_once_in_order(connector, people, {p: 10 if i >= 100 else 1 for i, p in enumerate(people)})


async def test_a_restart_mid_fan_out_loses_nothing_and_repeats_only_what_was_accepted_but_not_yet_marked_sent(
    tmp_path: Path, start_connector: StartConnector, time: VirtualTime
) -> None:
    """The drain is stopped when the connector accepts its 400th message (its task cancelled, every
    request it had started left to land or fail, the store closed); a new process opens the same data
    directory a virtual minute later and finishes.

    The bound: a message is repeated only if the connector accepted it and it was not yet marked sent
    when the process stopped. The Bot Connector takes no idempotency key, so nothing can tell such a
    message from one that never arrived; the notifier keeps at most one per worker in that state.
    """
    connector = await start_connector(per_conversation=TEAMS_PER_CONVERSATION, per_tenant=TEAMS_PER_TENANT)
    runtime = await runtime_at(tmp_path)
    people = reviewers(1000)
    await queue_fan_out(runtime, connector, people)
    first = notifier_for(runtime, time, concurrency=8)
    loop = asyncio.get_running_loop()
    requests = ThreadPoolExecutor(max_workers=8)  # msrest sends from the default executor
    loop.set_default_executor(requests)
    draining = asyncio.create_task(first.drain())

    def stop_at_the_400th(_: Received) -> None:
        if len(connector.received) == 400:
            draining.cancel()

    connector.on_accept = stop_at_the_400th
    with pytest.raises(asyncio.CancelledError):
        await time.run(draining)
    connector.on_accept = None
    with ThreadPoolExecutor(max_workers=1) as waiter:  # the stopped process's requests have all landed or failed
        await loop.run_in_executor(waiter, requests.shutdown)
    loop.set_default_executor(ThreadPoolExecutor(max_workers=8))
    await runtime.store.close()
    accepted_before_restart = {conversation for conversation, _ in connector.deliveries()}
    time.advance(60.0)  # a restart takes longer than any of Teams' short windows

    restarted = await runtime_at(tmp_path)
    still_queued = {conversation_of(m.recipient) for m in await restarted.store.due_messages(MONDAY, 10_000)}
    unmarked = still_queued & accepted_before_restart
    result = await drain(notifier_for(restarted, time, concurrency=8), time)

    assert 1000 - 400 - 8 <= len(still_queued) <= 1000 - 400 + 8 and result.sent == len(still_queued)
    assert len(unmarked) <= 8  # at most one per worker: accepted, not yet marked sent
    deliveries = connector.deliveries()
    assert {conversation for conversation, _ in deliveries} == {conversation_of(p) for p in people}  # none lost
    assert {conversation for (conversation, _), times in deliveries.items() if times > 1} == unmarked
    assert max(deliveries.values()) <= 2
    assert await restarted.store.due_messages(FAR_FUTURE, 10) == []
    await restarted.store.close()


async def test_a_reviewer_who_blocked_the_app_is_reported_once_to_the_security_leads_and_the_rest_are_delivered(
    tmp_path: Path, start_connector: StartConnector, time: VirtualTime
) -> None:
    connector = await start_connector(
        per_conversation=TEAMS_PER_CONVERSATION, per_tenant=TEAMS_PER_TENANT, blocked={conversation_of(MEGAN)}
    )
    runtime = await runtime_at(tmp_path)
    await runtime.service.open_current_campaign()  # review requests for Alex and Patti
    people = reviewers(200)
    await queue_fan_out(runtime, connector, people)
    await remember(runtime.store, [MEGAN, ALEX, LYNNE, PATTI], connector.url)
    await runtime.store.enqueue([review_request(MEGAN), review_request(MEGAN, 1, kind="reminder")])
    notifier = notifier_for(runtime, time)

    result = await drain(notifier, time)

    assert result.undeliverable == 2 and result.deferred == 0
    assert result.sent == 200 + 2 + 2  # the fan-out, Alex's and Patti's requests, and one report per lead
    report = "Could not reach Megan Bowen in Teams: the app is blocked or not installed."
    for lead in (ALEX, LYNNE):
        assert connector.texts_in(conversation_of(lead)).count(report) == 1
    assert connector.refused == {403: 2}
    assert len(connector.deliveries()) == 200 + 2 + 2 and max(connector.deliveries().values()) == 1
    assert await drain(notifier, time) == DrainResult(0, 0, 0)
    assert await runtime.store.enqueue([review_request(MEGAN)]) == 0  # refused for good, never retried


@pytest.mark.parametrize(
    ("setting", "text", "reason"),
    [
        ({"missing": {conversation_of(MEGAN)}}, "Hello", "the conversation no longer exists"),
        ({}, "x" * 120_000, "the message is too large to deliver (over about 100 KB)"),
    ],
)
async def test_a_vanished_conversation_or_an_oversized_message_is_undeliverable_and_reported(
    tmp_path: Path, start_connector: StartConnector, time: VirtualTime, setting: dict[str, object], text: str, reason: str
) -> None:
    connector = await start_connector(**setting)
    runtime = await runtime_at(tmp_path)
    await remember(runtime.store, [MEGAN, ALEX, LYNNE], connector.url)
    await runtime.store.enqueue([review_request(MEGAN, text=text), review_request(MEGAN, 1)])

    result = await drain(notifier_for(runtime, time), time)

    report = f"Could not reach Megan Bowen in Teams: {reason}."
    assert connector.texts_in(conversation_of(ALEX)) == [report]
    assert connector.texts_in(conversation_of(LYNNE)) == [report]
    if setting:
        assert result == DrainResult(sent=2, deferred=0, undeliverable=2)  # both of Megan's, one report per lead
    else:
        assert result == DrainResult(sent=3, deferred=0, undeliverable=1)  # the small one still reaches her
        assert connector.texts_in(conversation_of(MEGAN)) == [review_request(MEGAN, 1).payload["text"]]


async def test_a_connector_that_keeps_failing_defers_the_message_and_holds_the_persons_later_ones_behind_it(
    tmp_path: Path, start_connector: StartConnector, time: VirtualTime
) -> None:
    """The first message is tried as often as the retry policy says, one request a try, then deferred;
    the two after it are not tried at all, and go after it, in order, once it is due again."""
    connector = await start_connector(fault_rate=1.0, fault_statuses=(502,))
    runtime = await runtime_at(tmp_path)
    await remember(runtime.store, [MEGAN], connector.url)
    await runtime.store.enqueue([review_request(MEGAN, n) for n in range(3)])
    notifier = notifier_for(runtime, time)

    assert await drain(notifier, time) == DrainResult(sent=0, deferred=1, undeliverable=0)
    assert connector.refused == {502: notifier.retry.attempts}  # the later two were never tried
    (deferred,) = [m for m in await runtime.store.due_messages(FAR_FUTURE, 10) if m.attempts]
    assert deferred.key == review_request(MEGAN, 0).key and deferred.last_error == "Teams answered 502"

    connector.fault_rate = 0.0
    assert await drain(notifier, time) == DrainResult(sent=0, deferred=0, undeliverable=0)  # still waiting its turn
    assert isinstance(runtime.service.clock, ManualClock)
    runtime.service.clock.advance(timedelta(hours=1))
    assert await drain(notifier, time) == DrainResult(sent=3, deferred=0, undeliverable=0)
    assert connector.texts_in(conversation_of(MEGAN)) == [review_request(MEGAN, n).payload["text"] for n in range(3)]


async def test_a_message_the_channel_refuses_at_every_try_for_a_day_is_given_up_and_the_leads_are_told(
    tmp_path: Path, start_connector: StartConnector, time: VirtualTime
) -> None:
    """A connector answering 500 for one person only (the Agents Playground does so for anyone but its current
    user) is retried with backoff through the first day, then given up, and the leads hear of it once."""
    connector = await start_connector(failing={conversation_of(MEGAN)})
    runtime = await runtime_at(tmp_path)
    await remember(runtime.store, [MEGAN, ALEX, LYNNE], connector.url)
    await runtime.store.enqueue([review_request(MEGAN)])
    notifier = notifier_for(runtime, time)
    clock = runtime.service.clock
    assert isinstance(clock, ManualClock)

    deferrals = 0
    for _ in range(23 * 4):  # the first 23 hours, a drain every quarter of an hour
        result = await drain(notifier, time)
        assert result.undeliverable == 0 and result.sent == 0
        deferrals += result.deferred
        clock.advance(timedelta(minutes=15))
    assert deferrals >= 12  # tried again and again while the backoff grew to an hour
    assert connector.texts_in(conversation_of(ALEX)) == []

    for _ in range(3 * 4):
        await drain(notifier, time)
        clock.advance(timedelta(minutes=15))
    report = ("Could not reach Megan Bowen in Teams: the chat service refused it at every try for over a day "
              "(Teams answered 500).")
    assert connector.texts_in(conversation_of(ALEX)) == [report]
    assert connector.texts_in(conversation_of(LYNNE)) == [report]
    assert await runtime.store.due_messages(FAR_FUTURE, 10) == []  # nothing left retrying


async def test_a_connector_that_cannot_be_reached_is_tried_once_a_try_and_the_message_deferred_with_the_reason(
    tmp_path: Path, time: VirtualTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of the notifier's tries is one connection attempt: msrest's own retries (three more a try,
    backing off to 3.2 s in its thread, outside the limiter) are off. The attempts are counted where
    urllib3 opens its connections; nothing listens on the discard port, so each one is refused."""
    attempts: list[int] = []  # appended from msrest's threads
    open_connection = HTTPConnection._new_conn

    def counted(connection: HTTPConnection) -> Any:
        attempts.append(connection.port or 0)
        return open_connection(connection)

    monkeypatch.setattr(HTTPConnection, "_new_conn", counted)
    runtime = await runtime_at(tmp_path)
    await remember(runtime.store, [MEGAN], "http://127.0.0.1:9/")
    await runtime.store.enqueue([review_request(MEGAN)])
    notifier = notifier_for(runtime, time)

    assert await drain(notifier, time) == DrainResult(sent=0, deferred=1, undeliverable=0)
    assert attempts == [9] * notifier.retry.attempts
    (message,) = await runtime.store.due_messages(FAR_FUTURE, 10)
    assert message.attempts == 1 and message.last_error.startswith("could not reach Teams (ClientRequestError")
    assert message.next_attempt_at > MONDAY
