"""The Graph collector against a local fake Graph, through msgraph-sdk with only the base URL changed."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from msgraph import GraphServiceClient

from checks.graph import (
    LICENCE_GATED,
    PartnerView,
    RetrySettings,
    close_client,
    collect_customers,
    collect_partner,
    collect_tenant,
    graph_client,
    privileged_principals,
)
from checks.graph.client import AccessTokenCredential
from checks.graph.collector import USER_PROPERTIES
from checks.registry import run_checks
from checks.registry import SIGN_IN_WINDOW_DAYS
from checks.snapshot import (
    TenantSnapshot,
    collection_keys,
    snapshot_from_dict,
    snapshot_to_dict,
)
from checks.subjects import subjects_from_snapshot
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.tenant_generator import (
    EXCHANGE_ADMIN,
    GLOBAL_ADMIN,
    NOW,
    GeneratedTenant,
    TenantShape,
    generate_csp,
    generate_tenant,
)

HANG_GUARD = 120.0  # seconds: reached only if something hangs, never a measure of speed
FAST = RetrySettings(max_retries=2, delay=0.0, backoff_factor=0.01, backoff_max=0.05, max_retry_after=5)
SMALL = TenantShape(users=150, privileged_users=70, crowded_role_holders=55)


def client_for(fake: FakeGraph, tenant_id: str | None = None, *, timeout: float = 10.0) -> GraphServiceClient:
    return graph_client(AccessTokenCredential("fake-graph-token"), fake.base_url(tenant_id), retry=FAST, timeout=timeout)


async def collect(fake: FakeGraph, tenant: GeneratedTenant, **options: Any) -> TenantSnapshot:
    client = client_for(fake, tenant.tenant_id, timeout=options.pop("timeout", 10.0))
    try:
        return await collect_tenant(client, tenant.tenant_id, now=NOW, retry=FAST, **options)
    finally:
        await close_client(client)


async def read_partner(fake: FakeGraph, partner: GeneratedTenant) -> PartnerView:
    client = client_for(fake, partner.tenant_id)
    try:
        return await collect_partner(client, partner.tenant_id, now=NOW, retry=FAST)
    finally:
        await close_client(client)


@pytest.fixture
def tenant() -> GeneratedTenant:
    return generate_tenant(SMALL)


@pytest.fixture
async def fake(tenant: GeneratedTenant) -> AsyncIterator[FakeGraph]:
    async with FakeGraph(tenant, page_size=50) as server:
        yield server


def by_id(items: Any) -> dict[str, Any]:
    return {item["id"]: dict(item) for item in items}


def project(user: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: user.get(name) for name in names}


def this_week(sign_ins: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sign-ins the checks look at: the last SIGN_IN_WINDOW_DAYS before the collection."""
    since = NOW - timedelta(days=SIGN_IN_WINDOW_DAYS)
    return [s for s in sign_ins if datetime.fromisoformat(s["createdDateTime"]) >= since]


# ---- everything, as generated ---------------------------------------------------------------------


