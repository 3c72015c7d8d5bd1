"""The remediation worker's wait for its wake-up stops when it is cancelled, whenever the cancellation lands:
also in the very step in which the wake-up arrives (Python 3.11's ``asyncio.wait_for`` lost that one, and the
worker ran on forever: docs/dependency-notes.md#wait_for-swallows-a-cancellation)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from tests.contract.samples import MONDAY

HANG_GUARD = 10.0  # seconds: reached only if the cancellation was lost, never a measure of speed


@pytest.mark.parametrize("steps", range(6))
async def test_a_wait_woken_and_cancelled_in_the_same_moment_ends_cancelled(tmp_path: Path, steps: int) -> None:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    runtime = await build_runtime(data_dir=tmp_path, policy=policy, snapshot=snapshot, clock=ManualClock(MONDAY),
                                  credentials=BotCredentials())
    try:
        runtime.service._remediation_wanted.set()  # a job became ready just now
        waiting = asyncio.create_task(runtime.service.remediation_wanted(30.0))
        for _ in range(steps):
            await asyncio.sleep(0)
        if not waiting.cancel():
            assert waiting.done() and waiting.result() is None  # woken and finished before the cancellation came
            return
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, HANG_GUARD)
    finally:
        await runtime.store.close()


async def test_a_wait_that_is_woken_returns_and_one_that_is_not_returns_after_its_timeout(tmp_path: Path) -> None:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    runtime = await build_runtime(data_dir=tmp_path, policy=policy, snapshot=snapshot, clock=ManualClock(MONDAY),
                                  credentials=BotCredentials())
    try:
        runtime.service._remediation_wanted.set()
        await asyncio.wait_for(runtime.service.remediation_wanted(HANG_GUARD * 10), HANG_GUARD)
        await asyncio.wait_for(runtime.service.remediation_wanted(0.01), HANG_GUARD)  # not woken: its round ends
    finally:
        await runtime.store.close()
