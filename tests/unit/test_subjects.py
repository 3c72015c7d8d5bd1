"""From a tenant snapshot to review subjects: what each reviewer will be asked about, and the evidence shown."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.engine.model import AssignmentType, Subject, SubjectKind
from checks.snapshot import TenantSnapshot, load_snapshot, snapshot_from_dict
from checks.subjects import subjects_from_snapshot

DEMO = Path(__file__).resolve().parents[2] / "checks" / "demo_tenant.json"
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CONTOSO = "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"

GA = "62e90394-69f5-4237-9190-012177145e10"
PRA = "e8611ab8-c189-46e8-94e1-60213ab1f814"
SEC = "194ae4cb-b126-40b2-bd5b-6091b380977d"
EXA = "29232cdf-9323-42fd-ade2-1d097af3e4de"
UA = "fe930be7-5e62-47db-91af-98c3a49a38b1"
APPA = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
HDA = "729827e3-9c14-49f7-bb1b-9608f156bbb8"

ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
PATTI = "f66eb8b7-79c8-407b-8b95-85a879f2381e"
LEE = "b50ac046-d9dc-4082-bf5c-754e99944465"
LYNNE = "0352574e-9ccb-4a60-b927-66c30c6c9a04"
MEGAN = "36e5377f-c245-4eca-a6eb-0f97e46e9dcc"
ISAIAH = "57d15fde-ce85-4c0d-8a93-7167ffbb463a"
BREAKGLASS = "6b2f80d8-b0a8-45d5-9396-83f0db8cc73e"
CHRISTIE = "4f55bc7b-99d5-4a2c-b388-89f2a2b41a49"
PRADEEP = "1c4a4351-e6dd-4862-ac6d-3132cb0fe48e"
RAVI = "70f9fbea-0592-4d65-ade9-a9215451f63a"
NESTOR = "db9b9f81-2ecd-46f6-bcbf-32fc2ce96e5b"
ADELE = "ba898b2a-9794-415b-a3df-cf7b824da266"
DIEGO = "8f65ed6b-8184-401e-baba-7848ecff3f52"
TIER0 = "ac41334b-fd91-4b9d-b9a9-aed5c1d589e4"
NORTHWIND = "0fab7dff-6991-444e-8240-81c09ed225d2"
FABRIKAM = "8dae8645-ab06-4efb-b333-9afcbeef4e85"
TAILSPIN = "161bc972-dbb8-4191-9033-ccf9ac41108e"
NORTHWIND_GROUP = "4789a890-7094-4eac-a8ba-e834be527b14"
FABRIKAM_APP = "d6ef75f2-ccc1-4595-9883-a662181b0b84"
ADOBE_APP = "6ef4058c-9feb-4b72-8c5d-a27104d4329c"
GRAPH_APP = "f02dc56f-789e-40bd-9955-2b1c897d6428"
CONTRACT = "3a54e886-6013-4503-99b7-f1abaf9e44e5"
GDAP = "d031d2bd-7560-4db7-ac4c-0cbb174b906e-997c7d9c-2bd5-40dd-9a5a-3aef9c2eb739"


@pytest.fixture(scope="module")
def demo() -> TenantSnapshot:
    return load_snapshot(DEMO)


@pytest.fixture(scope="module")
def subjects(demo: TenantSnapshot) -> dict[str, Subject]:
    return {s.key: s for s in subjects_from_snapshot(demo, NOW, ["breakglass01@contoso.onmicrosoft.com"])}


def role_key(role: str, holder: str, kind: str) -> str:
    return f"role:{role}:{holder}:{kind}"


# ---- small hand-made tenants for the de-duplication rules ----------------------------------------


def user(uid: str, name: str) -> dict[str, Any]:
    return {"id": uid, "displayName": name, "userPrincipalName": f"{uid}@contoso.com", "userType": "Member"}


def assignment(role: str, principal_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"{role}-{principal_id}", "roleDefinitionId": role, "principalId": principal_id,
            "directoryScopeId": "/", **extra}


def instance(role: str, principal: str, start: str | None, end: str | None, **extra: Any) -> dict[str, Any]:
    return {"id": f"i-{role}-{principal}", "roleDefinitionId": role, "principalId": principal,
            "directoryScopeId": "/", "startDateTime": start, "endDateTime": end, "memberType": "Direct", **extra}


def tenant(**collections: Any) -> TenantSnapshot:
    return snapshot_from_dict({"tenantId": CONTOSO, "tenantName": "Contoso", "collectedAt": "2026-11-23T08:00:00Z",
                               "complete": True,
                               "roleDefinitions": [{"id": GA, "templateId": GA, "displayName": "Global Administrator"}],
                               **collections})


def role_subjects(snapshot: TenantSnapshot) -> dict[str, Subject]:
    return {s.key: s for s in subjects_from_snapshot(snapshot, NOW) if s.kind is SubjectKind.ROLE_ASSIGNMENT}


# ---- keys and de-duplication --------------------------------------------------------------------


def test_keys_are_stable_across_two_calls(demo: TenantSnapshot) -> None:
    first = subjects_from_snapshot(demo, NOW)
    second = subjects_from_snapshot(load_snapshot(DEMO), NOW)
    assert [s.key for s in first] == [s.key for s in second]
    assert first == second
    assert len({s.key for s in first}) == len(first)


def test_the_demo_tenant_is_small_enough_to_review_by_hand(subjects: dict[str, Subject]) -> None:
    kinds = [s.kind for s in subjects.values()]
    assert kinds.count(SubjectKind.ROLE_ASSIGNMENT) == 12  # Isaiah eligible through PIM-User-Admins among them
    assert kinds.count(SubjectKind.PARTNER) == 6
    assert kinds.count(SubjectKind.RECOVERY_CONTACT) == 8


def test_a_pim_activation_is_one_eligible_subject_not_a_second_permanent_one(subjects: dict[str, Subject]) -> None:
    assert role_key(GA, ISAIAH, "active") not in subjects
    isaiah = subjects[role_key(GA, ISAIAH, "eligible")]
    assert isaiah.assignment_type is AssignmentType.ELIGIBLE and not isaiah.permanent
    assert isaiah.evidence["Assignment"] == (
        "Eligible (PIM) until 2027-05-01; activated now until 2026-11-23 11:30 UTC")


def test_a_direct_assignment_and_its_schedule_are_one_active_subject_with_the_schedules_dates() -> None:
    snapshot = tenant(
        users=[user("u1", "Ann Admin")],
        roleAssignments=[assignment(GA, "u1")],
        roleAssignmentScheduleInstances=[instance(GA, "u1", "2024-03-01T10:00:00Z", None, assignmentType="Assigned")],
    )
    found = role_subjects(snapshot)
    assert list(found) == [role_key(GA, "u1", "active")]
    assert found[role_key(GA, "u1", "active")].evidence["Assignment"] == "Active, permanent since 2024-03-01"
    assert found[role_key(GA, "u1", "active")].permanent


def test_a_direct_assignment_without_pim_is_active_and_permanent() -> None:
    found = role_subjects(tenant(users=[user("u1", "Ann Admin")], roleAssignments=[assignment(GA, "u1")]))
    ann = found[role_key(GA, "u1", "active")]
    assert ann.permanent and ann.evidence["Assignment"] == "Active, permanent"
    assert ann.title == "Ann Admin — Global Administrator"


def test_active_and_eligible_holdings_of_one_role_are_two_subjects() -> None:
    snapshot = tenant(
        users=[user("u1", "Ann Admin")],
        roleAssignments=[assignment(GA, "u1")],
        roleEligibilityScheduleInstances=[instance(GA, "u1", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")],
    )
    assert set(role_subjects(snapshot)) == {role_key(GA, "u1", "active"), role_key(GA, "u1", "eligible")}


def test_an_activation_whose_eligibility_came_through_a_group_joins_the_members_eligible_subject() -> None:
    group = "g-admins"
    snapshot = tenant(
        users=[user("u1", "Ann Admin")],
        groups=[{"id": group, "displayName": "Tier0", "isAssignableToRole": True}],
        groupMembers={group: [{"@odata.type": "#microsoft.graph.user", "id": "u1"}]},
        roleAssignments=[assignment(GA, "u1")],
        roleEligibilityScheduleInstances=[instance(GA, group, "2026-01-01T00:00:00Z", None)],
        roleAssignmentScheduleInstances=[
            instance(GA, "u1", "2026-11-23T07:00:00Z", "2026-11-23T09:00:00Z", assignmentType="Activated",
                     memberType="Group")],
    )
    found = role_subjects(snapshot)
    assert list(found) == [role_key(GA, "u1", "eligible")]
    assert found[role_key(GA, "u1", "eligible")].evidence["Assignment"] == (
        "Eligible (PIM), no end date; activated now until 2026-11-23 09:00 UTC, via group Tier0")


def test_group_members_become_subjects_of_their_own_naming_the_group(subjects: dict[str, Subject]) -> None:
    for member in (ISAIAH, LYNNE):
        held = subjects[role_key(PRA, member, "eligible")]
        assert held.holder_ids == (member,)
        assert held.evidence["Assignment"] == "Eligible (PIM), no end date, via group PIM-Tier0-RoleAdmins"
    assert not any(TIER0 in s.key for s in subjects.values())


def test_a_user_holding_a_role_directly_and_through_a_group_is_one_subject() -> None:
    snapshot = tenant(
        users=[user("u1", "Ann Admin")],
        groups=[{"id": "g1", "displayName": "GA Holders", "isAssignableToRole": True}],
        groupMembers={"g1": [{"@odata.type": "#microsoft.graph.user", "id": "u1"}]},
        roleAssignments=[assignment(GA, "u1"), assignment(GA, "g1")],
    )
    found = role_subjects(snapshot)
    assert list(found) == [role_key(GA, "u1", "active")]
    assert found[role_key(GA, "u1", "active")].evidence["Assignment"] == (
        "Active, permanent, direct and via group GA Holders")


def test_a_group_whose_members_were_not_collected_is_reviewed_itself() -> None:
    snapshot = tenant(groups=[{"id": "g1", "displayName": "GA Holders", "isAssignableToRole": True}],
                      roleAssignments=[assignment(GA, "g1")])
    group = role_subjects(snapshot)[role_key(GA, "g1", "active")]
    assert group.title == "GA Holders — Global Administrator"
    assert group.evidence["Account"] == "Role-assignable group; its members were not collected"


def test_a_deleted_user_still_listed_in_a_role_is_no_subject(subjects: dict[str, Subject]) -> None:
    assert not any(DIEGO in s.key or DIEGO in s.holder_ids for s in subjects.values())


def test_an_unexpandable_principal_not_recorded_as_foreign_is_still_reviewed_as_one() -> None:
    snapshot = tenant(roleAssignments=[assignment(GA, "stranger", principal=None)])
    found = {s.key: s for s in subjects_from_snapshot(snapshot, NOW)}
    assert list(found) == ["partner:foreign:stranger"]
    assert found["partner:foreign:stranger"].evidence["Roles"] == "Global Administrator"
    assert found["partner:foreign:stranger"].partner_name == "Unknown partner"


def test_a_foreign_principal_holding_two_roles_is_one_partner_subject() -> None:
    snapshot = tenant(
        roleDefinitions=[{"id": GA, "templateId": GA, "displayName": "Global Administrator"},
                         {"id": HDA, "templateId": HDA, "displayName": "Helpdesk Administrator"}],
        foreignPrincipals=[{"id": "partner-group", "roleDefinitionId": GA, "directoryScopeId": "/"}],
        roleAssignments=[assignment(GA, "partner-group"), assignment(HDA, "PARTNER-GROUP")],
    )
    found = {s.key: s for s in subjects_from_snapshot(snapshot, NOW)}
    assert list(found) == ["partner:foreign:partner-group"]
    assert found["partner:foreign:partner-group"].evidence["Roles"] == "Global Administrator, Helpdesk Administrator"


# ---- the demo tenant's admins -------------------------------------------------------------------


def test_the_demo_tenant_has_four_global_administrators(subjects: dict[str, Subject]) -> None:
    holders = {s.holder_ids[0] for s in subjects.values() if s.role_id == GA}
    assert holders == {MEGAN, ISAIAH, BREAKGLASS, CHRISTIE}


def test_megan_is_a_permanent_global_admin_without_mfa(subjects: dict[str, Subject]) -> None:
    megan = subjects[role_key(GA, MEGAN, "active")]
    assert megan.title == "Megan Bowen — Global Administrator"
    assert megan.role_name == "Global Administrator" and megan.holder_name == "Megan Bowen"
    assert megan.assignment_type is AssignmentType.ACTIVE and megan.permanent
    assert dict(megan.evidence) == {
        "Role": "Global Administrator",
        "Assignment": "Active, permanent since 2024-03-01",
        "Account": "Member, cloud-only",
        "Last sign-in": "2026-11-21 (2 days ago)",
        "MFA devices": "none registered",
        "Phishing-resistant MFA": "no",
        "Licences": "Microsoft Entra ID P2",
    }


def test_isaiah_signs_in_with_a_security_key(subjects: dict[str, Subject]) -> None:
    isaiah = subjects[role_key(GA, ISAIAH, "eligible")]
    assert isaiah.evidence["MFA devices"] == (
        "Authenticator “Pixel 8” (2024-05-02), FIDO2 key “YubiKey 5 NFC” (2025-02-10), phone (mobile) +1 ••••••0187")
    assert isaiah.evidence["Phishing-resistant MFA"] == "yes"


def test_without_collected_devices_the_card_shows_the_kinds_of_method_registered() -> None:
    snapshot = tenant(
        users=[{"id": "u1", "displayName": "Una", "userType": "Member"}],
        roleAssignments=[assignment(GA, "u1")],
        userRegistrationDetails=[{"id": "u1", "isMfaRegistered": True, "methodsRegistered": ["fido2"]}],
    )
    [role] = [s for s in subjects_from_snapshot(snapshot, NOW) if s.key.startswith("role:")]
    assert role.evidence["MFA"] == "FIDO2 security key" and "MFA devices" not in role.evidence


def test_the_break_glass_account_is_flagged_and_never_signs_in(subjects: dict[str, Subject]) -> None:
    account = subjects[role_key(GA, BREAKGLASS, "active")]
    assert account.break_glass and account.permanent
    assert account.evidence["Account"] == "Member, cloud-only (break-glass)"
    assert account.evidence["Last sign-in"] == "never"
    assert account.evidence["MFA devices"] == "none registered"
    assert subjects[f"recovery:{BREAKGLASS}"].break_glass
    assert {s.key for s in subjects.values() if s.break_glass} == {
        role_key(GA, BREAKGLASS, "active"), f"recovery:{BREAKGLASS}"}


def test_break_glass_may_be_named_by_object_id_and_is_not_assumed(demo: TenantSnapshot) -> None:
    by_id = {s.key: s for s in subjects_from_snapshot(demo, NOW, [BREAKGLASS.upper()])}
    assert by_id[role_key(GA, BREAKGLASS, "active")].break_glass
    unnamed = subjects_from_snapshot(demo, NOW)
    assert not any(s.break_glass for s in unnamed)


def test_the_stale_global_admin_shows_when_she_last_signed_in(subjects: dict[str, Subject]) -> None:
    christie = subjects[role_key(GA, CHRISTIE, "active")]
    assert christie.evidence["Last sign-in"] == "2026-08-20 (95 days ago)"
    assert christie.evidence["Account"] == "Synced from on-premises"


def test_now_drives_how_many_days_ago(demo: TenantSnapshot) -> None:
    later = {s.key: s for s in subjects_from_snapshot(demo, NOW + timedelta(days=10))}
    assert later[role_key(GA, CHRISTIE, "active")].evidence["Last sign-in"] == "2026-08-20 (105 days ago)"
    assert later[role_key(GA, MEGAN, "active")].evidence["Last sign-in"] == "2026-11-21 (12 days ago)"


def test_several_assignments_are_eligible_through_pim(subjects: dict[str, Subject]) -> None:
    eligible = {s.key for s in subjects.values() if s.assignment_type is AssignmentType.ELIGIBLE}
    assert eligible == {
        role_key(GA, ISAIAH, "eligible"), role_key(SEC, LYNNE, "eligible"), role_key(PRA, LYNNE, "eligible"),
        role_key(PRA, ISAIAH, "eligible"), role_key(UA, RAVI, "eligible"),
        role_key(UA, ISAIAH, "eligible"),  # eligible for PIM-User-Admins' membership (PIM for Groups)
        # Isaiah is also eligible for User Access Administrator of the Production subscription (Azure PIM)
        "azure:6b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e:18d7d88d-d35e-4fb5-a5c3-7773c20a72d9:" + ISAIAH + ":eligible",
    }
    assert subjects[role_key(SEC, LYNNE, "eligible")].evidence["Assignment"] == "Eligible (PIM) until 2027-03-31"


def test_a_time_bound_active_assignment_is_not_permanent(subjects: dict[str, Subject]) -> None:
    nestor = subjects[role_key(APPA, NESTOR, "active")]
    assert not nestor.permanent
    assert nestor.evidence["Assignment"] == "Active, time-bound until 2026-12-31"


def test_the_exchange_admin_reads_mail_on_his_admin_account_and_is_at_risk(subjects: dict[str, Subject]) -> None:
    pradeep = subjects[role_key(EXA, PRADEEP, "active")]
    assert pradeep.evidence["Licences"] == (
        "Office 365 E3 — includes a mailbox (used: 412 sent, 1,377 read in 30 days)")
    assert pradeep.evidence["Risk"] == "high (at risk)"
    assert "Risk" not in subjects[role_key(GA, MEGAN, "active")].evidence


def test_the_partners_guest_admin_is_a_role_subject_and_a_partner_subject(subjects: dict[str, Subject]) -> None:
    assert subjects[role_key(HDA, RAVI, "active")].evidence["Account"] == "Guest from fabrikam-msp.com"
    guest = subjects[f"partner:guest:{RAVI}"]
    assert guest.kind is SubjectKind.PARTNER
    assert guest.holder_ids == (RAVI,)
    assert guest.partner_id == FABRIKAM and guest.partner_name == "Fabrikam MSP"
    assert guest.title == "Ravi Patel (Fabrikam MSP) — guest admin from Fabrikam MSP"
    assert guest.evidence["Roles"] == "Helpdesk Administrator (active), User Administrator (eligible)"
    assert guest.evidence["Invitation"] == "Accepted"


def test_people_without_an_admin_role_are_not_reviewed(subjects: dict[str, Subject]) -> None:
    reviewed = {holder for s in subjects.values() for holder in s.holder_ids}
    assert reviewed.isdisjoint({ALEX, PATTI, ADELE})
    # Lee holds no directory role, but is Contributor of a resource group in Azure: reviewed for that alone
    assert {s.kind for s in subjects.values() if LEE in s.holder_ids} == {SubjectKind.AZURE_ROLE}


# ---- partners -----------------------------------------------------------------------------------


def test_the_dap_contract_is_a_partner_subject(subjects: dict[str, Subject]) -> None:
    dap = subjects[f"partner:dap:{CONTRACT}"]
    assert dap.partner_id == FABRIKAM and dap.partner_name == "Fabrikam MSP" and dap.holder_ids == ()
    assert dap.evidence["Type"] == "DAP (delegated admin privileges, legacy)"
    assert dap.evidence["Roles"] == "Global Administrator (Admin Agents), Helpdesk Administrator (Helpdesk Agents)"
    assert dap.evidence["Partner tenant"] == f"Fabrikam MSP, fabrikam-msp.com ({FABRIKAM})"


def test_the_gdap_relationship_shows_its_roles_duration_and_auto_extension(subjects: dict[str, Subject]) -> None:
    gdap = subjects[f"partner:gdap:{GDAP}"]
    assert gdap.title == "Northwind IT Services — GDAP relationship"
    assert gdap.partner_id == NORTHWIND and gdap.partner_name == "Northwind IT Services" and gdap.holder_ids == ()
    assert dict(gdap.evidence) == {
        "Type": "GDAP (granular delegated admin)",
        "Relationship": "Northwind-Contoso-Managed-Services",
        "Roles": "Global Administrator, Exchange Administrator, Helpdesk Administrator",
        "Status": "active since 2025-01-14",
        "Duration": "730 days (P730D), ends 2027-01-14; auto-extends every 180 days (P180D)",
        "Partner tenant": f"Northwind IT Services, northwindit.com ({NORTHWIND})",
        "Assigned to": "1 partner security group",
        "Partner sign-ins": "4 sign-ins in 30 days, last 2026-11-22 by ana.silva@northwindit.com "
                            "(Microsoft 365 admin center)",
    }


def test_a_partner_that_stopped_signing_in_shows_when_it_was_last_seen(subjects: dict[str, Subject]) -> None:
    dap = subjects[f"partner:dap:{CONTRACT}"]
    assert dap.evidence["Partner sign-ins"] == "none in 30 days; last seen 2026-07-02 (144 days ago)"


def test_partner_sign_ins_hidden_by_the_licence_say_so() -> None:
    snapshot = tenant(contracts=[{"id": "c1", "contractType": "ResellerPartner", "customerId": NORTHWIND,
                                  "displayName": "Northwind IT Services"}],
                      unavailable=["partnerSignIns: not available in this tenant (needs Microsoft Entra ID P1 or P2)"])
    [dap] = subjects_from_snapshot(snapshot, NOW)
    assert dap.evidence["Partner sign-ins"] == "not available in this tenant (needs Microsoft Entra ID P1 or P2)"


def test_partner_sign_ins_never_collected_are_not_shown_as_none() -> None:
    snapshot = tenant(contracts=[{"id": "c1", "contractType": "ResellerPartner", "customerId": NORTHWIND,
                                  "displayName": "Northwind IT Services"}])
    [dap] = subjects_from_snapshot(snapshot, NOW)
    assert dap.evidence["Partner sign-ins"] == "not collected"


def test_only_cross_tenant_partners_marked_as_service_provider_are_reviewed(subjects: dict[str, Subject]) -> None:
    csp = subjects[f"partner:csp:{NORTHWIND}"]
    assert csp.partner_name == "Northwind IT Services"
    assert csp.evidence["Inbound trust"] == "accepts partner MFA"
    assert csp.evidence["GDAP"] == "Northwind-Contoso-Managed-Services (active)"
    assert f"partner:csp:{TAILSPIN}" not in subjects


def test_the_partners_app_with_directory_write_power_is_reviewed(subjects: dict[str, Subject]) -> None:
    app = subjects[f"partner:app:{FABRIKAM_APP}"]
    assert app.partner_id == FABRIKAM and app.partner_name == "Fabrikam MSP" and app.holder_ids == ()
    assert app.title == "Fabrikam MSP Management Portal — app of Fabrikam MSP"
    assert app.evidence["Application permissions"] == "Directory.ReadWrite.All, RoleManagement.ReadWrite.Directory"
    assert app.evidence["Delegated permissions"] == (
        "Directory.AccessAsUser.All, offline_access, User.Read (all users)")


def test_ordinary_and_first_party_apps_are_not_partner_subjects(subjects: dict[str, Subject]) -> None:
    assert f"partner:app:{ADOBE_APP}" not in subjects  # third party, sign-in scopes only, not a partner
    assert f"partner:app:{GRAPH_APP}" not in subjects  # Microsoft's own


def test_a_third_party_app_with_directory_write_power_is_reviewed_even_from_a_stranger() -> None:
    graph = {"id": "graph", "appOwnerOrganizationId": "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
             "appRoles": [{"id": "rw", "value": "Directory.ReadWrite.All"}]}
    app = {"id": "sp1", "displayName": "Shady Sync", "appId": "app1", "appOwnerOrganizationId": "elsewhere"}
    snapshot = tenant(servicePrincipals=[graph, app],
                      appRoleAssignments=[{"id": "x", "principalId": "sp1", "resourceId": "graph", "appRoleId": "rw"}])
    found = {s.key: s for s in subjects_from_snapshot(snapshot, NOW)}
    assert found["partner:app:sp1"].partner_id == "elsewhere"
    assert found["partner:app:sp1"].evidence["Application permissions"] == "Directory.ReadWrite.All"


def test_the_partners_gdap_group_is_a_foreign_principal_attributed_through_the_relationship(
    subjects: dict[str, Subject],
) -> None:
    foreign = subjects[f"partner:foreign:{NORTHWIND_GROUP}"]
    assert foreign.partner_id == NORTHWIND and foreign.partner_name == "Northwind IT Services"
    assert foreign.holder_ids == ()
    assert foreign.evidence["Roles"] == "Global Administrator"
    assert foreign.evidence["GDAP relationship"] == "Northwind-Contoso-Managed-Services (active)"
    assert not any(k.startswith("role:") and NORTHWIND_GROUP in k for k in subjects)


# ---- recovery contacts --------------------------------------------------------------------------


def test_every_privileged_person_and_nobody_else_has_a_recovery_subject(subjects: dict[str, Subject]) -> None:
    people = {s.holder_ids[0] for s in subjects.values() if s.kind is SubjectKind.ROLE_ASSIGNMENT}
    recovery = {s.holder_ids[0] for s in subjects.values() if s.kind is SubjectKind.RECOVERY_CONTACT}
    assert recovery == people == {MEGAN, ISAIAH, BREAKGLASS, CHRISTIE, LYNNE, PRADEEP, RAVI, NESTOR}
    assert subjects[f"recovery:{LYNNE}"].title == "Lynne Robbins — recovery contacts"
    assert subjects[f"recovery:{LYNNE}"].evidence["Roles"] == (
        "Security Administrator (eligible), Privileged Role Administrator (eligible)")


def test_an_admin_with_no_recovery_contact_is_shown_as_missing(subjects: dict[str, Subject]) -> None:
    assert subjects[f"recovery:{RAVI}"].evidence["Recovery contacts"] == "missing — no email or phone registered"


def test_a_recovery_email_and_phone_shared_by_two_admins_name_each_other(subjects: dict[str, Subject]) -> None:
    christie, nestor = subjects[f"recovery:{CHRISTIE}"].evidence, subjects[f"recovery:{NESTOR}"].evidence
    assert christie["Email"] == "i•••@contoso.com — shared with Nestor Wilke"
    assert christie["Office phone"] == "+1 ••••••0100 — shared with Nestor Wilke"
    assert christie["Mobile phone"] == "+1 ••••••0163"
    assert nestor["Email"] == "i•••@contoso.com — shared with Christie Cline"
    assert nestor["Office phone"] == "+1 ••••••0100 — shared with Christie Cline"


def test_a_free_mail_recovery_address_is_called_out(subjects: dict[str, Subject]) -> None:
    megan = subjects[f"recovery:{MEGAN}"].evidence
    assert megan["Email"] == "m•••@gmail.com — free-mail domain"
    assert megan["Phone"] == "none registered"
    assert subjects[f"recovery:{PRADEEP}"].evidence["Email"] == "p•••@outlook.com — free-mail domain"


def test_a_normal_recovery_contact_carries_no_remark(subjects: dict[str, Subject]) -> None:
    isaiah = subjects[f"recovery:{ISAIAH}"].evidence
    assert isaiah["Email"] == "i•••@langer.family"
    assert isaiah["Mobile phone"] == "+1 ••••••0187"


def test_recovery_contacts_not_collected_are_not_called_missing() -> None:
    snapshot = tenant(users=[user("u1", "Ann Admin")], roleAssignments=[assignment(GA, "u1")])
    found = {s.key: s for s in subjects_from_snapshot(snapshot, NOW)}
    assert found["recovery:u1"].evidence["Recovery contacts"] == "not collected"


def test_no_full_recovery_contact_appears_anywhere_in_the_subjects(demo: TenantSnapshot) -> None:
    subjects = subjects_from_snapshot(demo, NOW)
    text = repr(subjects).lower()
    values = [v for s in subjects for v in s.evidence.values()]
    contacts = [m.get("emailAddress") or m.get("phoneNumber") or "" for _, m in demo.recovery_contact_owners()]
    assert len(contacts) == 12  # six emails, six phones
    for contact in contacts:
        assert contact.lower() not in text, contact
        if "@" in contact:
            assert contact.split("@")[0].lower() + "@" not in text, contact
        else:
            digits = re.sub(r"\D", "", contact)
            assert not any(digits[-7:] in re.sub(r"\D", "", value) for value in values), contact


# ---- card limits --------------------------------------------------------------------------------


def test_evidence_fits_on_a_card(subjects: dict[str, Subject]) -> None:
    for subject in subjects.values():
        assert 1 <= len(subject.evidence) <= 8, subject.key
        for label, value in subject.evidence.items():
            assert isinstance(value, str) and value, (subject.key, label)
            assert len(value) < 120, (subject.key, label, value)
        assert subject.findings == ()
