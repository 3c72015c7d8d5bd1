"""One writer per data directory: a second one is refused by name; readers never block and never write."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.engine.model import LedgerEvent
from bot.store.base import StoreLocked
from bot.store.tinydb_store import TinyDBStore

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


async def test_a_second_writer_on_the_same_directory_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    first = TinyDBStore(tmp_path)
    with pytest.raises(StoreLocked, match="in use by another accessbot process"):
        TinyDBStore(tmp_path)
    await first.close()
    second = TinyDBStore(tmp_path)  # the lock went with the first writer
    await second.close()


async def test_a_reader_opens_beside_the_writer_and_sees_what_it_wrote(tmp_path: Path) -> None:
    writer = TinyDBStore(tmp_path)
    await writer.append_ledger([LedgerEvent("note", {"n": 1})], NOW)
    reader = TinyDBStore(tmp_path, read_only=True)
    assert [r.data for r in await reader.ledger_records()] == [{"n": 1}]
    with pytest.raises(PermissionError):
        await reader.append_ledger([LedgerEvent("note", {"n": 2})], NOW)
    await reader.close()
    await writer.close()


async def test_a_reader_of_a_directory_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "never-written"
    reader = TinyDBStore(missing, read_only=True)
    assert await reader.ledger_records() == [] and await reader.list_campaigns() == []
    await reader.close()
    assert not missing.exists()
