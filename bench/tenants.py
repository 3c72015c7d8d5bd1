"""Synthetic tenants for the benchmarks: the demo tenant plus as many extra admins as a run needs."""

from __future__ import annotations

import uuid

from bot.app import load_inputs
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from checks.snapshot import TenantSnapshot, snapshot_from_dict, snapshot_to_dict

GA = "62e90394-69f5-4237-9190-012177145e10"


def synthetic_snapshot(admins: int) -> TenantSnapshot:
    """The demo tenant plus ``admins`` extra Global Administrators, so there are enough items to decide."""
    data = snapshot_to_dict(load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)[1])
    for n in range(admins):
        user_id = str(uuid.UUID(int=n + 1))
        data["users"].append({"id": user_id, "displayName": f"Admin {n}", "userPrincipalName": f"admin{n}@contoso.com",
                              "userType": "Member", "accountEnabled": True})
        data["roleAssignments"].append({"id": f"ra-{n}", "roleDefinitionId": GA, "principalId": user_id,
                                        "directoryScopeId": "/", "principal": {"@odata.type": "#microsoft.graph.user",
                                                                               "id": user_id, "displayName": f"Admin {n}"}})
    return snapshot_from_dict(data)
