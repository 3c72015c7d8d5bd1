"""The PostgreSQL backend: the same ``Store`` contract as the embedded TinyDB store, in one database that
several processes can share.

Driver: psycopg 3 (async, with ``psycopg_pool``), not asyncpg. Appending one record in its own transaction
(advisory lock, read the head, insert) ran at 1,660 and 850/s with psycopg against 1,870 and 1,240/s with
asyncpg in two runs on the 2-core development box (docs/deployment.md): both far above what a ledger append
needs, since each is bound by the commit's fsync. psycopg won because the Alembic migrations use it too,
through SQLAlchemy's ``postgresql+psycopg`` dialect, so a deployment carries one PostgreSQL driver, one way
to spell the URL, and one set of libpq connection options (``sslmode``, ``options=-csearch_path=…``).

What keeps the ledger correct when several processes append at once: each group commit (the appends that
arrived meanwhile in this process) is one transaction that takes ``pg_advisory_xact_lock`` on that ledger (not a table lock: readers and other tables go on), reads
the head inside the lock, chains the new records onto it, inserts them with their signed checkpoint and
the new head, and commits, which releases the lock. Records and their checkpoint commit together, so no
crash can leave records no checkpoint signs (the TinyDB store has to set such a tail aside; here there is
never one, so ``set_aside()`` is always empty). Documents are the same canonical JSON text TinyDB writes,
so a value comes back exactly as it was stored.

A database that cannot be reached, or refuses a statement for a reason of its own (connection lost,
disk full, read-only standby), is ``StoreUnavailable``; records that cannot be encoded are
``RecordRejected``; a ledger whose stored head, checkpoints or key disagree is ``LedgerIntegrityError``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, AsyncIterator, Mapping, Sequence

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.clock import Clock, SystemClock
from bot.engine.model import Campaign, LedgerEvent, ReviewItem
from bot.ledger import (
    EMPTY_HEAD,
    LedgerHead,
    LedgerRecord,
    canonical_json,
    chain,
    record_from_line,
    record_to_line,
    utc_stamp,
    verify,
)
from bot.ledger_signing import (
    Checkpoint,
    KeyRotation,
    LedgerSigner,
    SignedEntry,
    entry_from_line,
    entry_to_line,
    public_key_pem,
)
from bot.operator_errors import ExitCode, OperatorError
from bot.ratelimit import TEAMS_LIMITS, Limits, SendBudget
from bot.store.base import (
    SENT_HORIZON,
    DatabaseUnavailable,
    LedgerIntegrityError,
    OutboxMessage,
    PostedCard,
    RecordRejected,
    StoreUnavailable,
    campaign_of,
)
from bot.store.codec import (
    campaign_from_dict,
    campaign_to_dict,
    card_from_dict,
    card_to_dict,
    item_from_dict,
    item_to_dict,
    outbox_from_dict,
    outbox_to_dict,
)
from bot.store.concurrency import Appended, Versions, event_key, moved_keys
from bot.store.postgres_budget import PostgresBudget
from bot.store.postgres_schema import behind_message, schema_revision

LEDGER = "main"
"""The one ledger a deployment keeps; the column lets a later version hold one per tenant."""

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('accessbot-ledger:' || current_schema() || ':' || %s, 0))"

_SELECT_HEAD = "SELECT seq, hash FROM ledger_heads WHERE ledger = %s"
_SELECT_LAST_ENTRY = "SELECT n, line FROM ledger_entries WHERE ledger = %s ORDER BY n DESC LIMIT 1"

_SELECT_TAIL = """
    SELECT last.seq, last.line, head.seq, head.hash, entry.n, entry.line, first.line
    FROM (VALUES (1)) AS one
    LEFT JOIN LATERAL (SELECT seq, line FROM ledger_records WHERE ledger = %(ledger)s ORDER BY seq DESC LIMIT 1)
        AS last ON true
    LEFT JOIN ledger_heads AS head ON head.ledger = %(ledger)s
    LEFT JOIN LATERAL (SELECT n, line FROM ledger_entries WHERE ledger = %(ledger)s ORDER BY n DESC LIMIT 1)
        AS entry ON true
    LEFT JOIN LATERAL (SELECT line FROM ledger_records WHERE ledger = %(ledger)s AND seq = 1) AS first ON %(first)s
"""
"""What an append checks under the lock, in one row: the last record, the stored head, the last signed entry, and
record 1 when ``first`` (its hash names the ledger in every checkpoint)."""

_WRITE_GROUP = """
    WITH records AS (
        INSERT INTO ledger_records (ledger, seq, line, campaign_id, event_key)
        SELECT %(ledger)s, * FROM unnest(%(seqs)b::bigint[], %(lines)b::text[], %(campaigns)b::text[],
                                         %(event_keys)b::text[])
    ), versions AS (
        INSERT INTO ledger_versions (ledger, key, seq)
        SELECT %(ledger)s, * FROM unnest(%(keys)b::text[], %(key_seqs)b::bigint[])
        ON CONFLICT (ledger, key) DO UPDATE SET seq = EXCLUDED.seq
    ), checkpoint AS (
        INSERT INTO ledger_entries (ledger, n, line)
        SELECT %(ledger)s, %(n)s::bigint, %(checkpoint)s::text WHERE %(checkpoint)s::text IS NOT NULL
    )
    INSERT INTO ledger_heads (ledger, seq, hash) VALUES (%(ledger)s, %(seq)s, %(hash)s)
    ON CONFLICT (ledger) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash
