"""Change checks between full collections: role assignments re-read, users and groups through Graph's delta
queries, and only new or changed principals asked about, against the fake Graph."""

from __future__ import annotations

from datetime import timedelta

from checks.graph import close_client, collect_tenant, graph_client
from checks.graph.client import AccessTokenCredential
from checks.graph.collector import privileged_principals, recollect_tenant
from checks.snapshot import TenantSnapshot, snapshot_from_dict, snapshot_to_dict
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.tenant_generator import GLOBAL_ADMIN, NOW, GeneratedTenant, TenantShape, generate_tenant

SHAPE = TenantShape(users=120, privileged_users=30, crowded_role_holders=10)
PER_USER = "GET /users/{id}/authentication/emailMethods"


async def full(fake: FakeGraph, tenant: GeneratedTenant, previous: TenantSnapshot | None = None) -> TenantSnapshot:
    client = graph_client(AccessTokenCredential("fake-graph-token"), fake.base_url(tenant.tenant_id))
    try:
        return await collect_tenant(client, tenant.tenant_id, now=NOW, previous=previous)
    finally:
        await close_client(client)


async def changes(fake: FakeGraph, tenant: GeneratedTenant, previous: TenantSnapshot, hours: int) -> TenantSnapshot:
    client = graph_client(AccessTokenCredential("fake-graph-token"), fake.base_url(tenant.tenant_id))
    try:
        return await recollect_tenant(client, previous, now=NOW + timedelta(hours=hours))
    finally:
        await close_client(client)


async def test_a_change_check_asks_only_about_changed_and_new_principals_and_sees_every_change() -> None:
    tenant = generate_tenant(SHAPE)
    async with FakeGraph(tenant) as fake:
        first = await full(fake, tenant)
        baseline = await changes(fake, tenant, first, 24)  # starts tracking: every user and group once
        assert set(baseline.delta_links) == {"users", "groups"}
        assert privileged_principals(baseline) == privileged_principals(first)
        assert fake.batched[PER_USER] == len(first.email_methods)  # the full run only: the baseline re-read nobody

        fake.reset_counts()
        quiet = await changes(fake, tenant, baseline, 48)
        assert fake.batched[PER_USER] == 0  # nothing changed: no per-user request at all
        assert quiet.complete and privileged_principals(quiet) == privileged_principals(first)

        disabled = tenant.privileged_user_ids[-1]
        tenant.change_user(disabled, accountEnabled=False)
        promoted = next(uid for uid in tenant.users if uid not in tenant.privileged_user_ids)
        tenant.grant_role(promoted, GLOBAL_ADMIN)
        group = tenant.role_group_ids[0]
        joiner = next(uid for uid in tenant.users if uid not in tenant.privileged_user_ids)
        tenant.add_group_member(group, joiner)
        fake.reset_counts()
        changed = await changes(fake, tenant, quiet, 72)

    assert changed.complete
    assert changed.user(disabled)["accountEnabled"] is False
    assert {promoted.lower(), joiner.lower()} <= privileged_principals(changed)
    assert joiner in {m["id"] for m in changed.members_of(group) or ()}
    assert changed.recovery_emails(promoted) is not None and changed.recovery_emails(joiner) is not None
    assert fake.batched[PER_USER] == 3  # the disabled admin, the new Global Administrator, the new group member
    assert fake.requests["GET /groups/{id}/transitiveMembers"] == 1  # only the group that changed
    assert changed.delta_links != quiet.delta_links
    assert snapshot_from_dict(snapshot_to_dict(changed)).delta_links == changed.delta_links


async def test_an_expired_delta_link_starts_tracking_again_instead_of_failing() -> None:
    tenant = generate_tenant(SHAPE)
    async with FakeGraph(tenant) as fake:
        first = await full(fake, tenant)
        tracked = await changes(fake, tenant, first, 24)
        fake.fail(r"^/users/delta$", 400, times=1, code="syncStateNotFound", where="top")
        again = await changes(fake, tenant, tracked, 24 * 8)
    assert again.complete and "users" in again.delta_links
    assert privileged_principals(again) == privileged_principals(first)


async def test_a_full_collection_keeps_the_delta_links_so_change_checks_go_on_from_them() -> None:
    tenant = generate_tenant(SHAPE)
    async with FakeGraph(tenant) as fake:
        tracked = await changes(fake, tenant, await full(fake, tenant), 24)
        weekly = await full(fake, tenant, previous=tracked)
    assert weekly.delta_links == tracked.delta_links
