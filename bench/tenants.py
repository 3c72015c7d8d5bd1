"""Synthetic tenants for the benchmarks: the demo tenant plus as many extra admins as a run needs."""

from __future__ import annotations

import uuid
from dataclasses import replace

from bot.app import load_inputs
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.policy import Policy
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


def person(n: int) -> str:
    """The object id of the ``n``-th synthetic person (the Global Administrators above are 1..N too)."""
    return str(uuid.UUID(int=n + 1))


def display_name(object_id: str) -> str:
    """The name the synthetic tenant gives ``person(n)``, as Teams would send it with each activity."""
    return f"Admin {uuid.UUID(object_id).int - 1}"


def reviewed_tenant(people: int) -> tuple[Policy, TenantSnapshot]:
    """The demo tenant plus ``people`` people who each hold Global Administrator (reviewed by Alex, the
    one-person case) and a role of their own, "Bench role n", owned by the next person — so every
    person reviews exactly one item and decisions can be spread across all of them."""
    policy, demo = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    data = snapshot_to_dict(synthetic_snapshot(people))
    owners = dict(policy.role_owners)
    for n in range(people):
        role_id = str(uuid.UUID(int=(1 << 120) + n))
        data["roleDefinitions"].append({"id": role_id, "templateId": role_id, "displayName": f"Bench role {n}",
                                        "isBuiltIn": False, "isEnabled": True})
        data["roleAssignments"].append({"id": f"rb-{n}", "roleDefinitionId": role_id, "principalId": person(n),
                                        "directoryScopeId": "/", "principal": {"@odata.type": "#microsoft.graph.user",
                                                                               "id": person(n),
                                                                               "displayName": f"Admin {n}"}})
        owners[role_id] = (person((n + 1) % people),)
    return replace(policy, role_owners=owners), snapshot_from_dict(data)
