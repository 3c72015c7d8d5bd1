"""The embedded backend: TinyDB files written atomically, and the ledger as an append-only file.

Layout of the data directory, chosen so no single write grows with the whole history:

- ``campaigns.json``        campaign metadata only (small: one document per review period);
- ``items-<sha1>.json``     one file per campaign, written once, with one write, when it opens;
- ``conversations.jsonl``   Bot Framework conversation references, one per person or channel, as an
                            append-only log ``[key, reference]`` (the last line of a key wins), compacted
                            at start once most lines are superseded;
- ``cards.jsonl``           where each message about an item was posted, as an append-only log ``[item_id,
                            {channel, message_id, address}]`` (one line per posted card, never rewritten), to
                            redraw it in place;
- ``outbox.jsonl``          messages still to send, as an append-only log ``[key, message]``: a queued message,
                            and again with its new state after each retry or release (the last line of a key
                            wins); a key in ``outbox-sent.jsonl`` left the queue. Rewritten at start, with one
                            line per pending message, once most lines are stale;
- ``outbox-sent.jsonl``     the keys of messages that left the queue (append-only), so a twin stays refused
                            for ``sent_horizon`` (35 days): ``[key, sent_at]``, or ``[key, at, error]`` for
                            an undeliverable one; expired keys are dropped from the file at start;
- ``channel-settings.json`` what a channel learned and needs again after a restart (the Teams service URL);
- ``ledger.jsonl``          the attestation ledger, one record per line, one fsync per append;
- ``ledger.head``           the anchor: the last head acknowledged, replaced atomically after each append
                            (created, at record 0, before the first record is written);
- ``ledger-checkpoints.jsonl`` a signed checkpoint per group commit, and key rotations (docs/ledger.md);
- ``ledger-unsigned-*.jsonl`` records a writer found that no checkpoint signs, set aside as evidence.

The logs are written by group commit (``bot/store/group_commit.py``): appends that arrive while one is being
written share its write and fsync, off the event loop, so no write costs the size of the queue or of the
history. ``outbox.json`` and ``cards.json`` (the TinyDB tables these logs replaced) are folded into them at
start and removed.

Outbox claims (``claim_due``) live in memory: one process writes a data directory, so a claim cannot outlive
its holder, and a restart finds every pending message claimable.

One process writes a data directory, and holds ``writer.lock`` (an flock) while it does: a second
writer is refused with a clear error instead of silently forking the ledger. Readers
(``accessbot ledger verify``) open it with ``read_only=True``: they take no lock and change no file.
"""

from __future__ import annotations

import asyncio
import copy
import fcntl
import hashlib
import heapq
import json
import logging
import os
import re
from dataclasses import asdict, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from tinydb import TinyDB

from bot.clock import Clock, SystemClock
from bot.engine.model import Campaign, LedgerEvent, ReviewItem
from bot.ledger import (
    EMPTY_HEAD,
    LedgerHead,
    LedgerRecord,
    LedgerUnreadable,
    canonical_json,
    chain,
    record_from_line,
    record_to_line,
    utc_stamp,
    verify,
)
from bot.ledger_signing import (
    Checkpoint,
    CheckpointUnreadable,
    KeyRotation,
    LedgerSigner,
    SignedEntry,
    entry_from_line,
    entry_to_line,
    public_key_pem,
)
from bot.store.append_log import AppendLog, LogChanged
from bot.store.atomic_storage import (
    AtomicJSONStorage,
    fsync_directory,
    replace_file,
    replace_file_streaming,
)
from bot.ratelimit import TEAMS_LIMITS, Limits, RateLimiter, SendBudget
from bot.store.base import (
    SENT_HORIZON,
    LedgerIntegrityError,
    OutboxMessage,
    PostedCard,
    RecordRejected,
    StoreLocked,
    StoreUnavailable,
)
from bot.store.codec import (
    campaign_from_dict,
    card_from_dict,
    card_to_dict,
    campaign_to_dict,
    items_file_chunks,
    read_items_file,
    outbox_from_dict,
    outbox_to_dict,
)
from bot.store.concurrency import Appended
from bot.store.group_commit import GroupCommitLog
from bot.store.ledger_index import LedgerIndex

log = logging.getLogger(__name__)

LEDGER_FILE = "ledger.jsonl"
ANCHOR_FILE = "ledger.head"
CHECKPOINT_FILE = "ledger-checkpoints.jsonl"

_Waiting = tuple[Sequence[LedgerEvent], datetime, "Mapping[str, int] | None", "asyncio.Future[Appended]"]
"""A caller of append_ledger or append_if_current: its events, their time, the versions it expects (None: append
whatever stands), and the future that answers it."""

OUTBOX_COMPACT_AFTER = 256
"""Stale lines of outbox.jsonl (messages that left the queue, earlier states of a retried one) tolerated before
the start-up compaction, and only once they also outnumber the pending messages."""

CONVERSATIONS_COMPACT_AFTER = 1024
"""Superseded reference lines tolerated before the start-up compaction rewrites the log."""


