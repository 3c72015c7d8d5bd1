"""Directory audit entries in Graph's own shape (``auditLogs/directoryAudits``), for the fake Graph and the tests.

Property values inside ``modifiedProperties`` are JSON text, as Graph sends them (a string arrives quoted).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def prop(name: str, new: Any, old: Any = None) -> dict[str, Any]:
    return {"displayName": name, "oldValue": None if old is None else json.dumps(old), "newValue": json.dumps(new)}


def by_user(upn: str, object_id: str = "4f55bc7b-99d5-4a2c-b388-89f2a2b41a49") -> dict[str, Any]:
    return {"user": {"id": object_id, "displayName": None, "userPrincipalName": upn, "ipAddress": "203.0.113.7"},
            "app": None}


def entry(event_id: str, at: datetime, activity: str, category: str, targets: list[dict[str, Any]],
          initiated: dict[str, Any] | None = None, result: str = "success") -> dict[str, Any]:
    return {
        "id": event_id, "category": category, "correlationId": f"c-{event_id}", "result": result,
        "resultReason": "", "activityDisplayName": activity, "activityDateTime": stamp(at),
        "loggedByService": "Core Directory", "operationType": "Assign", "additionalDetails": [],
        "initiatedBy": initiated or by_user("christiec@contoso.com"), "targetResources": targets,
    }


def user_target(object_id: str, upn: str, *props: dict[str, Any]) -> dict[str, Any]:
    return {"id": object_id, "displayName": None, "type": "User", "userPrincipalName": upn,
            "groupType": None, "modifiedProperties": list(props)}


def role_granted(event_id: str, at: datetime, user_id: str, upn: str, role: str = "Global Administrator",
                 template: str = GLOBAL_ADMINISTRATOR, **kwargs: Any) -> dict[str, Any]:
    """'Add member to role' as Core Directory logs it: the user as target, the role in its properties."""
    target = user_target(user_id, upn, prop("Role.ObjectID", "0a1b2c3d-0000-4000-8000-000000000001"),
                         prop("Role.DisplayName", role), prop("Role.TemplateId", template),
                         prop("Role.WellKnownObjectName", role.replace(" ", "")))
    return entry(event_id, at, "Add member to role", "RoleManagement", [target], **kwargs)


def pim_activation(event_id: str, at: datetime, user_id: str, upn: str, role: str, role_id: str) -> dict[str, Any]:
    """PIM's activation record: the role and the user among the targets."""
    return entry(event_id, at, "Add member to role completed (PIM activation)", "RoleManagement", [
        {"id": role_id, "displayName": role, "type": "Role", "modifiedProperties": []},
        user_target(user_id, upn),
    ], initiated=by_user(upn, user_id))


def security_info(event_id: str, at: datetime, user_id: str, upn: str,
                  activity: str = "Admin registered security info") -> dict[str, Any]:
    return entry(event_id, at, activity, "UserManagement", [user_target(user_id, upn)])


def app_role_granted(event_id: str, at: datetime, app_name: str, permission: str) -> dict[str, Any]:
    target = {"id": "7f0c1d2e-0000-4000-8000-0000000000aa", "displayName": app_name, "type": "ServicePrincipal",
              "modifiedProperties": [prop("AppRole.Value", permission), prop("ServicePrincipal.DisplayName", app_name)]}
    return entry(event_id, at, "Add app role assignment to service principal", "ApplicationManagement", [target])


def partner_added(event_id: str, at: datetime, partner: str, tenant_id: str) -> dict[str, Any]:
    target = {"id": tenant_id, "displayName": partner, "type": "Company",
              "modifiedProperties": [prop("PartnerTenantId", tenant_id)]}
    return entry(event_id, at, "Add partner to company", "DirectoryManagement", [target])


def noise(event_id: str, at: datetime) -> dict[str, Any]:
    """An everyday entry nobody is asked about."""
    return entry(event_id, at, "Add member to group", "GroupManagement",
                 [user_target("ba898b2a-9794-415b-a3df-cf7b824da266", "adelev@contoso.com")])
