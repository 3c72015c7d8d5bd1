"""The ledger verdict of one data directory: the one check `accessbot ledger verify` prints and `accessbot
doctor` runs, so the two can never disagree about a tampered ledger."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bot.ledger import VerifyResult, verify
from bot.ledger_audit import AuditResult, audit
from bot.ledger_signing import Checkpoint
from bot.store.tinydb_store import TinyDBStore


async def check_ledger(
    data_dir: Path, trusted: Ed25519PublicKey, witnesses: Sequence[Checkpoint] = ()
) -> AuditResult:
    """Audit the ledger in ``data_dir`` against the public key the caller trusts, without taking the writer's
    lock (safe while the bot runs): hash chain, anchor, signed checkpoints, key rotations, witnesses.

    Raises LedgerUnreadable (naming the line) when a ledger line is not even a record, and
    CheckpointUnreadable when a checkpoint line is not a checkpoint.
    """
    store = TinyDBStore(data_dir, read_only=True)
    try:
        records = await store.ledger_records()
        entries = await store.ledger_checkpoints()
        anchor, anchor_problem = store.anchor_state()
    finally:
        await store.close()
    return audit(records, anchor, entries, trusted, witnesses, anchor_problem)


async def check_chain(data_dir: Path) -> VerifyResult:
    """The hash chain and anchor alone, for when no key is at hand to check the signatures with: an edited,
    reordered or cut-off ledger is still caught. Raises LedgerUnreadable like :func:`check_ledger`."""
    store = TinyDBStore(data_dir, read_only=True)
    try:
        records = await store.ledger_records()
        anchor, anchor_problem = store.anchor_state()
    finally:
        await store.close()
    result = verify(records, anchor)
    if result.ok and anchor_problem is not None:
        return replace(result, ok=False, problem=f"the anchor {anchor_problem}")
    return result
