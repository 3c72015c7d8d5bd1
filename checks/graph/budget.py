"""A Graph budget per tenant: throttling is per app *and tenant*, so it is honoured per tenant.

Graph answers 429 with a Retry-After per (app, tenant) pair. kiota's RetryHandler sleeps per request: a
throttled tenant's other requests keep firing into more 429s, and a tenant that answers only 429 holds a
collection slot for minutes while the partner's other customers wait behind it. A ``TenantBudget`` is shared
by every request of one tenant's collection instead:

- at most ``concurrency`` requests of the tenant in flight;
- a 429 (or 503/504) with Retry-After pauses *every* request of that tenant until it has passed, and nobody
  else's;
- a wait longer than ``max_wait``, or more than ``max_throttles`` throttled answers in a row (with no success
  between them: a busy tenant that answers between its 429s is only paced, one that answers nothing but 429
  is given back), gives the tenant back: ``TenantThrottled`` ends the collection (nothing partial is stored) and its job is retried
  no sooner than Graph asked (bot/collection_worker.py), while the instance collects other tenants.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable


class TenantThrottled(Exception):
    """Graph keeps throttling this tenant (or is unavailable for it): the collection is given back, to be retried
    after ``retry_after`` s."""

    def __init__(self, tenant_id: str, retry_after: float, reason: str) -> None:
        super().__init__(f"tenant {tenant_id} throttled or unavailable in Microsoft Graph ({reason}); "
                         f"retry in {retry_after:.0f} s")
        self.tenant_id = tenant_id
        self.retry_after = retry_after


@dataclass
class TenantBudget:
    """What one tenant's collection may spend of Graph's patience; one per tenant, shared by its requests."""

    tenant_id: str
    concurrency: int = 8
    max_wait: float = 30.0
    max_throttles: int = 20
    clock: Callable[[], float] = time.monotonic
    throttles: int = 0  # throttled answers (429/503/504) seen, batch rounds counted once
    in_a_row: int = 0  # throttled answers since the tenant last answered a request
    waited: float = 0.0  # seconds this tenant's requests were held back by Retry-After
    _resume_at: float = 0.0
    _given_up: TenantThrottled | None = None
    _slots: asyncio.Semaphore | None = field(default=None, repr=False)

    @property
    def slots(self) -> asyncio.Semaphore:
        """The tenant's in-flight limit (made on first use, inside the running loop)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(max(1, self.concurrency))
        return self._slots

    async def ready(self) -> None:
        """Return when this tenant may be asked again; ``TenantThrottled`` once the budget gave it back."""
        while True:
            if self._given_up is not None:
                raise self._given_up
            pause = self._resume_at - self.clock()
            if pause <= 0:
                return
            self.waited += pause
            await asyncio.sleep(pause)

    def throttled(self, retry_after: float, status: int = 429) -> None:
        """Graph answered ``status`` (429, 503 or 504) asking this tenant to wait ``retry_after`` seconds: pause all
        its requests that long, or give it back (``TenantThrottled``) when that is more than a collection sits out."""
        self.throttles += 1
        self.in_a_row += 1
        if retry_after > self.max_wait:
            self._give_up(retry_after, f"{status} with Retry-After {retry_after:.0f} s")
        if self.in_a_row > self.max_throttles:
            self._give_up(max(retry_after, self.max_wait),
                          f"{self.in_a_row} answers 429/503/504 in a row, the last {status}")
        self._resume_at = max(self._resume_at, self.clock() + retry_after)

    def answered(self) -> None:
        """The tenant answered a request: it is busy, not refusing everything."""
        self.in_a_row = 0

    def _give_up(self, retry_after: float, reason: str) -> None:
        self._given_up = self._given_up or TenantThrottled(self.tenant_id, retry_after, reason)
        raise self._given_up


__all__ = ["TenantBudget", "TenantThrottled"]
