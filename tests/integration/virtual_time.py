"""Virtual time for delivery tests: Teams' real windows (a second, thirty, an hour) without waiting for them.

The notifier's rate limiter, the notifier's waits (``Notifier(sleep=...)``) and the fake Bot Connector's
windows all read one ``VirtualTime``. It never moves while a woken worker has yet to run; otherwise,
whenever workers are asleep, it jumps to the earliest wake-up. So a Retry-After or a limiter's wait costs
no real time, and the connector and the limiter count on one monotonic clock: a request arrives no later
than it completes, which is all the limiter's guarantee needs. What the tests assert (never over a
window, nothing lost, nothing repeated) therefore follows from the notifier's logic, not from how fast
or busy the machine is; how fast delivery really is, is bench/fanout.py's business.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Awaitable, TypeVar

T = TypeVar("T")

HANG_GUARD = 300.0  # real seconds: reached only when something hangs, never a measure of speed
SETTLE = 8  # event-loop turns given to woken and new tasks before time may move again


class VirtualTime:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._waking = 0  # sleepers whose time came and that have not run since

    def __call__(self) -> float:
        """The time, for ``RateLimiter(clock=...)`` and ``FakeConnector(clock=...)``."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """The notifier's sleep: returns when virtual time reaches now + ``seconds``."""
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), wake))
        try:
            await wake
        finally:
            if wake.done() and not wake.cancelled():
                self._waking -= 1

    def advance(self, seconds: float) -> None:
        """Move time on by hand (a restart that takes a minute), waking whoever is due."""
        self._wake_until(self.now + seconds)

    async def run(self, work: Awaitable[T]) -> T:
        """Await ``work`` (a drain), moving time whenever every worker not on the network is asleep."""
        task = asyncio.ensure_future(work)
        try:
            async with asyncio.timeout(HANG_GUARD):
                while not task.done():
                    for _ in range(SETTLE):
                        await asyncio.sleep(0)
                    if task.done():
                        break
                    due = self._next_wake()
                    if self._waking or due is None:
                        await asyncio.sleep(0.001)  # only the network is busy: give it real time
                    else:
                        self._wake_until(due)
        finally:
            if not task.done():
                task.cancel()
        return task.result()

    def _next_wake(self) -> float | None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled while asleep
        return self._sleepers[0][0] if self._sleepers else None

    def _wake_until(self, moment: float) -> None:
        self.now = max(self.now, moment)
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, wake = heapq.heappop(self._sleepers)
            if not wake.done():
                wake.set_result(None)
                self._waking += 1
