"""Drains the outbox into the channel at the pace the channel allows; a message is marked sent only
after the channel accepted it.

Every message was stored before this runs, so a crash loses nothing. Each message ends a drain in one
of five ways:

- **sent** — the channel accepted it, and only then is it marked sent;
- **retried in place** — the channel was busy or briefly down (429, 412, 408, 5xx, no connection):
  wait the Retry-After it asked for, or an exponential backoff with full jitter, and try again, up to
  ``RetryPolicy.attempts`` times, while the other conversations keep going;
- **deferred** — still failing after that, refused in a way that does not heal in seconds (400, 401),
  or no conversation with the person yet: stored with its error and a later ``next_attempt_at``; one the
  channel has refused at every try for over a day (``GIVE_UP_AFTER``) is undeliverable instead;
- **obsolete** — overtaken before it went (``obsolete`` says so, e.g. "your review is open" to someone
  who is already answering): it leaves the queue unsent, with the reason kept;
- **undeliverable** — the channel said it never will be (403: the person blocked or uninstalled the
  app; 404: the conversation is gone; 413: too large): it leaves the queue, and ``on_undeliverable``
  is told so the security leads can hear that someone cannot be reached.

Claims: a drain takes messages with ``Store.claim_due`` under a lease, as ``worker`` (unique per
notifier), so several notifiers (processes, instances) can drain one outbox and no message is sent by
two at once; every outcome is recorded only while the claim is still ours (``mark_*`` return False once
the lease ran out and someone else took the message). A notifier that dies leaves its claims to expire:
after ``lease`` the others deliver what it held. A message is sent only while its lease has at least
``lease_margin`` to run, and waits in place never outlast it (the message is deferred instead).

Order: the store hands out only the oldest pending message of each person, so one person's messages
go one at a time, oldest first, whichever notifier sends them, and when one is deferred their later
messages wait behind it: a reminder never overtakes the request it reminds of, across restarts too.

Pace: each request first asks the ``SendBudget`` (Teams' per-conversation and per-tenant windows, kept
by the store: in process for TinyDB, in the database and shared by every instance for PostgreSQL) and
sleeps for its answer, so the connector never has to refuse for pace; ``concurrency`` conversations are
served at once.

Duplicates: the Bot Connector takes no idempotency key. A message the connector accepted but that was
not yet marked sent when the process stopped is sent again after the restart; at most ``concurrency``
messages are ever in that state per notifier, and ``in_flight`` names them. So is a message whose
notifier stalled past its lease after the connector accepted it. Likewise a request that fails after the
connector accepted it (a timeout, a dropped connection) looks exactly like one that never arrived and
is sent again; no client can do better without an idempotency key.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import socket
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Awaitable, Callable, Protocol, Sequence

from bot.clock import Clock
from bot.ratelimit import Charge, Limits, RateLimiter, SendBudget
from bot.store.base import OUTBOX_LEASE, OutboxMessage, Store, StoreUnavailable

log = logging.getLogger(__name__)

NO_CONVERSATION_RETRY = timedelta(minutes=5)
NO_CONVERSATION_YET = "no conversation with this person yet"
BUDGET_RAN_SHORT = "waited for the sending budget until its lease ran short"
GIVE_UP_AFTER = timedelta(days=1)  # a message the channel refused at every try for this long is given up ...
GIVE_UP_ATTEMPTS = 12  # ... once it was also deferred this often (about 3 hours of backoff), never before
FIRST_DEFERRAL = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
BUDGET_UNAVAILABLE_WAIT = 1.0
"""Seconds before asking a sending budget again that could not be asked (its database refused for a moment)."""
LEASE_MARGIN = timedelta(seconds=30)
"""A claimed message is not sent, nor waited on in place, when less than this (or a quarter of a shorter
lease) is left of its lease: the send and the write that records it must end before another worker may take
the message."""

PERMANENT_REFUSALS = {
    403: "the app is blocked or not installed",
    404: "the conversation no longer exists",
    413: "the message is too large to deliver (over about 100 KB)",
}
RETRY_SOON = frozenset({408, 412, 429})  # and every 5xx, and no answer at all


class DeliveryError(Exception):
    """The channel refused a message, or could not be reached.

    ``status`` is the HTTP status (None when no answer came at all), ``retry_after`` the seconds the
    channel asked us to wait, ``permanent`` says that trying again can never work.
    """

    def __init__(
        self, message: str, retry_after: float | None = None, *, status: int | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        self.permanent = permanent

    @classmethod
    def for_status(cls, status: int, retry_after: float | None = None, channel: str = "the channel") -> DeliveryError:
        """The refusal an HTTP status means; a permanent one carries the reason a person can act on."""
        reason = PERMANENT_REFUSALS.get(status)
        if reason is not None:
            return cls(reason, retry_after, status=status, permanent=True)
        return cls(f"{channel} answered {status}", retry_after, status=status)

    @property
    def transient(self) -> bool:
        """Worth another try within seconds: throttled, a precondition race, a server or gateway error,
        or no answer at all."""
        return not self.permanent and (self.status is None or self.status in RETRY_SOON or self.status >= 500)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header, either delay-seconds or an HTTP date (RFC 9110, counted
    from ``now``, the current time by default); None when there is none or it cannot be read."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class MessageSender(Protocol):
    """What the notifier needs of a channel (or of the set of channels a deployment serves). Addresses are
    the channel's own business: the notifier only hands back what ``reach`` gave it."""

    async def reach(self, recipient: str) -> dict | None:
        """Where to send a message to this person (by Entra object id): a stored conversation, or one
        started now; None when the channel has none and cannot start one yet."""
        ...

    limits: Limits  # every sending limit a charge of this sender may name

    def charges(self, address: dict, recipient: str) -> tuple[Charge, ...]:
        """What the channel's sending limits count a message to ``address`` under (``bot.ratelimit``)."""
        ...

    async def send_text(self, address: dict, text: str) -> None:
        """Send a proactive message; raise DeliveryError when refused."""
        ...


