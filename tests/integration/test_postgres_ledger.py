"""The PostgreSQL ledger under what only a shared database brings: several writers at once, rows changed
behind the store's back, and a database whose schema is behind the code."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from bot.clock import ManualClock
from bot.engine.model import LedgerEvent
from bot.ledger_check import check_ledger
from bot.ledger_signing import LedgerSigner
from bot.operator_errors import ExitCode, OperatorError
from bot.store.base import LedgerIntegrityError, RecordRejected, StoreUnavailable
from bot.store.postgres_store import PostgresStore
from tests.contract.samples import MONDAY


async def _append_many(store: PostgresStore, writer: str, count: int) -> None:
    for n in range(count):
        await store.append_ledger(
            [LedgerEvent("decision", {"writer": writer, "n": n}), LedgerEvent("reminded", {"writer": writer, "n": n})],
            MONDAY + timedelta(seconds=n),
        )


async def test_two_instances_appending_at_once_make_one_unbroken_signed_chain(postgres_url: str) -> None:
    signer = LedgerSigner.generate()
    one = PostgresStore(postgres_url, signer=signer, clock=ManualClock(MONDAY))
    two = PostgresStore(postgres_url, signer=signer, clock=ManualClock(MONDAY))
    try:
        await asyncio.gather(*(_append_many(store, f"{name}-{task}", 15)
                               for name, store in (("one", one), ("two", two)) for task in range(3)))
        records = await one.ledger_records()
        entries = await two.ledger_checkpoints()
    finally:
        await one.close()
        await two.close()

    assert [record.seq for record in records] == list(range(1, 181))
    for record in records:  # every batch's two records stayed together: each append held the lock throughout
        if record.type == "decision":
            assert records[record.seq].data == record.data and records[record.seq].type == "reminded"
    assert all(entry.signed_by(signer.public_key) for entry in entries)
    signed = [entry.seq for entry in entries]  # one checkpoint per group commit, in the order they committed
    assert signed == sorted(set(signed)) and signed[-1] == 180 and all(seq % 2 == 0 for seq in signed)
    result = await check_ledger(postgres_url, Path(), signer.public_key)
    assert result.ok, result.problems
    assert result.count == 180


async def test_a_row_deleted_behind_the_stores_back_stops_appends_and_fails_verify(postgres_url: str) -> None:
    signer = LedgerSigner.generate()
    store = PostgresStore(postgres_url, signer=signer, clock=ManualClock(MONDAY))
    try:
        await _append_many(store, "one", 3)
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("DELETE FROM ledger_records WHERE seq = 6")
        with pytest.raises(LedgerIntegrityError):
            await store.append_ledger([LedgerEvent("decision", {"n": 9})], MONDAY)
        assert store.write_problem() is not None
    finally:
        await store.close()
    result = await check_ledger(postgres_url, Path(), signer.public_key)
    assert not result.ok


async def test_a_signed_ledger_refuses_a_writer_without_the_key(postgres_url: str) -> None:
    signed = PostgresStore(postgres_url, signer=LedgerSigner.generate())
    unsigned = PostgresStore(postgres_url)
    other_key = PostgresStore(postgres_url, signer=LedgerSigner.generate())
    try:
        await signed.append_ledger([LedgerEvent("campaign_opened", {"campaign_id": "c1"})], MONDAY)
        for refused in (unsigned, other_key):
            with pytest.raises(LedgerIntegrityError):
                await refused.append_ledger([LedgerEvent("decision", {"forged": True})], MONDAY)
        assert len(await signed.ledger_records()) == 1
    finally:
        for store in (signed, unsigned, other_key):
            await store.close()


async def test_a_record_that_cannot_be_encoded_is_refused_and_the_next_one_is_written(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        with pytest.raises(RecordRejected):
            await store.append_ledger([LedgerEvent("decision", {"comment": "\ud800"})], MONDAY)
        written = await store.append_ledger([LedgerEvent("decision", {"comment": "fine"})], MONDAY)
        assert written[0].seq == 1 and store.write_problem() is None
    finally:
        await store.close()


async def test_a_database_without_the_schema_is_refused_with_the_command_that_fixes_it(empty_postgres_url: str) -> None:
    store = PostgresStore(empty_postgres_url)
    with pytest.raises(OperatorError) as refused:
        await store.start()
    assert "run `accessbot db upgrade`" in refused.value.message
    assert refused.value.exit_code is ExitCode.UNAVAILABLE
    await store.close()


async def test_a_lost_connection_is_store_unavailable_and_the_next_write_recovers(postgres_url: str) -> None:
    name = f"accessbot_lost_{id(postgres_url)}"
    url = f"{postgres_url}&application_name={name}"
    store = PostgresStore(url, max_connections=1)
    try:
        await store.append_ledger([LedgerEvent("decision", {"n": 1})], MONDAY)
        with psycopg.connect(postgres_url, autocommit=True) as admin:  # only this test's own connection
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (name,))

        with pytest.raises(StoreUnavailable):
            await store.append_ledger([LedgerEvent("decision", {"n": 2})], MONDAY)
        assert "cannot be written" in (store.write_problem() or "")

        again = await store.append_ledger([LedgerEvent("decision", {"n": 3})], MONDAY)
        assert again[0].seq == 2 and store.write_problem() is None
    finally:
        await store.close()


async def test_an_unsigned_ledger_is_adopted_once_and_then_grows_signed(postgres_url: str) -> None:
    signer = LedgerSigner.generate()
    unsigned = PostgresStore(postgres_url)
    signed = PostgresStore(postgres_url, signer=signer)
    try:
        await _append_many(unsigned, "before-signing", 2)
        with pytest.raises(LedgerIntegrityError, match="ledger adopt"):
            await signed.append_ledger([LedgerEvent("decision", {"n": 1})], MONDAY)

        checkpoint = await signed.adopt_unsigned_ledger(MONDAY)
        with pytest.raises(ValueError, match="already signed"):
            await signed.adopt_unsigned_ledger(MONDAY)
        more = await signed.append_ledger([LedgerEvent("decision", {"n": 1})], MONDAY)
    finally:
        await unsigned.close()
        await signed.close()
    assert checkpoint.seq == 4 and more[0].seq == 5
    result = await check_ledger(postgres_url, Path(), signer.public_key)
    assert result.ok and result.count == 5, result.problems


async def test_a_poison_record_in_a_group_commit_fails_alone(postgres_url: str) -> None:
    signer = LedgerSigner.generate()
    store = PostgresStore(postgres_url, signer=signer)
    try:
        await store.start()
        answers = await asyncio.gather(
            store.append_ledger([LedgerEvent("decision", {"n": 1})], MONDAY),
            store.append_ledger([LedgerEvent("decision", {"comment": "\udc80"})], MONDAY),
            store.append_ledger([LedgerEvent("decision", {"n": 3})], MONDAY),
            return_exceptions=True,
        )
        records = await store.ledger_records()
    finally:
        await store.close()
    assert isinstance(answers[1], RecordRejected)
    assert [record.data for record in records] == [{"n": 1}, {"n": 3}]
    assert (await check_ledger(postgres_url, Path(), signer.public_key)).ok


async def test_a_statement_failing_mid_group_commit_lands_nothing_of_the_group(postgres_url: str) -> None:
    """The group commit's statements go out as one pipeline: the records, versions and checkpoint are already
    sent when the head's upsert fails (here a trigger answering "disk full"), and none of them may stay."""
    signer = LedgerSigner.generate()
    store = PostgresStore(postgres_url, signer=signer, max_connections=1)
    opened = LedgerEvent("campaign_opened", {"campaign_id": "c1"})
    try:
        before = await store.append_ledger([opened], MONDAY)
        with psycopg.connect(postgres_url, autocommit=True) as admin:  # this test's own schema
            admin.execute("CREATE FUNCTION refuse_head() RETURNS trigger LANGUAGE plpgsql AS "
                          "$$ BEGIN RAISE EXCEPTION 'no space left' USING ERRCODE = 'disk_full'; END $$")
            admin.execute("CREATE TRIGGER refuse_head BEFORE UPDATE ON ledger_heads "
                          "FOR EACH ROW EXECUTE FUNCTION refuse_head()")
        answers = await asyncio.gather(
            store.append_if_current([LedgerEvent("decision", {"campaign_id": "c1", "item_id": "i1"})],
                                    {"item:i1": 0}, MONDAY),
            store.append_ledger([LedgerEvent("reminded", {"campaign_id": "c1", "round": 1})], MONDAY),
            store.append_ledger([LedgerEvent("decision", {"campaign_id": "c1", "item_id": "i2"})], MONDAY),
            return_exceptions=True,
        )
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            stored = admin.execute(
                "SELECT (SELECT count(*) FROM ledger_records), (SELECT count(*) FROM ledger_entries), "
                "(SELECT seq FROM ledger_heads), (SELECT count(*) FROM ledger_versions WHERE key LIKE 'item:%%')"
            ).fetchone()
            admin.execute("DROP TRIGGER refuse_head ON ledger_heads")
        async with store.transaction() as conn:  # the pool's one connection, back to implicit transactions
            assert not conn.autocommit
        after = await store.append_if_current([LedgerEvent("decision", {"campaign_id": "c1", "item_id": "i1"})],
                                              {"item:i1": 0}, MONDAY)
        reminded = await store.append_ledger([LedgerEvent("reminded", {"campaign_id": "c1", "round": 1})], MONDAY)
    finally:
        await store.close()

    assert all(isinstance(answer, StoreUnavailable) and "no space left" in str(answer) for answer in answers), answers
    assert stored == (1, 1, 1, 0)  # only the campaign's opening: no record, checkpoint, head or version of the group
    assert [record.seq for record in before] == [1]
    assert [record.seq for record in after.records] == [2] and [record.seq for record in reminded] == [3]
    result = await check_ledger(postgres_url, Path(), signer.public_key)
    assert result.ok and result.count == 3, result.problems
