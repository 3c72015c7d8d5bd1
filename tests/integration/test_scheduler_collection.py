"""The server collecting the tenant itself when a new period's campaign is due."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from checks.snapshot import TenantSnapshot

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


async def test_a_failed_collection_opens_no_campaign_and_is_retried_an_hour_later_not_every_round(tmp_path: Path) -> None:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    attempts: list[datetime] = []
    clock = ManualClock(MONDAY)

    async def collect() -> TenantSnapshot:  # the far side: Graph down for the first hour, then back
        attempts.append(clock.now())
        if len(attempts) == 1:
            raise ConnectionError("graph.microsoft.com unreachable")
        return snapshot

    runtime = await build_runtime(data_dir=tmp_path, policy=policy, snapshot=snapshot, clock=clock,
                                  credentials=BotCredentials(), collector=collect)
    with pytest.raises(ConnectionError):
        await runtime.scheduler.review_round()
    clock.advance(timedelta(minutes=5))
    await runtime.scheduler.review_round()
    assert len(attempts) == 1 and runtime.service.campaigns() == []
    clock.advance(timedelta(hours=1))
    await runtime.scheduler.review_round()
    assert len(attempts) == 2 and len(runtime.service.campaigns()) == 1
    await runtime.scheduler.review_round()
    assert len(attempts) == 2  # the period's campaign is open: no further collection
    await runtime.store.close()
