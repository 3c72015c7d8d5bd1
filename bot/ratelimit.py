"""The channels' sending limits, kept on our side so the platform never has to refuse a message for pace.

Each channel names its limits (Teams' and Slack's are below) and what a message counts under
(``charges``); the notifier asks one ``SendBudget`` that keeps every channel's limits. Teams limits a bot per conversation (7 messages in any 1 s, 8 in 2 s, 60 in 30 s, 1,800 in an hour, all
at once) and per app and tenant (about 50 requests a second), and answers 429 past them. Retrying after
the 429 works, but each refusal costs a round trip and a Retry-After wait, so the notifier asks this
limiter first and sleeps for the answer.

The windows are sliding logs, exact rather than approximated by a token bucket, because the connector
counts exactly. A request occupies its windows from the moment it is granted until one window length
after it *completed*: the connector counts its arrival, which lies somewhere between the two, so
counting from completion is the only choice that is safe whatever the network does. The price is the
request's latency per window length (a few milliseconds against a second here).

The logic never sleeps and reads time only from the injected clock, so tests drive it instantly.

Every limit has a name that says its channel and what it counts by (``teams.conversation``, ``teams.tenant``;
a Slack channel adds its own), and a request is charged to one key under each of its limits. The notifier
sees only ``SendBudget``: this module's ``RateLimiter`` keeps the budget in process, which is exact and
enough for the single-instance TinyDB store; the PostgreSQL store keeps it in the database so every
instance spends one budget (``bot/store/postgres_budget.py``).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Hashable, Mapping, Protocol, Sequence


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

Limits = Mapping[str, Sequence[Window]]
"""A channel's sending limits by name: what it declares (``limits``) and a ``SendBudget`` keeps."""

TEAMS_CONVERSATION = "teams.conversation"
TEAMS_TENANT = "teams.tenant"
TEAMS_LIMITS: Limits = {TEAMS_CONVERSATION: TEAMS_PER_CONVERSATION, TEAMS_TENANT: TEAMS_PER_TENANT}
SLACK_CONVERSATION = "slack.conversation"
SLACK_WORKSPACE = "slack.workspace"
SLACK_LIMITS: Limits = {SLACK_CONVERSATION: SLACK_PER_CONVERSATION, SLACK_WORKSPACE: SLACK_PER_WORKSPACE}

Charge = tuple[str, str]
"""What one request is counted under: a limit's name and the key within it (a conversation id, a tenant)."""


class SendBudget(Protocol):
    """The pace every sender keeps: ask before each request, report when it ended."""

    async def admit(self, charges: Sequence[Charge]) -> float:
        """0.0 when the request may start now (it is counted under every charge: call ``finished`` after it),
        else the seconds to wait before asking again (nothing was counted)."""
        ...

    async def finished(self, charges: Sequence[Charge]) -> None:
        """The request admitted under ``charges`` ended (accepted, refused or abandoned)."""
        ...

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
    """Sending limits kept in this process, exactly: a request may start only when every limit it is charged
    under allows. By default Teams' two (per conversation, per app and tenant); ``limits`` adds or replaces
    named ones (another channel's). ``acquire`` either grants (returns 0.0 and counts the request everywhere)
    or names how long to wait and counts nothing; every grant must be followed by exactly one ``release``.
    """

    def __init__(
        self,
        per_conversation: Sequence[Window] = TEAMS_PER_CONVERSATION,
        per_tenant: Sequence[Window] = TEAMS_PER_TENANT,
        clock: Callable[[], float] = time.monotonic,
        *,
        limits: Mapping[str, Sequence[Window]] | None = None,
    ) -> None:
        self.conversations = SlidingWindows(per_conversation, clock)
        self.tenants = SlidingWindows(per_tenant, clock)
        self._limits = {TEAMS_CONVERSATION: self.conversations, TEAMS_TENANT: self.tenants}
        for name, windows in (limits or {}).items():
            self._limits[name] = SlidingWindows(windows, clock)

    def acquire(self, conversation: str, tenant: str) -> float:
        return self.take(((TEAMS_CONVERSATION, conversation), (TEAMS_TENANT, tenant)))

    def release(self, conversation: str, tenant: str) -> None:
        self.give_back(((TEAMS_CONVERSATION, conversation), (TEAMS_TENANT, tenant)))

    def take(self, charges: Sequence[Charge]) -> float:
        """0.0 and counted under every charge, or the longest wait any of them names (nothing counted)."""
        wait = max((self._windows(name).wait(key) for name, key in charges), default=0.0)
        if wait > 0:
            return wait
        for name, key in charges:
            self._windows(name).start(key)
        return 0.0

    def give_back(self, charges: Sequence[Charge]) -> None:
        for name, key in charges:
            self._windows(name).finish(key)

    async def admit(self, charges: Sequence[Charge]) -> float:
        return self.take(charges)

    async def finished(self, charges: Sequence[Charge]) -> None:
        self.give_back(charges)

    def _windows(self, name: str) -> SlidingWindows:
        windows = self._limits.get(name)
        if windows is None:
            raise KeyError(f"no sending limit named {name!r}")
        return windows

    def allowed_rate(self) -> float:
        """Requests per second one tenant may sustain (its tightest window), for reports and benchmarks."""
        return min(window.limit / window.seconds for window in self.tenants.windows)


def pacing(window: Window) -> tuple[float, float]:
    """A window as a GCRA cell for a budget shared between processes: (emission interval, burst tolerance) in
    seconds, chosen so that any interval of the window's length grants at most ``limit - 1`` requests.

    A shared budget counts a request when it is granted, not when the connector sees it, and it cannot know
    when a request in another process completes; the one request left free absorbs a network delay of up to
    one interval. Large windows (over 20) keep a small burst and 90 % of their rate; small ones are paced evenly.
    """
    if window.limit > 20:
        interval = window.seconds / (0.9 * window.limit)
        return interval, (window.limit - 2) * interval - window.seconds
    return window.seconds / max(1, window.limit - 1), 0.0


def gcra_grant(cells: Sequence[tuple[float, float, float]], now: float) -> tuple[float, list[float]]:
    """One request against several GCRA cells, each ``(theoretical arrival time, interval, tolerance)``: the
    seconds to wait (nothing taken) or 0.0 and every cell's new arrival time (all taken at once)."""
    start = max((tat - tolerance for tat, _, tolerance in cells), default=now)
    if start > now:
        return start - now, []
    return 0.0, [max(tat, now) + interval for tat, interval, _ in cells]
