"""One Teams budget shared by every instance: two PostgreSQL stores on one database (two instances), asking
in turn on one hand-moved clock, together never grant more than a window allows."""

from __future__ import annotations

import bisect
from datetime import timedelta
from typing import Callable, Sequence

from bot.clock import ManualClock
from bot.ratelimit import TEAMS_CONVERSATION, TEAMS_PER_CONVERSATION, TEAMS_TENANT, Charge, Window
from bot.store.postgres_store import PostgresStore
from tests.contract.samples import MONDAY


def most_in_any(times: Sequence[float], seconds: float) -> int:
    """The most grants within any half-open interval ``seconds`` long."""
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + seconds) - i for i, t in enumerate(ordered)), default=0)


async def grants_of_two_instances(url: str, charges_for: Callable[[int], Sequence[Charge]], seconds: float, step: float) -> list[float]:
    clock = ManualClock(MONDAY)
    instances = [PostgresStore(url, clock=clock), PostgresStore(url, clock=clock)]
    granted: list[float] = []
    try:
        n = 0
        while (moment := n * step) < seconds:
            for instance in instances:
                charges: Sequence[Charge] = charges_for(len(granted))
                if await instance.send_budget().admit(charges) == 0.0:
                    await instance.send_budget().finished(charges)
                    granted.append(moment)
            n += 1
            clock.advance(timedelta(seconds=step))
    finally:
        for instance in instances:
            await instance.close()
    return granted


async def test_two_instances_share_one_tenant_budget_and_use_most_of_it(postgres_url: str) -> None:
    granted = await grants_of_two_instances(
        postgres_url, lambda n: ((TEAMS_CONVERSATION, f"a:{n}"), (TEAMS_TENANT, "28:bot|contoso")), 4.0, 0.005)

    assert most_in_any(granted, 1.0) <= 49  # Teams allows 50 a second; one is left for the network's delay
    assert len(granted) >= 0.85 * 50 * 4


async def test_two_instances_share_one_conversations_windows(postgres_url: str) -> None:
    granted = await grants_of_two_instances(
        postgres_url, lambda n: ((TEAMS_CONVERSATION, "a:alex"), (TEAMS_TENANT, "28:bot|contoso")), 40.0, 0.05)

    for window in TEAMS_PER_CONVERSATION[:3]:
        assert most_in_any(granted, window.seconds) <= window.limit - 1
    assert len(granted) >= 40


async def test_another_channels_limit_is_kept_under_its_own_name(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, clock=ManualClock(MONDAY))
    try:
        budget = store.send_budget({"slack.channel": (Window(1, 1.0),), TEAMS_TENANT: (Window(50, 1.0),)})
        assert await budget.admit((("slack.channel", "D123"),)) == 0.0
        assert await budget.admit((("slack.channel", "D123"),)) > 0.0
        assert await budget.admit((("slack.channel", "D456"),)) == 0.0
        assert await budget.admit(((TEAMS_TENANT, "D123"),)) == 0.0  # the same key under another limit
    finally:
        await store.close()
