"""The ledger verdict of one data directory: the one check `accessbot ledger verify` prints and `accessbot
doctor` runs, so the two can never disagree about a tampered ledger."""

from __future__ import annotations

from pathlib import Path

from bot.ledger import VerifyResult, verify
from bot.store.tinydb_store import TinyDBStore


async def check_ledger(data_dir: Path) -> VerifyResult:
    """Verify the ledger in ``data_dir`` without taking the writer's lock (safe while the bot runs).

    Raises LedgerUnreadable (naming the line) when a line is not even a record.
    """
    store = TinyDBStore(data_dir, read_only=True)
    try:
        return verify(await store.ledger_records(), await store.ledger_anchor())
    finally:
        await store.close()