"""
"""A group commit's writes as one statement: its records column by column (an array each, however many there
are), the version keys they moved (each once: an upsert cannot touch a row twice), the checkpoint (none on an
unsigned ledger) and the new head. The arrays go in binary: in text every quote of every JSON line would be
escaped into the array literal, one by one, the largest CPU cost of the group commit in the profile."""

_CLAIM = """
    WITH claimable AS (
        SELECT o.id FROM outbox o
        WHERE o.state = 'pending' AND o.next_attempt_at <= %(now)s
          AND (o.claimed_until IS NULL OR o.claimed_until <= %(now)s)
          AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.recipient = o.recipient AND e.state = 'pending'
                          AND (e.created_at, e.id) < (o.created_at, o.id))
        ORDER BY o.created_at, o.id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    UPDATE outbox SET claimed_by = %(worker)s, claimed_until = %(until)s
    FROM claimable WHERE outbox.id = claimable.id
    RETURNING outbox.doc, outbox.created_at, outbox.id
"""
"""Each person's oldest pending message (``NOT EXISTS`` an older one still pending: it may be claimed, deferred
or in flight), when due and under no live lease."""

_DEFERRED = "SELECT key, doc FROM outbox WHERE state = 'pending' AND recipient = %s AND next_attempt_at > %s"
"""A person's messages waiting for a later attempt (``release_recipient`` brings them forward)."""

PRUNE_EVERY = timedelta(minutes=10)
"""How often a claiming instance deletes the sent keys that passed their horizon (start-up does it too)."""

_Cursor = psycopg.AsyncCursor[Any]
_Waiting = tuple[Sequence[LedgerEvent], datetime, "Mapping[str, int] | None", "asyncio.Future[Appended]"]
"""A caller of append_ledger or append_if_current: its events, their time, the versions it expects (None: append
whatever stands), and the future that answers it."""

log = logging.getLogger(__name__)


CONVERSATION_RECHECK = 300.0
"""Seconds an instance trusts that the reference it last wrote for a person is still the stored one. Teams
sends the same reference with every activity, and asking the database each time was a round trip on every
click (the decision path's largest cost on PostgreSQL). Another instance may store a different reference for
the same person meanwhile (they came through it with a new conversation); if they then come back here with
the old one within this window, the row keeps the other instance's, which is a conversation of theirs too."""


