"""What removing a revoked access means in Microsoft Graph calls — computed, never guessed, from the snapshot.

Pure: a subject and the snapshot it came from in, the exact calls out, so a dry-run shows precisely what
`apply` would do and a security lead approves exactly that. What Graph cannot do (a DAP relationship can
only be removed in the admin centre) is a manual step, said as such, never silently skipped.
Guard rails live here too: a break-glass account is never touched, and the last Global Administrator is
never removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Sequence

from bot.engine.model import Subject, SubjectKind
from checks.pim_groups import Membership, pim_group
from checks.rules.global_admins import global_admins
from checks.rules.holders import GLOBAL_ADMINISTRATOR
from checks.snapshot import TenantSnapshot
from checks.subjects import HIGH_PRIVILEGE_PERMISSIONS


GRAPH, ARM = "graph", "arm"


@dataclass(frozen=True)
class GraphCall:
    """One write call of a plan: to Microsoft Graph (``path`` relative to https://graph.microsoft.com/v1.0)
    or, for an Azure role, to Azure Resource Manager (``service`` ARM, ``path`` from the ARM root with its
    ``api-version``)."""

    method: str
    path: str
    description: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    service: str = GRAPH

    def show(self) -> str:
        return f"{self.method} /v1.0{self.path}" if self.service == GRAPH else f"{self.method} ARM {self.path}"


@dataclass(frozen=True)
class RemediationPlan:
    subject_key: str
    title: str
    calls: tuple[GraphCall, ...] = ()
    manual: tuple[str, ...] = ()
    blocked: str = ""  # why nothing may be done, when so
    global_admin: bool = False  # removes Global Administrator access: dual custody applies

    def to_data(self) -> dict[str, Any]:
        return {
            "subject": self.subject_key,
            "calls": [{"method": c.method, "path": c.path, "description": c.description, "body": c.body,
                       "headers": c.headers, **({"service": c.service} if c.service != GRAPH else {})}
                      for c in self.calls],
            "manual": list(self.manual),
            "blocked": self.blocked,
            "global_admin": self.global_admin,
        }

    @classmethod
    def from_data(cls, title: str, data: dict[str, Any]) -> "RemediationPlan":
        return cls(
            subject_key=data["subject"],
            title=title,
            calls=tuple(GraphCall(c["method"], c["path"], c["description"], c.get("body"), c.get("headers") or {},
                                  c.get("service") or GRAPH)  # plans recorded before Azure were all Graph
                        for c in data["calls"]),
            manual=tuple(data["manual"]),
            blocked=data["blocked"],
            global_admin=bool(data["global_admin"]),
        )


def plan_remediation(
    subject: Subject,
    snapshot: TenantSnapshot,
    subjects: Sequence[Subject],
    removed_global_admins: Collection[str] = (),
) -> RemediationPlan:
    """The calls that remove this subject's access. ``subjects`` are everything reviewed from the same
    snapshot (who holds Global Administrator, for the last-GA guard); ``removed_global_admins`` are users
    whose Global Administrator access earlier remediations already removed."""
    last = _LastGlobalAdmin(snapshot, subjects, removed_global_admins)
    if subject.break_glass:
        return RemediationPlan(subject.key, subject.title, blocked="registered break-glass account: never removed")
    if subject.kind is SubjectKind.ROLE_ASSIGNMENT:
        return _role(subject, snapshot, last)
    if subject.kind is SubjectKind.RECOVERY_CONTACT:
        return _recovery(subject, snapshot)
    if subject.kind is SubjectKind.AZURE_ROLE:
        return _azure(subject, snapshot)
    return _partner(subject, snapshot, last)


def _azure(subject: Subject, snapshot: TenantSnapshot) -> RemediationPlan:
    """An active Azure role is removed in Azure Resource Manager: a DELETE of each role assignment the
    snapshot holds for it (run by the ARM executor, ``bot/remediation/arm_executor.py``). A PIM eligibility
    for Azure resources is a manual step, said as such."""
    _, root, role, principal, kind = subject.key.split(":", 4)
    listing = snapshot.azure_role_assignments if kind == "active" else snapshot.azure_role_eligibility_schedule_instances
    ids = [
        item["id"] for item in listing
        if (item.get("properties") or {}).get("principalId", "").lower() == principal.lower()
        and (item.get("properties") or {}).get("roleDefinitionId", "").lower().endswith(role.lower())
        and root.lower() in ((item.get("properties") or {}).get("scope") or "/").lower()
    ]
    if kind != "active":
        return RemediationPlan(subject.key, subject.title, manual=(
            "Privileged Identity Management > Azure resources > "
            f"{subject.evidence.get('Subscription', root)} > Assignments: remove the eligible {subject.role_name} "
            f"assignment of {subject.holder_name}",))
    calls = tuple(GraphCall("DELETE", f"{i}?api-version=2022-04-01",
                            f"delete the {subject.role_name} assignment of {subject.holder_name}", service=ARM)
                  for i in ids)
    return RemediationPlan(subject.key, subject.title, calls, () if calls else ("no role assignment was collected",))


@dataclass(frozen=True)
class _LastGlobalAdmin:
    """Would removing these users leave the tenant without a Global Administrator? Counted as the
    global-admin checks count: users holding it active or eligible, directly or through a group."""

    snapshot: TenantSnapshot
    subjects: Sequence[Subject]
    removed: Collection[str]

    def __call__(self, principals: Collection[str]) -> bool:
        holders = {admin.id.lower() for admin in global_admins(self.snapshot, self.subjects)}
        return not holders - {p.lower() for p in (*self.removed, *principals)}


def _role(subject: Subject, snapshot: TenantSnapshot, last: _LastGlobalAdmin) -> RemediationPlan:
    _, template, principal, kind = subject.key.split(":", 3)
    is_ga = template == GLOBAL_ADMINISTRATOR
    if is_ga and last([principal]):
        return RemediationPlan(subject.key, subject.title, blocked="it would remove the last Global Administrator",
                               global_admin=True)
    calls: list[GraphCall] = []
    manual: list[str] = []
    if kind == "eligible":  # eligible through a group enrolled in PIM for Groups, whichever way the group holds it
        calls += _remove_pim_group_eligibility(snapshot, template, principal, subject.holder_name)
    collection = snapshot.role_assignments if kind == "active" else snapshot.role_eligibility_schedule_instances
    for entry in collection:
        if snapshot.role_template_id(entry["roleDefinitionId"]) != template:
            continue
        holder = entry["principalId"]
        if holder == principal:
            calls.append(_remove_role(entry, kind, subject.role_name or template))
        elif any(m["id"] == principal for m in snapshot.members_of(holder) or ()):
            group = snapshot.display_name(holder)
            calls.append(
                GraphCall("DELETE", f"/groups/{holder}/members/{principal}/$ref",
                          f"remove {subject.holder_name} from role-assignable group {group}")
            )
    if not calls:
        manual.append("the assignment was not found in the snapshot: collect again, then remove it in Entra ID")
    return RemediationPlan(subject.key, subject.title, tuple(calls), tuple(manual), global_admin=is_ga)


def _remove_pim_group_eligibility(
    snapshot: TenantSnapshot, template: str, principal: str, holder_name: str
) -> list[GraphCall]:
    """Remove the PIM for Groups eligibility that makes ``principal`` eligible for a group holding the role:
    an ``adminRemove`` request for the membership (PrivilegedEligibilitySchedule.ReadWrite.AzureADGroup)."""
    groups = {
        entry["principalId"] for entry in (*snapshot.role_assignments, *snapshot.role_eligibility_schedule_instances)
        if snapshot.role_template_id(entry["roleDefinitionId"]) == template
    }
    calls = []
    for group in sorted(groups):
        view = pim_group(snapshot, group)
        if view is None or not any(m.how is Membership.ELIGIBLE for m in view.of(principal)):
            continue
        calls.append(GraphCall(
            "POST", "/identityGovernance/privilegedAccess/group/eligibilityScheduleRequests",
            f"remove {holder_name}'s eligible membership of PIM group {snapshot.display_name(group)}",
            body={"accessId": "member", "principalId": principal, "groupId": group, "action": "adminRemove",
                  "justification": "Revoked in an accessbot access review"},
        ))
    return calls


def _remove_role(entry: dict[str, Any] | Any, kind: str, role_name: str) -> GraphCall:
    if kind == "active":
        return GraphCall("DELETE", f"/roleManagement/directory/roleAssignments/{entry['id']}",
                         f"delete the active {role_name} assignment")
    return GraphCall(
        "POST",
        "/roleManagement/directory/roleEligibilityScheduleRequests",
        f"remove the PIM-eligible {role_name} assignment",
        body={
            "action": "adminRemove",
            "principalId": entry["principalId"],
            "roleDefinitionId": entry["roleDefinitionId"],
            "directoryScopeId": entry.get("directoryScopeId") or "/",
            "justification": "Revoked in an accessbot access review",
        },
    )


def _recovery(subject: Subject, snapshot: TenantSnapshot) -> RemediationPlan:
    user = subject.key.split(":", 1)[1]
    calls = [
        GraphCall("DELETE", f"/users/{user}/authentication/emailMethods/{m['id']}", "remove the recovery e-mail")
        for m in snapshot.recovery_emails(user) or ()
    ]
    calls += [
        GraphCall("DELETE", f"/users/{user}/authentication/phoneMethods/{m['id']}", f"remove the {m.get('phoneType', '')} phone".replace("  ", " "))
        for m in snapshot.recovery_phones(user) or ()
    ]
    manual = () if calls else ("no recovery method is registered; ask the admin to register a verified one",)
    return RemediationPlan(subject.key, subject.title, tuple(calls), manual)


def _partner(subject: Subject, snapshot: TenantSnapshot, last: _LastGlobalAdmin) -> RemediationPlan:
    _, kind, object_id = subject.key.split(":", 2)
    title = subject.title
    if kind == "dap":
        return RemediationPlan(subject.key, title, manual=(
            "DAP cannot be removed through Graph: Microsoft 365 admin center > Settings > Partner relationships > "
            "remove the partner's admin roles",))
    if kind == "csp":
        return RemediationPlan(subject.key, title, manual=(
            "end the partner's GDAP relationships from the partner side, or ask Microsoft support; then remove the "
            f"service-provider entry (DELETE /v1.0/policies/crossTenantAccessPolicy/partners/{object_id})",))
    if kind == "gdap":
        calls = tuple(
            GraphCall(
                "DELETE",
                f"/tenantRelationships/delegatedAdminRelationships/{object_id}/accessAssignments/{a['id']}",
                "remove the partner's access assignment",
                headers={"If-Match": str(a.get("@odata.etag", "*"))},
            )
            for a in snapshot.access_assignments(object_id) or ()
        )
        return RemediationPlan(subject.key, title, calls, () if calls else ("no access assignment was collected",),
                               global_admin=GLOBAL_ADMINISTRATOR in _gdap_roles(snapshot, object_id))
    if kind == "foreign":
        entries = [f for f in snapshot.foreign_principals if f["id"] == object_id]
        is_ga = any(snapshot.role_template_id(f["roleDefinitionId"]) == GLOBAL_ADMINISTRATOR for f in entries)
        calls = tuple(
            GraphCall("DELETE", f"/roleManagement/directory/roleAssignments/{f['assignmentId']}",
                      f"delete the {snapshot.role_name(f['roleDefinitionId'])} assignment of the partner's group")
            for f in entries if f.get("assignmentId")
        )
        return RemediationPlan(subject.key, title, calls, global_admin=is_ga)
    if kind == "app":
        calls = tuple(
            GraphCall("DELETE", f"/servicePrincipals/{a['resourceId']}/appRoleAssignedTo/{a['id']}",
                      f"remove {snapshot.app_role_name(a['resourceId'], a['appRoleId'])} from {a.get('principalDisplayName', 'the app')}")
            for a in snapshot.app_role_assignments
            if a["principalId"] == object_id
            and snapshot.app_role_name(a["resourceId"], a["appRoleId"]) in HIGH_PRIVILEGE_PERMISSIONS
        ) + tuple(
            GraphCall("DELETE", f"/oauth2PermissionGrants/{g['id']}", f"remove delegated consent ({g.get('scope', '').strip()})")
            for g in snapshot.oauth2_permission_grants if g["clientId"] == object_id
        )
        return RemediationPlan(subject.key, title, calls)
    # a guest admin from a partner: take away every admin role, keep the account for its owner to decide
    holder_roles = [e for e in snapshot.role_assignments if e["principalId"] == object_id]
    if any(snapshot.role_template_id(e["roleDefinitionId"]) == GLOBAL_ADMINISTRATOR for e in holder_roles) and \
            last([object_id]):
        return RemediationPlan(subject.key, title, blocked="it would remove the last Global Administrator", global_admin=True)
    calls = tuple(_remove_role(e, "active", snapshot.role_name(e["roleDefinitionId"])) for e in holder_roles)
    calls += tuple(
        _remove_role(e, "eligible", snapshot.role_name(e["roleDefinitionId"]))
        for e in snapshot.role_eligibility_schedule_instances if e["principalId"] == object_id
    )
    is_ga = any(snapshot.role_template_id(e["roleDefinitionId"]) == GLOBAL_ADMINISTRATOR for e in holder_roles)
    return RemediationPlan(subject.key, title, calls, global_admin=is_ga)


def _gdap_roles(snapshot: TenantSnapshot, relationship_id: str) -> set[str]:
    for relationship in snapshot.delegated_admin_relationships:
        if relationship["id"] == relationship_id:
            roles = (relationship.get("accessDetails") or {}).get("unifiedRoles") or []
            return {r.get("roleDefinitionId", "") for r in roles}
    return set()