class TinyDBStore:
    def __init__(
        self,
        data_dir: Path,
        *,
        read_only: bool = False,
        signer: LedgerSigner | None = None,
        clock: Clock | None = None,
        sent_horizon: timedelta = SENT_HORIZON,
    ) -> None:
        """``signer`` signs a checkpoint with every group commit; without it the ledger is unsigned (tests,
        ``serve --unsigned-ledger``), and a ledger that is already signed refuses to grow. ``clock`` and
        ``sent_horizon`` decide which sent keys are old enough to forget."""
        self.data_dir = Path(data_dir)
        self.read_only = read_only
        self.clock = clock or SystemClock()
        self.sent_horizon = sent_horizon
        self._lock_fd: int | None = None
        if not read_only:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = lock_writer(self.data_dir / "writer.lock")

        self._campaign_db = self._tinydb("campaigns.json")
        self._campaign_table = self._campaign_db.table("campaigns")
        self._campaigns = {doc["id"]: campaign_from_dict(doc) for doc in self._campaign_table.all()}

        self._conversations = self._open_conversations()
        self._conversation_log = GroupCommitLog(AppendLog(self.data_dir / "conversations.jsonl"))

        self._cards: dict[str, list[PostedCard]] = {}
        self._cards_saving: set[tuple[str, str, str]] = set()
        self._open_cards()
        self._cards_log = GroupCommitLog(AppendLog(self.data_dir / "cards.jsonl"))

        self._sent: set[str] = set()
        self._pending: dict[str, OutboxMessage] = {}  # in queue order: the tie-break after created_at
        self._order: dict[str, int] = {}
        self._claims: dict[str, tuple[str, datetime]] = {}  # key -> (worker, lease end)
        self._enqueuing: set[str] = set()
        self._open_outbox()
        self._outbox_log = GroupCommitLog(AppendLog(self.data_dir / "outbox.jsonl"))
        self._sent_log = GroupCommitLog(AppendLog(self.data_dir / "outbox-sent.jsonl"))
        self._settings_path = self.data_dir / "channel-settings.json"
        self._settings: dict[str, str] = json.loads(self._settings_path.read_bytes()) if self._settings_path.exists() else {}
        self._budgets: dict[tuple[str, ...], RateLimiter] = {}

        self._ledger_waiting: list[_Waiting] = []
        self._ledger_flusher: asyncio.Task[None] | None = None
        self._signer = signer
        self._ledger_log = AppendLog(self.data_dir / LEDGER_FILE)
        self._checkpoint_log = AppendLog(self.data_dir / CHECKPOINT_FILE)
        self._anchor_path = self.data_dir / ANCHOR_FILE
        self._ledger_head = EMPTY_HEAD
        self._ledger_id: str | None = None
        self._anchor: LedgerHead | None = None
        self._anchor_problem: str | None = None
        self._checkpoint: Checkpoint | None = None
        self._write_failure: str | None = None
        self._ledger_index = LedgerIndex(self._ledger_log.path)
        self._ledger_damage = self._open_ledger()

    def _tinydb(self, name: str) -> TinyDB:
        return TinyDB(self.data_dir / name, storage=AtomicJSONStorage)

    # ---- campaigns ------------------------------------------------------------------------------

    async def save_campaign(self, campaign: Campaign, items: Sequence[ReviewItem]) -> bool:
        """Items first, then the campaign: a campaign that is listed always has its items on disk.

        A crash in between leaves an items file no campaign points at; the next save overwrites it.
        The file is streamed item by item (``items_file_chunks``) into a temp file renamed when complete.
        """
        self._writable()
        if campaign.id in self._campaigns:
            return False
        replace_file_streaming(self._items_path(campaign.id), items_file_chunks(items))
        self._campaign_table.insert(campaign_to_dict(campaign))
        self._campaigns[campaign.id] = campaign
        return True

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        return self._campaigns.get(campaign_id)

    async def list_campaigns(self) -> list[Campaign]:
        return sorted(self._campaigns.values(), key=lambda c: c.opened_at, reverse=True)

    async def campaign_items(self, campaign_id: str) -> list[ReviewItem]:
        """Parsed from the campaign's own file on each call: these are read once per campaign at start-up,
        and keeping 20,000 decoded items cached beside the live state would double the memory."""
        if campaign_id not in self._campaigns:
            return []
        path = self._items_path(campaign_id)
        if not path.exists():
            raise FileNotFoundError(f"the items of campaign {campaign_id} are missing: {path}")
        return read_items_file(path)

    def _items_path(self, campaign_id: str) -> Path:
        return self.data_dir / f"items-{hashlib.sha1(campaign_id.encode()).hexdigest()}.json"

    # ---- conversations --------------------------------------------------------------------------

    def _open_conversations(self) -> dict[str, dict[str, Any]]:
        """Replay the log (the last line of a key wins) over the file of versions before it, then, if the
        writer opens it, fold both into one line per key when that saves enough: so a restart costs one
        read and the log never grows with how often people write to the bot."""
        path = self.data_dir / "conversations.jsonl"
        legacy = self.data_dir / "conversations.json"  # the TinyDB file this log replaced
        references: dict[str, dict[str, Any]] = {}
        if legacy.exists():
            legacy_db = TinyDB(legacy, storage=AtomicJSONStorage)
            try:
                references.update((doc["key"], doc["reference"]) for doc in legacy_db.table("conversations").all())
            finally:
                legacy_db.close()
        lines = AppendLog(path).lines()
        for line in lines:
            key, reference = json.loads(line)
            references[key] = reference
        if not self.read_only and (legacy.exists() or len(lines) - len(references) > CONVERSATIONS_COMPACT_AFTER):
            replace_file(path, b"".join(canonical_json([key, ref]) + b"\n" for key, ref in references.items()))
            if legacy.exists():
                legacy.unlink()  # after the log holds everything it held
                fsync_directory(self.data_dir)
        return references

    async def save_conversation(self, key: str, reference: dict[str, Any]) -> bool:
        """One appended line for a new or changed reference, group-committed with the saves that arrive
        meanwhile; an unchanged one (Teams repeats conversationUpdate, and every activity brings the same
        reference again) costs no write."""
        self._writable()
        line = canonical_json([key, reference])
        stored = json.loads(line)[1]
        if self._conversations.get(key) == stored:
            return False
        try:
            await self._conversation_log.append(line + b"\n")
        except OSError as failed:  # disk full, read-only, the directory gone: nothing was stored
            raise StoreUnavailable(f"cannot store a conversation reference: {failed}") from failed
        self._conversations[key] = stored
        return True

    async def get_conversation(self, key: str) -> dict[str, Any] | None:
        reference = self._conversations.get(key)
        return None if reference is None else copy.deepcopy(reference)

    def conversation_references(self) -> dict[str, dict[str, Any]]:
        """Every stored reference by key (a copy): what `accessbot db migrate-from-tinydb` carries over."""
        return copy.deepcopy(self._conversations)

    # ---- cards sent -----------------------------------------------------------------------------

    def _open_cards(self) -> None:
        """Read the log, after the TinyDB table it replaced (folded into the log, then removed, by the writer).
        Rows of that table written before cards were channel-tagged read as Teams cards (``card_from_dict``)."""
        path = self.data_dir / "cards.jsonl"
        legacy = self.data_dir / "cards.json"
        rows: list[tuple[str, PostedCard]] = []
        if legacy.exists():
            legacy_db = TinyDB(legacy, storage=AtomicJSONStorage)
            try:
                rows.extend((doc["item_id"], card_from_dict(doc)) for doc in legacy_db.table("cards").all())
            finally:
                legacy_db.close()
        lines = AppendLog(path).lines()
        for line in lines:
            item_id, card = json.loads(line)
            rows.append((item_id, card_from_dict(card)))
        seen: set[tuple[str, str, str]] = set()
        kept: list[bytes] = []
        for item_id, card in rows:
            if (item_id, card.channel, card.message_id) in seen:
                continue
            seen.add((item_id, card.channel, card.message_id))
            kept.append(canonical_json([item_id, card_to_dict(card)]))
            self._cards.setdefault(item_id, []).append(card)
        if not self.read_only and (legacy.exists() or len(kept) < len(lines)):
            replace_file(path, b"".join(line + b"\n" for line in kept))
            if legacy.exists():
                legacy.unlink()  # after the log holds everything it held
                fsync_directory(self.data_dir)

    async def save_card(self, item_id: str, card: PostedCard) -> None:
        """One appended line per posted card, group-committed; the same card again (a retried send) costs nothing."""
        self._writable()
        sent = self._cards.setdefault(item_id, [])
        known = (item_id, card.channel, card.message_id)
        if known in self._cards_saving or any((c.channel, c.message_id) == known[1:] for c in sent):
            return
        line = canonical_json([item_id, card_to_dict(card)])
        self._cards_saving.add(known)
        try:
            await self._cards_log.append(line + b"\n")
        except OSError as failed:
            raise StoreUnavailable(f"cannot store where a card was sent: {failed}") from failed
        finally:
            self._cards_saving.discard(known)
        sent.append(card_from_dict(json.loads(line)[1]))

    async def cards(self, item_id: str) -> list[PostedCard]:
        return copy.deepcopy(self._cards.get(item_id, []))

    def every_card(self) -> dict[str, list[PostedCard]]:
        """Every item's cards (a copy), for `accessbot db migrate-from-tinydb`."""
        return copy.deepcopy(self._cards)

    # ---- outbox ---------------------------------------------------------------------------------

    def _open_outbox(self) -> None:
        """Load the queue and the keys that still refuse their twin: those that left the queue within
        ``sent_horizon``. The writer rewrites outbox.jsonl with one line per pending message when most of its
        lines are stale (and folds in outbox.json, the TinyDB table it replaced), and then drops expired keys
        from the sent-keys file: in that order, so no message that left the queue can look pending again."""
        sent_path = self.data_dir / "outbox-sent.jsonl"
        oldest = self.clock.now() - self.sent_horizon
        self._sent, expired, kept = read_sent_keys(AppendLog(sent_path).complete(), oldest)
        legacy = self.data_dir / "outbox.json"
        documents: list[dict[str, Any]] = []
        if legacy.exists():
            legacy_db = TinyDB(legacy, storage=AtomicJSONStorage)
            try:
                documents.extend(legacy_db.table("pending").all())
            finally:
                legacy_db.close()
        path = self.data_dir / "outbox.jsonl"
        lines = AppendLog(path).lines()
        documents.extend(json.loads(line)[1] for line in lines)
        for document in documents:
            key = document["key"]
            if key not in self._sent and key not in expired:
                self._order.setdefault(key, len(self._order))
                self._pending[key] = outbox_from_dict(document)
        stale = len(lines) - len(self._pending)
        if self.read_only:
            return
        if legacy.exists() or kept is not None or stale > max(OUTBOX_COMPACT_AFTER, len(self._pending)):
            replace_file(path, b"".join(_outbox_line(message) for message in self._pending.values()))
            if legacy.exists():
                legacy.unlink()
                fsync_directory(self.data_dir)
        if kept is not None:
            replace_file(sent_path, b"".join(line + b"\n" for line in kept))

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> int:
        """One group-committed append for the new messages; a key pending, sent or being queued is refused."""
        self._writable()
        fresh: dict[str, OutboxMessage] = {}
        for message in messages:
            key = message.key
            if key in self._pending or key in self._sent or key in self._enqueuing or key in fresh:
                continue
            fresh[key] = replace(message, payload=json.loads(canonical_json(message.payload)))
        if not fresh:
            return 0
        self._enqueuing.update(fresh)
        try:
            await self._append_outbox(fresh.values())
        finally:
            self._enqueuing.difference_update(fresh)
        for key, message in fresh.items():
            self._order[key] = len(self._order)
            self._pending[key] = message
        return len(fresh)

    async def _append_outbox(self, messages: Iterable[OutboxMessage]) -> None:
        try:
            await self._outbox_log.append(b"".join(_outbox_line(message) for message in messages))
        except OSError as failed:  # nothing was stored: the log cuts a failed write back
            raise StoreUnavailable(f"cannot store the outbox: {failed}") from failed

    def left_queue(self) -> list[list[str]]:
        """The sent-keys file's entries, ``[key, at]`` or ``[key, at, error]``, for `accessbot db migrate-from-tinydb`."""
        return [json.loads(line) for line in AppendLog(self.data_dir / "outbox-sent.jsonl").lines()]

    def _queue_position(self, message: OutboxMessage) -> tuple[datetime, int]:
        return message.created_at, self._order[message.key]

    async def due_messages(self, now: datetime, limit: int) -> list[OutboxMessage]:
        if limit <= 0:
            return []
        due = (m for m in self._pending.values() if m.next_attempt_at <= now)
        return [replace(m, payload=copy.deepcopy(m.payload)) for m in heapq.nsmallest(limit, due, key=self._queue_position)]

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
        """Each person's oldest pending message, when it is due and nobody holds a live lease on it."""
        self._writable()
        if limit <= 0:
            return []
        heads: dict[str, OutboxMessage] = {}
        for message in self._pending.values():
            head = heads.get(message.recipient)
            if head is None or self._queue_position(message) < self._queue_position(head):
                heads[message.recipient] = message
        claimable = (m for m in heads.values() if m.next_attempt_at <= now and not self._held_by_another(m.key, now))
        claimed = heapq.nsmallest(limit, claimable, key=self._queue_position)
        for message in claimed:
            self._claims[message.key] = (worker, now + lease)
        return [replace(m, payload=copy.deepcopy(m.payload)) for m in claimed]

    def _held_by_another(self, key: str, now: datetime) -> bool:
        claim = self._claims.get(key)
        return claim is not None and claim[1] > now

    def _claimed(self, key: str, worker: str) -> bool:
        """Whether ``worker`` still holds the pending message ``key``; KeyError for a key never queued."""
        if key not in self._pending and key not in self._sent:
            raise KeyError(f"no message {key!r} in the outbox")
        claim = self._claims.get(key)
        return key in self._pending and claim is not None and claim[0] == worker

    async def mark_sent(self, key: str, at: datetime, *, worker: str) -> bool:
        """One append to the sent-keys file is the durable fact; the message's lines in outbox.jsonl go stale."""
        return await self._leave_queue(key, worker, [key, at.isoformat()])

    async def mark_undeliverable(self, key: str, error: str, at: datetime, *, worker: str) -> bool:
        """Leaves the queue like a sent message, with its error on its line of the sent-keys file."""
        return await self._leave_queue(key, worker, [key, at.isoformat(), error])

    async def _leave_queue(self, key: str, worker: str, line: list[str]) -> bool:
        self._writable()
        if not self._claimed(key, worker):
            return False
        try:
            await self._sent_log.append(canonical_json(line) + b"\n")
        except OSError as failed:
            raise StoreUnavailable(f"cannot record that a message left the queue: {failed}") from failed
        self._sent.add(key)
        self._pending.pop(key, None)
        self._claims.pop(key, None)
        return True

    async def mark_retry(self, key: str, error: str, next_attempt_at: datetime, *, worker: str) -> bool:
        self._writable()
        if not self._claimed(key, worker):
            return False
        message = self._pending[key]
        retried = replace(message, attempts=message.attempts + 1, last_error=error, next_attempt_at=next_attempt_at)
        await self._append_outbox([retried])
        if key in self._pending:
            self._pending[key] = retried
        self._claims.pop(key, None)
        return True

    async def release_recipient(self, recipient: str, now: datetime) -> int:
        self._writable()
        released = [replace(m, next_attempt_at=now) for m in self._pending.values()
                    if m.recipient == recipient and m.next_attempt_at > now]
        if not released:
            return 0
        await self._append_outbox(released)
        for message in released:
            if message.key in self._pending:
                self._pending[message.key] = replace(self._pending[message.key], next_attempt_at=now)
        return len(released)

    # ---- what channels learned, and their sending budget ------------------------------------------

    async def save_channel_setting(self, name: str, value: str) -> bool:
        """The whole (tiny) file replaced atomically: it changes when Teams moves the tenant's connector."""
        self._writable()
        if self._settings.get(name) == value:
            return False
        settings = {**self._settings, name: value}
        try:
            await asyncio.to_thread(replace_file, self._settings_path, canonical_json(settings))
        except OSError as failed:
            raise StoreUnavailable(f"cannot store a channel setting: {failed}") from failed
        self._settings = settings
        return True

    async def channel_setting(self, name: str) -> str | None:
        return self._settings.get(name)

    def channel_settings(self) -> dict[str, str]:
        """Every channel setting (a copy), for `accessbot db migrate-from-tinydb`."""
        return dict(self._settings)

    def send_budget(self, limits: Limits = TEAMS_LIMITS) -> SendBudget:
        """In process: one writer process serves a data directory, so one budget is the whole budget (one per
        set of limits, the same object each time it is asked for)."""
        return self._budgets.setdefault(tuple(sorted(limits)), RateLimiter(limits=limits))

    # ---- ledger ---------------------------------------------------------------------------------

    def _open_ledger(self) -> str | None:
        """Read the head, the anchor and the latest checkpoint; return why appending must stop (None when
        it need not). A writer also sets aside records no checkpoint signs: they were never acknowledged
        (a crash between writing and signing them), or someone without the key appended them."""
        last = self._ledger_log.last_line
        if last is not None:
            try:
                self._ledger_head = record_from_line(last).head
                self._ledger_id = _first_record(self._ledger_log.path).hash
            except LedgerUnreadable as unreadable:
                return f"a record cannot be read ({unreadable})"
        self._anchor, self._anchor_problem = _read_anchor(self._anchor_path)
        if not self.read_only and self._ledger_head.seq == 0 and self._anchor is None and self._anchor_problem is None:
            replace_file(self._anchor_path, canonical_json(asdict(EMPTY_HEAD)))  # the anchor exists before any record
            self._anchor = EMPTY_HEAD
        try:
            self._checkpoint = self._last_checkpoint()
        except CheckpointUnreadable as unreadable:
            return str(unreadable)
        if self._anchor_problem is not None:
            return self._anchor_problem
        if self._signer is None:
            if self._checkpoint is not None:
                return (f"the ledger is signed (up to record {self._checkpoint.seq}) but no signing key was given: "
                        "set ACCESSBOT_LEDGER_KEY_FILE")
            return self._anchor_damage()
        return self._signed_damage(self._signer)

    def _last_checkpoint(self) -> Checkpoint | None:
        line = self._checkpoint_log.last_line
        if line is None:
            return None
        try:
            entry = entry_from_line(line, 0)
        except CheckpointUnreadable as bad:  # numbered only when broken: counting lines would read the whole file
            raise CheckpointUnreadable(str(bad).replace("line 0 ", "the last line ", 1)) from None
        if not isinstance(entry, Checkpoint):
            raise CheckpointUnreadable(f"{CHECKPOINT_FILE} ends with a key rotation that no checkpoint follows")
        return entry

    def _anchor_damage(self) -> str | None:
        head, anchor = self._ledger_head, self._anchor
        if anchor is None:
            return None if head.seq == 0 else f"{ANCHOR_FILE} is missing while the ledger holds {head.seq} records"
        if head.seq < anchor.seq:
            return f"the ledger ends at record {head.seq} but {anchor.seq} were written"
        if head.seq == anchor.seq and head.hash != anchor.hash:
            return f"record {head.seq} is not the record that was acknowledged"
        return None

    def _signed_damage(self, signer: LedgerSigner) -> str | None:
        head, anchor, checkpoint = self._ledger_head, self._anchor, self._checkpoint
        if checkpoint is None:
            if head.seq == 0:
                return None
            if anchor == EMPTY_HEAD and not self.read_only:  # the very first commit died before it was signed
                self._set_aside(0)
                return None
            return (f"the ledger holds {head.seq} records but no signed checkpoint: it was written without a signing "
                    f"key (then see `accessbot ledger adopt`), or {CHECKPOINT_FILE} was removed")
        if checkpoint.key != signer.fingerprint:
            return (f"the ledger's latest checkpoint is signed by key {checkpoint.key[:16]}…, not by the configured key "
                    f"{signer.fingerprint[:16]}…: configure the ledger's current key")
        if not checkpoint.signed_by(signer.public_key):
            return f"the latest checkpoint's signature does not verify: {CHECKPOINT_FILE} was edited"
        if head.seq < checkpoint.seq:
            return f"the ledger ends at record {head.seq} but record {checkpoint.seq} was signed: records were cut off"
        signed = head if head.seq == checkpoint.seq else self._record_at(checkpoint.seq)
        if signed.hash != checkpoint.hash or self._ledger_id != checkpoint.ledger_id:
            return f"record {checkpoint.seq} is not the record that was signed: the ledger was rewritten"
        if anchor is None:
            return f"{ANCHOR_FILE} is missing while the ledger holds {head.seq} records"
        if anchor.seq > checkpoint.seq or (anchor.seq == checkpoint.seq and anchor.hash != checkpoint.hash):
            return f"{ANCHOR_FILE} names record {anchor.seq}, which no checkpoint signed as such"
        if head.seq > checkpoint.seq and not self.read_only:
            try:
                later = max((entry.seq for entry in self._checkpoint_entries()), default=0)
            except CheckpointUnreadable as unreadable:
                return str(unreadable)
            if later > checkpoint.seq:  # only an unsigned tail is set aside, never a record once signed
                return (f"{CHECKPOINT_FILE} ends with a checkpoint of record {checkpoint.seq} but an earlier line signed "
                        f"record {later}: it was edited so that signed records would be set aside")
            self._set_aside(checkpoint.seq)
        return None

    def _checkpoint_entries(self) -> list[SignedEntry]:
        """The whole checkpoint file: read only when records are about to be set aside, which is rare."""
        return [entry_from_line(line, number) for number, line in enumerate(self._checkpoint_log.lines(), 1)]

    def _record_at(self, seq: int) -> LedgerHead:
        lines = self._ledger_log.lines()
        return record_from_line(lines[seq - 1], seq).head

    def _set_aside(self, keep: int) -> None:
        """Move the records after ``keep`` to ledger-unsigned-*.jsonl (kept as evidence) and cut them off."""
        lines = self._ledger_log.lines()
        aside = lines[keep:]
        target = self.data_dir / f"ledger-unsigned-{keep + 1}-{len(lines)}.jsonl"
        copies = 1
        while target.exists():
            copies += 1
            target = self.data_dir / f"ledger-unsigned-{keep + 1}-{len(lines)}.{copies}.jsonl"
        replace_file(target, b"".join(line + b"\n" for line in aside))
        self._ledger_log.close()
        with self._ledger_log.path.open("r+b") as ledger:
            ledger.truncate(sum(len(line) + 1 for line in lines[:keep]))
            os.fsync(ledger.fileno())
        self._ledger_log = AppendLog(self._ledger_log.path)
        self._ledger_index.reset()
        self._ledger_head = record_from_line(lines[keep - 1], keep).head if keep else EMPTY_HEAD
        self._ledger_id = self._ledger_id if keep else None
        log.warning("moved %d record(s) no checkpoint signs to %s: never acknowledged (a crash before signing), "
                    "or appended without the key", len(aside), target.name)

    async def append_ledger(self, events: Sequence[LedgerEvent], at: datetime) -> list[LedgerRecord]:
        """Durable and signed when it returns. Group commit: the appends that arrive while one is being
        written go out together, with one write, one fsync, one checkpoint and one anchor replacement, off
        the event loop — so under load the cost per decision falls instead of queueing behind one fsync each.

        Raises ``RecordRejected`` when these events cannot be encoded (only this caller fails), and
        ``StoreUnavailable`` when nothing could be written (disk full, read-only, damaged ledger).
        """
        return list((await self._append(events, at, None)).records)

    async def append_if_current(
        self, events: Sequence[LedgerEvent], expected: Mapping[str, int], at: datetime
    ) -> Appended:
        """``append_ledger`` if no version key in ``expected`` moved and no event key repeats (checked in the
        commit, against the index of this, the only writer's, ledger); else nothing, and what stands."""
        return await self._append(events, at, dict(expected))

    async def _append(self, events: Sequence[LedgerEvent], at: datetime, expected: Mapping[str, int] | None) -> Appended:
        self._writable()
        if not events:
            return Appended()
        done: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._ledger_waiting.append((events, at, expected, done))
        if self._ledger_flusher is None or self._ledger_flusher.done():
            self._ledger_flusher = asyncio.create_task(self._flush_ledger())
        return await done

    async def ledger_records_after(self, seq: int, limit: int) -> list[LedgerRecord]:
        """At most ``limit`` records after ``seq`` that this writer acknowledged, read off the event loop."""
        return await self._ledger_index.records_after(seq, limit, self._acknowledged())

    async def _flush_ledger(self) -> None:
        """Commit batches until nobody waits. Whatever goes wrong — even cancellation — every waiter gets
        an answer: a request must never hang with its item locked."""
        batch: list[_Waiting] = []
        try:
            while self._ledger_waiting:
                batch, self._ledger_waiting = self._ledger_waiting, []
                try:
                    await self._commit(batch)
                except Exception as unexpected:
                    log.exception("the ledger's group commit failed")
                    _fail([done for *_, done in batch],
                          StoreUnavailable(f"the ledger could not be written ({unexpected}); nothing was recorded"))
        finally:
            leftover, self._ledger_waiting = batch + self._ledger_waiting, []
            _fail([done for *_, done in leftover], StoreUnavailable("the store stopped before this answer was recorded"))

    async def _commit(self, batch: list[_Waiting]) -> None:
        if self._ledger_damage is not None:
            _fail([done for *_, done in batch], LedgerIntegrityError(
                f"{self._ledger_damage}; refusing to append until `accessbot ledger verify` is looked at"))
            return
        index = self._ledger_index
        checking = any(expected is not None for _, _, expected, _ in batch)
        if checking:  # the index reaches the head: this process is the only writer, so it is the whole truth
            await index.caught_up(self._ledger_head.seq)
        head, ledger_id, accepted, lines = self._ledger_head, self._ledger_id, [], []
        refused: list[tuple[asyncio.Future[Appended], set[int]]] = []
        for events, at, expected, done in batch:
            if done.done():  # its caller gave up waiting
                continue
            if expected is not None and (standing := index.versions.refusal(events, expected)):
                refused.append((done, standing))
                continue
            try:  # one request's records are encoded on their own: a poison record fails only its request
                records = chain(events, head, at)
                encoded = [record_to_line(record) for record in records]
            except Exception as bad:
                done.set_exception(RecordRejected(f"this answer cannot be recorded: {_reason(bad)}"))
                continue
            accepted.append((done, records))
            lines.extend(encoded)
            head = records[-1].head
            ledger_id = ledger_id or records[0].hash
            if checking:  # the next waiter of this batch is checked against these records too
                for record in records:
                    index.versions.fold_record(record)
        if accepted:
            assert ledger_id is not None
            if not await self._write_batch(accepted, lines, head, ledger_id):
                _fail([done for done, _ in refused], StoreUnavailable(f"{self._write_failure}; nothing was recorded"))
                return
        for done, standing in refused:  # after the write: what stands may be a record of this very batch
            if not done.done():
                done.set_result(Appended(standing=tuple(await index.records_at(sorted(standing)))))

    async def _write_batch(
        self, accepted: list[tuple[asyncio.Future[Appended], list[LedgerRecord]]], lines: list[bytes],
        head: LedgerHead, ledger_id: str,
    ) -> bool:
        """Write the accepted records durably and answer their callers; False (and each told) when nothing was."""
        index = self._ledger_index
        stamp = accepted[-1][1][-1].at
        start = self._ledger_log.mark()[0]
        try:
            checkpoint = await asyncio.to_thread(self._write_durably, lines, head, ledger_id, stamp)
        except Exception as failed:  # nothing was appended: a failed write is cut back, see _write_durably
            index.reset()  # it may have counted the records that were not written
            if isinstance(failed, LogChanged):  # tampered with while running: stop for good, like at start-up
                self._ledger_damage = f"{failed}: appended, cut or replaced by someone other than this bot"
            self._write_failure = f"the ledger cannot be written: {_reason(failed)}"
            _fail([done for done, _ in accepted], StoreUnavailable(f"{self._write_failure}; nothing was recorded"))
            return False
        self._write_failure = None
        self._ledger_head, self._ledger_id, self._checkpoint = head, ledger_id, checkpoint or self._checkpoint
        async with index.lock:
            index.appended([record for _, records in accepted for record in records], lines, start)
        for done, records in accepted:
            if not done.done():
                done.set_result(Appended(tuple(records)))
        return True

    def _write_durably(self, lines: list[bytes], head: LedgerHead, ledger_id: str, stamp: str) -> Checkpoint | None:
        """Records, then their checkpoint, then the anchor — in a worker thread. If the checkpoint cannot be
        written the records are taken back, so what is on disk is always either signed or never acknowledged."""
        mark = self._ledger_log.mark()
        self._ledger_log.append(lines)  # cuts itself back if the write or the fsync fails
        checkpoint = None
        if self._signer is not None:
            checkpoint = self._signer.checkpoint(ledger_id, head, stamp)
            try:
                self._checkpoint_log.append([entry_to_line(checkpoint)])
            except BaseException:
                try:
                    self._ledger_log.cut_back(mark)
                except OSError as stuck:
                    self._ledger_damage = (f"records after {mark[0]} bytes were written but could neither be signed nor "
                                           f"taken back ({_reason(stuck)}); restart to set them aside")
                raise
        try:
            replace_file(self._anchor_path, canonical_json(asdict(head)))
        except OSError:
            log.exception("could not replace %s; the records are durable and signed", self._anchor_path)
        else:
            self._anchor = head
        return checkpoint

    async def rotate_ledger_key(self, new: LedgerSigner, at: datetime) -> KeyRotation:
        """Hand the ledger to ``new``: a rotation signed by the current key, then a checkpoint signed by the
        new one, in one append. Run with the bot stopped (the writer lock guarantees it)."""
        self._writable()
        if self._signer is None or self._ledger_id is None:
            raise ValueError("nothing to rotate: the ledger is unsigned or still empty (just configure the new key)")
        if self._ledger_damage is not None:
            raise LedgerIntegrityError(self._ledger_damage)
        stamp = utc_stamp(at)
        rotation = self._signer.rotation(self._ledger_id, self._ledger_head, stamp, new.public_key)
        checkpoint = new.checkpoint(self._ledger_id, self._ledger_head, stamp)
        await asyncio.to_thread(self._checkpoint_log.append, [entry_to_line(rotation), entry_to_line(checkpoint)])
        self._signer, self._checkpoint = new, checkpoint
        return rotation

    async def adopt_unsigned_ledger(self, at: datetime) -> Checkpoint:
        """Sign, once, a ledger written before signing was switched on: a first checkpoint of its head,
        after its hash chain and anchor verified. From here on it is provable; before here, only as far as
        whoever runs this vouches for it (docs/ledger.md)."""
        self._writable()
        if self._signer is None or self._checkpoint is not None or self._ledger_id is None:
            raise ValueError("nothing to adopt: adopt needs a signing key and a non-empty ledger that was never signed")
        records = await self.ledger_records()
        checked = verify(records, self._anchor)
        if not checked.ok:
            raise LedgerIntegrityError(f"the unsigned ledger does not verify: {checked.problem}")
        if self._anchor is None or self._anchor.seq == 0:
            raise LedgerIntegrityError(f"{ANCHOR_FILE} is missing: nothing says where this ledger was meant to end")
        checkpoint = self._signer.checkpoint(self._ledger_id, self._ledger_head, utc_stamp(at))
        await asyncio.to_thread(self._checkpoint_log.append, [entry_to_line(checkpoint)])
        self._checkpoint, self._ledger_damage = checkpoint, None
        await asyncio.to_thread(replace_file, self._anchor_path, canonical_json(asdict(self._ledger_head)))
        self._anchor = self._ledger_head
        return checkpoint

    async def ledger_records(self) -> list[LedgerRecord]:
        """Every record, read from the file now. The writer returns only those up to its own head: lines someone
        else appended while it runs were never acknowledged, and must not reach an export, an evidence pack or
        a person's history (its next append refuses, see AppendLog)."""
        up_to = self._acknowledged()
        return await asyncio.to_thread(self._read_records, up_to)

    def _read_records(self, up_to: int | None) -> list[LedgerRecord]:
        lines = self._ledger_log.lines()
        if up_to is not None:
            lines = lines[:up_to]
        return [record_from_line(line, number) for number, line in enumerate(lines, 1)]

    async def ledger_records_of(self, campaign_id: str) -> list[LedgerRecord]:
        """One campaign's records, through the index of line offsets per campaign (bot/store/ledger_index.py),
        limited like ``ledger_records`` to what this writer acknowledged."""
        return await self._ledger_index.records_of(campaign_id, self._acknowledged())

    def _acknowledged(self) -> int | None:
        """How many records a reader may see: the writer's head, or every complete line for a reader (and for a
        damaged ledger, whose records are evidence)."""
        return self._ledger_head.seq if not self.read_only and self._ledger_damage is None else None

    async def ledger_anchor(self) -> LedgerHead | None:
        return None if self._anchor == EMPTY_HEAD else self._anchor

    async def anchor_state(self) -> tuple[LedgerHead | None, str | None]:
        """ledger.head as read when the store opened (None when absent), and why it cannot be read, if so."""
        return self._anchor, self._anchor_problem

    async def ledger_checkpoints(self) -> list[SignedEntry]:
        return self._checkpoint_entries()

    def set_aside(self) -> list[str]:
        """Each ledger-unsigned-*.jsonl a writer made, with its record count: records no checkpoint signed, taken
        out of the ledger. A crash before signing leaves them, and so does someone appending without the key,
        so the operator and the auditor must hear of them (verify, doctor, /healthz), not just the log."""
        return [f"{path.name} ({len(AppendLog(path).lines())} record(s))"
                for path in sorted(self.data_dir.glob("ledger-unsigned-*.jsonl"))]

    async def latest_checkpoint(self) -> Checkpoint | None:
        return self._checkpoint

    def ledger_public_key(self) -> bytes | None:
        return None if self._signer is None else public_key_pem(self._signer.public_key)

    def write_problem(self) -> str | None:
        """The ledger's damage, or the last write failure until a write succeeds again."""
        return self._ledger_damage or self._write_failure

    def _writable(self) -> None:
        if self.read_only:
            raise PermissionError(f"{self.data_dir} was opened read-only")

    async def close(self) -> None:
        if self._ledger_flusher is not None:
            await self._ledger_flusher  # appends already acknowledged to nobody still finish
        for group_log in (self._conversation_log, self._cards_log, self._outbox_log, self._sent_log):
            await group_log.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None
        self._ledger_log.close()
        self._checkpoint_log.close()
        self._campaign_db.close()