class PostgresStore:
    """Constructed without I/O (like TinyDBStore, so one factory builds either); the first use connects, or
    ``await store.start()`` does it up front, which a server does to refuse a bad database before it listens."""

    def __init__(
        self,
        url: str,
        *,
        read_only: bool = False,
        signer: LedgerSigner | None = None,
        clock: Clock | None = None,
        sent_horizon: timedelta = SENT_HORIZON,
        max_connections: int = 8,
    ) -> None:
        self.url = url
        self.read_only = read_only
        self._signer = signer
        self.clock = clock or SystemClock()
        self.sent_horizon = sent_horizon
        self._max_connections = max_connections
        self._pool: AsyncConnectionPool | None = None
        self._starting: asyncio.Lock | None = None
        self._ledger_id: str | None = None  # the first record's hash, fixed once there is one
        self._write_failure: str | None = None
        self._ledger_waiting: list[_Waiting] = []
        self._ledger_flusher: asyncio.Task[None] | None = None
        self._pruned_at: datetime | None = None
        self._budgets: dict[tuple[str, ...], PostgresBudget] = {}
        # key -> (reference as stored, when this instance last wrote or confirmed it): see CONVERSATION_RECHECK
        self._conversations_written: dict[str, tuple[str, float]] = {}

    async def start(self) -> None:
        """Connect, refuse a database behind the latest migration (one line: run `accessbot db upgrade`),
        and, for a writer, forget sent keys older than the horizon. ``StoreUnavailable`` when the database
        cannot be reached. Idempotent."""
        self._starting = self._starting or asyncio.Lock()
        async with self._starting:
            if self._pool is not None:
                return
            try:  # one connection first: a wrong URL or a database that is down is said at once, with its reason
                async with await psycopg.AsyncConnection.connect(self.url, connect_timeout=10) as conn:
                    problem = behind_message(await schema_revision(conn))
                    if problem is not None:
                        raise OperatorError(problem, ExitCode.UNAVAILABLE)
                    if not self.read_only:  # keys that left the queue before the horizon refuse no twin any more
                        await conn.execute("DELETE FROM outbox WHERE state <> 'pending' AND left_at < %s",
                                           (self.clock.now() - self.sent_horizon,))
                pool = AsyncConnectionPool(self.url, min_size=1, max_size=self._max_connections, open=False,
                                           timeout=10.0, reset=_implicit_transactions)
                await pool.open(wait=True, timeout=10.0)
            except (PoolTimeout, psycopg.OperationalError) as failed:
                raise DatabaseUnavailable(f"cannot connect to the database: {_reason(failed)}") from failed
            self._pool = pool

    @asynccontextmanager
    async def _connection(self, write: bool = False) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection whose block is one transaction (committed when it ends without an error).
        The database's own failures become ``StoreUnavailable``, text PostgreSQL cannot hold (a NUL, a lone
        surrogate) ``RecordRejected``; a write that succeeds clears the last failure."""
        if write and self.read_only:
            raise PermissionError("this store was opened read-only")
        try:
            await self.start()
            assert self._pool is not None
            async with self._pool.connection() as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError, psycopg.InterfaceError, psycopg.errors.InsufficientResources,
                psycopg.errors.ReadOnlySqlTransaction) as failed:
            if not write:
                raise DatabaseUnavailable(f"the database cannot be read: {_reason(failed)}") from failed
            self._write_failure = f"the database cannot be written: {_reason(failed)}"
            raise DatabaseUnavailable(f"{self._write_failure}; nothing was recorded") from failed
        except (psycopg.DataError, UnicodeEncodeError) as bad:  # a NUL or a lone surrogate in a key: only this request
            raise RecordRejected(f"this cannot be stored or looked up: {_reason(bad)}") from bad
        except StoreUnavailable as refused:
            if write:
                self._write_failure = str(refused)
            raise
        if write:
            self._write_failure = None

    def transaction(self, write: bool = False) -> Any:
        """A pooled connection whose block is one transaction, with the store's error mapping
        (``StoreUnavailable``, ``RecordRejected``): for tables kept beside the store's own, such as the
        collection jobs (bot/collection_jobs.py), so they share its pool and its failure reporting."""
        return self._connection(write)

    # ---- campaigns ------------------------------------------------------------------------------

    async def save_campaign(self, campaign: Campaign, items: Sequence[ReviewItem]) -> bool:
        """The campaign row and its items in one transaction: a listed campaign always has its items."""
        async with self._connection(write=True) as conn:
            inserted = await (await conn.execute(
                "INSERT INTO campaigns (id, opened_at, doc) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
                (campaign.id, campaign.opened_at, _text(campaign_to_dict(campaign))),
            )).fetchone()
            if inserted is None:
                return False
            async with conn.cursor().copy("COPY campaign_items (campaign_id, position, doc) FROM STDIN") as copy:
                for position, item in enumerate(items):
                    await copy.write_row((campaign.id, position, _text(item_to_dict(item))))
        return True

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        async with self._connection() as conn:
            row = await (await conn.execute("SELECT doc FROM campaigns WHERE id = %s", (campaign_id,))).fetchone()
        return None if row is None else campaign_from_dict(json.loads(row[0]))

    async def list_campaigns(self) -> list[Campaign]:
        async with self._connection() as conn:
            rows = await (await conn.execute("SELECT doc FROM campaigns ORDER BY opened_at DESC, id")).fetchall()
        return [campaign_from_dict(json.loads(doc)) for (doc,) in rows]

    async def campaign_items(self, campaign_id: str) -> list[ReviewItem]:
        async with self._connection() as conn:
            rows = await (await conn.execute(
                "SELECT doc FROM campaign_items WHERE campaign_id = %s ORDER BY position", (campaign_id,))).fetchall()
        return [item_from_dict(json.loads(doc)) for (doc,) in rows]

    # ---- conversations and cards ----------------------------------------------------------------

    async def save_conversation(self, key: str, reference: dict[str, Any]) -> bool:
        """One statement that writes only a new or changed reference (Teams repeats the same one with
        every activity): the row comes back only when it was inserted or really updated."""
        stored = _text(reference)
        now = time.monotonic()
        known = self._conversations_written.get(key)
        if known is not None and known[0] == stored and now - known[1] < CONVERSATION_RECHECK:
            return False  # this instance wrote or found exactly this a moment ago: no round trip per click
        async with self._autocommit() as conn:  # one statement, on every first click of a person
            changed = await (await conn.execute(
                "INSERT INTO conversations (key, reference) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                "SET reference = EXCLUDED.reference WHERE conversations.reference <> EXCLUDED.reference RETURNING 1",
                (key, stored),
            )).fetchone()
        self._conversations_written[key] = (stored, now)
        return changed is not None

    async def get_conversation(self, key: str) -> dict[str, Any] | None:
        async with self._connection() as conn:
            row = await (await conn.execute("SELECT reference FROM conversations WHERE key = %s", (key,))).fetchone()
        return None if row is None else json.loads(row[0])

    async def save_card(self, item_id: str, card: PostedCard) -> None:
        async with self._connection(write=True) as conn:
            await conn.execute(
                "INSERT INTO cards (item_id, activity_id, reference) VALUES (%s, %s, %s) "
                "ON CONFLICT (item_id, activity_id) DO NOTHING", (item_id, *card_row(card)))

    async def cards(self, item_id: str) -> list[PostedCard]:
        async with self._connection() as conn:
            rows = await (await conn.execute(
                "SELECT reference, activity_id FROM cards WHERE item_id = %s ORDER BY id", (item_id,))).fetchall()
        return [card_from_dict({**_legacy_card(json.loads(document)), "activity_id": key}) for document, key in rows]

    # ---- outbox ---------------------------------------------------------------------------------

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> int:
        """A key the table holds (pending, sent or undeliverable) is refused by ``ON CONFLICT DO NOTHING``,
        also when another process queues the same key at the same moment."""
        rows = [(m.key, m.recipient, m.created_at, m.next_attempt_at, _text(outbox_to_dict(m))) for m in messages]
        if not rows:
            return 0
        async with self._connection(write=True) as conn:
            cursor = conn.cursor()  # pipelined; a key twice in this batch inserts once, so it counts once
            await cursor.executemany(
                "INSERT INTO outbox (key, recipient, created_at, next_attempt_at, doc) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (key) DO NOTHING", rows)
            return cursor.rowcount

    async def due_messages(self, now: datetime, limit: int) -> list[OutboxMessage]:
        if limit <= 0:
            return []
        async with self._connection() as conn:
            rows = await (await conn.execute(
                "SELECT doc FROM outbox WHERE state = 'pending' AND next_attempt_at <= %s "
                "ORDER BY created_at, id LIMIT %s", (now, limit))).fetchall()
        return [outbox_from_dict(json.loads(doc)) for (doc,) in rows]

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
        """One statement: the due heads of each person's queue that no live lease holds, locked with
        ``FOR UPDATE SKIP LOCKED`` (a row another claim is taking right now is passed over, not waited for) and
        stamped with ``worker`` and the lease's end. Sent keys past the horizon are pruned here now and then."""
        if limit <= 0:
            return []
        async with self._connection(write=True) as conn:
            rows = await (await conn.execute(_CLAIM, {"now": now, "limit": limit, "worker": worker,
                                                      "until": now + lease})).fetchall()
            if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
                await conn.execute("DELETE FROM outbox WHERE state <> 'pending' AND left_at < %s",
                                   (now - self.sent_horizon,))
                self._pruned_at = now
        rows.sort(key=lambda row: (row[1], row[2]))
        return [outbox_from_dict(json.loads(doc)) for doc, _, _ in rows]

    async def mark_sent(self, key: str, at: datetime, *, worker: str) -> bool:
        return await self._leave_queue(key, worker, "sent", at, None)

    async def mark_undeliverable(self, key: str, error: str, at: datetime, *, worker: str) -> bool:
        return await self._leave_queue(key, worker, "undeliverable", at, error)

    async def _leave_queue(self, key: str, worker: str, state: str, at: datetime, error: str | None) -> bool:
        """The row stays, marked, so its key refuses a twin until the horizon; a second report is harmless."""
        async with self._connection(write=True) as conn:
            message = await _claimed_locked(conn, key, worker)
            if message is None:
                return False
            left = replace(message, sent_at=at, last_error=message.last_error if error is None else error)
            await conn.execute("UPDATE outbox SET state = %s, left_at = %s, doc = %s, claimed_by = NULL, "
                               "claimed_until = NULL WHERE key = %s", (state, at, _text(outbox_to_dict(left)), key))
        return True

    async def mark_retry(self, key: str, error: str, next_attempt_at: datetime, *, worker: str) -> bool:
        async with self._connection(write=True) as conn:
            message = await _claimed_locked(conn, key, worker)
            if message is None:
                return False
            retried = replace(message, attempts=message.attempts + 1, last_error=error, next_attempt_at=next_attempt_at)
            await conn.execute("UPDATE outbox SET next_attempt_at = %s, doc = %s, claimed_by = NULL, "
                               "claimed_until = NULL WHERE key = %s",
                               (next_attempt_at, _text(outbox_to_dict(retried)), key))
        return True

    async def release_recipient(self, recipient: str, now: datetime) -> int:
        """Called on every new conversation, usually with nothing deferred: that case is one read with no
        transaction around it. A message deferred just after that read is no more missed than by the locked read
        below, which cannot see rows committed after it started either."""
        async with self._autocommit() as conn:
            deferred = await (await conn.execute(_DEFERRED + " LIMIT 1", (recipient, now))).fetchone()
        if deferred is None:
            return 0
        async with self._connection(write=True) as conn:
            rows = await (await conn.execute(_DEFERRED + " FOR UPDATE", (recipient, now))).fetchall()
            for key, doc in rows:
                released = replace(outbox_from_dict(json.loads(doc)), next_attempt_at=now)
                await conn.execute("UPDATE outbox SET next_attempt_at = %s, doc = %s WHERE key = %s",
                                   (now, _text(outbox_to_dict(released)), key))
        return len(rows)

    # ---- what channels learned, and their sending budget ------------------------------------------

    async def save_channel_setting(self, name: str, value: str) -> bool:
        async with self._connection(write=True) as conn:
            changed = await (await conn.execute(
                "INSERT INTO channel_settings (name, value) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
                "SET value = EXCLUDED.value WHERE channel_settings.value <> EXCLUDED.value RETURNING 1",
                (name, value))).fetchone()
        return changed is not None

    async def channel_setting(self, name: str) -> str | None:
        async with self._connection() as conn:
            row = await (await conn.execute("SELECT value FROM channel_settings WHERE name = %s", (name,))).fetchone()
        return None if row is None else str(row[0])

    def send_budget(self, limits: Limits = TEAMS_LIMITS) -> SendBudget:
        """The budget every instance on this database shares: its cells are rows, so the objects of every
        process spend one budget (one object per set of limits here, the same each time it is asked for)."""
        return self._budgets.setdefault(tuple(sorted(limits)), PostgresBudget(self, limits))

    # ---- ledger ---------------------------------------------------------------------------------

    async def append_ledger(self, events: Sequence[LedgerEvent], at: datetime) -> list[LedgerRecord]:
        """Durable and signed when it returns. Group commit, as in the TinyDB store: the appends that arrive while
        one transaction runs go out together in the next, with one lock, one checkpoint and one commit, so under
        load the cost per decision falls instead of queueing behind one round trip each.

        ``RecordRejected`` when these events cannot be encoded (only this caller fails); ``StoreUnavailable``
        (or ``LedgerIntegrityError``) when nothing could be written."""
        return list((await self._append(events, at, None)).records)

    async def append_if_current(
        self, events: Sequence[LedgerEvent], expected: Mapping[str, int], at: datetime
    ) -> Appended:
        """``append_ledger`` if no version key in ``expected`` moved and no event key repeats, decided inside the
        append's transaction under the ledger's lock (``ledger_versions``, the unique ``event_key``), whichever
        process appended meanwhile; else nothing, and what stands."""
        return await self._append(events, at, dict(expected))

    async def _append(self, events: Sequence[LedgerEvent], at: datetime, expected: Mapping[str, int] | None) -> Appended:
        if self.read_only:
            raise PermissionError("this store was opened read-only")
        if not events:
            return Appended()
        done: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._ledger_waiting.append((events, at, expected, done))
        if self._ledger_flusher is None or self._ledger_flusher.done():
            self._ledger_flusher = asyncio.create_task(self._flush_ledger())
        return await done

    async def ledger_records_after(self, seq: int, limit: int) -> list[LedgerRecord]:
        """At most ``limit`` committed records after ``seq``, in order (every instance follows the ledger with it).
        Records commit under the ledger's lock in seq order, so a record never appears behind one already read."""
        async with self._connection() as conn:
            rows = await (await conn.execute(
                "SELECT seq, line FROM ledger_records WHERE ledger = %s AND seq > %s ORDER BY seq LIMIT %s",
                (LEDGER, seq, max(limit, 0)))).fetchall()
        return await asyncio.to_thread(lambda: [record_from_line(line, number) for number, line in rows])

    async def _flush_ledger(self) -> None:
        """Commit batches until nobody waits; whatever goes wrong, every waiter gets an answer (a request must
        never hang with its item locked)."""
        batch: list[_Waiting] = []
        try:
            while self._ledger_waiting:
                batch, self._ledger_waiting = self._ledger_waiting, []
                try:
                    await self._commit(batch)
                except StoreUnavailable as refused:
                    _fail(batch, refused)
                except Exception as unexpected:
                    log.exception("the ledger's group commit failed")
                    self._write_failure = f"the ledger could not be written ({_reason(unexpected)})"
                    _fail(batch, StoreUnavailable(f"{self._write_failure}; nothing was recorded"))
                batch = []
        finally:
            leftover, self._ledger_waiting = batch + self._ledger_waiting, []
            _fail(leftover, StoreUnavailable("the store stopped before this answer was recorded"))

    async def _commit(self, batch: list[_Waiting]) -> None:
        """One transaction under the ledger's advisory lock: the head read inside it, each conditional waiter
        checked against the stored versions and event keys (and the records accepted before it in this batch),
        each accepted waiter's records chained onto the head (a poison record fails only its own waiter),
        inserted with their event keys, the versions they moved, one checkpoint of the new head and the head
        itself, committed.

        Two round trips however large the group (``_pipelined``): BEGIN, the lock and the two reads behind it
        (versions and event keys; the ledger's tail) travel together, then one statement of writes
        (``_WRITE_GROUP``) with the COMMIT. A statement that fails aborts the whole transaction, so no part of
        the group lands and every waiter hears the failure."""
        accepted: list[tuple[asyncio.Future[Appended], list[LedgerRecord]]] = []
        refused: list[tuple[asyncio.Future[Appended], set[int]]] = []
        standing_rows: _Cursor | None = None
        async with self._pipelined() as conn:
            await conn.execute(_LOCK, (LEDGER,))
            stored_versions = await _queue_versions(conn, batch)
            head, last_entry = await self._checked_head(conn)  # its first fetch brings back every read queued
            versions = await _versions(stored_versions)
            ledger_id = self._ledger_id
            rows: list[tuple[int, str, str | None, str | None]] = []
            moved: set[str] = set()
            for events, at, expected, done in batch:
                if done.done():  # its caller gave up waiting
                    continue
                if expected is not None and (stale := versions.refusal(events, expected)):
                    refused.append((done, stale))
                    continue
                try:
                    records = chain(events, head, at)
                    lines = [record_to_line(record).decode().rstrip("\n") for record in records]
                except Exception as bad:
                    done.set_exception(RecordRejected(f"this answer cannot be recorded: {type(bad).__name__}: {bad}"))
                    continue
                accepted.append((done, records))
                for record, line in zip(records, lines):
                    versions.fold_record(record)
                    moved |= moved_keys(record.type, record.data)
                    key = event_key(record.type, record.data)
                    rows.append((record.seq, line, campaign_of(record),
                                 key if key is not None and versions.event_keys[key] == record.seq else None))
                head = records[-1].head
            if accepted:
                ledger_id = ledger_id or accepted[0][1][0].hash
                keys = sorted(moved)
                checkpoint = None if self._signer is None else self._signer.checkpoint(
                    ledger_id, head, accepted[-1][1][-1].at)
                seqs, lines, campaigns, event_keys = ([*column] for column in zip(*rows))
                await conn.execute(_WRITE_GROUP, {
                    "ledger": LEDGER, "seqs": seqs, "lines": lines, "campaigns": campaigns, "event_keys": event_keys,
                    "keys": keys, "key_seqs": [versions.seqs[key] for key in keys], "n": last_entry + 1,
                    "checkpoint": None if checkpoint is None else entry_to_line(checkpoint).decode().rstrip("\n"),
                    "seq": head.seq, "hash": head.hash})
            wanted = sorted(set().union(*(stale for _, stale in refused)))
            if wanted:  # read with the writes, after the COMMIT went out: only a refusal waits for it
                standing_rows = await conn.execute(
                    "SELECT seq, line FROM ledger_records WHERE ledger = %s AND seq = ANY(%s)", (LEDGER, wanted))
        self._ledger_id = ledger_id  # only once committed: a group that failed named no ledger
        standing = {} if standing_rows is None else {
            seq: record_from_line(line, seq) for seq, line in await standing_rows.fetchall()}
        for done, records in accepted:
            if not done.done():
                done.set_result(Appended(tuple(records)))
        for done, stale in refused:
            if not done.done():
                done.set_result(Appended(standing=tuple(standing[seq] for seq in sorted(stale) if seq in standing)))

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection for writing on which each statement is a transaction of its own, for a block that
        is one statement (or says BEGIN itself): no BEGIN and COMMIT around it, two round trips fewer. The pool's reset
        (``_implicit_transactions``) gives the connection back its implicit transactions before anyone else
        gets it."""
        async with self._connection(write=True) as conn:
            await conn.set_autocommit(True)
            yield conn

    @asynccontextmanager
    async def _pipelined(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A write transaction sent as a pipeline: statements go out as they are queued, and the block waits
        for the database only where it reads a result, so a group commit costs two round trips instead of one
        per statement. BEGIN and COMMIT are statements of the pipeline, on a connection in autocommit for the
        block: psycopg's own BEGIN would wait for its answer first (docs/dependency-notes.md#psycopg-pipeline-begin).
        The pool's reset (``_implicit_transactions``) hands the connection back as every other block expects it.
        An error aborts the transaction on the server; leaving the block rolls it back."""
        async with self._autocommit() as conn:
            async with conn.pipeline():
                await conn.execute("BEGIN", prepare=False)
                yield conn
                await conn.execute("COMMIT", prepare=False)

    async def _checked_head(self, conn: psycopg.AsyncConnection[Any]) -> tuple[LedgerHead, int]:
        """The head to chain onto, read under the lock, after checking that the last record, the stored
        head and the latest checkpoint agree (else nothing is appended: see LedgerIntegrityError); and the
        number of the last signed entry, which the next one follows. One statement (``_SELECT_TAIL``); in a
        pipeline, fetching its row also brings back the results of whatever was queued before it."""
        row = await (await conn.execute(_SELECT_TAIL, {"ledger": LEDGER, "first": self._ledger_id is None})).fetchone()
        assert row is not None  # one row, whatever the tables hold
        last_seq, last_line, head_seq, head_hash, entry_n, entry_line, first_line = row
        head = EMPTY_HEAD if last_seq is None else record_from_line(last_line, last_seq).head
        anchor = _head_of(None if head_seq is None else (head_seq, head_hash))
        if head != (anchor or EMPTY_HEAD):
            raise LedgerIntegrityError(
                f"the ledger ends at record {head.seq} but its stored head names record {(anchor or EMPTY_HEAD).seq}: "
                "rows were added or removed outside accessbot; refusing to append until `accessbot ledger verify` "
                "is looked at")
        checkpoint = _checkpoint_of(None if entry_n is None else (entry_n, entry_line))
        if self._signer is None:
            if checkpoint is not None:
                raise LedgerIntegrityError(f"the ledger is signed (up to record {checkpoint.seq}) but no signing key "
                                           "was given: set ACCESSBOT_LEDGER_KEY_FILE")
        elif checkpoint is None:
            if head.seq:
                raise LedgerIntegrityError(f"the ledger holds {head.seq} records but no signed checkpoint: it was "
                                           "written without a signing key (then see `accessbot ledger adopt`)")
        elif checkpoint.key != self._signer.fingerprint or not checkpoint.signed_by(self._signer.public_key):
            raise LedgerIntegrityError("the ledger's latest checkpoint is not signed by the configured key: "
                                       "configure the ledger's current key")
        elif checkpoint.head != head:
            raise LedgerIntegrityError(f"the latest checkpoint signs record {checkpoint.seq}, not the ledger's last "
                                       f"record {head.seq}: the ledger was changed outside accessbot")
        if self._ledger_id is None and head.seq:
            if first_line is None:
                raise LedgerIntegrityError("the ledger has no record 1")
            self._ledger_id = record_from_line(first_line, 1).hash
        return head, 0 if entry_n is None else int(entry_n)

    async def _stored_head(self, conn: psycopg.AsyncConnection[Any]) -> LedgerHead | None:
        return _head_of(await (await conn.execute(_SELECT_HEAD, (LEDGER,))).fetchone())

    async def _last_checkpoint(self, conn: psycopg.AsyncConnection[Any]) -> Checkpoint | None:
        return _checkpoint_of(await (await conn.execute(_SELECT_LAST_ENTRY, (LEDGER,))).fetchone())

    async def rotate_ledger_key(self, new: LedgerSigner, at: datetime) -> KeyRotation:
        """Hand the ledger to ``new``: a rotation signed by the current key and a checkpoint by the new one, in
        one transaction under the ledger's lock. Every other instance must be restarted with the new key."""
        if self._signer is None:
            raise ValueError("nothing to rotate: the ledger is unsigned (just configure the new key)")
        async with self._connection(write=True) as conn:
            await conn.execute(_LOCK, (LEDGER,))
            head, last_entry = await self._checked_head(conn)
            if self._ledger_id is None:
                raise ValueError("nothing to rotate: the ledger is still empty (just configure the new key)")
            stamp = utc_stamp(at)
            rotation = self._signer.rotation(self._ledger_id, head, stamp, new.public_key)
            await _insert_entries(conn, [rotation, new.checkpoint(self._ledger_id, head, stamp)], after=last_entry)
        self._signer = new
        return rotation

    async def adopt_unsigned_ledger(self, at: datetime) -> Checkpoint:
        """Sign, once, a ledger written before signing was switched on: a first checkpoint of its head, after
        its hash chain verified against the stored head (docs/ledger.md: from here on it is provable)."""
        if self._signer is None:
            raise ValueError("nothing to adopt: adopt needs a signing key")
        async with self._connection(write=True) as conn:
            await conn.execute(_LOCK, (LEDGER,))
            # None: no signed entry at all (entries that end with a rotation are refused by _checkpoint_of)
            if await self._last_checkpoint(conn) is not None:
                raise ValueError("nothing to adopt: this ledger is already signed")
            rows = await (await conn.execute(
                "SELECT seq, line FROM ledger_records WHERE ledger = %s ORDER BY seq", (LEDGER,))).fetchall()
            records = [record_from_line(line, number) for number, (_, line) in enumerate(rows, 1)]
            anchor = await self._stored_head(conn)
            if not records:
                raise ValueError("nothing to adopt: the ledger is empty")
            checked = verify(records, anchor)
            if not checked.ok or anchor != records[-1].head:
                raise LedgerIntegrityError(f"the unsigned ledger does not verify: {checked.problem or 'its stored head differs'}")
            checkpoint = self._signer.checkpoint(records[0].hash, records[-1].head, utc_stamp(at))
            await _insert_entries(conn, [checkpoint], after=0)
        return checkpoint

    async def ledger_records(self) -> list[LedgerRecord]:
        async with self._connection() as conn:
            rows = await (await conn.execute(
                "SELECT seq, line FROM ledger_records WHERE ledger = %s ORDER BY seq", (LEDGER,))).fetchall()
        return [record_from_line(line, number) for number, (_, line) in enumerate(rows, 1)]

    async def ledger_records_of(self, campaign_id: str) -> list[LedgerRecord]:
        """One campaign's records, by the ``campaign_id`` column and its index (migration 0002)."""
        async with self._connection() as conn:
            rows = await (await conn.execute(
                "SELECT seq, line FROM ledger_records WHERE ledger = %s AND campaign_id = %s ORDER BY seq",
                (LEDGER, campaign_id))).fetchall()
        return [record_from_line(line, seq) for seq, line in rows]

    async def ledger_anchor(self) -> LedgerHead | None:
        async with self._connection() as conn:
            head = await self._stored_head(conn)
        return None if head is None or head == EMPTY_HEAD else head

    async def anchor_state(self) -> tuple[LedgerHead | None, str | None]:
        """The stored head (committed with the records it names), and never a reason it cannot be read."""
        async with self._connection() as conn:
            return await self._stored_head(conn) or EMPTY_HEAD, None

    async def ledger_checkpoints(self) -> list[SignedEntry]:
        async with self._connection() as conn:
            rows = await (await conn.execute(
                "SELECT n, line FROM ledger_entries WHERE ledger = %s ORDER BY n", (LEDGER,))).fetchall()
        return [entry_from_line(line.encode(), number) for number, (_, line) in enumerate(rows, 1)]

    async def latest_checkpoint(self) -> Checkpoint | None:
        async with self._connection() as conn:
            return await self._last_checkpoint(conn)

    def set_aside(self) -> list[str]:
        """Always empty: records and their checkpoint commit in one transaction, so none is ever left unsigned."""
        return []

    def ledger_public_key(self) -> bytes | None:
        return None if self._signer is None else public_key_pem(self._signer.public_key)

    def write_problem(self) -> str | None:
        """The last write's failure until a write succeeds again (the database may come back by itself)."""
        return self._write_failure

    async def close(self) -> None:
        if self._ledger_flusher is not None:
            await self._ledger_flusher  # appends already under way still finish
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _queue_versions(conn: psycopg.AsyncConnection[Any], batch: list[_Waiting]) -> _Cursor | None:
    """Queue the read of the stored versions of the keys this batch expects, and of the records holding its
    events' event keys, in one statement (None when the batch names neither)."""
    keys = sorted({key for _, _, expected, _ in batch if expected is not None for key in expected})
    event_keys = sorted({key for events, *_ in batch for event in events
                         if (key := event_key(event.type, event.data)) is not None})
    if not keys and not event_keys:
        return None
    return await conn.execute(
        "SELECT true, key, seq FROM ledger_versions WHERE ledger = %(ledger)s AND key = ANY(%(keys)s::text[]) "
        "UNION ALL SELECT false, event_key, seq FROM ledger_records "
        "WHERE ledger = %(ledger)s AND event_key = ANY(%(event_keys)s::text[])",
        {"ledger": LEDGER, "keys": keys, "event_keys": event_keys})


