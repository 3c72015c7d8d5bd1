"""Which Graph calls remove a revoked access — and the guard rails that forbid some removals outright."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.config import DEMO_SNAPSHOT
from bot.remediation.plan import (
    GLOBAL_ADMINISTRATOR,
    RemediationPlan,
    plan_remediation,
)
from checks.rules.global_admins import global_admins
from checks.snapshot import load_snapshot, snapshot_from_dict
from checks.subjects import subjects_from_snapshot

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
DEMO = load_snapshot(DEMO_SNAPSHOT)
SUBJECTS = {s.title: s for s in subjects_from_snapshot(DEMO, NOW, ["breakglass01@contoso.onmicrosoft.com"])}


def plan(title: str, removed: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    return plan_remediation(SUBJECTS[title], DEMO, list(SUBJECTS.values()), removed)


def test_an_active_assignment_is_deleted_and_flagged_for_dual_custody_when_global_admin() -> None:
    result = plan("Megan Bowen — Global Administrator")
    (call,) = result.calls
    assert (call.method, call.path) == ("DELETE", "/roleManagement/directory/roleAssignments/lAPpYvVpN0KRkAEhdxReEAfzflNkXCyk6m6w-X5G6dzA-1")
    assert result.global_admin and not result.blocked


def test_an_eligible_assignment_is_removed_through_a_pim_admin_remove_request() -> None:
    result = plan("Isaiah Langer — Global Administrator")
    (call,) = result.calls
    assert call.method == "POST" and call.path == "/roleManagement/directory/roleEligibilityScheduleRequests"
    assert call.body is not None and call.body["action"] == "adminRemove"
    assert call.body["principalId"] == "57d15fde-ce85-4c0d-8a93-7167ffbb463a"
    assert call.body["roleDefinitionId"] == GLOBAL_ADMINISTRATOR


def test_access_through_a_role_assignable_group_is_removed_by_leaving_the_group() -> None:
    result = plan("Lynne Robbins — Privileged Role Administrator")
    assert [c.method for c in result.calls] == ["DELETE"]
    assert result.calls[0].path.endswith("/members/0352574e-9ccb-4a60-b927-66c30c6c9a04/$ref")


def test_eligibility_through_a_pim_for_groups_group_is_removed_by_an_admin_remove_of_the_membership() -> None:
    result = plan("Isaiah Langer — User Administrator")
    (call,) = result.calls
    assert (call.method, call.path) == ("POST", "/identityGovernance/privilegedAccess/group/eligibilityScheduleRequests")
    assert call.body == {"accessId": "member", "principalId": "57d15fde-ce85-4c0d-8a93-7167ffbb463a",
                         "groupId": "7d3e9a15-2c4b-4e8f-9a6d-1b5c7e3f2a90", "action": "adminRemove",
                         "justification": "Revoked in an accessbot access review"}
    assert "PIM group PIM-User-Admins" in call.description and not result.manual


def test_a_break_glass_account_is_never_removed() -> None:
    result = plan("Break Glass 01 — Global Administrator")
    assert result.blocked and "break-glass" in result.blocked and not result.calls


def test_the_last_global_administrator_is_never_removed() -> None:
    holders = {admin.id for admin in global_admins(DEMO, list(SUBJECTS.values()))}
    megan = "36e5377f-c245-4eca-a6eb-0f97e46e9dcc"
    others = tuple(h for h in holders if h != megan)
    assert others, "the demo tenant has several Global Administrators"
    result = plan("Megan Bowen — Global Administrator", removed=others)
    assert result.blocked == "it would remove the last Global Administrator" and not result.calls


def test_a_tenant_with_one_global_admin_blocks_its_removal() -> None:
    only = snapshot_from_dict(
        {
            "tenantId": "t1",
            "collectedAt": "2026-11-23T08:00:00Z",
            "roleDefinitions": [{"id": GLOBAL_ADMINISTRATOR, "templateId": GLOBAL_ADMINISTRATOR, "displayName": "Global Administrator"}],
            "roleAssignments": [{"id": "a1", "roleDefinitionId": GLOBAL_ADMINISTRATOR, "principalId": "u1", "directoryScopeId": "/",
                                 "principal": {"@odata.type": "#microsoft.graph.user", "id": "u1", "displayName": "Solo"}}],
            "users": [{"id": "u1", "displayName": "Solo", "userPrincipalName": "solo@t1.example"}],
        }
    )
    subjects = subjects_from_snapshot(only, NOW)
    (subject,) = [s for s in subjects if s.key.startswith("role:")]
    assert plan_remediation(subject, only, subjects).blocked == "it would remove the last Global Administrator"


def test_a_gdap_relationship_loses_its_access_assignments_with_if_match() -> None:
    result = plan("Northwind IT Services — GDAP relationship")
    assert result.calls and all("/accessAssignments/" in c.path and c.method == "DELETE" for c in result.calls)
    assert all("If-Match" in c.headers for c in result.calls)
    assert result.global_admin


def test_a_partner_app_loses_its_high_privilege_permissions_and_consents() -> None:
    result = plan("Fabrikam MSP Management Portal — app of Fabrikam MSP")
    paths = [c.path for c in result.calls]
    assert any("/appRoleAssignedTo/" in p for p in paths) and any(p.startswith("/oauth2PermissionGrants/") for p in paths)


def test_dap_can_only_be_removed_by_hand_and_says_where() -> None:
    result = plan("Fabrikam MSP — DAP (delegated admin)")
    assert not result.calls and "admin center" in result.manual[0]


@pytest.mark.parametrize("title", ["Megan Bowen — recovery contacts", "Christie Cline — recovery contacts"])
def test_a_revoked_recovery_contact_removes_the_registered_methods(title: str) -> None:
    result = plan(title)
    assert result.calls and all("/authentication/" in c.path and c.method == "DELETE" for c in result.calls)


def test_an_azure_owner_is_removed_by_an_arm_delete_of_its_exact_assignment() -> None:
    """Revoking the reseller's AOBO group deletes that one role assignment in Azure Resource Manager, and
    the plan survives the ledger (its service is recorded with it)."""
    result = plan("Fabrikam MSP (foreign group) — Owner of Contoso Production")
    (call,) = result.calls
    assert (call.service, call.method, call.path) == (
        "arm", "DELETE", "/subscriptions/6b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e/providers/Microsoft.Authorization/"
        "roleAssignments/3f2e1d0c-9b8a-4c7d-8e6f-5a4b3c2d1e0f?api-version=2022-04-01")
    assert call.show().startswith("DELETE ARM /subscriptions/") and not result.global_admin and not result.blocked
    assert RemediationPlan.from_data(result.title, result.to_data()) == result
    eligible = plan("Isaiah Langer — User Access Administrator of Contoso Production")
    assert not eligible.calls and "Privileged Identity Management > Azure resources" in eligible.manual[0]


def test_a_plan_recorded_before_azure_reads_back_as_graph_calls() -> None:
    data = {"subject": "role:x", "calls": [{"method": "DELETE", "path": "/roleManagement/directory/roleAssignments/a",
                                            "description": "d", "body": None, "headers": {}}],
            "manual": [], "blocked": "", "global_admin": False}
    (call,) = RemediationPlan.from_data("t", data).calls
    assert call.service == "graph" and call.show() == "DELETE /v1.0/roleManagement/directory/roleAssignments/a"
