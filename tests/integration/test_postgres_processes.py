"""What PostgreSQL adds over the embedded store: separate processes writing one ledger, and text the
database cannot hold refused as one bad record rather than an unexpected failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.ledger_check import check_ledger
from bot.ledger_signing import LedgerSigner
from bot.store.base import PostedCard, RecordRejected
from bot.store.postgres_store import PostgresStore
from tests.contract.samples import message

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import asyncio, sys
from datetime import datetime, timezone
from pathlib import Path
from bot.engine.model import LedgerEvent
from bot.ledger_signing import LedgerSigner
from bot.store.postgres_store import PostgresStore

async def main(url, key, name):
    store = PostgresStore(url, signer=LedgerSigner.from_file(Path(key)))
    async def one(task):
        for n in range(10):
            await store.append_ledger([LedgerEvent("decision", {"writer": name, "task": task, "n": n})],
                                      datetime(2026, 11, 23, 9, tzinfo=timezone.utc))
    try:
        await asyncio.gather(*(one(task) for task in range(4)))
    finally:
        await store.close()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_two_processes_appending_at_once_leave_one_chain_that_verifies(postgres_url: str, tmp_path: Path) -> None:
    key = tmp_path / "ledger.key"
    signer = LedgerSigner.generate()
    key.write_bytes(signer.private_pem())
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, postgres_url, str(key), name], cwd=ROOT)
               for name in ("one", "two")]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]

    result = await check_ledger(postgres_url, Path(), signer.public_key)
    assert result.ok, result.problems
    assert result.count == 80
    store = PostgresStore(postgres_url, read_only=True)
    try:
        records = await store.ledger_records()
    finally:
        await store.close()
    assert {(r.data["writer"], r.data["task"], r.data["n"]) for r in records} == \
        {(name, task, n) for name in ("one", "two") for task in range(4) for n in range(10)}


@pytest.mark.parametrize("key", ["nul\x00inside", "lone\ud800surrogate"])
async def test_a_key_the_database_cannot_hold_is_a_rejected_record_not_a_crash(postgres_url: str, key: str) -> None:
    store = PostgresStore(postgres_url)
    try:
        with pytest.raises(RecordRejected):
            await store.save_conversation(key, {"conversation": {"id": "a:1"}})
        with pytest.raises(RecordRejected):
            await store.enqueue([message(key)])
        with pytest.raises(RecordRejected):
            await store.save_card(key, PostedCard("teams", "activity-1", {"conversation": {"id": "a:1"}}))
        assert store.write_problem() is None
        assert await store.save_conversation("owner-alex", {"conversation": {"id": "a:2"}}) is True
    finally:
        await store.close()