async def _versions(stored: _Cursor | None) -> Versions:
    """The index the batch is checked against, from what ``_queue_versions`` read."""
    versions = Versions()
    for is_version, key, seq in [] if stored is None else await stored.fetchall():
        (versions.seqs if is_version else versions.event_keys)[key] = int(seq)
    return versions


async def _insert_entries(conn: psycopg.AsyncConnection[Any], entries: Sequence[SignedEntry], *, after: int) -> None:
    """Signed entries numbered after ``after``, the last one read under the ledger's lock."""
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO ledger_entries (ledger, n, line) VALUES (%s, %s, %s)",
            [(LEDGER, after + number, entry_to_line(entry).decode().rstrip("\n"))
             for number, entry in enumerate(entries, 1)])


def _head_of(row: tuple[Any, ...] | None) -> LedgerHead | None:
    return None if row is None else LedgerHead(int(row[0]), str(row[1]))


def _checkpoint_of(row: tuple[Any, ...] | None) -> Checkpoint | None:
    """The last signed entry's row as the checkpoint it must be (None: the ledger has no signed entry)."""
    if row is None:
        return None
    entry = entry_from_line(row[1].encode(), row[0])
    if not isinstance(entry, Checkpoint):
        raise LedgerIntegrityError("the ledger's signed entries end with a key rotation that no checkpoint follows")
    return entry


