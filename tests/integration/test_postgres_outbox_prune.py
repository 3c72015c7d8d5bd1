"""A running PostgreSQL instance forgets sent keys past their horizon while it drains, not only when it starts:
so a long-lived server's outbox table stays a few weeks of messages long."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from bot.clock import ManualClock
from bot.store.base import OUTBOX_LEASE, SENT_HORIZON
from bot.store.postgres_store import PostgresStore
from tests.contract.samples import MONDAY, message


async def rows(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM outbox")).fetchone()
    return int(row[0]) if row else 0


async def test_a_draining_instance_deletes_sent_keys_past_the_horizon_and_keeps_younger_ones(postgres_url: str) -> None:
    clock = ManualClock(MONDAY)
    store = PostgresStore(postgres_url, clock=clock)
    try:
        await store.enqueue([message("old"), message("young", created_at=MONDAY + timedelta(days=30))])
        await store.claim_due("notifier", MONDAY, 10, OUTBOX_LEASE)
        await store.mark_sent("old", MONDAY, worker="notifier")
        later = MONDAY + timedelta(days=30)
        await store.claim_due("notifier", later, 10, OUTBOX_LEASE)
        await store.mark_sent("young", later, worker="notifier")

        clock.advance(SENT_HORIZON + timedelta(days=1))  # "old" left 36 days ago, "young" 6
        assert await store.claim_due("notifier", clock.now(), 10, OUTBOX_LEASE) == []

        assert await rows(postgres_url) == 1
        assert await store.enqueue([message("old"), message("young")]) == 1
    finally:
        await store.close()
