"""One reader of the shared ledger for every review service of a CSP partner's deployment.

On PostgreSQL every instance follows what the others record. A partner's deployment holds a ``ReviewService``
for its own tenant and one per customer; each following the ledger by itself would read every new page once per
customer — a thousand reads of the same records per poll. The follower reads each page once, hands every record
to the service whose campaign it is (by the tenant its campaign id names), and tells the other services they may
pass over it. Any service's ``catch_up`` (before a round, after a refused append, on an unknown item) goes
through the follower, so they never read the ledger on their own.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from bot.ledger import LedgerRecord
from bot.ledger_history import record_tenant
from bot.service import FOLLOW_PAGE, ReviewService
from bot.store.base import Store


class LedgerFollower:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._services: dict[str, ReviewService] = {}  # tenant id (lower case) -> its service
        self._lock = asyncio.Lock()
        self.pages_read = 0  # how many pages this follower read: what "the ledger read once" is checked by

    def add(self, service: ReviewService) -> None:
        """Follow for ``service`` from now on (a newer service for the same tenant replaces the older)."""
        self._services[service.policy.tenant_id.lower()] = service
        service.follower = self

    def services(self) -> list[ReviewService]:
        return list(self._services.values())

    async def catch_up(self) -> int:
        """Read what was recorded since the service furthest behind last looked, a page at a time, and fold each
        record into its own tenant's service; returns how many records were folded."""
        folded = 0
        async with self._lock:
            while self._services:
                start = min(service.followed for service in self._services.values())
                page = await self.store.ledger_records_after(start, FOLLOW_PAGE)
                self.pages_read += 1
                folded += await self._hand_out(page)
                if len(page) < FOLLOW_PAGE:
                    break
        return folded

    async def _hand_out(self, page: list[LedgerRecord]) -> int:
        if not page:
            return 0
        by_tenant: defaultdict[str, list[LedgerRecord]] = defaultdict(list)
        for record in page:
            by_tenant[record_tenant(record)].append(record)
        folded = 0
        for tenant, records in by_tenant.items():
            service = self._services.get(tenant)
            if service is not None:  # a tenant nobody here reviews (a customer not in this run) is passed over
                folded += await service.take(records)
        for service in self._services.values():
            service.passed(page[-1].seq)
        return folded


__all__ = ["LedgerFollower"]
