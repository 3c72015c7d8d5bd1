"""The one storage interface every backend implements (TinyDB embedded now, PostgreSQL later).

Only plain domain values cross it — dataclasses from the engine, dicts, datetimes — so the service,
the notifier and the contract tests never learn which backend they talk to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Protocol, Sequence

from bot.engine.model import Campaign, LedgerEvent, ReviewItem
from bot.ledger import LedgerHead, LedgerRecord
from bot.ledger_signing import Checkpoint, SignedEntry
from bot.store.concurrency import Appended
from bot.ratelimit import TEAMS_LIMITS, Limits, SendBudget


class StoreLocked(RuntimeError):
    """Another process is the writer of this store; two writers would fork the ledger."""


class StoreUnavailable(RuntimeError):
    """The store cannot write right now (disk full, read-only, damaged ledger): nothing was recorded.

    The HTTP edge answers 503 with Retry-After and a card saying the answer was *not* recorded;
    ``/healthz`` reports the reason from ``Store.write_problem()`` until a write succeeds again.
    """


class DatabaseUnavailable(StoreUnavailable):
    """The PostgreSQL store cannot reach or write its database (the message names the database, not a folder)."""


class RecordRejected(ValueError):
    """One record cannot be stored (it cannot be encoded as canonical UTF-8 JSON, or is too large).

    Only the request that brought it fails; the other records of the same group commit are written.
    """


class LedgerIntegrityError(StoreUnavailable):
    """The store refuses to append: what is on disk disagrees with what the writer acknowledged.

    Appending would paper over the evidence (a cut-off ledger would grow back past its anchor), so
    the writer stops until someone runs ``accessbot ledger verify`` and looks.
    """


SENT_HORIZON = timedelta(days=35)
"""How long the key of a message that left the queue refuses its twin (a backend may keep keys longer).
Every deterministic notice key names its campaign (its review period), its item, or its week or minute,
and the step that makes a notice is recorded in the ledger, so nothing makes the same key again after a
month; at start only notices recorded within the horizon are queued again. Five weeks covers the longest
campaign's deadline and escalation with room to spare, and keeps the sent keys from growing forever."""


OUTBOX_LEASE = timedelta(minutes=5)
"""How long a notifier holds the messages it claimed: far longer than sending a batch at Teams' pace takes,
short enough that the messages of a notifier that died go out a few minutes later from another."""


def campaign_of(record: LedgerRecord) -> str | None:
    """The campaign a ledger record belongs to (``data.campaign_id``), or None: what ``ledger_records_of``
    selects by, and what each backend indexes when the record is written."""
    campaign_id = record.data.get("campaign_id")
    return campaign_id if isinstance(campaign_id, str) else None


@dataclass(frozen=True, kw_only=True)
class OutboxMessage:
    """A message stored before it is sent. ``key`` is deterministic, so a twin is refused for ``SENT_HORIZON``."""

    key: str
    recipient: str
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime
    sent_at: datetime | None = None
    last_error: str = ""


@dataclass(frozen=True)
class PostedCard:
    """Where a message about an item was posted, so it can be redrawn in place once the item changes.

    ``channel`` names the chat platform ("teams", "slack"); ``message_id`` is that platform's id of the
    message (a Teams activity id, a Slack ``ts``), unique within the channel; ``address`` is whatever
    else the channel needs to reach it again (a Bot Framework conversation reference, a Slack
    conversation id). Only the channel that posted it reads ``address``.
    """

    channel: str
    message_id: str
    address: dict[str, Any]