_PLAIN_SENT_LINE = re.compile(
    rb'^\["([^"\\\n]*)","(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?\+00:00)"[^\n]*$', re.MULTILINE)


def read_sent_keys(content: bytes, oldest: datetime) -> tuple[set[str], set[str], list[bytes] | None]:
    """The keys of the sent-keys file's complete lines (``["<key>","<at>"]`` or ``["<key>","<at>","<error>"]``,
    canonical JSON) that left the queue at ``oldest`` or later, the keys that left before, and the lines to
    keep when some expired (None when all are kept, so the file needs no rewrite).

    A million lines are read at every start, and decoding them one by one with ``json.loads`` and
    ``datetime.fromisoformat`` was most of the start-up. The store writes UTC times with ``isoformat()``,
    which sort as text (``…:05+00:00`` before ``…:05.100000+00:00``), so when every line is plain (nothing
    escaped in its key, a UTC time) one regular expression takes all the keys and times and the times are
    compared as text; otherwise each line is decoded as JSON and its time parsed."""
    lines = content.count(b"\n")
    entries = _PLAIN_SENT_LINE.findall(content)
    if len(entries) == lines:
        utc = oldest.astimezone(timezone.utc)
        since = (utc.isoformat() if utc.microsecond else utc.isoformat(timespec="seconds")).encode()
        sent = {key.decode() for key, at in entries if at >= since}
        if len(sent) == lines:
            return sent, set(), None
        decoded = [(key.decode(), at >= since) for key, at in entries]
    else:
        decoded = []
        for line in content.splitlines():
            entry = json.loads(line)
            decoded.append((str(entry[0]), datetime.fromisoformat(entry[1]) >= oldest))
    sent = {key for key, within in decoded if within}
    expired = {key for key, within in decoded if not within}
    kept = [line for line, (_, within) in zip(content.splitlines(), decoded) if within] if expired else None
    return sent, expired, kept


