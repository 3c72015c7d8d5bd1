"""``$batch`` handling: 20 to a batch, answers matched to their requests, inner throttling re-sent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from checks.graph import RetrySettings, close_client, graph_client
from checks.graph.batching import BatchRequest, GraphError, GraphReader
from checks.graph.client import AccessTokenCredential
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.tenant_generator import TenantShape, generate_tenant

FAST = RetrySettings(max_retries=2, backoff_factor=0.01, backoff_max=0.02)


@pytest.fixture
async def fake() -> AsyncIterator[FakeGraph]:
    async with FakeGraph(generate_tenant(TenantShape(users=60, privileged_users=12, crowded_role_holders=5))) as server:
        yield server


async def test_45_requests_go_in_three_batches_and_each_answer_finds_its_request(fake: FakeGraph) -> None:
    tenant = next(iter(fake.tenants.values()))
    users = list(tenant.users)[:45]
    client = graph_client(AccessTokenCredential("fake-graph-token"), fake.base_url(), retry=FAST)
    reader = GraphReader(client, retry=FAST)

    answers = await reader.batch([BatchRequest(uid, f"/users/{uid}?$select=id,displayName") for uid in users])
    await close_client(client)

    assert fake.requests["POST /$batch"] == 3 and fake.largest_batch == 20
    assert {uid: a.body["displayName"] for uid, a in answers.items()} == {u: tenant.users[u]["displayName"] for u in users}


async def test_an_item_still_throttled_after_every_retry_keeps_its_429(fake: FakeGraph) -> None:
    tenant = next(iter(fake.tenants.values()))
    stuck, fine = list(tenant.users)[:2]
    fake.throttle(rf"^/users/{stuck}$", times=99, retry_after="0", where="batch")
    client = graph_client(AccessTokenCredential("fake-graph-token"), fake.base_url(), retry=FAST)
    reader = GraphReader(client, retry=FAST)

    answers = await reader.batch([BatchRequest(u, f"/users/{u}") for u in (stuck, fine)])
    await close_client(client)

    assert answers[fine].ok and answers[stuck].status == 429
    assert answers[stuck].error().describe() == "429"
    assert reader.batch_retries == FAST.max_retries and fake.batched["GET /users/{id}"] == 2 + FAST.max_retries


async def test_keys_must_be_unique_so_answers_cannot_be_confused(fake: FakeGraph) -> None:
    client = graph_client(AccessTokenCredential("fake-graph-token"), fake.base_url(), retry=FAST)
    with pytest.raises(ValueError, match="unique"):
        await GraphReader(client).batch([BatchRequest("a", "/organization"), BatchRequest("a", "/contracts")])
    await close_client(client)


def test_graph_errors_say_what_went_wrong_in_a_few_words() -> None:
    assert GraphError(503, "serviceNotAvailable").describe() == "503"
    assert GraphError(403, "Authorization_RequestDenied").describe() == "403 Authorization_RequestDenied"
    assert GraphError(None, "timeout").describe() == "timeout"
