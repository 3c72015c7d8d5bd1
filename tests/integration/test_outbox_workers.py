"""Several notifier processes drain one PostgreSQL outbox into a fake Bot Connector: nothing is sent twice,
nothing is lost, each person's messages arrive in order, and the messages a worker held when it was killed
with SIGKILL are delivered by the others once its lease ran out."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg

from bot.clock import SystemClock
from bot.store.base import OutboxMessage
from bot.store.postgres_store import PostgresStore
from tests.integration.fake_connector import FakeConnector

REPO = Path(__file__).resolve().parents[2]
PEOPLE = 2000
TWICE = 400  # people who get a second message, which must arrive after the first
WORKERS = 3
LEASE_SECONDS = 4.0
CONCURRENCY = 8  # tests/integration/outbox_worker.py: the most a worker has accepted but not yet marked sent
HANG_GUARD = 300.0  # seconds: reached only if the drain hangs, never a measure of speed


def person(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


async def queue(store: PostgresStore, service_url: str) -> list[OutboxMessage]:
    for start in range(0, PEOPLE, 200):
        await asyncio.gather(*(store.save_conversation(person(n), {
            "bot": {"id": "28:accessbot", "name": "accessbot"},
            "user": {"id": f"29:{person(n)}", "aadObjectId": person(n)},
            "conversation": {"id": f"a:{person(n)}", "conversationType": "personal"},
            "channelId": "msteams",
            "serviceUrl": service_url,
        }) for n in range(start, min(PEOPLE, start + 200))))
    now = SystemClock().now()
    messages = [
        OutboxMessage(key=f"{round_}:{person(n)}", recipient=person(n), kind="review_request",
                      payload={"text": f"message {round_} for {person(n)}", "item_ids": []},
                      created_at=now + timedelta(microseconds=round_ * PEOPLE + n), next_attempt_at=now)
        for round_ in (1, 2) for n in range(PEOPLE if round_ == 1 else TWICE)
    ]
    assert await store.enqueue(messages) == len(messages)
    return messages


async def start_worker(url: str, name: str) -> asyncio.subprocess.Process:
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.outbox_worker", url, name, str(LEASE_SECONDS),
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=asyncio.subprocess.PIPE)
    assert worker.stdout is not None
    ready = await asyncio.wait_for(worker.stdout.readline(), HANG_GUARD)
    assert ready == b"ready\n", ready
    return worker


async def held_by(url: str, worker: str) -> set[str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        rows = await (await conn.execute(
            "SELECT key FROM outbox WHERE state = 'pending' AND claimed_by = %s", (worker,))).fetchall()
    return {key for (key,) in rows}


async def test_several_notifier_processes_drain_one_outbox_and_a_killed_ones_messages_go_out_after_its_lease(
    postgres_url: str,
) -> None:
    connector = FakeConnector(fault_rate=0.01, fault_statuses=(502,))
    await connector.start()
    store = PostgresStore(postgres_url)
    workers: list[asyncio.subprocess.Process] = []
    try:
        messages = await queue(store, connector.url)
        names = [f"worker-{n}" for n in range(WORKERS)]
        workers = list(await asyncio.gather(*(start_worker(postgres_url, name) for name in names)))

        async def stopped_holding_claims() -> set[str]:
            """Once some messages went out, freeze worker 0 (SIGSTOP) at a moment it holds claims."""
            while True:
                await asyncio.sleep(0.02)
                if len(connector.received) < 300:
                    continue
                workers[0].send_signal(signal.SIGSTOP)
                held = await held_by(postgres_url, names[0])
                if held:
                    return held
                workers[0].send_signal(signal.SIGCONT)

        held = await asyncio.wait_for(stopped_holding_claims(), HANG_GUARD)
        workers[0].send_signal(signal.SIGKILL)  # frozen, so it holds exactly these
        assert await asyncio.wait_for(workers[0].wait(), HANG_GUARD) == -signal.SIGKILL
        assert held == await held_by(postgres_url, names[0])

        for survivor in workers[1:]:
            await asyncio.wait_for(survivor.communicate(), HANG_GUARD)
            assert survivor.returncode == 0

        delivered = Counter(received.body.get("text") for received in connector.received if received.method == "POST")
        expected = {message.payload["text"]: message.key for message in messages}
        assert set(delivered) == set(expected)  # nothing lost, nothing that was not queued
        twice = {text for text, count in delivered.items() if count > 1}
        # The connector takes no idempotency key: only a message the killed worker had sent and not yet marked
        # sent may arrive again, and a worker has at most CONCURRENCY of those.
        assert {expected[text] for text in twice} <= held and len(twice) <= CONCURRENCY
        assert all(count <= 2 for count in delivered.values())
        assert not await store.due_messages(SystemClock().now() + timedelta(days=365), 1)
        assert held <= {expected[text] for text in delivered}

        for n in range(TWICE):
            texts = list(dict.fromkeys(connector.texts_in(f"a:{person(n)}")))
            assert texts == [f"message 1 for {person(n)}", f"message 2 for {person(n)}"]
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
        await store.close()
        await connector.stop()
