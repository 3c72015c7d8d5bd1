"""The store as the HTTP edge and the scheduler use it: every refused write has one name and is counted.

A backend that cannot write (disk full, read-only, damaged ledger) should raise ``StoreUnavailable``; one
that lets a raw ``OSError`` escape (ENOSPC from a file write) gets it turned into ``StoreUnavailable``
here, so the edge answers 503 "not recorded" either way instead of a 500. The guard also remembers why
the last write failed, until a write succeeds again, for ``/healthz``; and counts every refused write in
``/metrics``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Awaitable, Mapping, Sequence, TypeVar

from bot.engine.model import Campaign, LedgerEvent, ReviewItem
from bot.ledger import LedgerHead, LedgerRecord
from bot.metrics import STORE_WRITES_REFUSED
from bot.ratelimit import TEAMS_LIMITS, Limits, SendBudget
from bot.store.base import OutboxMessage, PostedCard, RecordRejected, Store, StoreUnavailable
from bot.store.concurrency import Appended

log = logging.getLogger(__name__)

T = TypeVar("T")


class WriteGuard:
    """Wraps any ``Store``: reads pass straight through, writes are watched."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self._problem: str | None = None

    def __getattr__(self, name: str) -> Any:  # backend-specific extras (data_dir, ...) stay reachable
        return getattr(self.inner, name)

    async def _write(self, write: Awaitable[T], wrote: bool | None = None) -> T:
        """Run one write; ``wrote`` says whether it touched the disk when that cannot be seen from its result."""
        try:
            result = await write
        except RecordRejected:
            STORE_WRITES_REFUSED.labels("rejected").inc()
            raise
        except StoreUnavailable as unavailable:
            self._refused(str(unavailable))
            raise
        except OSError as failed:
            self._refused(f"{failed.strerror or failed}" + (f": {failed.filename}" if failed.filename else ""))
            raise StoreUnavailable(self._problem or "the store cannot write") from failed
        if result if wrote is None else wrote:
            self._problem = None
        return result

    def _refused(self, reason: str) -> None:
        STORE_WRITES_REFUSED.labels("unavailable").inc()
        if reason != self._problem:
            log.error("the store cannot write: %s", reason)
        self._problem = reason

    # ---- writes ---------------------------------------------------------------------------------

    async def save_campaign(self, campaign: Campaign, items: Sequence[ReviewItem]) -> bool:
        return await self._write(self.inner.save_campaign(campaign, items))

    async def save_conversation(self, key: str, reference: dict[str, Any]) -> bool:
        return await self._write(self.inner.save_conversation(key, reference))

    async def save_card(self, item_id: str, card: PostedCard) -> None:
        await self._write(self.inner.save_card(item_id, card), wrote=False)

    async def enqueue(self, messages: Sequence[OutboxMessage]) -> int:
        return await self._write(self.inner.enqueue(messages))

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: timedelta) -> list[OutboxMessage]:
        return await self._write(self.inner.claim_due(worker, now, limit, lease), wrote=False)

    async def mark_sent(self, key: str, at: datetime, *, worker: str) -> bool:
        return await self._write(self.inner.mark_sent(key, at, worker=worker))

    async def mark_retry(self, key: str, error: str, next_attempt_at: datetime, *, worker: str) -> bool:
        return await self._write(self.inner.mark_retry(key, error, next_attempt_at, worker=worker))

    async def mark_undeliverable(self, key: str, error: str, at: datetime, *, worker: str) -> bool:
        return await self._write(self.inner.mark_undeliverable(key, error, at, worker=worker))

    async def save_channel_setting(self, name: str, value: str) -> bool:
        return await self._write(self.inner.save_channel_setting(name, value))

    async def release_recipient(self, recipient: str, now: datetime) -> int:
        return await self._write(self.inner.release_recipient(recipient, now))

    async def append_ledger(self, events: Sequence[LedgerEvent], at: datetime) -> list[LedgerRecord]:
        return await self._write(self.inner.append_ledger(events, at))

    async def append_if_current(self, events: Sequence[LedgerEvent], expected: Mapping[str, int], at: datetime) -> Appended:
        return await self._write(self.inner.append_if_current(events, expected, at), wrote=True)

    # ---- reads ----------------------------------------------------------------------------------

    async def get_campaign(self, campaign_id: str) -> Campaign | None:
        return await self.inner.get_campaign(campaign_id)

    async def list_campaigns(self) -> list[Campaign]:
        return await self.inner.list_campaigns()

    async def campaign_items(self, campaign_id: str) -> list[ReviewItem]:
        return await self.inner.campaign_items(campaign_id)

    async def get_conversation(self, key: str) -> dict[str, Any] | None:
        return await self.inner.get_conversation(key)

    async def cards(self, item_id: str) -> list[PostedCard]:
        return await self.inner.cards(item_id)

    async def due_messages(self, now: datetime, limit: int) -> list[OutboxMessage]:
        return await self.inner.due_messages(now, limit)

    async def channel_setting(self, name: str) -> str | None:
        return await self.inner.channel_setting(name)

    def send_budget(self, limits: Limits = TEAMS_LIMITS) -> SendBudget:
        return self.inner.send_budget(limits)

    async def ledger_records(self) -> list[LedgerRecord]:
        return await self.inner.ledger_records()

    async def ledger_records_of(self, campaign_id: str) -> list[LedgerRecord]:
        return await self.inner.ledger_records_of(campaign_id)

    async def ledger_records_after(self, seq: int, limit: int) -> list[LedgerRecord]:
        return await self.inner.ledger_records_after(seq, limit)

    async def ledger_anchor(self) -> LedgerHead | None:
        return await self.inner.ledger_anchor()

    def write_problem(self) -> str | None:
        """The backend's own reason, else why the last write through this guard failed (until one succeeds)."""
        return self.inner.write_problem() or self._problem

    async def close(self) -> None:
        await self.inner.close()