def lock_writer(path: Path) -> int:
    """Take the data directory's writer lock, or say who holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StoreLocked(
            f"{path.parent} is in use by another accessbot process (pid {holder}); stop it, or use the read-only "
            "commands (ledger verify/export, campaign status/export) while it runs"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _fail(waiting: Iterable[asyncio.Future[Appended]], error: Exception) -> None:
    for done in waiting:
        if not done.done():
            done.set_exception(error)


def _reason(error: BaseException) -> str:
    """A short, human reason: an OSError's strerror (e.g. 'No space left on device'), else the message."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    if isinstance(error, UnicodeError):
        return "it holds text that cannot be stored (e.g. a lone UTF-16 surrogate)"
    return f"{type(error).__name__}: {error}"


def _read_anchor(path: Path) -> tuple[LedgerHead | None, str | None]:
    """The anchor, or (None, why it cannot be read); (None, None) when there is no anchor file."""
    try:
        raw = json.loads(path.read_bytes())
        head = LedgerHead(int(raw["seq"]), str(raw["hash"]))
    except FileNotFoundError:
        return None, None
    except (ValueError, KeyError, TypeError, OSError) as error:
        return None, f"{path.name} cannot be read ({type(error).__name__}: {error})"
    return head, None


def _first_record(path: Path) -> LedgerRecord:
    """The ledger's first record, whose hash is the ledger id the checkpoints name."""
    with path.open("rb") as ledger:
        return record_from_line(ledger.readline(), 1)


def _outbox_line(message: OutboxMessage) -> bytes:
    return canonical_json([message.key, outbox_to_dict(message)]) + b"\n"
