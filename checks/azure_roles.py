"""The Azure RBAC roles accessbot reviews on subscriptions, and reading ARM's role ids and scopes.

Owner, Contributor, User Access Administrator and Role Based Access Control Administrator are the
built-in roles that control a subscription's resources or who gets to (the GUIDs are the same in every
tenant). ARM names a role by a resource id ending in that GUID.
"""

from __future__ import annotations

from collections.abc import Mapping

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"

PRIVILEGED_AZURE_ROLES: Mapping[str, str] = {
    OWNER: "Owner",
    CONTRIBUTOR: "Contributor",
    USER_ACCESS_ADMINISTRATOR: "User Access Administrator",
    RBAC_ADMINISTRATOR: "Role Based Access Control Administrator",
}
# Roles that can grant access to others: a standing one is what PIM exists to remove.
ACCESS_GRANTING_ROLES = frozenset({OWNER, USER_ACCESS_ADMINISTRATOR, RBAC_ADMINISTRATOR})
FOREIGN_GROUP = "ForeignGroup"  # how ARM lists a partner's group holding a role (AOBO, "Admin Agents")


def role_guid(role_definition_id: str | None) -> str:
    """``/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}`` -> the GUID."""
    return (role_definition_id or "").rstrip("/").rsplit("/", 1)[-1].lower()


def scope_root(scope: str | None) -> tuple[str, str]:
    """(subscription id or management group name, what the scope is within it) of an ARM scope:
    ``("6b1c…", "subscription")``, ``("6b1c…", "resource group rg-app")``, ``("contoso-root", "management group")``."""
    parts = [p for p in (scope or "/").split("/") if p]
    lowered = [p.lower() for p in parts]
    if len(parts) >= 2 and lowered[0] == "subscriptions":
        if len(parts) == 2:
            return parts[1], "subscription"
        if len(parts) >= 4 and lowered[2] == "resourcegroups":
            return parts[1], f"resource group {parts[3]}" + (" (a resource in it)" if len(parts) > 4 else "")
        return parts[1], "a resource of the subscription"
    if "managementgroups" in lowered:
        return parts[lowered.index("managementgroups") + 1], "management group"
    return "/", "root management group"


__all__ = [
    "ACCESS_GRANTING_ROLES", "CONTRIBUTOR", "FOREIGN_GROUP", "OWNER", "PRIVILEGED_AZURE_ROLES", "RBAC_ADMINISTRATOR",
    "USER_ACCESS_ADMINISTRATOR", "role_guid", "scope_root",
]
