"""Migration 0002 fills the ledger's campaign column for records written before it, so a database upgraded
from 0001 finds each campaign's past records (its export, evidence pack and on-demand load) like a new one."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from bot.engine.model import LedgerEvent
from bot.ledger import EMPTY_HEAD, chain, record_to_line
from bot.store.postgres_schema import upgrade
from bot.store.postgres_store import LEDGER, PostgresStore
from tests.contract.samples import MONDAY


async def test_records_written_before_the_campaign_column_are_found_by_campaign_after_the_upgrade(
    empty_postgres_url: str,
) -> None:
    upgrade(empty_postgres_url, "0001")
    records = chain([LedgerEvent("campaign_opened", {"campaign_id": "c1"}),
                     LedgerEvent("reminded", {"round": 1}),
                     LedgerEvent("decision", {"campaign_id": "c2", "item_id": "i2"}),
                     LedgerEvent("decision", {"campaign_id": "c1", "item_id": "i1", "text": "Zoë \\u2028 “quoted”"})],
                    EMPTY_HEAD, MONDAY)
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:  # as the 0001 writer stored them
        conn.cursor().executemany("INSERT INTO ledger_records (ledger, seq, line) VALUES (%s, %s, %s)",
                                  [(LEDGER, r.seq, record_to_line(r).decode().rstrip("\n")) for r in records])
        conn.execute("INSERT INTO ledger_heads (ledger, seq, hash) VALUES (%s, %s, %s)",
                     (LEDGER, records[-1].seq, records[-1].hash))

    upgrade(empty_postgres_url)

    store = PostgresStore(empty_postgres_url)
    try:
        assert await store.ledger_records_of("c1") == [records[0], records[3]]
        assert await store.ledger_records_of("c2") == [records[2]]
        more = await store.append_ledger([LedgerEvent("decision", {"campaign_id": "c2", "item_id": "i3"})],
                                         MONDAY + timedelta(days=1))
        assert await store.ledger_records_of("c2") == [records[2], *more]
    finally:
        await store.close()