async def test_every_collection_equals_the_generated_tenant(fake: FakeGraph, tenant: GeneratedTenant) -> None:
    snapshot = await collect(fake, tenant)

    assert snapshot.complete and snapshot.missing == () and snapshot.unavailable == ()
    assert snapshot.tenant_name == tenant.name
    assert set(snapshot.verified_domains) == {d["name"] for d in tenant.organization[0]["verifiedDomains"]}
    assert set(by_id(snapshot.role_definitions)) == {d["id"] for d in tenant.role_definitions}
    assert set(by_id(snapshot.role_assignments)) == {a["id"] for a in tenant.role_assignments}
    assert set(by_id(snapshot.role_eligibility_schedule_instances)) == {i["id"] for i in tenant.eligibility_instances}
    assert set(by_id(snapshot.role_assignment_schedule_instances)) == {i["id"] for i in tenant.assignment_instances}
    privileged = tenant.privileged_user_ids
    assert by_id(snapshot.users) == {uid: project(tenant.users[uid], USER_PROPERTIES) for uid in privileged}
    assert set(by_id(snapshot.deleted_users)) == set(tenant.deleted_users)
    assert set(by_id(snapshot.groups)) == set(tenant.role_group_ids)
    assert {gid: [m["id"] for m in ms] for gid, ms in snapshot.group_members.items()} == tenant.group_members
    assert {uid: list(ms) for uid, ms in snapshot.email_methods.items()} == {u: tenant.email_methods[u] for u in privileged}
    assert {uid: list(ms) for uid, ms in snapshot.phone_methods.items()} == {u: tenant.phone_methods[u] for u in privileged}
    assert {uid: list(s) for uid, s in snapshot.sign_ins.items()} == {u: this_week(tenant.sign_ins[u]) for u in privileged}
    assert by_id(snapshot.user_registration_details) == {u: tenant.registration_details[u] for u in privileged}
    assert list(snapshot.risky_users) == tenant.risky_users
    assert list(snapshot.contracts) == tenant.contracts
    assert list(snapshot.cross_tenant_partners) == tenant.cross_tenant_partners
    assert list(snapshot.subscribed_skus) == tenant.subscribed_skus
    assert list(snapshot.organization) == tenant.organization
    assert {t["tenantId"]: dict(t) for t in snapshot.tenant_information} == tenant.tenant_directory
    upns = {tenant.users[u]["userPrincipalName"] for u in privileged}
    assert list(snapshot.email_activity) == [row for row in tenant.email_activity if row["userPrincipalName"] in upns]
    apps = by_id(snapshot.service_principals)
    graph_app = next(sid for sid, sp in tenant.service_principals.items() if sp["displayName"] == "Microsoft Graph")
    assert set(apps) == {*tenant.reviewed_app_ids, graph_app}  # Microsoft's and the tenant's own apps are left out
    assert by_id(snapshot.app_role_assignments) == by_id(a for sid in tenant.reviewed_app_ids
                                                         for a in tenant.app_role_assignments[sid])
    assert by_id(snapshot.oauth2_permission_grants) == by_id(g for sid in tenant.reviewed_app_ids
                                                             for g in tenant.oauth2_permission_grants[sid])
    assert snapshot_from_dict(snapshot_to_dict(snapshot)) == snapshot


async def test_the_rest_of_the_bot_reads_the_collected_snapshot(fake: FakeGraph, tenant: GeneratedTenant) -> None:
    snapshot = await collect(fake, tenant)
    keys = {s.key for s in subjects_from_snapshot(snapshot, NOW)}

    member = tenant.group_members[tenant.role_group_ids[0]][1]
    assert any(k.startswith("role:") and k.endswith(f":{member}:eligible") for k in keys)  # held through the group
    assert f"partner:foreign:{tenant.foreign_principal_ids[0]}" in keys
    assert f"partner:app:{tenant.reviewed_app_ids[0]}" in keys
    assert f"partner:dap:{tenant.contracts[0]['id']}" in keys
    assert not any(tenant.deleted_principal_ids[0] in k for k in keys)


async def test_every_list_is_read_to_its_last_page_whatever_top_asks() -> None:
    """A server that pages every list one item at a time, $top=999 or not: every collection still equals
    the generated tenant, so no list stops at its first page (service principals, deleted users, group
    members, per-user methods and sign-ins, per-app grants, role listings...)."""
    tenant = generate_tenant(TenantShape(users=60, privileged_users=16, crowded_role_holders=5, group_members=3))
    async with FakeGraph(tenant, page_size=1) as fake:
        snapshot = await collect(fake, tenant, timeout=30.0)
        pages = {route: count for route, count in fake.requests.items() if route.startswith("GET ")}

    assert snapshot.complete, snapshot.missing
    privileged = tenant.privileged_user_ids
    assert set(by_id(snapshot.role_assignments)) == {a["id"] for a in tenant.role_assignments}
    assert set(by_id(snapshot.role_eligibility_schedule_instances)) == {i["id"] for i in tenant.eligibility_instances}
    assert set(by_id(snapshot.role_assignment_schedule_instances)) == {i["id"] for i in tenant.assignment_instances}
    assert set(by_id(snapshot.role_definitions)) == {d["id"] for d in tenant.role_definitions}
    assert set(by_id(snapshot.deleted_users)) == set(tenant.deleted_users)
    assert {gid: [m["id"] for m in ms] for gid, ms in snapshot.group_members.items()} == tenant.group_members
    assert {uid: list(ms) for uid, ms in snapshot.email_methods.items()} == {u: tenant.email_methods[u] for u in privileged}
    assert {uid: list(s) for uid, s in snapshot.sign_ins.items()} == {u: this_week(tenant.sign_ins[u]) for u in privileged}
    assert by_id(snapshot.app_role_assignments) == by_id(a for sid in tenant.reviewed_app_ids
                                                         for a in tenant.app_role_assignments[sid])
    assert list(snapshot.subscribed_skus) == tenant.subscribed_skus
    graph_app = next(sid for sid, sp in tenant.service_principals.items() if sp["displayName"] == "Microsoft Graph")
    assert set(by_id(snapshot.service_principals)) == {*tenant.reviewed_app_ids, graph_app}  # the last pages hold them
    assert max(len(ms) for ms in tenant.email_methods.values()) > 1 and max(map(len, tenant.sign_ins.values())) > 1
    assert pages["GET /servicePrincipals"] == len(tenant.service_principals)  # $top=999 asked, one to a page served
    assert pages["GET /groups/{id}/transitiveMembers"] == len(tenant.group_members[tenant.role_group_ids[0]])


