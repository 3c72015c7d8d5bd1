"""What accessbot reads from Azure Resource Manager for one tenant, and how it joins the Graph snapshot:
where Entra's logs are exported, the subscriptions and management groups, and who holds a role on them.

A refusal (401/403: the app holds no Azure role, or the token is not for ARM) is recorded in
``unavailable`` with what to grant, and the snapshot stays complete: many tenants have no Azure at all.
A fault (5xx, timeout after the SDK's retries) is ``missing``, and the snapshot is incomplete.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from checks.azure.arm import ArmError, ArmReader
from checks.snapshot import TenantSnapshot

ENTRA_DIAGNOSTIC_SETTINGS = "/providers/microsoft.aadiam/diagnosticSettings?api-version=2017-04-01-preview"
DIAGNOSTIC_SETTINGS_PERMISSION = "microsoft.aadiam/diagnosticSettings/read"
MANAGEMENT_GROUPS = "/providers/Microsoft.Management/managementGroups?api-version=2021-04-01"
RBAC_READER = "the Reader role (Microsoft.Authorization/*/read) on the subscriptions or their management group"
# Per subscription: (snapshot key, azure-mgmt-authorization operation group).
_RBAC_LISTS = (
    ("azureRoleAssignments", "role_assignments"),
    ("azureRoleEligibilityScheduleInstances", "role_eligibility_schedule_instances"),
    ("azureRoleDefinitions", "role_definitions"),
)


@dataclass
class AzureView:
    """ARM's answers for one tenant (None: not read) and what could not be read."""

    diagnostic_settings: list[dict[str, Any]] | None = None
    lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # snapshot key -> ARM items
    missing: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    def failed(self, key: str, error: ArmError, permission: str) -> None:
        if error.refused:
            self.unavailable.append(f"{key}: Azure Resource Manager refused ({error.describe()}; needs {permission})")
        else:
            self.missing.append(f"{key}: could not be read ({error.describe()})")


async def collect_azure(reader: ArmReader) -> AzureView:
    """Entra's log exports, then every subscription the app can see with its privileged role holders
    (direct role assignments and PIM-eligible schedule instances, and the role definitions that name them),
    and the management groups."""
    view = AzureView()
    try:
        view.diagnostic_settings = await reader.list_all(ENTRA_DIAGNOSTIC_SETTINGS)
    except ArmError as error:
        view.failed("aadDiagnosticSettings", error, DIAGNOSTIC_SETTINGS_PERMISSION)
    try:
        subscriptions = await reader.subscriptions()
    except ArmError as error:
        view.failed("azureSubscriptions", error, RBAC_READER)
        return view
    view.lists["azureSubscriptions"] = subscriptions
    try:
        view.lists["azureManagementGroups"] = await reader.list_all(MANAGEMENT_GROUPS)
    except ArmError as error:
        view.failed("azureManagementGroups", error, RBAC_READER)
    for key, _ in _RBAC_LISTS:
        view.lists[key] = []
    for subscription in subscriptions:
        sid = subscription.get("subscriptionId") or ""
        for key, operation in _RBAC_LISTS:
            try:
                found = await reader.authorization(sid, operation, f"/subscriptions/{sid}")
            except ArmError as error:
                if key == "azureRoleEligibilityScheduleInstances" and error.status == 400:
                    continue  # no PIM for Azure resources in this tenant (needs Entra ID P2): none eligible
                view.failed(f"{key} of {subscription.get('displayName') or sid}", error, RBAC_READER)
                continue
            known = {item.get("id") for item in view.lists[key]}
            view.lists[key].extend(item for item in found if item.get("id") not in known)
    return view


def with_azure(snapshot: TenantSnapshot, view: AzureView) -> TenantSnapshot:
    """The Graph snapshot with ARM's answers added (keyed by the tenant id: absent means not read)."""
    settings = dict(snapshot.diagnostic_settings)
    if view.diagnostic_settings is not None:
        settings[snapshot.tenant_id] = tuple(view.diagnostic_settings)
    missing = (*snapshot.missing, *view.missing)
    lists = {attribute: tuple(view.lists[key]) for attribute, key in _AZURE_LISTS if key in view.lists}
    return dataclasses.replace(
        snapshot, diagnostic_settings=settings, missing=missing, complete=snapshot.complete and not view.missing,
        unavailable=tuple(dict.fromkeys((*snapshot.unavailable, *view.unavailable))), **lists,
    )


_AZURE_LISTS = (
    ("azure_subscriptions", "azureSubscriptions"),
    ("azure_management_groups", "azureManagementGroups"),
    ("azure_role_assignments", "azureRoleAssignments"),
    ("azure_role_eligibility_schedule_instances", "azureRoleEligibilityScheduleInstances"),
    ("azure_role_definitions", "azureRoleDefinitions"),
)


__all__ = ["DIAGNOSTIC_SETTINGS_PERMISSION", "ENTRA_DIAGNOSTIC_SETTINGS", "AzureView", "collect_azure", "with_azure"]
