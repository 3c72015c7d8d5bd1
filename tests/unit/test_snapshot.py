"""The tenant snapshot: loading the Graph-shaped file, and the lookups the rest of the bot relies on."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from checks.snapshot import (
    SnapshotError,
    TenantSnapshot,
    collection_keys,
    load_snapshot,
    snapshot_from_dict,
    snapshot_to_dict,
)

DEMO = Path(__file__).resolve().parents[2] / "checks" / "demo_tenant.json"
CONTOSO = "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"
ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
RAVI = "70f9fbea-0592-4d65-ade9-a9215451f63a"
DIEGO = "8f65ed6b-8184-401e-baba-7848ecff3f52"
TIER0 = "ac41334b-fd91-4b9d-b9a9-aed5c1d589e4"
NORTHWIND_GROUP = "4789a890-7094-4eac-a8ba-e834be527b14"
GA = "62e90394-69f5-4237-9190-012177145e10"


@pytest.fixture(scope="module")
def demo() -> TenantSnapshot:
    return load_snapshot(DEMO)


def envelope(**collections: Any) -> dict[str, Any]:
    return {"tenantId": CONTOSO, "tenantName": "Contoso", "collectedAt": "2026-11-23T08:00:00Z", "complete": True,
            **collections}


def test_demo_tenant_loads_with_its_envelope(demo: TenantSnapshot) -> None:
    assert demo.tenant_id == CONTOSO
    assert demo.tenant_name == "Contoso"
    assert demo.verified_domains == ("contoso.com", "contoso.onmicrosoft.com")
    assert demo.collected_at == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert demo.complete is True and demo.missing == ()


def test_the_people_who_run_the_demo_review_are_in_the_demo_tenant(demo: TenantSnapshot) -> None:
    assert demo.resolve_principal("alexw@contoso.com") == ALEX
    for upn in ("pattif@contoso.com", "leeg@contoso.com", "lynner@contoso.com"):
        assert demo.resolve_principal(upn) is not None, upn


def test_principals_resolve_by_upn_mail_or_object_id_in_any_case(demo: TenantSnapshot) -> None:
    assert demo.resolve_principal("AlexW@Contoso.com") == ALEX
    assert demo.resolve_principal(ALEX.upper()) == ALEX
    assert demo.resolve_principal("  alexw@contoso.com ") == ALEX
    assert demo.resolve_principal("Ravi.Patel@fabrikam-msp.com") == RAVI  # a guest, by mail
    assert demo.resolve_principal("ravi.patel_fabrikam-msp.com#EXT#@contoso.onmicrosoft.com") == RAVI


def test_a_name_the_tenant_does_not_know_resolves_to_nobody(demo: TenantSnapshot) -> None:
    assert demo.resolve_principal("mallory@contoso.com") is None
    assert demo.resolve_principal("00000000-0000-0000-0000-000000000000") is None


def test_a_deleted_user_still_listed_in_a_role_is_nobody(demo: TenantSnapshot) -> None:
    assert any(a["principalId"] == DIEGO for a in demo.role_assignments)  # Graph still lists the assignment
    assert demo.is_deleted(DIEGO)
    assert demo.user(DIEGO) is None
    assert demo.resolve_principal("diegos@contoso.com") is None
    assert demo.resolve_principal(DIEGO) is None
    assert demo.display_name(DIEGO) == "Diego Siciliani (deleted)"


def test_a_deleted_principal_is_recognised_from_the_expanded_assignment_alone() -> None:
    gone = "11111111-2222-3333-4444-555555555555"
    snapshot = snapshot_from_dict(envelope(roleAssignments=[{
        "id": "x", "roleDefinitionId": GA, "principalId": gone, "directoryScopeId": "/",
        "principal": {"@odata.type": "#microsoft.graph.user", "id": gone, "deletedDateTime": "2026-10-01T00:00:00Z"},
    }]))
    assert snapshot.is_deleted(gone.upper())


def test_a_partners_group_from_another_tenant_is_kept_as_a_foreign_principal(demo: TenantSnapshot) -> None:
    foreign = [p for p in demo.foreign_principals if p["id"] == NORTHWIND_GROUP]
    assert foreign and foreign[0]["roleDefinitionId"] == GA
    assert not demo.is_deleted(NORTHWIND_GROUP)
    assert demo.display_name(NORTHWIND_GROUP) == NORTHWIND_GROUP  # nothing to call it by but its id


def test_role_names_come_from_the_role_definitions(demo: TenantSnapshot) -> None:
    assert demo.role_name(GA) == "Global Administrator"
    assert demo.role_name(GA.upper()) == "Global Administrator"
    assert demo.role_name("fe930be7-5e62-47db-91af-98c3a49a38b1") == "User Administrator"
    assert demo.role_name("not-a-role") == "not-a-role"


def test_a_custom_role_is_named_by_its_template_id() -> None:
    snapshot = snapshot_from_dict(envelope(roleDefinitions=[
        {"id": "aaaa0000-0000-0000-0000-00000000000a", "templateId": "bbbb0000-0000-0000-0000-00000000000b",
         "displayName": "Contoso Mailbox Auditor"},
    ]))
    assert snapshot.role_template_id("AAAA0000-0000-0000-0000-00000000000A") == "bbbb0000-0000-0000-0000-00000000000b"
    assert snapshot.role_name("bbbb0000-0000-0000-0000-00000000000b") == "Contoso Mailbox Auditor"


def test_display_names_cover_users_groups_and_apps(demo: TenantSnapshot) -> None:
    assert demo.display_name(ALEX) == "Alex Wilber"
    assert demo.display_name(TIER0) == "PIM-Tier0-RoleAdmins"
    assert demo.display_name("d6ef75f2-ccc1-4595-9883-a662181b0b84") == "Fabrikam MSP Management Portal"


def test_group_members_are_the_users_among_its_transitive_members() -> None:
    group = "99999999-0000-0000-0000-000000000001"
    snapshot = snapshot_from_dict(envelope(
        users=[{"id": "u1", "displayName": "Ann"}],
        deletedUsers=[{"id": "u2", "displayName": "Bob", "deletedDateTime": "2026-01-01T00:00:00Z"}],
        groups=[{"id": group, "displayName": "Admins", "isAssignableToRole": True}],
        groupMembers={group: [
            {"@odata.type": "#microsoft.graph.user", "id": "u1"},
            {"@odata.type": "#microsoft.graph.user", "id": "u2"},
            {"@odata.type": "#microsoft.graph.device", "id": "d1"},
            {"@odata.type": "#microsoft.graph.user", "id": "u3", "displayName": "Cy"},
        ]},
    ))
    members = snapshot.members_of(group.upper())
    assert members is not None
    assert [m["id"] for m in members] == ["u1", "u3"]
    assert members[0]["displayName"] == "Ann"  # the full user object, not the bare member entry
    assert snapshot.members_of("not-collected") is None


def test_recovery_methods_not_collected_differ_from_none_registered(demo: TenantSnapshot) -> None:
    assert demo.recovery_emails(RAVI) == ()
    assert demo.recovery_phones(RAVI) == ()
    assert demo.recovery_emails(ALEX) is None  # Alex holds no role: nobody collected his methods


def test_a_snapshot_survives_the_round_trip_through_its_file(demo: TenantSnapshot, tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(snapshot_to_dict(demo)), encoding="utf-8")
    assert load_snapshot(path) == demo


def test_an_incomplete_collection_says_what_is_missing() -> None:
    snapshot = snapshot_from_dict({**envelope(), "complete": False, "missing": ["phoneMethods", "riskyUsers"]})
    assert snapshot.complete is False
    assert snapshot.missing == ("phoneMethods", "riskyUsers")


def test_collection_keys_name_every_collection_the_file_can_hold(demo: TenantSnapshot) -> None:
    on_file = set(json.loads(DEMO.read_text(encoding="utf-8"))) - {
        "tenantId", "tenantName", "verifiedDomains", "collectedAt", "complete", "missing", "unavailable"}
    assert on_file == set(collection_keys())


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ([], "one JSON object"),
        ({"tenantName": "Contoso", "collectedAt": "2026-11-23T08:00:00Z"}, "'tenantId'"),
        ({**envelope(), "collectedAt": "last Monday"}, "'collectedAt'"),
        ({**envelope(), "complete": "yes"}, "'complete'"),
        (envelope(users={"id": "u1"}), "'users'"),
        (envelope(users=[{"displayName": "no id"}]), "'users[0]'"),
        (envelope(roleAssignments=["not an object"]), "'roleAssignments[0]'"),
        (envelope(roleAssignments=[{"id": "a", "roleDefinitionId": GA}]), "'roleAssignments[0]' has no 'principalId'"),
        (envelope(crossTenantPartners=[{"isServiceProvider": True}]), "'crossTenantPartners[0]' has no 'tenantId'"),
        (envelope(emailMethods=[]), "'emailMethods'"),
        (envelope(phoneMethods={"u1": {"phoneNumber": "+1 5550100"}}), "'phoneMethods.u1'"),
        (envelope(emailMethods={"u1": [{"emailAddress": "a@b.c"}]}), "'emailMethods.u1[0]' has no 'id'"),
    ],
)
def test_a_malformed_snapshot_is_refused_naming_the_key(data: Any, named: str) -> None:
    with pytest.raises(SnapshotError, match=re.escape(named)):
        snapshot_from_dict(data)


def test_a_file_that_is_not_json_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "tenantId": "x",\n  oops\n}', encoding="utf-8")
    with pytest.raises(SnapshotError, match=r"broken\.json: not valid JSON \(line 3"):
        load_snapshot(path)


def test_a_file_with_a_bad_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(envelope(contracts={})), encoding="utf-8")
    with pytest.raises(SnapshotError, match=r"bad\.json: 'contracts'"):
        load_snapshot(path)
