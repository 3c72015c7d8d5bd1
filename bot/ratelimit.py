"""The channels' sending limits, kept on our side so the platform never has to refuse a message for pace.

Each channel names its windows (Teams' and Slack's are below) and what a message counts under
(``RateKeys``); the notifier holds one RateLimiter per channel. Teams limits a bot per conversation (7 messages in any 1 s, 8 in 2 s, 60 in 30 s, 1,800 in an hour, all
at once) and per app and tenant (about 50 requests a second), and answers 429 past them. Retrying after
the 429 works, but each refusal costs a round trip and a Retry-After wait, so the notifier asks this
limiter first and sleeps for the answer.

The windows are sliding logs, exact rather than approximated by a token bucket, because the connector
counts exactly. A request occupies its windows from the moment it is granted until one window length
after it *completed*: the connector counts its arrival, which lies somewhere between the two, so
counting from completion is the only choice that is safe whatever the network does. The price is the
request's latency per window length (a few milliseconds against a second here).

The logic never sleeps and reads time only from the injected clock, so tests drive it instantly.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence


@dataclass(frozen=True)
class Window:
    """At most ``limit`` requests in any ``seconds``-long interval."""

    limit: int
    seconds: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.seconds <= 0:
            raise ValueError(f"a window needs a positive limit and length, not {self.limit}/{self.seconds}s")


TEAMS_PER_CONVERSATION = (Window(7, 1.0), Window(8, 2.0), Window(60, 30.0), Window(1800, 3600.0))
TEAMS_PER_TENANT = (Window(50, 1.0),)
# Slack: chat.postMessage about one message a second per conversation, and "several hundred a minute" per
# workspace (its rate-limits page); 300 a minute stays at the low end of that.
SLACK_PER_CONVERSATION = (Window(1, 1.0),)
SLACK_PER_WORKSPACE = (Window(300, 60.0),)


@dataclass(frozen=True)
class RateKeys:
    """What one message counts under: its channel's limits, a conversation, and the app within a tenant
    (or workspace). Each channel names its own (``limit_keys``); the notifier only passes them on."""

    channel: str
    conversation: str
    tenant: str


SWEEP_EVERY = 1024
"""Releases between sweeps that forget keys idle for longer than the longest window."""


@dataclass
class _Usage:
    in_flight: int = 0
    finished: deque[float] = field(default_factory=deque)  # completion times, oldest first


class SlidingWindows:
    """Several windows over requests grouped by key (a conversation, or an app in a tenant)."""

    def __init__(self, windows: Sequence[Window], clock: Callable[[], float] = time.monotonic) -> None:
        if not windows:
            raise ValueError("at least one window is needed")
        self.windows = tuple(sorted(windows, key=lambda w: w.seconds))
        self.clock = clock
        self.horizon = self.windows[-1].seconds
        self._usage: dict[Hashable, _Usage] = {}
        self._releases = 0

    def wait(self, key: Hashable) -> float:
        """Seconds until a request for ``key`` may start; 0.0 when it may start now. Changes nothing."""
        usage = self._usage.get(key)
        if usage is None:
            return 0.0
        now = self.clock()
        self._forget_expired(usage, now)
        longest = 0.0
        for window in self.windows:
            longest = max(longest, self._window_wait(window, usage, now))
        return longest

    def start(self, key: Hashable) -> None:
        """A request for ``key`` was granted: it counts in every window from now on."""
        self._usage.setdefault(key, _Usage()).in_flight += 1

    def finish(self, key: Hashable) -> None:
        """The request ended (accepted, refused or abandoned): it counts until a window length from now."""
        usage = self._usage.get(key)
        if usage is None or usage.in_flight == 0:
            raise RuntimeError(f"finish() without start() for {key!r}")
        usage.in_flight -= 1
        usage.finished.append(self.clock())
        self._releases += 1
        if self._releases % SWEEP_EVERY == 0:
            self._sweep()

    def tracked(self) -> int:
        """How many keys are remembered (idle ones are forgotten after the longest window)."""
        return len(self._usage)

    def _window_wait(self, window: Window, usage: _Usage, now: float) -> float:
        """How long until one more request fits in this window.

        ``finished`` holds only times within the horizon, so the ones still inside this window are its
        tail. If the requests still in flight fill the window on their own, their completion times are
        unknown: the answer is one even share of the window, and the caller asks again.
        """
        inside = _count_after(usage.finished, now - window.seconds)
        excess = usage.in_flight + inside - window.limit + 1
        if excess <= 0:
            return 0.0
        if excess > inside:
            return window.seconds / window.limit
        first_inside = len(usage.finished) - inside
        return usage.finished[first_inside + excess - 1] + window.seconds - now

    def _forget_expired(self, usage: _Usage, now: float) -> None:
        while usage.finished and usage.finished[0] <= now - self.horizon:
            usage.finished.popleft()

    def _sweep(self) -> None:
        now = self.clock()
        for key in list(self._usage):
            usage = self._usage[key]
            self._forget_expired(usage, now)
            if usage.in_flight == 0 and not usage.finished:
                del self._usage[key]


def _count_after(times: deque[float], threshold: float) -> int:
    """How many of the ascending ``times`` are later than ``threshold`` (counted from the newest end)."""
    count = 0
    for moment in reversed(times):
        if moment <= threshold:
            break
        count += 1
    return count


class RateLimiter:
    """Teams' two limits at once: a message may start only when its conversation and its tenant allow.

    ``acquire`` either grants (returns 0.0 and counts the request in both) or names how long to wait
    and counts nothing; every grant must be followed by exactly one ``release``.
    """

    def __init__(
        self,
        per_conversation: Sequence[Window] = TEAMS_PER_CONVERSATION,
        per_tenant: Sequence[Window] = TEAMS_PER_TENANT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conversations = SlidingWindows(per_conversation, clock)
        self.tenants = SlidingWindows(per_tenant, clock)

    def acquire(self, conversation: str, tenant: str) -> float:
        wait = max(self.conversations.wait(conversation), self.tenants.wait(tenant))
        if wait > 0:
            return wait
        self.conversations.start(conversation)
        self.tenants.start(tenant)
        return 0.0

    def release(self, conversation: str, tenant: str) -> None:
        self.conversations.finish(conversation)
        self.tenants.finish(tenant)

    def allowed_rate(self) -> float:
        """Requests per second one tenant may sustain (its tightest window), for reports and benchmarks."""
        return min(window.limit / window.seconds for window in self.tenants.windows)