async def _implicit_transactions(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's reset: a connection ``_pipelined`` switched to autocommit goes back to opening a transaction
    by itself, which every other block of the store relies on."""
    if conn.autocommit:
        await conn.set_autocommit(False)


def card_row(card: PostedCard) -> tuple[str, str]:
    """The ``cards`` table's (activity_id, reference) columns for a posted card. The columns keep their
    first names: ``activity_id`` holds the message's key, unique per item (``<channel>:<message id>``),
    and ``reference`` the card's document (channel, message id, address)."""
    return f"{card.channel}:{card.message_id}", _text(card_to_dict(card))


def _legacy_card(document: dict[str, Any]) -> dict[str, Any]:
    """A row written before cards were channel-tagged holds a bare Bot Framework reference."""
    return document if "channel" in document and "address" in document else {"reference": document}


def _text(document: Any) -> str:
    """The canonical JSON text a document is stored as (JSON escapes every control character, so PostgreSQL's
    text never meets a NUL); ``RecordRejected`` when it cannot be encoded, such as a lone surrogate."""
    try:
        return canonical_json(document).decode()
    except (TypeError, ValueError) as bad:
        raise RecordRejected(f"this cannot be stored: {type(bad).__name__}: {bad}") from bad


def _fail(waiting: list[_Waiting], error: Exception) -> None:
    for *_, done in waiting:
        if not done.done():
            done.set_exception(error)


def _reason(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


async def _claimed_locked(conn: Any, key: str, worker: str) -> OutboxMessage | None:
    """The outbox message under a row lock while it is pending and ``worker`` holds its claim; None when the
    claim was lost or it left the queue (a second report of the same outcome is harmless); KeyError for a key
    the outbox never held."""
    row = await (await conn.execute("SELECT state, claimed_by, doc FROM outbox WHERE key = %s FOR UPDATE",
                                    (key,))).fetchone()
    if row is None:
        raise KeyError(f"no message {key!r} in the outbox")
    state, holder, doc = row
    return outbox_from_dict(json.loads(doc)) if state == "pending" and holder == worker else None