# ---- role holders ---------------------------------------------------------------------------------


async def test_direct_assignments_missing_from_pim_instances_are_still_found(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    scheduled = {i["id"] for i in tenant.assignment_instances}
    outside = [a for a in tenant.role_assignments
               if a["id"] not in scheduled and a["principalId"] in tenant.privileged_user_ids]
    assert outside, "the generated tenant must hold active assignments PIM does not list"

    snapshot = await collect(fake, tenant)

    found = by_id(snapshot.role_assignments)
    for assignment in outside:
        assert found[assignment["id"]]["principal"]["id"] == assignment["principalId"]
        assert snapshot.user(assignment["principalId"]) is not None


async def test_each_privileged_user_is_read_once_however_many_ways_they_hold_roles(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    both = tenant.group_members[tenant.role_group_ids[0]][0]
    assert any(a["principalId"] == both for a in tenant.grants()), "a group member also holding a role directly"

    snapshot = await collect(fake, tenant)

    assert len(snapshot.users) == len({u["id"] for u in snapshot.users}) == len(tenant.privileged_user_ids)
    assert fake.batched["GET /users/{id}"] == len(tenant.privileged_user_ids)
    assert fake.batched["GET /users/{id}/authentication/phoneMethods"] == len(tenant.privileged_user_ids)


async def test_the_devices_each_admin_registered_for_mfa_are_collected_with_their_dates(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    snapshot = await collect(fake, tenant)

    assert fake.batched["GET /users/{id}/authentication/methods"] == len(tenant.privileged_user_ids)
    for uid in tenant.privileged_user_ids:
        methods = snapshot.mfa_devices(uid)
        assert methods is not None
        types = [m["@odata.type"] for m in methods]
        assert types.count("#microsoft.graph.passwordAuthenticationMethod") == 1
        assert [m for m in methods if m["@odata.type"] in (
            "#microsoft.graph.fido2AuthenticationMethod", "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
            "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod")] == tenant.device_methods[uid]
        phones = [m["phoneNumber"] for m in methods if m["@odata.type"] == "#microsoft.graph.phoneAuthenticationMethod"]
        assert phones == [p["phoneNumber"] for p in tenant.phone_methods[uid]]
    recent = [uid for uid in tenant.privileged_user_ids
              if any(m["createdDateTime"] >= "2026-11-20" for m in tenant.device_methods[uid])]
    findings = run_checks(snapshot, subjects_from_snapshot(snapshot, NOW), now=NOW)
    flagged = {r.subject_key.split(":")[2] for r in findings if r.check.id == "admin_mfa_method_new"}
    assert recent and flagged == set(recent) & {u["id"] for u in snapshot.users if snapshot.user(u["id"])}


async def test_admins_whose_methods_cannot_be_read_are_named_in_missing_not_shown_as_none(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    failing = tenant.privileged_user_ids[2:4]
    fake.fail(rf"^/users/({'|'.join(failing)})/authentication/methods$", 403, where="batch",
              code="Authorization_RequestDenied")

    snapshot = await collect(fake, tenant)

    total = len(tenant.privileged_user_ids)
    assert (f"authenticationMethods: 2 of {total} users failed (403 Authorization_RequestDenied)"
            in snapshot.missing), snapshot.missing
    assert all(snapshot.mfa_devices(uid) is None for uid in failing)
    subjects = subjects_from_snapshot(snapshot, NOW)
    assert all(s.evidence.get("MFA devices") != "none registered" for s in subjects if failing[0] in s.holder_ids)


async def test_partner_sign_ins_of_the_last_30_days_are_read_to_the_last_page_and_remembered(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    window = [s for s in tenant.partner_sign_ins if s["crossTenantAccessType"] == "serviceProvider"
              and s["createdDateTime"] >= "2026-10-24"]
    assert len(window) > fake.page_size, "more than a page of partner sign-ins"
    csp = window[0]["homeTenantId"]

    first = await collect(fake, tenant)

    assert sorted(s["id"] for s in first.partner_sign_ins) == sorted(s["id"] for s in window)
    assert fake.requests["GET /auditLogs/signIns"] == 2  # two pages, nothing re-sent
    activity = first.activity_of_partner(csp)
    assert activity == {"tenantId": csp, "lastSignInDateTime": max(s["createdDateTime"] for s in window),
                        "watchedSince": "2026-10-24T08:00:00Z"}

    # A week later the partner has stopped signing in: the watch goes on, the last sign-in is remembered.
    tenant.partner_sign_ins = []
    later = NOW + timedelta(days=7)
    client = client_for(fake, tenant.tenant_id)
    try:
        second = await collect_tenant(client, tenant.tenant_id, now=later, retry=FAST, previous=first)
    finally:
        await close_client(client)
    assert second.partner_sign_ins == ()
    assert second.activity_of_partner(csp) == activity


async def test_a_role_with_more_holders_than_a_page_is_read_to_the_last_page(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    crowded = tenant.holders_of(tenant.crowded_role_id)
    assert len(crowded) > 50

    snapshot = await collect(fake, tenant)

    collected = {g["principalId"] for g in (*snapshot.role_assignments, *snapshot.role_eligibility_schedule_instances,
                                            *snapshot.role_assignment_schedule_instances)
                 if g["roleDefinitionId"] == tenant.crowded_role_id}
    assert collected == crowded
    assert fake.requests["GET /roleManagement/directory/roleAssignments"] >= 2  # 50 to a page


async def test_a_partner_group_named_by_expand_principal_is_attributed_to_its_tenant_by_name(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    snapshot = await collect(fake, tenant)

    assert snapshot.complete
    group, _ = tenant.foreign_principal_ids
    partner = tenant.foreign_principals[group]["organizationId"]
    records = [r for r in snapshot.foreign_principals if r["id"] == group]
    assert {r["roleDefinitionId"] for r in records} == {GLOBAL_ADMIN, EXCHANGE_ADMIN}
    assert all((r["tenantId"], r["displayName"]) == (partner, "GDAP Tier2 Admins") for r in records)
    assert group not in {g["id"] for g in snapshot.groups}  # nobody asks this tenant for its members
    assert fake.requests["GET /groups/{id}/transitiveMembers"] == len(tenant.role_group_ids)
    assert snapshot.tenant(partner)["displayName"] == "Northwind IT Services"  # findTenantInformationByTenantId

    subjects = {s.key: s for s in subjects_from_snapshot(snapshot, NOW)}
    subject = subjects[f"partner:foreign:{group}"]
    assert (subject.partner_id, subject.partner_name) == (partner, "Northwind IT Services")
    assert not any(k.startswith("role:") and group in k for k in subjects)
    [finding] = [r for r in run_checks(snapshot, list(subjects.values()), now=NOW)
                 if r.subject_key == subject.key and r.check.id == "admin_guest_or_external"]
    assert finding.recommendation.startswith(
        "recommended: review — group GDAP Tier2 Admins of Northwind IT Services holds Exchange Administrator, Global "
        "Administrator; Northwind IT Services is a service provider in the cross-tenant access settings"
    )


async def test_a_principal_graph_cannot_expand_or_find_is_an_unknown_partner_not_a_failure(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    snapshot = await collect(fake, tenant)

    assert snapshot.complete
    _, stray = tenant.foreign_principal_ids
    [record] = [r for r in snapshot.foreign_principals if r["id"] == stray]
    assert record["error"] == "Request_ResourceNotFound" and record["assignmentId"] and "tenantId" not in record
    assert stray in privileged_principals(snapshot)
    assert fake.batched["GET /directoryObjects/{id}"] == 1  # only what Graph did not expand, asked once
    subjects = subjects_from_snapshot(snapshot, NOW)
    [finding] = [r for r in run_checks(snapshot, subjects, now=NOW) if r.subject_key == f"partner:foreign:{stray}"]
    assert finding.recommendation == (
        "recommended: revoke — principal of another tenant holds User Administrator; no partner relationship in "
        "this snapshot explains it"
    )


async def test_a_deleted_user_still_in_a_role_is_never_counted_as_an_admin(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    gone = tenant.deleted_principal_ids[0]
    assert any(a["principalId"] == gone for a in tenant.role_assignments)

    snapshot = await collect(fake, tenant)

    assert snapshot.complete and snapshot.is_deleted(gone)
    assert gone in by_id(snapshot.deleted_users) and snapshot.user(gone) is None
    assert gone not in privileged_principals(snapshot)
    assert gone not in snapshot.email_methods and gone not in snapshot.phone_methods
    assert all(gone not in r["id"] for r in snapshot.foreign_principals)


# ---- throttling, outages, timeouts ----------------------------------------------------------------


async def test_a_throttled_request_is_retried_after_its_retry_after(fake: FakeGraph, tenant: GeneratedTenant) -> None:
    fake.throttle(r"^/contracts$", times=1, retry_after="1", where="top")
    started = time.perf_counter()

    snapshot = await collect(fake, tenant)

    assert time.perf_counter() - started >= 1.0  # a lower bound: a busy machine only makes it longer
    assert snapshot.complete and list(snapshot.contracts) == tenant.contracts
    assert fake.sent[("top", 429)] == 1 and fake.requests["GET /contracts"] == 2


async def test_throttled_requests_inside_a_batch_are_sent_again_after_their_retry_after(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    fake.throttle(r"/authentication/phoneMethods$", times=3, retry_after="1", where="batch")
    started = time.perf_counter()

    snapshot = await collect(fake, tenant)

    assert time.perf_counter() - started >= 1.0  # a lower bound: a busy machine only makes it longer
    assert snapshot.complete
    assert set(snapshot.phone_methods) == set(tenant.privileged_user_ids)
    assert fake.sent[("batch", 429)] == 3
    assert fake.batched["GET /users/{id}/authentication/phoneMethods"] == len(tenant.privileged_user_ids) + 3


async def test_service_unavailable_is_recovered_at_the_top_level_and_inside_batches(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    fake.fail(r"^/servicePrincipals$", 503, times=1, where="top")
    fake.fail(r"/authentication/emailMethods$", 503, times=4, where="batch")
    fake.fail(r"^/\$batch$", 504, times=1, where="top")

    snapshot = await collect(fake, tenant)

    assert snapshot.complete, snapshot.missing
    assert set(by_id(snapshot.service_principals)) >= set(tenant.reviewed_app_ids)
    assert {u: list(m) for u, m in snapshot.email_methods.items()} == {
        u: tenant.email_methods[u] for u in tenant.privileged_user_ids}
    assert fake.sent[("top", 503)] == 1 and fake.sent[("batch", 503)] == 4 and fake.sent[("top", 504)] == 1


async def test_a_persistent_failure_leaves_the_snapshot_incomplete_and_names_what_is_missing(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    failing = tenant.privileged_user_ids[5:8]
    fake.fail(rf"^/users/({'|'.join(failing)})/authentication/phoneMethods$", 503, where="batch")
    fake.fail(r"^/contracts$", 503, where="top")

    snapshot = await collect(fake, tenant)

    assert not snapshot.complete
    total = len(tenant.privileged_user_ids)
    assert f"phoneMethods: 3 of {total} users failed (503)" in snapshot.missing
    assert "contracts: could not be read (503)" in snapshot.missing
    assert all(snapshot.recovery_phones(uid) is None for uid in failing)  # not collected, not "none"
    assert snapshot.recovery_phones(tenant.privileged_user_ids[9]) is not None
    assert fake.requests["GET /contracts"] == 1 + FAST.max_retries


async def test_an_answer_that_never_comes_is_a_timeout_named_in_missing(tenant: GeneratedTenant) -> None:
    """The answer would take an hour: only the client's timeout can end the collection (the wait_for is a
    hang guard, there to fail the test rather than stall the suite if that timeout were lost)."""
    async with FakeGraph(tenant) as fake:
        fake.slow(r"^/identityProtection/riskyUsers$", 3600.0)

        snapshot = await asyncio.wait_for(collect(fake, tenant, timeout=0.5), HANG_GUARD)

    assert not snapshot.complete
    assert "riskyUsers: could not be read (timeout)" in snapshot.missing


async def test_licence_gated_data_is_unavailable_and_the_snapshot_still_complete() -> None:
    tenant = generate_tenant(TenantShape(users=60, privileged_users=20, premium=False))
    async with FakeGraph(tenant) as fake:
        snapshot = await collect(fake, tenant)

    assert snapshot.complete and snapshot.missing == ()
    assert {entry.split(":")[0] for entry in snapshot.unavailable} == set(LICENCE_GATED)
    assert len(snapshot.users) == 20 and not any("signInActivity" in u for u in snapshot.users)
    assert snapshot.user_registration_details == () and snapshot.sign_ins == {} and snapshot.risky_users == ()


async def test_a_refused_permission_is_a_failure_not_a_missing_licence(fake: FakeGraph, tenant: GeneratedTenant) -> None:
    fake.fail(r"^/identityProtection/riskyUsers$", 403, where="top", code="Authorization_RequestDenied")

    snapshot = await collect(fake, tenant)

    assert not snapshot.complete and snapshot.unavailable == ()
    assert snapshot.missing == (
        "riskyUsers: could not be read (403 Authorization_RequestDenied; needs IdentityRiskyUser.Read.All)",)


# ---- not believing a collapse ---------------------------------------------------------------------


async def test_a_collapse_of_privileged_principals_since_the_last_complete_collection_is_not_believed(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    before = await collect(fake, tenant)
    count = len(privileged_principals(before))
    tenant.remove_privileged(set(tenant.privileged_user_ids[: count // 2]))

    after = await collect(fake, tenant, previous=before)

    assert not after.complete
    assert any(m.startswith(f"privileged principals fell from {count} to ") and m.endswith("not believed")
               for m in after.missing)


async def test_a_small_change_since_the_last_collection_is_believed(fake: FakeGraph, tenant: GeneratedTenant) -> None:
    before = await collect(fake, tenant)
    tenant.remove_privileged(set(tenant.privileged_user_ids[-5:]))

    after = await collect(fake, tenant, previous=before)

    assert after.complete and len(privileged_principals(after)) == len(privileged_principals(before)) - 5


@pytest.mark.parametrize("concurrency", [2, 6])
async def test_no_more_requests_are_in_flight_than_the_concurrency_allows(
    fake: FakeGraph, tenant: GeneratedTenant, concurrency: int
) -> None:
    fake.slow(r".", 0.02, where="top")  # every answer takes a while, so requests overlap

    snapshot = await collect(fake, tenant, concurrency=concurrency)

    assert snapshot.complete and fake.most_in_flight == concurrency


# ---- cost -----------------------------------------------------------------------------------------


async def test_500_privileged_users_cost_one_batch_per_20_per_user_calls_plus_a_constant() -> None:
    privileged = 500
    tenant = generate_tenant(TenantShape(users=800, privileged_users=privileged, crowded_role_holders=120))
    async with FakeGraph(tenant) as fake:
        snapshot = await collect(fake, tenant)

    per_user_calls = 6  # user, registration details, email, phone and all authentication methods, sign-ins
    # tenant-wide lists (partner sign-ins too) and pages, one lookup batch, groups, PIM for Groups, apps, tenants
    constant = 27
    assert snapshot.complete and len(snapshot.users) == privileged
    assert fake.largest_batch <= 20
    # + one lookup batch and one PIM for Groups batch (two lists per role-holding group)
    assert fake.requests["POST /$batch"] <= per_user_calls * math.ceil(privileged / 20) + 3
    assert fake.total_requests() <= per_user_calls * math.ceil(privileged / 20) + constant


# ---- reviewers and their managers -----------------------------------------------------------------


async def test_reviewers_named_by_upn_or_id_are_read_with_their_managers(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    everyone = list(tenant.users)
    outsider, no_manager, admin = everyone[101], everyone[105], tenant.privileged_user_ids[3]
    assert no_manager not in tenant.managers
    names = [tenant.users[outsider]["userPrincipalName"], no_manager, tenant.users[admin]["userPrincipalName"],
             "nobody@elsewhere.example"]

    snapshot = await collect(fake, tenant, reviewers=names)

    assert snapshot.complete
    assert snapshot.resolve_principal(names[0]) == outsider
    assert snapshot.manager_of(outsider) == tenant.managers[outsider]
    assert snapshot.manager_of(admin) == tenant.managers[admin]
    assert snapshot.managers[no_manager] == ()  # set to nobody, not "not collected"
    assert "nobody@elsewhere.example" not in snapshot.managers
    assert fake.batched["GET /users/{id}"] == len(tenant.privileged_user_ids) + 1  # the admin is not read twice


async def test_a_reviewer_named_by_mail_address_is_found_with_their_manager(
    fake: FakeGraph, tenant: GeneratedTenant
) -> None:
    """users/{name} knows sign-in names, not mail addresses: a policy naming first.last@ is still read."""
    person, twin, other_twin = list(tenant.users)[110:113]
    tenant.users[person]["mail"] = "Jordan.O'Neill@contoso.com"
    tenant.users[twin]["mail"] = tenant.users[other_twin]["mail"] = "helpdesk@contoso.com"
    assert person in tenant.managers

    snapshot = await collect(fake, tenant, reviewers=["jordan.o'neill@contoso.com", "helpdesk@contoso.com"])

    assert snapshot.complete, snapshot.missing
    assert snapshot.resolve_principal("jordan.o'neill@contoso.com") == person
    assert snapshot.manager_of(person) == tenant.managers[person]
    assert snapshot.resolve_principal("helpdesk@contoso.com") is None  # two people: nobody is guessed


# ---- the CSP partner side -------------------------------------------------------------------------


async def test_a_partner_reads_its_gdap_customers_and_collects_each_of_them() -> None:
    partner, customers = generate_csp(3, TenantShape(users=40, privileged_users=12, crowded_role_holders=5))
    progress: list[tuple[int, int, str]] = []
    async with FakeGraph(partner, *customers) as fake:
        view = await read_partner(fake, partner)
        snapshots = await collect_customers(
            lambda tid: client_for(fake, tid), view, now=NOW, retry=FAST,
            progress=lambda done, total, name: progress.append((done, total, name)),
        )

    assert view.complete and view.tenant_name == partner.name
    assert len(view.relationships) == 4 and len(view.customers) == 3
    assert {m["id"] for m in view.admin_agents} == {u for ms in partner.group_members.values() for u in ms}
    assert [tid for tid, _ in view.customer_tenants()] == [c.tenant_id for c in customers]  # terminated one left out
    assert [s.tenant_id for s in snapshots] == [c.tenant_id for c in customers]
    assert sorted(p[0] for p in progress) == [1, 2, 3] and {p[1] for p in progress} == {3}
    assert {p[2] for p in progress} == {c.name for c in customers}
    for snapshot, customer in zip(snapshots, customers, strict=True):
        assert snapshot.complete, snapshot.missing
        (relationship,) = snapshot.delegated_admin_relationships
        assert relationship["partner"] == {"tenantId": partner.tenant_id, "displayName": partner.name}
        (assignment,) = snapshot.access_assignments(relationship["id"])
        container = assignment["accessContainer"]["accessContainerId"]
        assert container == customer.foreign_principal_ids[0]  # the partner's group holding roles there
        assert {f["tenantId"] for f in snapshot.foreign_principals if f["id"] == container} == {partner.tenant_id}
        keys = {s.key for s in subjects_from_snapshot(snapshot, NOW)}
        assert f"partner:gdap:{relationship['id']}" in keys


async def test_a_customer_that_cannot_be_reached_yields_an_incomplete_snapshot_naming_everything() -> None:
    partner, customers = generate_csp(2, TenantShape(users=40, privileged_users=12, crowded_role_holders=5))
    unreachable = customers[0].tenant_id

    def factory(tenant_id: str) -> GraphServiceClient:
        if tenant_id == unreachable:
            raise PermissionError("AADSTS7000229: the app has no service principal in the customer tenant")
        return client_for(fake, tenant_id)

    async with FakeGraph(partner, *customers) as fake:
        view = await read_partner(fake, partner)
        snapshots = await collect_customers(factory, view, now=NOW, retry=FAST)

    lost = next(s for s in snapshots if s.tenant_id == unreachable)
    assert not lost.complete and lost.tenant_name == customers[0].name
    assert {m.split(":")[0] for m in lost.missing} == set(collection_keys())
    assert next(s for s in snapshots if s.tenant_id != unreachable).complete