class Store(Protocol):
    async def save_campaign(self, campaign: Campaign, items: Sequence[ReviewItem]) -> bool:
        """Store a campaign and its items as opened; False (and nothing changed) if it already existed."""
        ...

    async def get_campaign(self, campaign_id: str) -> Campaign | None: ...

    async def list_campaigns(self) -> list[Campaign]:
        """Every campaign, newest ``opened_at`` first."""
        ...

    async def campaign_items(self, campaign_id: str) -> list[ReviewItem]:
        """The items exactly as the campaign opened them (the ledger carries every later change)."""
        ...

    async def save_conversation(self, key: str, reference: dict[str, Any]) -> bool:
        """Insert or replace a channel's address of a conversation (a Bot Framework ConversationReference
        as a dict, a Slack conversation) for ``key``; True when it was new or changed (the moment to
        deliver what was waiting for this person)."""
        ...

    async def get_conversation(self, key: str) -> dict[str, Any] | None: ...

    async def save_card(self, item_id: str, card: PostedCard) -> None:
        """Remember that a message about this item was posted there (once per channel and message id), to
        redraw it in place later."""
        ...

    async def cards(self, item_id: str) -> list[PostedCard]:
        """Every message posted about the item, in every channel, oldest first."""
        ...

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> int:
        """Store the messages whose key was never seen (pending or sent); returns how many were new."""
        ...

    async def due_messages(self, now: datetime, limit: int) -> list[OutboxMessage]:
        """Pending messages with ``next_attempt_at <= now``, oldest ``created_at`` first, claimed or not.

        A look, not a claim (for tests, ``doctor`` and ``db migrate-from-tinydb``): delivery uses ``claim_due``."""
        ...

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
        """Claim up to ``limit`` due messages for ``worker`` until ``now + lease``, oldest first.

        A message is claimable when it is pending, due, not under another live lease, and the oldest message
        still pending for its recipient (so one person's messages go in order whichever instance sends them,
        and a deferred message holds the ones behind it). An expired lease makes it claimable again: its
        worker died or stalled. Several workers (processes, instances) never hold the same message at once."""
        ...

    async def mark_sent(self, key: str, at: datetime, *, worker: str) -> bool:
        """The channel accepted the message: it leaves the queue and its key stays refused. False (and nothing
        changed) when ``worker`` no longer holds its claim: the lease ran out and another worker claimed it, or
        it already left the queue."""
        ...

    async def mark_retry(self, key: str, error: str, next_attempt_at: datetime, *, worker: str) -> bool:
        """Count a failed attempt, keep its error, give up the claim and try again at ``next_attempt_at``;
        False (nothing changed) when ``worker`` lost the claim."""
        ...

    async def mark_undeliverable(self, key: str, error: str, at: datetime, *, worker: str) -> bool:
        """The channel refused the message for good (the app was blocked or uninstalled, the conversation
        is gone, the message is too large): it leaves the queue without being sent, its error is kept
        with it, and its key stays refused like a sent one's. False when ``worker`` lost the claim."""
        ...

    async def release_recipient(self, recipient: str, now: datetime) -> int:
        """Make a person's deferred messages due at ``now`` without counting an attempt; returns how many."""
        ...

    async def save_channel_setting(self, name: str, value: str) -> bool:
        """Remember something a channel learned that every instance needs (``teams.service_url``: where the
        tenant's Bot Connector is, to open conversations); True when it was new or changed."""
        ...

    async def channel_setting(self, name: str) -> str | None: ...

    def send_budget(self, limits: Limits = TEAMS_LIMITS) -> SendBudget:
        """The channels' sending ``limits`` (by name, bot/ratelimit.py) as this backend shares them: in process for the single-instance TinyDB
        store, in the database for PostgreSQL (so two instances never spend Teams' budget twice)."""
        ...

    async def append_ledger(self, events: Sequence[LedgerEvent], at: datetime) -> list[LedgerRecord]:
        """Chain the events onto the ledger; the records are durable (and signed, with a key) when this returns.

        ``RecordRejected`` when these events cannot be encoded (the other callers of the same group commit
        are unaffected); ``StoreUnavailable`` when nothing could be written."""
        ...

    async def append_if_current(
        self, events: Sequence[LedgerEvent], expected: Mapping[str, int], at: datetime
    ) -> Appended:
        """Append the events only if, atomically with the append, none of the version keys in ``expected`` moved
        past the seq given (0: never moved) and none of the events repeats an event key already recorded
        (``bot/store/concurrency.py``). Refused: nothing is written, and the answer holds the records that
        stand in the way, for the caller to catch up and decide again. Appended: as ``append_ledger``."""
        ...

    async def ledger_records(self) -> list[LedgerRecord]:
        """Every record in ledger order (the input of ``bot.ledger.verify``)."""
        ...

    async def ledger_records_after(self, seq: int, limit: int) -> list[LedgerRecord]:
        """At most ``limit`` records after ``seq``, in ledger order, read off the event loop: how an instance
        follows what the others recorded, a page at a time."""
        ...

    async def ledger_records_of(self, campaign_id: str) -> list[LedgerRecord]:
        """The records whose ``data.campaign_id`` is ``campaign_id``, in ledger order, read off the event loop.

        What a campaign's export, evidence pack or on-demand load needs, without reading (or holding in
        memory) the other campaigns' records: the backends keep an index by campaign id."""
        ...

    async def ledger_anchor(self) -> LedgerHead | None:
        """The last head the writer acknowledged; None before the first append."""
        ...

    async def ledger_checkpoints(self) -> list[SignedEntry]:
        """Every signed checkpoint and key rotation, oldest first (the input of ``bot.ledger_audit.audit``)."""
        ...

    async def latest_checkpoint(self) -> Checkpoint | None:
        """The newest signed checkpoint: what witnesses are sent and evidence packs carry."""
        ...

    def ledger_public_key(self) -> bytes | None:
        """The signing key's public half (PEM) for auditors; None when the ledger is unsigned."""
        ...

    def write_problem(self) -> str | None:
        """Why the store cannot write at the moment (for /healthz and 503s), or None when it can."""
        ...

    async def close(self) -> None: ...