UndeliverableHandler = Callable[[OutboxMessage, str], Awaitable[None]]
# Says a queued message no longer makes sense (e.g. "your review is open" to someone already answering),
# with the reason; None while it still should go. Asked right before each delivery, never earlier.
ObsoleteCheck = Callable[[OutboxMessage], str | None]


@dataclass(frozen=True)
class RetryPolicy:
    """How one message is retried in place before it is deferred to a later drain.

    Defaults: up to 6 tries, backoff ceilings 0.5 s, 1 s, 2 s ... capped at 30 s (full jitter: a uniform
    wait below the ceiling, so throttled conversations do not retry in step), and a Retry-After of up
    to a minute is waited out in place; a longer one defers the message instead of holding a worker.
    """

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    longest_wait: float = 60.0

    def pause(self, tries: int, refused: DeliveryError) -> float | None:
        """Seconds to wait before try ``tries + 1``, or None when the message should be deferred."""
        if not refused.transient or tries >= self.attempts:
            return None
        if refused.retry_after is not None:
            if refused.retry_after > self.longest_wait:
                return None
            return refused.retry_after + random.uniform(0.0, self.base)
        return random.uniform(0.0, min(self.cap, self.base * 2.0 ** (tries - 1)))


@dataclass(frozen=True)
class DrainResult:
    sent: int
    deferred: int
    undeliverable: int = 0
    obsolete: int = 0  # dropped unsent: overtaken by what the person already did


class _Outcome(Enum):
    SENT = "sent"
    DEFERRED = "deferred"
    UNDELIVERABLE = "undeliverable"
    OBSOLETE = "obsolete"


@dataclass
class _Drain:
    """One drain's view of the queue: messages claimed, per person, and what became of them."""

    lanes: dict[str, deque[OutboxMessage]] = field(default_factory=dict)
    ready: deque[str] = field(default_factory=deque)  # people with messages waiting and nobody serving them
    busy: set[str] = field(default_factory=set)
    open: set[str] = field(default_factory=set)  # claimed and still pending: waiting in a lane or being sent
    lease_ends: dict[str, datetime] = field(default_factory=dict)  # key -> when our claim on it runs out
    queued: int = 0
    tally: dict[_Outcome, int] = field(default_factory=lambda: dict.fromkeys(_Outcome, 0))

    def add(self, message: OutboxMessage, lease_ends: datetime) -> None:
        recipient = message.recipient
        lane = self.lanes.setdefault(recipient, deque())
        lane.append(message)
        self.open.add(message.key)
        self.lease_ends[message.key] = lease_ends
        self.queued += 1
        if len(lane) == 1 and recipient not in self.busy:
            self.ready.append(recipient)

    def close(self, key: str) -> None:
        self.open.discard(key)
        self.lease_ends.pop(key, None)


