"""Optimistic concurrency for the ledger: what makes an answer valid is decided by the store, atomically, not by
whatever one process holds in memory.

Several instances on one database each fold the ledger into their own view, and each may be behind. So every
append says what it saw: for each *version key* its events depend on, the ``seq`` of the last record that moved
that key when the caller decided (0: none). The store appends only if none of those keys moved since, and only
if no event repeats an *event key* already recorded; otherwise it appends nothing and returns the records that
stand in the way, and the caller catches up and decides again (a second answer then becomes "already
answered by X", a second leader's reminder becomes nothing).

Version keys a record moves (all derived from its data, so every backend and the migration compute them alike):

- ``item:<id>``       every record naming the item (``item_id``, or each of ``item_ids``);
- ``campaign:<id>``   every record of the campaign;
- ``signed:<id>``     the campaign's sign-off.

What an append expects unchanged (``watched_keys``): its items and the campaign's sign-off, so answers on
different items never conflict with each other but none lands after a sign-off; a sign-off also watches the
whole campaign, so an answer recorded meanwhile makes it decide again.

Event keys name the scheduled steps that must happen once however many leaders come and go: a campaign's
opening, a reminder round, an escalation of a set of items, an expiry, the sign-off.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from bot.engine.model import LedgerEvent
from bot.engine.signoff import SIGNED_OFF
from bot.ledger import LedgerRecord


def moved_keys(event_type: str, data: Mapping[str, Any]) -> set[str]:
    """The version keys a record of this type and data moves."""
    keys = set()
    campaign_id = data.get("campaign_id")
    if isinstance(campaign_id, str):
        keys.add(f"campaign:{campaign_id}")
        if event_type == SIGNED_OFF:
            keys.add(f"signed:{campaign_id}")
    item_id = data.get("item_id")
    if isinstance(item_id, str):
        keys.add(f"item:{item_id}")
    item_ids = data.get("item_ids")
    if isinstance(item_ids, list):
        keys.update(f"item:{each}" for each in item_ids if isinstance(each, str))
    return keys


def watched_keys(event_type: str, data: Mapping[str, Any]) -> set[str]:
    """The version keys an append of this event expects unchanged since its caller decided."""
    keys = moved_keys(event_type, data)
    campaign_id = data.get("campaign_id")
    if isinstance(campaign_id, str):
        keys.add(f"signed:{campaign_id}")
        if event_type != SIGNED_OFF:
            keys.discard(f"campaign:{campaign_id}")  # answers on other items do not make this one stale
    return keys


def event_key(event_type: str, data: Mapping[str, Any]) -> str | None:
    """The key under which a scheduled step is recorded at most once, or None for events that may repeat."""
    campaign_id = data.get("campaign_id")
    if not isinstance(campaign_id, str):
        return None
    if event_type in ("campaign_opened", SIGNED_OFF):
        return f"{event_type}:{campaign_id}"
    if event_type == "reminded":
        return f"reminded:{campaign_id}:{data.get('round')}"
    if event_type == "escalated":
        return (f"escalated:{campaign_id}:{data.get('stage')}:{'overdue' if data.get('overdue') else 'open'}:"
                f"{_digest(data.get('item_ids') or ())}")
    if event_type == "exception_expired":
        return f"exception_expired:{campaign_id}:{_digest(data.get('item_ids') or ())}"
    return None


def _digest(item_ids: Iterable[Any]) -> str:
    return hashlib.sha256(",".join(sorted(str(each) for each in item_ids)).encode()).hexdigest()[:16]


def expectations(events: Sequence[LedgerEvent], versions: Mapping[str, int]) -> dict[str, int]:
    """What an append of ``events`` expects, given the caller's ``versions`` (key -> seq of the last record
    it folded that moved the key)."""
    keys: set[str] = set()
    for event in events:
        keys |= watched_keys(event.type, event.data)
    return {key: versions.get(key, 0) for key in keys}


@dataclass(frozen=True)
class Appended:
    """The answer of a conditional append: the records written, or, when refused, none and the records that
    stand in the way (the last record of each key that moved, the record holding a repeated event key)."""

    records: tuple[LedgerRecord, ...] = ()
    standing: tuple[LedgerRecord, ...] = ()

    @property
    def refused(self) -> bool:
        return not self.records


@dataclass
class Versions:
    """Each version key's last seq, and which record holds each event key: the index a backend checks
    appends against (the TinyDB store keeps one in memory; PostgreSQL the same in two tables)."""

    seqs: dict[str, int] = field(default_factory=dict)
    event_keys: dict[str, int] = field(default_factory=dict)

    def fold(self, seq: int, event_type: str, data: Mapping[str, Any]) -> None:
        for key in moved_keys(event_type, data):
            if seq > self.seqs.get(key, 0):
                self.seqs[key] = seq
        key = event_key(event_type, data)
        if key is not None:
            self.event_keys.setdefault(key, seq)  # the first record of a key is the one that stands

    def fold_record(self, record: LedgerRecord) -> None:
        self.fold(record.seq, record.type, record.data)

    def refusal(self, events: Sequence[LedgerEvent], expected: Mapping[str, int]) -> set[int]:
        """The seqs of the records that make this append stale (empty: it may go ahead)."""
        standing = {seq for key, seen in expected.items() if (seq := self.seqs.get(key, 0)) != seen}
        for event in events:
            key = event_key(event.type, event.data)
            if key is not None and key in self.event_keys:
                standing.add(self.event_keys[key])
        return standing
