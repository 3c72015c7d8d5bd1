"""The auditor's verdict: the hash chain, the anchor, the signed checkpoints, the chain of keys, witnesses.

``bot.ledger.verify`` alone proves the records still chain together; whoever can write the data directory
can re-chain them. ``audit`` additionally demands that the newest checkpoint — signed with a key the
auditor trusts, or one that key handed over to — covers every record, and that every witness (a checkpoint
published earlier, outside the data directory) still matches. Anything it cannot prove is a failure with
its reason, never an OK. Pure: the CLI reads the files and passes them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bot.ledger import EMPTY_HEAD, LedgerHead, LedgerRecord, verify
from bot.ledger_signing import Checkpoint, KeyRotation, SignedEntry, fingerprint


@dataclass(frozen=True)
class AuditResult:
    """``problems`` is empty exactly when the ledger is proven; ``notes`` say what was proven beyond that."""

    count: int
    head: LedgerHead
    checkpoint: Checkpoint | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_bad_seq: int | None = None
    set_aside: list[str] = field(default_factory=list)
    """Files of records a writer took out of the ledger because no checkpoint signed them (see TinyDBStore)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(
    records: Sequence[LedgerRecord],
    anchor: LedgerHead | None,
    entries: Sequence[SignedEntry],
    trusted: Ed25519PublicKey,
    witnesses: Sequence[Checkpoint] = (),
    anchor_problem: str | None = None,
) -> AuditResult:
    problems: list[str] = []
    notes: list[str] = []
    chained = verify(records, anchor)
    if not chained.ok:
        problems.append(f"record {chained.first_bad_seq}: {chained.problem}")
    if not records:
        problems.append("the ledger holds no records: nothing to verify (is this the right --data-dir?)")
    if anchor_problem is not None:
        problems.append(f"the anchor {anchor_problem}")
    elif records and anchor is None:
        problems.append("the anchor ledger.head is missing while the ledger holds records (it was deleted)")
    by_seq = {record.seq: record for record in records}
    ledger_id = records[0].hash if records else None

    keys = _follow_rotations(entries, trusted, by_seq, problems)
    current = keys[-1]
    checkpoints = [(line, entry) for line, entry in enumerate(entries, 1) if isinstance(entry, Checkpoint)]
    for line, checkpoint in checkpoints:
        signed = by_seq.get(checkpoint.seq)
        if signed is None and checkpoint.seq > len(records) and any(checkpoint.signed_by(key) for key in keys):
            problems.append(f"checkpoint line {line} signed record {checkpoint.seq} but the ledger ends at record "
                            f"{len(records)}: records were cut off")
            break
        if signed is not None and signed.hash != checkpoint.hash:
            problems.append(f"record {checkpoint.seq} is not the record that checkpoint line {line} signed: "
                            "the ledger was rewritten")
            break
    latest = checkpoints[-1][1] if checkpoints else None
    if latest is None:
        if records:
            problems.append(f"no signed checkpoint covers the {len(records)} records: the ledger was written without a "
                            "signing key, or ledger-checkpoints.jsonl was removed")
    else:
        problems.extend(_latest_problems(latest, current, trusted, ledger_id, records))
    for witness in witnesses:
        problems.extend(_witness_problems(witness, by_seq, ledger_id, len(records), keys, notes))
    return AuditResult(
        count=len(records),
        head=records[-1].head if records else EMPTY_HEAD,
        checkpoint=latest,
        problems=problems,
        notes=notes,
        first_bad_seq=chained.first_bad_seq,
    )


def _follow_rotations(
    entries: Sequence[SignedEntry], trusted: Ed25519PublicKey, by_seq: dict[int, LedgerRecord], problems: list[str]
) -> list[Ed25519PublicKey]:
    """The trusted key, then every key it handed over to in turn. Rotations by keys before the trusted one
    are history the auditor need not follow; a rotation claiming to come from a trusted key must carry its
    valid signature."""
    keys = [trusted]
    for line, entry in enumerate(entries, 1):
        if not isinstance(entry, KeyRotation) or entry.key != fingerprint(keys[-1]):
            continue
        if not entry.signed_by(keys[-1]):
            problems.append(f"the key rotation on checkpoint line {line} claims to come from key {entry.key[:16]}… but "
                            "its signature does not verify: ledger-checkpoints.jsonl was edited")
            continue
        rotated_at = by_seq.get(entry.seq)
        if rotated_at is None or rotated_at.hash != entry.hash:
            problems.append(f"record {entry.seq} is not the record the key rotation on line {line} signed")
        keys.append(entry.new_public_key)
    return keys


def _latest_problems(
    latest: Checkpoint, current: Ed25519PublicKey, trusted: Ed25519PublicKey, ledger_id: str | None,
    records: Sequence[LedgerRecord],
) -> list[str]:
    if latest.key != fingerprint(current):
        via = "" if current is trusted else f" or the key it was rotated to ({fingerprint(current)[:16]}…)"
        return [f"the latest checkpoint is signed by key {latest.key[:16]}…, not by the key you trust "
                f"({fingerprint(trusted)[:16]}…){via}"]
    if not latest.signed_by(current):
        return ["the latest checkpoint's signature does not verify: ledger-checkpoints.jsonl was edited"]
    if ledger_id is not None and latest.ledger_id != ledger_id:
        return [f"the latest checkpoint is of another ledger (id {latest.ledger_id[:16]}…; this ledger's first record "
                f"hashes to {ledger_id[:16]}…): record 1 was rewritten, or the checkpoints were copied from elsewhere"]
    if len(records) < latest.seq:
        return [f"the ledger ends at record {len(records)} but the signed checkpoint covers record {latest.seq}: "
                "records were cut off the end"]
    if len(records) > latest.seq:
        unsigned = f"record {len(records)} is" if len(records) == latest.seq + 1 else \
            f"records {latest.seq + 1} to {len(records)} are"
        return [f"{unsigned} not covered by a signed checkpoint (the last covers "
                f"record {latest.seq}): appended by someone without the key, or left by a writer that crashed before "
                "signing them (the writer sets those aside as ledger-unsigned-*.jsonl when it starts)"]
    return []


def _witness_problems(
    witness: Checkpoint, by_seq: dict[int, LedgerRecord], ledger_id: str | None, count: int,
    keys: list[Ed25519PublicKey], notes: list[str],
) -> list[str]:
    named = f"the witness of record {witness.seq} (signed {witness.at})"
    signer = next((key for key in keys if fingerprint(key) == witness.key), None)
    if signer is None:
        notes.append(f"{named} is signed by key {witness.key[:16]}…, which is not one you trust: only its record "
                     "number and hash were compared")
    elif not witness.signed_by(signer):
        return [f"{named} does not match its own signature: it was mistyped or altered, copy it again"]
    if ledger_id is not None and witness.ledger_id != ledger_id:
        return [f"{named} is of a ledger whose first record hashes to {witness.ledger_id[:16]}…, but this ledger's "
                f"first record hashes to {(ledger_id or '')[:16]}…: the ledger was rewritten from its start, "
                "or this is another ledger"]
    if count < witness.seq:
        return [f"the ledger ends at record {count} but {named} saw record {witness.seq}: records were removed"]
    seen = by_seq.get(witness.seq)
    if seen is None or seen.hash != witness.hash:
        return [f"record {witness.seq} is not the record {named} saw: the ledger was rewritten at or before it"]
    notes.append(f"{named} matches: nothing up to record {witness.seq} was removed or rewritten")
    return []