def worker_name() -> str:
    """A name no other notifier uses, now or after a restart, that says where it runs (for the operator)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Notifier:
    def __init__(
        self,
        store: Store,
        sender: MessageSender,
        clock: Clock,
        *,
        limiter: SendBudget | None = None,
        retry: RetryPolicy = RetryPolicy(),
        on_undeliverable: UndeliverableHandler | None = None,
        obsolete: ObsoleteCheck | None = None,
        concurrency: int = 16,
        batch: int = 500,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        worker: str | None = None,
        lease: timedelta = OUTBOX_LEASE,
    ) -> None:
        """``sleep`` serves every wait (the limiter's, the retries'): tests pass one that moves a fake
        clock shared with the limiter, so Teams' real windows take no real time. ``limiter`` is the
        store's ``send_budget(sender.limits)`` in a server (by default one kept in this process); ``worker`` names this
        notifier's claims (unique by default); ``lease`` is how long a claim lasts."""
        if concurrency < 1 or batch < 2:
            raise ValueError("concurrency must be at least 1 and batch at least 2")
        if lease <= timedelta(0):
            raise ValueError("a lease must be positive")
        self.store = store
        self.sender = sender
        self.clock = clock
        self.limiter = limiter or RateLimiter(limits=sender.limits)
        self.retry = retry
        self.on_undeliverable = on_undeliverable
        self.obsolete = obsolete
        self.concurrency = concurrency
        self.batch = batch
        self.sleep = sleep
        self.worker = worker or worker_name()
        self.lease = lease
        self.lease_margin = min(LEASE_MARGIN, lease / 4)
        self.in_flight: set[str] = set()  # keys sent or being sent, not yet marked: the repeats after a crash
        self._draining = asyncio.Lock()

    async def drain(self) -> DrainResult:
        """Deliver every message that is due, many people at once and each person's in order, then return.

        Messages are fetched ``batch`` at a time as the earlier ones are served, so a fan-out to ten
        thousand people keeps the channel busy without holding the whole queue in memory.
        """
        async with self._draining:
            run = _Drain()
            tasks: set[asyncio.Task[None]] = set()
            exhausted = False
            try:
                while True:
                    if run.queued <= self.batch // 2 and not exhausted:
                        exhausted = not await self._refill(run)
                    while run.ready and len(tasks) < self.concurrency:
                        recipient = run.ready.popleft()
                        run.busy.add(recipient)
                        tasks.add(asyncio.create_task(self._serve(recipient, run)))
                    if not tasks:
                        if exhausted:
                            break
                        continue
                    done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
                    exhausted = False  # a message that left the queue may uncover its person's next one
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return DrainResult(
                run.tally[_Outcome.SENT], run.tally[_Outcome.DEFERRED], run.tally[_Outcome.UNDELIVERABLE],
                run.tally[_Outcome.OBSOLETE],
            )

    async def _refill(self, run: _Drain) -> bool:
        """Claim due messages for this drain and add them to their people's lanes; False when there were none.

        A message this drain still holds comes back only if its lease ran out meanwhile: it is kept once."""
        now = self.clock.now()
        fresh = False
        for message in await self.store.claim_due(self.worker, now, self.batch, self.lease):
            if message.key in run.open:
                run.lease_ends[message.key] = now + self.lease  # claimed again: ours for longer
                continue
            run.add(message, now + self.lease)
            fresh = True
        return fresh

    async def _serve(self, recipient: str, run: _Drain) -> None:
        """Send one person's messages one after another; after a deferred one, give up the rest (the store
        hands them out again only after it)."""
        lane = run.lanes[recipient]
        try:
            while lane:
                message = lane.popleft()
                run.queued -= 1
                outcome = await self._deliver(message, run.lease_ends[message.key])
                run.close(message.key)
                run.tally[outcome] += 1
                if outcome is _Outcome.DEFERRED:
                    for later in lane:
                        run.close(later.key)
                    run.queued -= len(lane)
                    lane.clear()
        finally:
            run.busy.discard(recipient)
            if not lane:
                del run.lanes[recipient]

    async def _deliver(self, message: OutboxMessage, lease_ends: datetime) -> _Outcome:
        overtaken = self.obsolete(message) if self.obsolete is not None else None
        if overtaken is not None:  # leaves the queue unsent, its reason kept; nobody is told
            if await self.store.mark_undeliverable(message.key, f"obsolete: {overtaken}", self.clock.now(),
                                                   worker=self.worker):
                log.info("dropped %s unsent: %s", message.key, overtaken)
            return _Outcome.OBSOLETE
        try:
            reference = await self.sender.reach(message.recipient)
        except DeliveryError as refused:
            if refused.permanent:  # no channel ever will: the security leads hear of it
                await self._undeliverable(message, str(refused))
                return _Outcome.UNDELIVERABLE
            log.info("could not open a conversation with %s: %s", message.recipient, refused)
            reference = None
        if reference is None:
            await self.store.mark_retry(message.key, NO_CONVERSATION_YET,
                                        self.clock.now() + NO_CONVERSATION_RETRY, worker=self.worker)
            return _Outcome.DEFERRED
        charges = self.sender.charges(reference, message.recipient)
        tries = 0
        while True:
            if not await self._admit(charges, lease_ends):
                return await self._lease_running_out(message)
            tries += 1
            self.in_flight.add(message.key)
            try:
                failure = await self._send(message, reference, charges)
                if failure is None:
                    if not await self.store.mark_sent(message.key, self.clock.now(), worker=self.worker):
                        log.warning("%s was sent after its lease ran out and another notifier claimed it: it may "
                                    "arrive twice", message.key)
                    return _Outcome.SENT
            finally:
                self.in_flight.discard(message.key)

            if isinstance(failure, DeliveryError) and failure.permanent:
                await self._undeliverable(message, str(failure))
                return _Outcome.UNDELIVERABLE
            pause = self.retry.pause(tries, failure) if isinstance(failure, DeliveryError) else None
            if pause is not None and self.clock.now() + timedelta(seconds=pause) > lease_ends - self.lease_margin:
                pause = None  # waiting in place would outlast the claim: defer it instead
            if pause is None:
                if self._refused_too_long(message):
                    await self._undeliverable(message, f"the chat service refused it at every try for over a day "
                                                       f"({_describe(failure)})")
                    return _Outcome.UNDELIVERABLE
                retry_at = self.clock.now() + _deferral(message.attempts, failure)
                await self.store.mark_retry(message.key, _describe(failure), retry_at, worker=self.worker)
                log.warning("deferred %s until %s after %d tries: %s", message.key, retry_at, tries, _describe(failure))
                return _Outcome.DEFERRED
            log.info("%s: %s; trying again in %.2f s", message.key, _describe(failure), pause)
            await self.sleep(pause)

    async def _send(self, message: OutboxMessage, reference: dict[str, Any], charges: Sequence[Charge]) -> Exception | None:
        """One request; what refused it, or None when the channel accepted it. The request leaves the
        limiter the moment the answer is in, before anything is written."""
        try:
            await self.sender.send_text(reference, str(message.payload["text"]))
        except DeliveryError as refused:
            return refused
        except Exception as unexpected:  # a bug or an unforeseen client error: keep the message, say why
            log.exception("sending %s failed unexpectedly; it stays queued", message.key)
            return unexpected
        finally:
            await self.limiter.finished(charges)
        return None

    async def _admit(self, charges: Sequence[Charge], lease_ends: datetime) -> bool:
        """Wait until every limit allows one more request (the budget itself never sleeps); False, admitted to
        nothing, when the claim would run too short to send and record it."""
        while True:
            if self.clock.now() > lease_ends - self.lease_margin:
                return False
            try:
                wait = await self.limiter.admit(charges)
            except StoreUnavailable as unavailable:  # a shared budget's database hiccup: ask again shortly
                log.warning("the sending budget could not be asked (%s); asking again in %.0f s", unavailable,
                            BUDGET_UNAVAILABLE_WAIT)
                wait = BUDGET_UNAVAILABLE_WAIT
            if wait <= 0:
                return True
            await self.sleep(wait)

    async def _lease_running_out(self, message: OutboxMessage) -> _Outcome:
        """The budget kept the message waiting until its claim ran short: put it back, due now, unsent."""
        await self.store.mark_retry(message.key, BUDGET_RAN_SHORT,
                                    self.clock.now(), worker=self.worker)
        return _Outcome.DEFERRED

    def _refused_too_long(self, message: OutboxMessage) -> bool:
        """Whether to stop retrying a message the channel keeps refusing (a 5xx that never heals, e.g. a
        connector that answers 500 for one person only): queued over ``GIVE_UP_AFTER`` ago, deferred at least
        ``GIVE_UP_ATTEMPTS`` times, and its last deferral was a refusal too (not a wait for a conversation or
        for the budget). Retried forever, the leads would never hear that the person is not being reached."""
        return (self.clock.now() - message.created_at >= GIVE_UP_AFTER and message.attempts >= GIVE_UP_ATTEMPTS
                and message.last_error not in ("", NO_CONVERSATION_YET, BUDGET_RAN_SHORT))

    async def _undeliverable(self, message: OutboxMessage, reason: str) -> None:
        if not await self.store.mark_undeliverable(message.key, reason, self.clock.now(), worker=self.worker):
            return  # another notifier holds it now and will find the same refusal
        log.warning("message %s to %s is undeliverable: %s", message.key, message.recipient, reason)
        if self.on_undeliverable is None:
            return
        try:
            await self.on_undeliverable(message, reason)
        except Exception:  # telling the leads must not stop delivery to everyone else
            log.exception("could not report the undeliverable message %s", message.key)


def _deferral(attempts: int, failure: Exception) -> timedelta:
    """When a deferred message is tried again: the channel's Retry-After when it named one, else an
    exponential backoff with jitter, 30 s for the first deferral doubling up to an hour."""
    retry_after = failure.retry_after if isinstance(failure, DeliveryError) else None
    if retry_after is not None:
        return timedelta(seconds=retry_after)
    ceiling = min(MAX_BACKOFF, FIRST_DEFERRAL * 2 ** min(attempts, 12))
    return ceiling * random.uniform(0.5, 1.0)


def _describe(failure: Exception) -> str:
    return str(failure) if isinstance(failure, DeliveryError) else f"{type(failure).__name__}: {failure}"
