"""Proactive delivery from the outbox at scale: the real Teams channel (botbuilder, msrest, HTTP) into a
fake Bot Connector that enforces Teams' limits and fails on purpose.

Teams' windows are used at a tenth of their length (7 messages per 0.1 s per conversation, 50 per 0.1 s
per tenant, and so on), so a thousand reviewers take seconds; the limiter and the fake take the same
scaled windows, as they would take Teams' real ones.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterable

import pytest

from bot.app import Runtime, build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.notifier import DrainResult, Notifier, RetryPolicy
from bot.ratelimit import TEAMS_PER_CONVERSATION, TEAMS_PER_TENANT, RateLimiter, Window
from bot.store.base import OutboxMessage, Store
from tests.integration.fake_connector import FakeConnector

SCALE = 0.1
PER_CONVERSATION = tuple(Window(w.limit, w.seconds * SCALE) for w in TEAMS_PER_CONVERSATION)
PER_TENANT = tuple(Window(w.limit, w.seconds * SCALE) for w in TEAMS_PER_TENANT)
QUICK_RETRIES = RetryPolicy(attempts=8, base=0.01, cap=0.2, longest_wait=2.0)
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
FAR_FUTURE = MONDAY + timedelta(days=365)
MEGAN = "36e5377f-c245-4eca-a6eb-0f97e46e9dcc"
ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
LYNNE = "0352574e-9ccb-4a60-b927-66c30c6c9a04"
PATTI = "f66eb8b7-79c8-407b-8b95-85a879f2381e"

StartConnector = Callable[..., Awaitable[FakeConnector]]


@pytest.fixture
async def start_connector() -> AsyncIterator[StartConnector]:
    started: list[FakeConnector] = []

    async def start(**settings: object) -> FakeConnector:
        connector = FakeConnector(**settings)  # type: ignore[arg-type]
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


def scaled_notifier(runtime: Runtime, **settings: object) -> Notifier:
    """The app's notifier (its undeliverable report included) with Teams' limits scaled down."""
    return Notifier(
        runtime.store,
        runtime.teams,
        runtime.service.clock,
        limiter=settings.pop("limiter", None) or RateLimiter(PER_CONVERSATION, PER_TENANT),  # type: ignore[arg-type]
        retry=QUICK_RETRIES,
        on_undeliverable=runtime.notifier.on_undeliverable,
        **settings,  # type: ignore[arg-type]
    )


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
    """One review request for each person, and ``extra`` more for the first 50; returns how many."""
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
    tmp_path: Path, start_connector: StartConnector
) -> None:
    """6 % of requests are refused before delivery (429 with Retry-After, 412, 502, 504); 50 reviewers
    get three messages each, which must arrive in order despite the retries."""
    connector = await start_connector(
        per_conversation=PER_CONVERSATION, per_tenant=PER_TENANT, fault_rate=0.06, fault_retry_after=0.05, seed=7
    )
    runtime = await runtime_at(tmp_path)
    people = reviewers(1000)
    queued = await queue_fan_out(runtime, connector, people, extra=2)

    result = await scaled_notifier(runtime).drain()

    assert result == DrainResult(sent=queued, deferred=0, undeliverable=0)
    assert set(connector.injected) == {429, 412, 502, 504} and sum(connector.injected.values()) > 30
    assert_each_arrived_once_in_order(connector, people, {p: 3 if i < 50 else 1 for i, p in enumerate(people)})
    assert connector.over_limit == 0
    assert await runtime.store.due_messages(FAR_FUTURE, 10) == []
    await runtime.store.close()


async def test_the_pace_stays_within_teams_limits_so_the_connector_never_refuses_for_pace(
    tmp_path: Path, start_connector: StartConnector
) -> None:
    connector = await start_connector(per_conversation=PER_CONVERSATION, per_tenant=PER_TENANT)
    runtime = await runtime_at(tmp_path)
    people = reviewers(500)
    queued = await queue_fan_out(runtime, connector, people[:450], extra=0)
    queued += await queue_fan_out(runtime, connector, people[450:], extra=12)  # 13 each: their own windows bind
    loop = asyncio.get_running_loop()

    started = loop.time()
    result = await scaled_notifier(runtime).drain()
    elapsed = loop.time() - started

    assert result.sent == queued == 450 + 50 * 13
    assert connector.over_limit == 0 and not connector.refused
    assert connector.busiest(PER_TENANT[0].seconds) <= PER_TENANT[0].limit
    allowed = PER_TENANT[0].limit / PER_TENANT[0].seconds
    assert queued / elapsed <= allowed * 1.01
    assert queued / elapsed >= allowed * 0.5, f"{queued / elapsed:.0f}/s of {allowed:.0f}/s allowed"
    assert_each_arrived_once_in_order(connector, people, {p: 13 if i >= 450 else 1 for i, p in enumerate(people)})


async def test_without_the_limiter_the_connector_refuses_for_pace_and_the_retries_still_deliver_everything(
    tmp_path: Path, start_connector: StartConnector
) -> None:
    """The control for the test above: the fake really enforces the windows, and its 429s are survived."""
    connector = await start_connector(per_conversation=PER_CONVERSATION, per_tenant=PER_TENANT)
    runtime = await runtime_at(tmp_path)
    people = reviewers(300)
    queued = await queue_fan_out(runtime, connector, people, extra=9)
    unlimited = RateLimiter([Window(10**6, 1.0)], [Window(10**6, 1.0)])

    result = await scaled_notifier(runtime, limiter=unlimited).drain()

    assert connector.over_limit > 0
    assert result.sent == queued
    assert_each_arrived_once_in_order(connector, people, {p: 10 if i < 50 else 1 for i, p in enumerate(people)})


async def test_a_restart_mid_fan_out_loses_nothing_and_repeats_at_most_the_messages_in_flight(
    tmp_path: Path, start_connector: StartConnector
) -> None:
    """The drain is stopped part-way (its task cancelled, the store closed), a new process opens the same
    data directory and finishes.

    The bound: a message is repeated only if the connector accepted it and it was not yet marked sent
    when the process stopped. The Bot Connector takes no idempotency key, so nothing can tell such a
    message from one that never arrived. Those are exactly the notifier's ``in_flight`` keys at the stop
    (requests under way, or answered and not yet marked), at most one per worker: ``concurrency``. A
    cancelled request still completes in msrest's thread, which is why they can arrive after the stop.
    """
    connector = await start_connector(per_conversation=PER_CONVERSATION, per_tenant=PER_TENANT, delay=0.01)
    runtime = await runtime_at(tmp_path)
    people = reviewers(1000)
    await queue_fan_out(runtime, connector, people)
    first = scaled_notifier(runtime, concurrency=8)

    draining = asyncio.create_task(first.drain())
    while len(connector.received) < 400:
        await asyncio.sleep(0.005)
    in_flight_at_stop = set(first.in_flight)
    draining.cancel()
    with pytest.raises(asyncio.CancelledError):
        await draining
    await runtime.store.close()
    await asyncio.sleep(PER_TENANT[0].seconds)  # a restart takes longer than Teams' shortest window

    restarted = await runtime_at(tmp_path)
    still_queued = len(await restarted.store.due_messages(MONDAY, 10_000))
    result = await scaled_notifier(restarted, concurrency=8).drain()

    assert 0 < still_queued < 1000 - 300 and result.sent == still_queued
    deliveries = connector.deliveries()
    assert {conversation for conversation, _ in deliveries} == {conversation_of(p) for p in people}  # none lost
    repeated = {conversation for (conversation, _), times in deliveries.items() if times > 1}
    assert max(deliveries.values()) <= 2
    assert repeated <= {conversation_of(key.split(">")[1]) for key in in_flight_at_stop}
    assert len(in_flight_at_stop) <= 8
    assert await restarted.store.due_messages(FAR_FUTURE, 10) == []
    await restarted.store.close()


async def test_a_reviewer_who_blocked_the_app_is_reported_once_to_the_security_leads_and_the_rest_are_delivered(
    tmp_path: Path, start_connector: StartConnector
) -> None:
    connector = await start_connector(
        per_conversation=PER_CONVERSATION, per_tenant=PER_TENANT, blocked={conversation_of(MEGAN)}
    )
    runtime = await runtime_at(tmp_path)
    await runtime.service.open_current_campaign()  # review requests for Alex and Patti
    people = reviewers(200)
    await queue_fan_out(runtime, connector, people)
    await remember(runtime.store, [MEGAN, ALEX, LYNNE, PATTI], connector.url)
    await runtime.store.enqueue([review_request(MEGAN), review_request(MEGAN, 1, kind="reminder")])

    result = await scaled_notifier(runtime).drain()

    assert result.undeliverable == 2 and result.deferred == 0
    assert result.sent == 200 + 2 + 2  # the fan-out, Alex's and Patti's requests, and one report per lead
    report = "Could not reach Megan Bowen in Teams: the app is blocked or not installed."
    for lead in (ALEX, LYNNE):
        assert connector.texts_in(conversation_of(lead)).count(report) == 1
    assert connector.refused == {403: 2}
    assert len(connector.deliveries()) == 200 + 2 + 2 and max(connector.deliveries().values()) == 1
    assert await scaled_notifier(runtime).drain() == DrainResult(0, 0, 0)
    assert await runtime.store.enqueue([review_request(MEGAN)]) == 0  # refused for good, never retried


@pytest.mark.parametrize(
    ("setting", "text", "reason"),
    [
        ({"missing": {conversation_of(MEGAN)}}, "Hello", "the conversation no longer exists"),
        ({}, "x" * 120_000, "the message is too large to deliver (over about 100 KB)"),
    ],
)
async def test_a_vanished_conversation_or_an_oversized_message_is_undeliverable_and_reported(
    tmp_path: Path, start_connector: StartConnector, setting: dict[str, object], text: str, reason: str
) -> None:
    connector = await start_connector(**setting)
    runtime = await runtime_at(tmp_path)
    await remember(runtime.store, [MEGAN, ALEX, LYNNE], connector.url)
    await runtime.store.enqueue([review_request(MEGAN, text=text), review_request(MEGAN, 1)])

    result = await scaled_notifier(runtime).drain()

    report = f"Could not reach Megan Bowen in Teams: {reason}."
    assert connector.texts_in(conversation_of(ALEX)) == [report]
    assert connector.texts_in(conversation_of(LYNNE)) == [report]
    if setting:
        assert result == DrainResult(sent=2, deferred=0, undeliverable=2)  # both of Megan's, one report per lead
    else:
        assert result == DrainResult(sent=3, deferred=0, undeliverable=1)  # the small one still reaches her
        assert connector.texts_in(conversation_of(MEGAN)) == [review_request(MEGAN, 1).payload["text"]]


async def test_a_connector_that_keeps_failing_defers_the_message_and_holds_the_persons_later_ones_behind_it(
    tmp_path: Path, start_connector: StartConnector
) -> None:
    """The first message is tried as often as the retry policy says, one request a try, then deferred;
    the two after it are not tried at all, and go after it, in order, once it is due again."""
    connector = await start_connector(fault_rate=1.0, fault_statuses=(502,))
    runtime = await runtime_at(tmp_path)
    await remember(runtime.store, [MEGAN], connector.url)
    await runtime.store.enqueue([review_request(MEGAN, n) for n in range(3)])
    notifier = scaled_notifier(runtime)

    assert await notifier.drain() == DrainResult(sent=0, deferred=1, undeliverable=0)
    assert connector.refused == {502: QUICK_RETRIES.attempts}  # the later two were never tried
    (deferred,) = [m for m in await runtime.store.due_messages(FAR_FUTURE, 10) if m.attempts]
    assert deferred.key == review_request(MEGAN, 0).key and deferred.last_error == "Teams answered 502"

    connector.fault_rate = 0.0
    assert await notifier.drain() == DrainResult(sent=0, deferred=0, undeliverable=0)  # still waiting its turn
    assert isinstance(runtime.service.clock, ManualClock)
    runtime.service.clock.advance(timedelta(hours=1))
    assert await notifier.drain() == DrainResult(sent=3, deferred=0, undeliverable=0)
    assert connector.texts_in(conversation_of(MEGAN)) == [review_request(MEGAN, n).payload["text"] for n in range(3)]


async def test_a_connector_that_cannot_be_reached_defers_the_message_with_the_reason(tmp_path: Path) -> None:
    """Each try is one connection attempt: msrest's own retries (three, backing off to 3.2 s) are off,
    or these eight tries would take about 40 s."""
    runtime = await runtime_at(tmp_path)
    await remember(runtime.store, [MEGAN], "http://127.0.0.1:9/")  # nothing listens on the discard port
    await runtime.store.enqueue([review_request(MEGAN)])
    loop = asyncio.get_running_loop()

    started = loop.time()
    assert await scaled_notifier(runtime).drain() == DrainResult(sent=0, deferred=1, undeliverable=0)
    assert loop.time() - started < 3.0
    (message,) = await runtime.store.due_messages(FAR_FUTURE, 10)
    assert message.attempts == 1 and message.last_error.startswith("could not reach Teams (ClientRequestError")
    assert message.next_attempt_at > MONDAY
