"""How a queued notice is shown: the outbox carries text, and each channel sends a notice's text as the view
this module makes of it.

All but one notice are plain sentences. The ledger witness (``ReviewService.witness_checkpoint``) ends in the
signed checkpoint as one long line of JSON, which overflows a chat bubble; it is shown as a short line a
person reads plus that exact text in a block that wraps, still whole, so it can be copied for
``accessbot ledger verify --witness`` (docs/ledger.md#witnesses).
"""

from __future__ import annotations

from bot.ledger_signing import WITNESS_ADVICE, WITNESS_MARK, Checkpoint, CheckpointUnreadable, parse_witness
from dialogs.views import TextView, View, WitnessView

HASH_SHOWN = 12  # hex digits of the record's hash and of the key's fingerprint in the readable line


def notice_view(text: str) -> View:
    """The witness as a WitnessView; any other notice (or text that only mentions the mark) as plain text."""
    if WITNESS_MARK in text:
        try:
            return witness_view(parse_witness(text))
        except CheckpointUnreadable:
            pass
    return TextView(text)


def witness_view(checkpoint: Checkpoint) -> WitnessView:
    return WitnessView(
        title=f"Ledger checkpoint: record {checkpoint.seq} of the attestation ledger",
        summary=f"hash {checkpoint.hash[:HASH_SHOWN]}… · signed {checkpoint.at} · key {checkpoint.key[:HASH_SHOWN]}…",
        advice=WITNESS_ADVICE,
        code=checkpoint.witness_line(),
    )
