"""PIM for Groups through the Graph collector, against the fake Graph speaking Graph's wire format: each
role-holding group's eligibility and assignment schedule instances, filtered on the group as Graph requires,
paged to the end, and a refusal named with the permission it needs, never read as "nobody eligible"."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from checks.subjects import subjects_from_snapshot
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.tenant_generator import (
    NOW,
    PRIVILEGED_ROLE_ADMIN,
    SECURITY_READER,
    GeneratedTenant,
    TenantShape,
    generate_tenant,
)
from tests.integration.test_graph_collector import SMALL, collect

ELIGIBILITY = "GET /identityGovernance/privilegedAccess/group/eligibilityScheduleInstances"
ASSIGNMENTS = "GET /identityGovernance/privilegedAccess/group/assignmentScheduleInstances"


@pytest.fixture
def tenant() -> GeneratedTenant:
    """The generated tenant's role-assignable group (eligible for Privileged Role Administrator, active Security
    Reader) enrolled in PIM for Groups: seven people who held no role are eligible for its membership, one of them
    activated it, and two of its current members are permanent; a group holding no role is enrolled too."""
    tenant = generate_tenant(SMALL)
    group = tenant.role_group_ids[0]
    outsiders = list(tenant.users)[SMALL.privileged_users:SMALL.privileged_users + 7]
    tenant.enrol_in_pim_for_groups(group, eligible=outsiders[:6], activated=outsiders[6:], owners=outsiders[:1],
                                   assigned=tenant.group_members[group][:2])
    tenant.groups["0d9c7b5a-3e1f-4a2b-8c6d-9e0f1a2b3c4d"] = {"id": "0d9c7b5a-3e1f-4a2b-8c6d-9e0f1a2b3c4d",
                                                             "displayName": "Project Apollo", "groupTypes": []}
    tenant.enrol_in_pim_for_groups("0d9c7b5a-3e1f-4a2b-8c6d-9e0f1a2b3c4d", eligible=outsiders[:3])
    return tenant


@pytest.fixture
async def fake(tenant: GeneratedTenant) -> AsyncIterator[FakeGraph]:
    async with FakeGraph(tenant, page_size=3) as server:  # every PIM list here spans pages
        yield server


async def test_pim_for_groups_is_read_for_each_role_holding_group_only_and_to_the_last_page(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    group = tenant.role_group_ids[0]
    snapshot = await collect(fake, tenant)

    assert snapshot.complete, snapshot.missing
    assert [i["id"] for i in snapshot.pim_group_eligibility_instances[group]] == [
        i["id"] for i in tenant.pim_group_eligibility_instances if i["groupId"] == group]
    assert [i["id"] for i in snapshot.pim_group_assignment_instances[group]] == [
        i["id"] for i in tenant.pim_group_assignment_instances if i["groupId"] == group]
    assert set(snapshot.pim_group_eligibility_instances) == {group}  # Project Apollo holds no role: not asked
    assert all(i["principal"]["@odata.type"] == "#microsoft.graph.user"
               for i in snapshot.pim_group_eligibility_instances[group])
    # one request per list and group inside a $batch, then the further pages (8 instances, 3 to a page)
    assert fake.batched[ELIGIBILITY] == fake.batched[ASSIGNMENTS] == 1
    assert fake.requests[ELIGIBILITY] == 2 and fake.requests[ASSIGNMENTS] == 0


async def test_eligible_members_are_collected_as_users_and_reviewed_as_eligible_through_the_group(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    group = tenant.role_group_ids[0]
    snapshot = await collect(fake, tenant)
    subjects = {s.key: s for s in subjects_from_snapshot(snapshot, NOW)}
    eligible = [i["principalId"] for i in tenant.pim_group_eligibility_instances
                if i["groupId"] == group and i["accessId"] == "member"]
    name = tenant.groups[group]["displayName"]
    # the membership could be activated until 2027-11-23, the group's own eligibility for the role ends first
    [role_end] = [i["endDateTime"][:10] for i in tenant.eligibility_instances
                  if i["principalId"] == group and i["roleDefinitionId"] == PRIVILEGED_ROLE_ADMIN]
    assert role_end < "2027-11-23"
    for user in eligible:
        assert snapshot.user(user) is not None and snapshot.recovery_emails(user) is not None
        item = subjects[f"role:{PRIVILEGED_ROLE_ADMIN}:{user}:eligible"]
        assert item.evidence["Assignment"].startswith(f"Eligible through PIM group {name} (until {role_end})")
    # the group holds Security Reader active: whoever activated the membership holds it now, for four hours
    activated = eligible[-1]
    assert subjects[f"role:{SECURITY_READER}:{activated}:eligible"].evidence["Assignment"].endswith(
        "; activated now until 2026-11-23 12:00 UTC")
    assert f"role:{SECURITY_READER}:{activated}:active" not in subjects


@pytest.mark.parametrize(
    ("route", "code", "permission"),
    [
        ("eligibilityScheduleInstances", "Authorization_RequestDenied", "PrivilegedEligibilitySchedule.Read.AzureADGroup"),
        ("assignmentScheduleInstances", "PermissionScopeNotGranted", "PrivilegedAssignmentSchedule.Read.AzureADGroup"),
    ],
)
async def test_a_refused_pim_for_groups_read_is_an_incomplete_collection_naming_the_permission(
    fake: FakeGraph, tenant: GeneratedTenant, route: str, code: str, permission: str
) -> None:
    group = tenant.role_group_ids[0]
    fake.fail(rf"/identityGovernance/privilegedAccess/group/{route}", 403, code=code)
    snapshot = await collect(fake, tenant)

    assert not snapshot.complete
    key = "pimGroupEligibilityScheduleInstances" if route.startswith("eligibility") else "pimGroupAssignmentScheduleInstances"
    assert f"{key}: 1 of 1 groups failed (403 {code}; needs {permission})" in snapshot.missing
    assert snapshot.pim_group_instances(group) is None  # not collected, which is not "nobody eligible"


async def test_a_tenant_without_entra_id_p2_has_pim_for_groups_unavailable_and_its_collection_complete() -> None:
    """PIM answers 400 AadPremiumLicenseRequired there: nobody can be eligible, the group's members are members."""
    tenant = generate_tenant(TenantShape(users=60, privileged_users=20, premium=False))
    group = tenant.role_group_ids[0]
    async with FakeGraph(tenant) as fake:
        snapshot = await collect(fake, tenant)

    assert snapshot.complete and snapshot.missing == ()
    assert {
        "pimGroupEligibilityScheduleInstances: not available in this tenant "
        "(needs Microsoft Entra ID P2 or Microsoft Entra ID Governance)",
        "pimGroupAssignmentScheduleInstances: not available in this tenant "
        "(needs Microsoft Entra ID P2 or Microsoft Entra ID Governance)",
    } <= set(snapshot.unavailable)
    assert snapshot.pim_group_instances(group) is None
    members = {s.holder_ids[0] for s in subjects_from_snapshot(snapshot, NOW) if s.key.startswith(f"role:{SECURITY_READER}:")}
    assert set(tenant.group_members[group]) <= members
