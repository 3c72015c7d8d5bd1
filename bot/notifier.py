"""Drains the outbox into the channel at the pace the channel allows; a message is marked sent only
after the channel accepted it.

Every message was stored before this runs, so a crash loses nothing. Each message ends a drain in one
of five ways:

- **sent** — the channel accepted it, and only then is it marked sent;
- **retried in place** — the channel was busy or briefly down (429, 412, 408, 5xx, no connection):
  wait the Retry-After it asked for, or an exponential backoff with full jitter, and try again, up to
  ``RetryPolicy.attempts`` times, while the other conversations keep going;
- **deferred** — still failing after that, refused in a way that does not heal in seconds (400, 401),
  or no conversation with the person yet: stored with its error and a later ``next_attempt_at``;
- **obsolete** — overtaken before it went (``obsolete`` says so, e.g. "your review is open" to someone
  who is already answering): it leaves the queue unsent, with the reason kept;
- **undeliverable** — the channel said it never will be (403: the person blocked or uninstalled the
  app; 404: the conversation is gone; 413: too large): it leaves the queue, and ``on_undeliverable``
  is told so the security leads can hear that someone cannot be reached.

Order: one person's messages go one at a time, oldest first, and when one is deferred their later
messages wait behind it, so a reminder never overtakes the request it reminds of. That hold lives in
this process: after a restart, a later message that is due may go before an earlier one still waiting
for its retry time.

Pace: each request first asks its channel's RateLimiter (per-conversation and per-tenant windows) and
sleeps for its answer, so the connector never has to refuse for pace; ``concurrency`` conversations are
served at once.

Duplicates: the Bot Connector takes no idempotency key. A message the connector accepted but that was
not yet marked sent when the process stopped is sent again after the restart; at most ``concurrency``
messages are ever in that state, and ``in_flight`` names them. Likewise a request that fails after the
connector accepted it (a timeout, a dropped connection) looks exactly like one that never arrived and
is sent again; no client can do better without an idempotency key.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Awaitable, Callable, Mapping, Protocol

from bot.clock import Clock
from bot.ratelimit import RateKeys, RateLimiter
from bot.store.base import OutboxMessage, Store

log = logging.getLogger(__name__)

NO_CONVERSATION_RETRY = timedelta(minutes=5)
FIRST_DEFERRAL = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)

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

    def limit_keys(self, address: dict, recipient: str) -> RateKeys:
        """What the channel's rate limits count a message to ``address`` under."""
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
    """One drain's view of the queue: messages fetched, per person, and what became of them."""

    lanes: dict[str, deque[OutboxMessage]] = field(default_factory=dict)
    ready: deque[str] = field(default_factory=deque)  # people with messages waiting and nobody serving them
    busy: set[str] = field(default_factory=set)
    open: set[str] = field(default_factory=set)  # fetched and still pending: waiting in a lane or being sent
    skipped: dict[str, set[str]] = field(default_factory=dict)  # held behind an earlier deferred message
    skipped_count: int = 0
    queued: int = 0
    tally: dict[_Outcome, int] = field(default_factory=lambda: dict.fromkeys(_Outcome, 0))

    def add(self, message: OutboxMessage) -> None:
        recipient = message.recipient
        lane = self.lanes.setdefault(recipient, deque())
        lane.append(message)
        self.open.add(message.key)
        self.queued += 1
        if len(lane) == 1 and recipient not in self.busy:
            self.ready.append(recipient)

    def skip(self, recipient: str, key: str) -> None:
        self.skipped.setdefault(recipient, set()).add(key)
        self.skipped_count += 1

    def unskip(self, recipient: str) -> None:
        self.skipped_count -= len(self.skipped.pop(recipient, ()))

    def is_known(self, message: OutboxMessage) -> bool:
        return message.key in self.open or message.key in self.skipped.get(message.recipient, ())


