"""The background round: open the period's campaign when the schedule says so, run the clock, run the
remediation jobs, drain the outbox.

One round is idempotent (the engine and the outbox refuse twins, the store refuses a scheduled step recorded
already), so running it often is safe and a failed round is simply retried by the next one instead of
crashing the server. With several instances only the leader runs the rounds (``bot/leadership.py``); every
instance follows the ledger, so what the others record shows here within ``follow_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Awaitable, Callable, Sequence

from bot.change_watch import ChangeWatch
from bot.leadership import Leadership, SoleLeader
from bot.metrics import (
    CUSTOMER_TICK_FAILURES,
    OPEN_ITEMS,
    OUTBOX_DEFERRED,
    OUTBOX_SENT,
    OUTBOX_UNDELIVERABLE,
    TICK_FAILURES,
)
from bot.notifier import Notifier
from bot.service import ReviewService
from checks.snapshot import TenantSnapshot

log = logging.getLogger(__name__)

COLLECTION_RETRY = timedelta(hours=1)  # after a failed collection (Graph down, a policy name unresolvable)
TICKING_AT_ONCE = 16  # customers' clocks run concurrently, so their appends share group commits


async def each_customer(services: Sequence[ReviewService], step: Callable[[ReviewService], Awaitable[object]],
                        what: str) -> None:
    """Run one scheduled ``step`` (``what`` it is, for the log) of every customer's service, ``TICKING_AT_ONCE``
    side by side, so what falls due for many at the same moment (a reminder round) shares group commits; one
    customer whose step fails is logged and counted and the others go on; the next round tries it again."""
    slots = asyncio.Semaphore(TICKING_AT_ONCE)

    async def one(service: ReviewService) -> None:
        async with slots:
            try:
                await step(service)
            except asyncio.CancelledError:
                raise
            except Exception:
                CUSTOMER_TICK_FAILURES.inc()
                log.exception("the %s of customer %s (%s) failed; the next round will try again", what,
                              service.policy.tenant_name, service.policy.tenant_id)

    await asyncio.gather(*(one(service) for service in services))


async def tick_customers(services: Sequence[ReviewService]) -> None:
    """Run each customer's clock (reminders, escalation, the deadline's outcome), as ``ReviewService.tick`` does
    for the partner's own."""
    await each_customer(services, ReviewService.tick, "clock")


