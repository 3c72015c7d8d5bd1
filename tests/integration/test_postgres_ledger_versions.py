"""Migration 0003 fills the ledger's versions and event keys from the records written before it, so a database
upgraded from 0002 refuses a stale answer, or a scheduled step repeated, exactly like a new one."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from bot.engine.model import LedgerEvent
from bot.ledger import EMPTY_HEAD, chain, record_to_line
from bot.store.base import campaign_of
from bot.store.postgres_schema import upgrade
from bot.store.postgres_store import LEDGER, PostgresStore
from tests.contract.samples import MONDAY


async def test_records_written_before_the_versions_refuse_a_stale_answer_and_a_repeated_step_after_the_upgrade(
    empty_postgres_url: str,
) -> None:
    upgrade(empty_postgres_url, "0002")
    reminded = LedgerEvent("reminded", {"campaign_id": "c1", "round": 1})
    records = chain([LedgerEvent("campaign_opened", {"campaign_id": "c1"}),
                     LedgerEvent("decision", {"campaign_id": "c1", "item_id": "i1", "action": "keep"}),
                     reminded,
                     reminded],  # an old ledger two processes wrote: the first record keeps the event key
                    EMPTY_HEAD, MONDAY)
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:  # as the 0002 writer stored them
        conn.cursor().executemany(
            "INSERT INTO ledger_records (ledger, seq, line, campaign_id) VALUES (%s, %s, %s, %s)",
            [(LEDGER, r.seq, record_to_line(r).decode().rstrip("\n"), campaign_of(r)) for r in records])
        conn.execute("INSERT INTO ledger_heads (ledger, seq, hash) VALUES (%s, %s, %s)",
                     (LEDGER, records[-1].seq, records[-1].hash))

    upgrade(empty_postgres_url)

    store = PostgresStore(empty_postgres_url)
    later = MONDAY + timedelta(days=1)
    try:
        stale = await store.append_if_current(
            [LedgerEvent("decision", {"campaign_id": "c1", "item_id": "i1", "action": "revoke"})], {"item:i1": 0}, later)
        assert stale.refused and stale.standing == (records[1],)
        again = await store.append_if_current([reminded], {}, later)
        assert again.refused and again.standing == (records[2],)
        current = await store.append_if_current(
            [LedgerEvent("decision", {"campaign_id": "c1", "item_id": "i1", "action": "revoke"})], {"item:i1": 2}, later)
        assert not current.refused and current.records[0].seq == 5
    finally:
        await store.close()
