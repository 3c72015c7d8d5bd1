"""The background round: open the period's campaign when the schedule says so, run the clock, drain the outbox.

One round is idempotent (the engine and the outbox refuse twins), so running it often is safe and a
failed round is simply retried by the next one instead of crashing the server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Sequence

from bot.metrics import OPEN_ITEMS, OUTBOX_DEFERRED, OUTBOX_SENT, TICK_FAILURES
from bot.notifier import Notifier
from bot.service import ReviewService
from checks.snapshot import TenantSnapshot

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        service: ReviewService,
        notifier: Notifier,
        interval_seconds: float,
        after_round: Sequence[Callable[[], Awaitable[None]]] = (),
        collector: Callable[[], Awaitable[TenantSnapshot]] | None = None,
    ) -> None:
        self.service = service
        self.notifier = notifier
        self.interval = interval_seconds
        self.after_round = tuple(after_round)  # channel upkeep, e.g. redrawing a live status card
        self.collector = collector  # a live Graph collection, run when a new period's campaign is due

    async def run_once(self) -> None:
        if self.collector is not None and self.service.campaign(self.service.current_campaign_id()) is None:
            self.service.use_snapshot(await self.collector())
        await self.service.open_current_campaign()
        await self.service.tick()
        drained = await self.notifier.drain()
        OUTBOX_SENT.inc(drained.sent)
        OUTBOX_DEFERRED.inc(drained.deferred)
        OPEN_ITEMS.set(sum(len(state.open_items()) for state in self.service.campaigns()))
        for upkeep in self.after_round:
            await upkeep()

    async def run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                TICK_FAILURES.inc()
                log.exception("scheduler round failed; the next round will try again")
            await asyncio.sleep(self.interval)
