"""The ledger verdict of one data directory or database: the one check `accessbot ledger verify` prints and
`accessbot doctor` runs, so the two can never disagree about a tampered ledger."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bot.config import Settings
from bot.ledger import LedgerRecord, VerifyResult, verify
from bot.ledger_audit import AuditResult, audit
from bot.ledger_signing import Checkpoint, configured_signer, load_public_key_file
from bot.store.base import LedgerIntegrityError
from bot.store.factory import open_store
from bot.store.tinydb_store import TinyDBStore


async def check_ledger(
    database_url: str, data_dir: Path, trusted: Ed25519PublicKey, witnesses: Sequence[Checkpoint] = ()
) -> AuditResult:
    """Audit the configured ledger (``ACCESSBOT_DATABASE_URL``, else TinyDB in ``data_dir``) against the public
    key the caller trusts, read-only, without taking the writer's lock (safe while the bot runs): hash chain,
    anchor (PostgreSQL's stored head plays its part), signed checkpoints, key rotations, witnesses, and what a
    TinyDB writer set aside (nothing is ever set aside in PostgreSQL).

    Raises LedgerUnreadable (naming the line) when a ledger line is not even a record, CheckpointUnreadable
    when a checkpoint line is not a checkpoint, and StoreUnavailable when the database cannot be read.
    """
    store = await open_store(database_url, data_dir, read_only=True)
    try:
        records = await store.ledger_records()
        entries = await store.ledger_checkpoints()
        anchor, anchor_problem = await store.anchor_state()
        set_aside = store.set_aside()
    finally:
        await store.close()
    return replace(audit(records, anchor, entries, trusted, witnesses, anchor_problem), set_aside=set_aside)


def counted_records(
    records: Sequence[LedgerRecord], checkpoint: Checkpoint | None, trusted: Ed25519PublicKey | None
) -> tuple[list[LedgerRecord], str | None]:
    """The records a reader (`campaign status`, the exports) may count, and a warning when some were left out.

    Only records the latest checkpoint signs were ever acknowledged: a tail past it was appended by someone
    without the key (a forged Keep), or is being written right now. With the ledger's key known, the
    checkpoint must also be signed by it and name the very record at its seq; otherwise this raises
    LedgerIntegrityError rather than count what nobody can vouch for. A ledger without any checkpoint is an
    unsigned (testing) ledger, counted as it stands unless a key says it should be signed.
    """
    if checkpoint is None:
        if trusted is not None and records:
            raise LedgerIntegrityError(f"no signed checkpoint covers the {len(records)} records")
        return list(records), None
    if trusted is not None and not checkpoint.signed_by(trusted):
        raise LedgerIntegrityError("the latest checkpoint is not signed by the configured ledger key")
    signed = list(records[:checkpoint.seq])
    if len(signed) < checkpoint.seq or signed[-1].hash != checkpoint.hash or not verify(signed).ok:
        raise LedgerIntegrityError(f"the records do not match the checkpoint that signs record {checkpoint.seq}")
    if len(records) == checkpoint.seq:
        return signed, None
    left = f"record {len(records)} is" if len(records) == checkpoint.seq + 1 else \
        f"records {checkpoint.seq + 1} to {len(records)} are"
    return signed, (f"{left} not covered by a signed checkpoint and not "
                    "counted: being written right now, or appended by someone without the key (run `accessbot "
                    "ledger verify`)")


def configured_public_key(settings: Settings) -> Ed25519PublicKey | None:
    """The public key the ledger is checked against: the configured public key file, else the signing key's.
    Raises LedgerKeyError when the configured key cannot be used."""
    if settings.ledger_public_key_file:
        return load_public_key_file(settings.ledger_public_key_file, settings.data_dir)
    signer = configured_signer(settings.ledger_key_file, settings.ledger_key.get_secret_value(), settings.data_dir)
    return None if signer is None else signer.public_key


def set_aside_warning(files: Sequence[str]) -> str:
    """One sentence for verify, doctor and /healthz: what was set aside, and the two things it can mean."""
    return (f"records no checkpoint signed were taken out of the ledger and kept as evidence in {', '.join(files)}: "
            "never acknowledged (the bot crashed before signing them) or appended by someone without the key; "
            "they are counted nowhere. Look at them, then move them out of the data directory")


async def check_chain(data_dir: Path) -> VerifyResult:
    """The hash chain and anchor alone, for when no key is at hand to check the signatures with: an edited,
    reordered or cut-off ledger is still caught. Raises LedgerUnreadable like :func:`check_ledger`."""
    store = TinyDBStore(data_dir, read_only=True)
    try:
        records = await store.ledger_records()
        anchor, anchor_problem = await store.anchor_state()
    finally:
        await store.close()
    result = verify(records, anchor)
    if result.ok and anchor_problem is not None:
        return replace(result, ok=False, problem=f"the anchor {anchor_problem}")
    return result