class Scheduler:
    def __init__(
        self,
        service: ReviewService,
        notifier: Notifier,
        interval_seconds: float,
        after_round: Sequence[Callable[[], Awaitable[None]]] = (),
        collector: Callable[[], Awaitable[TenantSnapshot]] | None = None,
        witness_every: timedelta | None = None,
        leadership: Leadership | None = None,
        follow_seconds: float | None = None,
        change_watch: ChangeWatch | None = None,
        customers: Callable[[], Sequence[ReviewService]] = tuple,
    ) -> None:
        """``leadership`` decides whether this instance runs the rounds (default: it is the only one);
        ``follow_seconds`` is how often it catches up with what other instances recorded (None: nobody else
        writes this store). ``customers``: a CSP partner's customers' services (bot/partner_campaigns.py),
        whose clocks run in the same rounds."""
        self.service = service
        self.notifier = notifier
        self.interval = interval_seconds
        self.after_round = tuple(after_round)  # channel upkeep, e.g. redrawing a live status card
        self.collector = collector  # a live Graph collection, run when a new period's campaign is due
        self._collect_again_at: datetime | None = None
        self.witness_every = witness_every  # how often the ledger's latest checkpoint goes to the leads
        self._witness_again_at: datetime | None = None
        self.leadership: Leadership = leadership or SoleLeader()
        self.follow_seconds = follow_seconds
        self.change_watch = change_watch  # reads the directory audit log between weekly campaigns
        self.customers = customers

    async def run_once(self) -> None:
        """One whole round, delivery included (what tests and a single-shot run want)."""
        await self.review_round()
        await self.customer_round()
        await self.watch_changes()
        await self.remediate()
        await self.deliver()
        for upkeep in self.after_round:
            await upkeep()

    async def review_round(self) -> None:
        await self.service.catch_up()  # a leader that just took over must not repeat what its predecessor did
        if self.collector is not None and self.service.campaign(self.service.current_campaign_id()) is None:
            now = self.service.clock.now()
            if self._collect_again_at is not None and now < self._collect_again_at:
                return  # the last collection failed: no campaign from stale data, and no hammering Graph
            try:
                self.service.use_snapshot(await self.collector())
            except Exception:
                self._collect_again_at = now + COLLECTION_RETRY
                raise
            self._collect_again_at = None
        await self.service.open_current_campaign()
        await self.service.tick()
        await self._witness()
        OPEN_ITEMS.set(sum(len(state.open_items()) for service in (self.service, *self.customers())
                           for state in service.campaigns()))

    async def customer_round(self) -> None:
        """Run every customer campaign's clock (``tick_customers``). Follows ``review_round``, whose catch-up
        folded what other instances recorded for every customer (one follower reads for all)."""
        await tick_customers(self.customers())

    async def watch_changes(self) -> None:
        """Ask about the access changes the audit log shows, when its interval has passed. The reviews it opens
        are chased (in hours) by the same tick as the weekly campaign's."""
        if self.change_watch is not None:
            await self.change_watch.poll()

    async def _witness(self) -> None:
        """The daily witness: the first round posts the latest checkpoint, then one round per interval."""
        now = self.service.clock.now()
        if self.witness_every is None or (self._witness_again_at is not None and now < self._witness_again_at):
            return
        await self.service.witness_checkpoint()
        self._witness_again_at = now + self.witness_every

    async def remediate(self) -> None:
        """Run the remediation jobs that are ready (revokes' Graph calls, retries whose backoff is over,
        jobs a crash cut short): the own tenant's, then each customer's on a partner's deployment, where one
        customer whose jobs fail never keeps the others' revokes from running."""
        await self.service.run_remediations()
        await each_customer(self.customers(), ReviewService.run_remediations, "remediation")

    async def remediation_worker(self) -> None:
        """Runs the jobs as soon as a revoke or an approval makes one ready (the service's wake-up), and
        every round anyway, so a retry's backoff ends and nothing depends on the wake-up alone."""
        while True:
            try:
                await self.remediate()
            except asyncio.CancelledError:
                raise
            except Exception:
                TICK_FAILURES.inc()
                log.exception("remediation round failed; the next round will try again")
            await self.service.remediation_wanted(self.interval)

    async def deliver(self) -> None:
        drained = await self.notifier.drain()
        OUTBOX_SENT.inc(drained.sent)
        OUTBOX_DEFERRED.inc(drained.deferred)
        OUTBOX_UNDELIVERABLE.inc(drained.undeliverable)

    async def run_forever(self) -> None:
        """Follow the ledger always; run the rounds while this instance leads."""
        await asyncio.gather(self._follow(), self._lead())

    async def _lead(self) -> None:
        while True:
            await self.leadership.acquire()
            log.info("this instance leads: it runs the scheduled rounds")
            rounds = asyncio.create_task(self._rounds())
            lost = asyncio.create_task(self.leadership.lost())
            try:
                await asyncio.wait({rounds, lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (rounds, lost):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            log.warning("this instance no longer leads: another takes over the scheduled rounds")

    async def _rounds(self) -> None:
        """Reviewing, remediating and delivering run side by side: a fan-out to thousands of reviewers takes
        minutes at Teams' pace, a throttled Graph call may wait out a backoff, and reminders, escalations
        and card upkeep must wait for neither."""
        await asyncio.gather(
            self._repeat(self.review_round, self.customer_round, self.watch_changes, *self.after_round),
            self.remediation_worker(),
            self._repeat(self.deliver),
        )

    async def _follow(self) -> None:
        """Catch up with the other instances' records every ``follow_seconds``."""
        if self.follow_seconds is None:
            return
        while True:
            try:
                await self.service.catch_up()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("catching up with the ledger failed; the next poll will try again")
            await asyncio.sleep(self.follow_seconds)

    async def _repeat(self, *steps: Callable[[], Awaitable[None]]) -> None:
        while True:
            for step in steps:
                try:
                    await step()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    TICK_FAILURES.inc()
                    log.exception("scheduler step %s failed; the next round will try again", step.__name__)
            await asyncio.sleep(self.interval)
