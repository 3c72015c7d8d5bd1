"""Azure subscriptions and who holds a privileged role on them, read through azure-mgmt-resource-subscriptions
and azure-mgmt-authorization against a local Azure Resource Manager (only the base URL changed): paging by
nextLink, 429 with Retry-After, PIM-eligible instances, and a partner's AOBO group."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from checks.azure import arm_reader, collect_azure, with_azure
from checks.graph.client import AccessTokenCredential
from checks.registry import run_checks
from checks.snapshot import TenantSnapshot
from checks.subjects import subjects_from_snapshot
from tests.fakes.fake_arm import MANAGEMENT_GROUPS, SUBSCRIPTIONS, ArmTenant, FakeArm
from tests.fakes.tenant_generator import NOW

HANG_GUARD = 60.0  # seconds: reached only if something hangs, never a measure of speed
TENANT = "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"
RESELLER = "8dae8645-ab06-4efb-b333-9afcbeef4e85"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
UAA = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
AOBO = "c0ffee00-5a1e-4c5e-9a0b-0d1e2f3a4b5c"
LYNNE = "0352574e-9ccb-4a60-b927-66c30c6c9a04"


def subscription(n: int) -> dict:
    sid = f"00000000-0000-4000-8000-{n:012d}"
    return {"id": f"/subscriptions/{sid}", "subscriptionId": sid, "tenantId": TENANT,
            "displayName": f"Subscription {n}", "state": "Enabled"}


def assignment(sid: str, role: str, principal: str, principal_type: str, n: int) -> dict:
    return {"id": f"/subscriptions/{sid}/providers/Microsoft.Authorization/roleAssignments/ra-{n}", "name": f"ra-{n}",
            "type": "Microsoft.Authorization/roleAssignments", "properties": {
                "roleDefinitionId": f"/subscriptions/{sid}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                "principalId": principal, "principalType": principal_type, "scope": f"/subscriptions/{sid}",
                "createdOn": "2024-01-01T00:00:00Z"}}


def eligible(sid: str, role: str, principal: str) -> dict:
    return {"id": f"/subscriptions/{sid}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/e-{principal}",
            "name": f"e-{principal}", "type": "Microsoft.Authorization/roleEligibilityScheduleInstances",
            "properties": {
                "roleDefinitionId": f"/subscriptions/{sid}/providers/Microsoft.Authorization/roleDefinitions/{role}",
                "principalId": principal, "principalType": "User", "scope": f"/subscriptions/{sid}",
                "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z",
                "memberType": "Direct", "status": "Provisioned"}}


@pytest.fixture
async def arm() -> AsyncIterator[FakeArm]:
    tenant = ArmTenant({MANAGEMENT_GROUPS: [{"id": f"{MANAGEMENT_GROUPS}/{TENANT}", "name": TENANT,
                                             "properties": {"displayName": "Tenant Root Group", "tenantId": TENANT}}]})
    for n in range(3):
        sid = subscription(n)["subscriptionId"]
        # the reader roles and Owners of each: more than a page of them
        rbac = [assignment(sid, READER, f"reader-{n}-{k}", "User", k) for k in range(3)]
        rbac += [assignment(sid, OWNER, AOBO, "ForeignGroup", 90), assignment(sid, OWNER, LYNNE, "User", 91)]
        tenant.subscription(subscription(n), roleAssignments=rbac, roleEligibilityScheduleInstances=[eligible(sid, UAA, LYNNE)])
    async with FakeArm(tenant, page_size=2) as server:
        yield server


async def read(arm: FakeArm) -> TenantSnapshot:
    reader = arm_reader(AccessTokenCredential("fake-arm-token"), arm.url, retry_total=3, retry_backoff_factor=0.01)
    try:
        view = await asyncio.wait_for(collect_azure(reader), HANG_GUARD)
    finally:
        await reader.close()
    base = TenantSnapshot(TENANT, "Contoso", NOW, contracts=(
        {"id": "c1", "contractType": "ResellerPartner", "customerId": RESELLER, "displayName": "Fabrikam MSP"},),
        subscribed_skus=({"skuId": "p2", "servicePlans": [{"servicePlanName": "AAD_PREMIUM_P2"}]},))
    return with_azure(base, view)


async def test_every_subscription_and_role_holder_is_read_to_the_last_page(arm: FakeArm) -> None:
    snapshot = await read(arm)
    assert snapshot.complete, snapshot.missing
    assert [s["displayName"] for s in snapshot.azure_subscriptions] == ["Subscription 0", "Subscription 1", "Subscription 2"]
    assert arm.requests[SUBSCRIPTIONS] == 2  # two pages
    assert len(snapshot.azure_role_assignments) == 3 * 5 and len(snapshot.azure_role_eligibility_schedule_instances) == 3
    first = snapshot.azure_role_assignments[0]
    assert set(first) >= {"id", "name", "properties"} and first["properties"]["principalType"] == "User"  # ARM's shape
    assert [g["name"] for g in snapshot.azure_management_groups] == [TENANT]


async def test_owners_become_items_with_aobo_attributed_to_the_reseller_and_readers_do_not(arm: FakeArm) -> None:
    snapshot = await read(arm)
    subjects = {s.key: s for s in subjects_from_snapshot(snapshot, NOW)}
    sid = subscription(1)["subscriptionId"]
    assert {k for k in subjects if k.startswith(f"azure:{sid}:")} == {
        f"azure:{sid}:{OWNER}:{AOBO}:active", f"azure:{sid}:{OWNER}:{LYNNE}:active", f"azure:{sid}:{UAA}:{LYNNE}:eligible"}
    aobo = subjects[f"azure:{sid}:{OWNER}:{AOBO}:active"]
    assert aobo.partner_id == RESELLER and aobo.evidence["Principal"] == "Foreign group of another tenant (AOBO)"
    found = {(r.check.id, r.subject_key) for r in run_checks(snapshot, list(subjects.values()), now=NOW)}
    assert ("azure_aobo_present", aobo.key) in found
    assert ("azure_owner_standing", f"azure:{sid}:{OWNER}:{LYNNE}:active") in found


async def test_throttled_role_listings_are_retried_after_retry_after_by_the_sdk(arm: FakeArm) -> None:
    arm.fail("roleAssignments$", 429, times=2, retry_after="1")
    snapshot = await read(arm)
    assert arm.sent[429] == 2 and snapshot.complete
    assert len(snapshot.azure_role_assignments) == 15


async def test_no_reader_role_on_azure_is_unavailable_not_a_failure(arm: FakeArm) -> None:
    arm.fail("^/subscriptions$", 403)
    snapshot = await read(arm)
    assert snapshot.complete and snapshot.azure_subscriptions == ()
    assert any(u.startswith("azureSubscriptions: Azure Resource Manager refused (403 AuthorizationFailed; needs the "
                            "Reader role") for u in snapshot.unavailable), snapshot.unavailable
