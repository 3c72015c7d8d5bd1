"""The per-tenant Graph budget: a busy tenant is paced, a tenant answering nothing but 429 is given back."""

from __future__ import annotations

import pytest

from checks.graph.budget import TenantBudget, TenantThrottled


def test_a_busy_tenant_that_answers_between_its_429s_is_paced_and_never_given_back() -> None:
    budget = TenantBudget("t-1", max_throttles=3, clock=lambda: 0.0)
    for _ in range(100):
        budget.throttled(0.0)
        budget.answered()
    assert budget.throttles == 100


def test_a_tenant_answering_only_429_is_given_back_after_its_budget_and_stays_given_back() -> None:
    budget = TenantBudget("t-1", max_throttles=3, clock=lambda: 0.0)
    for _ in range(3):
        budget.throttled(1.0)
    with pytest.raises(TenantThrottled, match="4 answers 429/503/504 in a row") as given_back:
        budget.throttled(1.0, 429)
    assert given_back.value.retry_after == budget.max_wait
    with pytest.raises(TenantThrottled):  # every later request of the collection ends at once
        budget.throttled(1.0)


async def test_a_retry_after_longer_than_a_collection_sits_out_gives_the_tenant_back_until_then() -> None:
    budget = TenantBudget("t-1", max_wait=30.0, clock=lambda: 0.0)
    with pytest.raises(TenantThrottled, match="Retry-After 120 s") as given_back:
        budget.throttled(120.0, 429)
    assert given_back.value.retry_after == 120.0
    with pytest.raises(TenantThrottled):
        await budget.ready()


async def test_a_short_retry_after_holds_every_request_of_the_tenant_until_it_has_passed() -> None:
    now = [100.0]
    budget = TenantBudget("t-1", clock=lambda: now[0])
    budget.throttled(2.0)
    now[0] = 102.0  # the pause is over by this clock: ready() returns without waiting
    await budget.ready()
    assert budget.waited == 0.0