class Notifier:
    def __init__(
        self,
        store: Store,
        sender: MessageSender,
        clock: Clock,
        *,
        limiter: RateLimiter | None = None,
        limiters: Mapping[str, RateLimiter] | None = None,
        retry: RetryPolicy = RetryPolicy(),
        on_undeliverable: UndeliverableHandler | None = None,
        obsolete: ObsoleteCheck | None = None,
        concurrency: int = 16,
        batch: int = 500,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``limiters`` holds each channel's own limits by channel name; ``limiter`` serves a channel not
        named there. ``sleep`` serves every wait (the limiters', the retries'): tests pass one that moves a
        fake clock shared with the limiters, so the channels' real windows take no real time."""
        if concurrency < 1 or batch < 2:
            raise ValueError("concurrency must be at least 1 and batch at least 2")
        self.store = store
        self.sender = sender
        self.clock = clock
        self.limiter = limiter or RateLimiter()
        self.limiters = dict(limiters or {})
        self.retry = retry
        self.on_undeliverable = on_undeliverable
        self.obsolete = obsolete
        self.concurrency = concurrency
        self.batch = batch
        self.sleep = sleep
        self.in_flight: set[str] = set()  # keys sent or being sent, not yet marked: the repeats after a crash
        self._held: dict[str, str] = {}  # person -> the deferred message their later ones wait behind
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
                    if run.queued <= self.batch // 2 and (not exhausted or not tasks):
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
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return DrainResult(
                run.tally[_Outcome.SENT], run.tally[_Outcome.DEFERRED], run.tally[_Outcome.UNDELIVERABLE],
                run.tally[_Outcome.OBSOLETE],
            )

    async def _refill(self, run: _Drain) -> bool:
        """Add due messages this drain has not seen yet to their people's lanes; False when there were none.

        The store answers oldest first and includes what this drain already holds, hence the limit.
        """
        limit = self.batch + len(run.open) + run.skipped_count
        fresh = False
        for message in await self.store.due_messages(self.clock.now(), limit):
            if run.is_known(message):
                continue
            blocker = self._held.get(message.recipient)
            if blocker is not None:
                if message.key != blocker:
                    run.skip(message.recipient, message.key)
                    continue
                del self._held[message.recipient]  # its turn came again; the ones behind it follow
                run.unskip(message.recipient)
            run.add(message)
            fresh = True
        return fresh

    async def _serve(self, recipient: str, run: _Drain) -> None:
        """Send one person's messages one after another; if one is deferred, hold the rest behind it."""
        lane = run.lanes[recipient]
        try:
            while lane:
                message = lane.popleft()
                run.queued -= 1
                outcome = await self._deliver(message)
                run.open.discard(message.key)
                run.tally[outcome] += 1
                if outcome is _Outcome.DEFERRED:
                    self._held[recipient] = message.key
                    for later in lane:
                        run.open.discard(later.key)
                        run.skip(recipient, later.key)
                    run.queued -= len(lane)
                    lane.clear()
        finally:
            run.busy.discard(recipient)
            if not lane:
                del run.lanes[recipient]

    async def _deliver(self, message: OutboxMessage) -> _Outcome:
        overtaken = self.obsolete(message) if self.obsolete is not None else None
        if overtaken is not None:  # leaves the queue unsent, its reason kept; nobody is told
            await self.store.mark_undeliverable(message.key, f"obsolete: {overtaken}", self.clock.now())
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
            await self.store.mark_retry(
                message.key, "no conversation with this person yet", self.clock.now() + NO_CONVERSATION_RETRY
            )
            return _Outcome.DEFERRED
        keys = self.sender.limit_keys(reference, message.recipient)
        tries = 0
        while True:
            await self._admit(keys)
            tries += 1
            self.in_flight.add(message.key)
            try:
                failure = await self._send(message, reference, keys)
                if failure is None:
                    await self.store.mark_sent(message.key, self.clock.now())
                    return _Outcome.SENT
            finally:
                self.in_flight.discard(message.key)

            if isinstance(failure, DeliveryError) and failure.permanent:
                await self._undeliverable(message, str(failure))
                return _Outcome.UNDELIVERABLE
            pause = self.retry.pause(tries, failure) if isinstance(failure, DeliveryError) else None
            if pause is None:
                retry_at = self.clock.now() + _deferral(message.attempts, failure)
                await self.store.mark_retry(message.key, _describe(failure), retry_at)
                log.warning("deferred %s until %s after %d tries: %s", message.key, retry_at, tries, _describe(failure))
                return _Outcome.DEFERRED
            log.info("%s: %s; trying again in %.2f s", message.key, _describe(failure), pause)
            await self.sleep(pause)

    async def _send(self, message: OutboxMessage, reference: dict[str, Any], keys: RateKeys) -> Exception | None:
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
            self.limiter_of(keys).release(keys.conversation, keys.tenant)
        return None

    def limiter_of(self, keys: RateKeys) -> RateLimiter:
        """The limits of the channel a message goes through."""
        return self.limiters.get(keys.channel, self.limiter)

    async def _admit(self, keys: RateKeys) -> None:
        """Wait until both of the channel's limits allow one more request (the limiter itself never sleeps)."""
        limiter = self.limiter_of(keys)
        while (wait := limiter.acquire(keys.conversation, keys.tenant)) > 0:
            await self.sleep(wait)

    async def _undeliverable(self, message: OutboxMessage, reason: str) -> None:
        await self.store.mark_undeliverable(message.key, reason, self.clock.now())
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
