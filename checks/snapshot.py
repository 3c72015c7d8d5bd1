"""What was collected from one tenant through Microsoft Graph v1.0, kept in Graph's own JSON shapes.

The Graph collector and the shipped demo tenant both produce a ``TenantSnapshot``, and everything
downstream (subjects, checks, the doctor) reads only this object. Keeping Graph's shapes, rather than
a model of our own, means a collector change never has to be mirrored here and a captured Graph
response can be dropped into a test as it is.

File format: one JSON object. ``tenantId``, ``tenantName``, ``verifiedDomains``, ``collectedAt``,
``complete``, ``missing`` and ``unavailable`` (licence-gated data the tenant does not have, which is
not a failure) describe the collection; every other key is a collection, a list of Graph
objects as Graph returns them (``roleAssignments`` with ``principal`` expanded, ``users`` with
``signInActivity`` and ``assignedLicenses`` selected, ...). Per-object collections (``emailMethods``,
``phoneMethods``, ``groupMembers``, ``delegatedAdminAccessAssignments``) map the owning object's id to
such a list; an id that is absent there was not collected, an empty list means "none".

Three collections are not a Graph response as such:
- ``foreignPrincipals``: principals holding a role that live in another tenant (a partner's GDAP or DAP
  group); each entry is ``{id, roleDefinitionId, directoryScopeId, assignmentId, ...}`` and carries
  ``tenantId`` (their home tenant), ``displayName`` and ``@odata.type`` when Graph named them (the
  expanded principal's ``organizationId``), or ``error: Request_ResourceNotFound`` when Graph could not
  expand them at all and a lookup answered 404.
- ``delegatedAdminRelationships`` entries may carry ``partner`` (``{tenantId, displayName}``, the shape
  of Graph's ``customer``): Graph documents relationships from the partner's side and never names the
  partner, so a customer-side collector adds it.
- ``emailActivity`` holds rows of ``reports/getEmailActivityUserDetail(period='D30')``.
- ``signIns`` maps a privileged user's id to their recent ``auditLogs/signIns`` entries (P1/P2 tenants).
- ``partnerSignIns`` holds ``auditLogs/signIns`` entries with ``crossTenantAccessType`` ``serviceProvider``
  (people of a partner with delegated admin rights signing in here) of the last
  ``PARTNER_SIGN_IN_WINDOW_DAYS``, the most an Entra ID P1/P2 tenant keeps; ``homeTenantId`` names the partner.
- ``partnerActivity`` outlives the sign-in log: one entry per partner tenant, ``{tenantId,
  lastSignInDateTime, watchedSince}``, carried from one collection to the next, so "no partner sign-in for
  90 days" can be said of a log that keeps 30. ``watchedSince`` is the start of the unbroken stretch of
  collections that saw the log; a gap longer than the log's window starts it again.
- ``aadDiagnosticSettings`` maps the tenant id to Azure Resource Manager's
  ``/providers/microsoft.aadiam/diagnosticSettings`` (where Entra's audit and sign-in logs are exported);
  absent when ARM was not read.
- ``azureSubscriptions``, ``azureManagementGroups``, ``azureRoleAssignments``,
  ``azureRoleEligibilityScheduleInstances`` and ``azureRoleDefinitions`` are Azure Resource Manager's lists
  in ARM's own JSON (``properties`` nested), read when Azure Resource Manager is configured.
- ``managers`` maps a reviewer's id to ``[users/{id}/manager]`` (a list of one; empty when none is set).
- ``authenticationMethods`` maps a privileged user's id to ``users/{id}/authentication/methods``: every
  registered method with its ``@odata.type`` (FIDO2 keys, Authenticator devices, phones, Windows Hello,
  ...), names and ``createdDateTime`` where Graph gives one: the devices registered for MFA.
- ``pimGroupEligibilityScheduleInstances`` and ``pimGroupAssignmentScheduleInstances`` map the id of a group
  holding a role to PIM for Groups' ``identityGovernance/privilegedAccess/group/eligibilityScheduleInstances``
  and ``assignmentScheduleInstances`` filtered on that group (``accessId`` member or owner, ``principalId``,
  ``assignmentType`` Assigned or Activated, ``startDateTime``, ``endDateTime``, ``principal`` expanded): who
  may activate the group's membership, who is in it by activation and who permanently
  (checks/pim_groups.py reads them). Snapshots written before they were collected have neither key: every
  group then reads as "not collected", and its transitive members hold its roles as before.

``deltaLinks`` (envelope) maps ``users`` and ``groups`` to Graph's ``@odata.deltaLink`` from the last change
check, so the next one reads only what changed since (``recollect_tenant`` in checks/graph/collector.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

GraphObject = Mapping[str, Any]


class SnapshotError(ValueError):
    """A snapshot file that cannot be used; the message names the file or key at fault."""


# (attribute, JSON key) for every collection that is a plain list of Graph objects.
_LISTS: tuple[tuple[str, str], ...] = (
    ("role_definitions", "roleDefinitions"),
    ("role_assignments", "roleAssignments"),
    ("role_eligibility_schedule_instances", "roleEligibilityScheduleInstances"),
    ("role_assignment_schedule_instances", "roleAssignmentScheduleInstances"),
    ("users", "users"),
    ("deleted_users", "deletedUsers"),
    ("groups", "groups"),
    ("service_principals", "servicePrincipals"),
    ("app_role_assignments", "appRoleAssignments"),
    ("oauth2_permission_grants", "oauth2PermissionGrants"),
    ("subscribed_skus", "subscribedSkus"),
    ("user_registration_details", "userRegistrationDetails"),
    ("risky_users", "riskyUsers"),
    ("email_activity", "emailActivity"),
    ("contracts", "contracts"),
    ("cross_tenant_partners", "crossTenantPartners"),
    ("tenant_information", "tenantInformation"),
    ("delegated_admin_relationships", "delegatedAdminRelationships"),
    ("foreign_principals", "foreignPrincipals"),
    ("organization", "organization"),
    ("partner_sign_ins", "partnerSignIns"),
    ("partner_activity", "partnerActivity"),
    ("azure_subscriptions", "azureSubscriptions"),
    ("azure_management_groups", "azureManagementGroups"),
    ("azure_role_assignments", "azureRoleAssignments"),
    ("azure_role_eligibility_schedule_instances", "azureRoleEligibilityScheduleInstances"),
    ("azure_role_definitions", "azureRoleDefinitions"),
)

# (attribute, JSON key) for collections keyed by the id of the object they belong to.
_KEYED: tuple[tuple[str, str], ...] = (
    ("group_members", "groupMembers"),
    ("email_methods", "emailMethods"),
    ("phone_methods", "phoneMethods"),
    ("delegated_admin_access_assignments", "delegatedAdminAccessAssignments"),
    ("sign_ins", "signIns"),
    ("managers", "managers"),
    ("authentication_methods", "authenticationMethods"),
    ("diagnostic_settings", "aadDiagnosticSettings"),
    ("pim_group_eligibility_instances", "pimGroupEligibilityScheduleInstances"),
    ("pim_group_assignment_instances", "pimGroupAssignmentScheduleInstances"),
)

# The properties the bot joins collections on; an object without them cannot be placed, so the file is refused.
_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "roleAssignments": ("roleDefinitionId", "principalId"),
    "roleEligibilityScheduleInstances": ("roleDefinitionId", "principalId"),
    "roleAssignmentScheduleInstances": ("roleDefinitionId", "principalId"),
    "appRoleAssignments": ("principalId", "resourceId"),
    "oauth2PermissionGrants": ("clientId",),
    "subscribedSkus": ("skuId",),
    "emailActivity": ("userPrincipalName",),
    "crossTenantPartners": ("tenantId",),
    "tenantInformation": ("tenantId",),
    "partnerActivity": ("tenantId",),
    "azureSubscriptions": ("subscriptionId",),
}

_USER_TYPE = "#microsoft.graph.user"


@dataclass(frozen=True)
class TenantSnapshot:
    """One collection run of one tenant. ``complete`` is False when any collection failed part-way;
    ``missing`` then names what could not be read, so nobody mistakes a failed read for "no admins"."""

    tenant_id: str
    tenant_name: str
    collected_at: datetime
    verified_domains: tuple[str, ...] = ()
    complete: bool = True
    missing: tuple[str, ...] = ()
    unavailable: tuple[str, ...] = ()  # licence-gated data this tenant does not have (not a failure)
    delta_links: Mapping[str, str] = field(default_factory=dict)  # Graph's deltaLink per delta-tracked collection
    role_definitions: tuple[GraphObject, ...] = ()
    role_assignments: tuple[GraphObject, ...] = ()
    role_eligibility_schedule_instances: tuple[GraphObject, ...] = ()
    role_assignment_schedule_instances: tuple[GraphObject, ...] = ()
    users: tuple[GraphObject, ...] = ()
    deleted_users: tuple[GraphObject, ...] = ()
    groups: tuple[GraphObject, ...] = ()
    group_members: Mapping[str, tuple[GraphObject, ...]] = field(default_factory=dict)
    service_principals: tuple[GraphObject, ...] = ()
    app_role_assignments: tuple[GraphObject, ...] = ()
    oauth2_permission_grants: tuple[GraphObject, ...] = ()
    subscribed_skus: tuple[GraphObject, ...] = ()
    user_registration_details: tuple[GraphObject, ...] = ()
    email_methods: Mapping[str, tuple[GraphObject, ...]] = field(default_factory=dict)
    phone_methods: Mapping[str, tuple[GraphObject, ...]] = field(default_factory=dict)
    risky_users: tuple[GraphObject, ...] = ()
    email_activity: tuple[GraphObject, ...] = ()
    contracts: tuple[GraphObject, ...] = ()
    cross_tenant_partners: tuple[GraphObject, ...] = ()
    tenant_information: tuple[GraphObject, ...] = ()
    delegated_admin_relationships: tuple[GraphObject, ...] = ()
    delegated_admin_access_assignments: Mapping[str, tuple[GraphObject, ...]] = field(default_factory=dict)
    foreign_principals: tuple[GraphObject, ...] = ()
    organization: tuple[GraphObject, ...] = ()  # technicalNotificationMails can point at a partner's domain
    sign_ins: Mapping[str, tuple[GraphObject, ...]] = field(default_factory=dict)  # recent signIn per privileged user
    managers: Mapping[str, tuple[GraphObject, ...]] = field(default_factory=dict)  # users/{id}/manager, as a list of one
    authentication_methods: Mapping[str, tuple[GraphObject, ...]] = field(default_factory=dict)  # per privileged user
    diagnostic_settings: Mapping[str, tuple[GraphObject, ...]] = field(default_factory=dict)  # ARM, by tenant id
    # PIM for Groups, by the id of a group holding a role: eligible and active membership/ownership instances.
    pim_group_eligibility_instances: Mapping[str, tuple[GraphObject, ...]] = field(default_factory=dict)
    pim_group_assignment_instances: Mapping[str, tuple[GraphObject, ...]] = field(default_factory=dict)
    partner_sign_ins: tuple[GraphObject, ...] = ()  # service-provider sign-ins into this tenant, last 30 days
    partner_activity: tuple[GraphObject, ...] = ()  # per partner tenant: last sign-in seen, watched since when
    # Azure Resource Manager, in ARM's JSON: subscriptions, management groups, and per subscription its role
    # assignments, PIM-eligible schedule instances and role definitions (``properties`` as ARM nests them).
    azure_subscriptions: tuple[GraphObject, ...] = ()
    azure_management_groups: tuple[GraphObject, ...] = ()
    azure_role_assignments: tuple[GraphObject, ...] = ()
    azure_role_eligibility_schedule_instances: tuple[GraphObject, ...] = ()
    azure_role_definitions: tuple[GraphObject, ...] = ()

    # ---- lookups -------------------------------------------------------------------------------
    # Object ids are GUIDs that Graph returns in lower case but people paste in any case, so every
    # index is keyed by the lower-cased id.

    @cached_property
    def _app_role_names(self) -> dict[tuple[str, str], str]:
        return {
            (resource["id"].lower(), (role.get("id") or "").lower()): role.get("value") or role.get("id")
            for resource in self.service_principals
            for role in resource.get("appRoles") or []
        }

    def app_role_name(self, resource_id: str, app_role_id: str) -> str:
        """The permission an app role assignment grants, e.g. 'Directory.ReadWrite.All' (its id if unknown)."""
        return self._app_role_names.get((resource_id.lower(), (app_role_id or "").lower()), app_role_id or "")

    @cached_property
    def _users_by_id(self) -> dict[str, GraphObject]:
        return {u["id"].lower(): u for u in self.users if not u.get("deletedDateTime")}

    @cached_property
    def _deleted_ids(self) -> frozenset[str]:
        deleted = {u["id"].lower() for u in self.deleted_users}
        deleted.update(u["id"].lower() for u in self.users if u.get("deletedDateTime"))
        for assignment in self.role_assignments:
            principal = assignment.get("principal")
            if principal and principal.get("deletedDateTime"):
                deleted.add(principal["id"].lower())
        return frozenset(deleted)

    @cached_property
    def _by_sign_in_name(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for user in self._users_by_id.values():
            for name in (user.get("userPrincipalName"), user.get("mail")):
                if name:
                    names.setdefault(name.lower(), user["id"])
        return names

    @cached_property
    def _groups_by_id(self) -> dict[str, GraphObject]:
        return {g["id"].lower(): g for g in self.groups}

    @cached_property
    def _service_principals_by_id(self) -> dict[str, GraphObject]:
        return {sp["id"].lower(): sp for sp in self.service_principals}

    @cached_property
    def _role_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for definition in self.role_definitions:
            for key in (definition.get("id"), definition.get("templateId")):
                if key:
                    names[key.lower()] = definition.get("displayName") or key
        return names

    @cached_property
    def _role_templates(self) -> dict[str, str]:
        return {
            d["id"].lower(): (d.get("templateId") or d["id"]).lower() for d in self.role_definitions if d.get("id")
        }

    @cached_property
    def _registrations(self) -> dict[str, GraphObject]:
        return {r["id"].lower(): r for r in self.user_registration_details}

    @cached_property
    def _risks(self) -> dict[str, GraphObject]:
        return {r["id"].lower(): r for r in self.risky_users}

    @cached_property
    def _tenants(self) -> dict[str, GraphObject]:
        return {t["tenantId"].lower(): t for t in self.tenant_information if t.get("tenantId")}

    @cached_property
    def _foreign(self) -> dict[str, GraphObject]:
        found: dict[str, GraphObject] = {}
        for record in self.foreign_principals:
            key = record["id"].lower()
            found[key] = {**record, **found.get(key, {})}  # the first record wins, later ones fill gaps
        return found

    def foreign_principal(self, object_id: str) -> GraphObject | None:
        """What is known of a principal of another tenant holding a role here (its first record)."""
        return self._foreign.get(object_id.lower())

    def user(self, object_id: str) -> GraphObject | None:
        """The user with this object id, or None if unknown or deleted."""
        return self._users_by_id.get(object_id.lower())

    def group(self, object_id: str) -> GraphObject | None:
        return self._groups_by_id.get(object_id.lower())

    def service_principal(self, object_id: str) -> GraphObject | None:
        return self._service_principals_by_id.get(object_id.lower())

    def is_deleted(self, object_id: str) -> bool:
        """True for a deleted object that Graph may still list in a role: it is nobody's admin any more."""
        return object_id.lower() in self._deleted_ids and object_id.lower() not in self._users_by_id

    def resolve_principal(self, name_or_id: str) -> str | None:
        """The object id of the (not deleted) user named by UPN, mail or object id, in any case."""
        key = name_or_id.strip().lower()
        if key in self._users_by_id:
            return self._users_by_id[key]["id"]
        return self._by_sign_in_name.get(key)

    def display_name(self, object_id: str) -> str:
        """A name a reviewer recognises for any object id in the snapshot; the id itself otherwise."""
        key = object_id.lower()
        for index in (self._users_by_id, self._groups_by_id, self._service_principals_by_id):
            if key in index:
                return index[key].get("displayName") or object_id
        for user in self.deleted_users:
            if user["id"].lower() == key:
                return f"{user.get('displayName') or object_id} (deleted)"
        return object_id

    def role_name(self, role_definition_id: str) -> str:
        """The role's display name, e.g. "Global Administrator"; the id itself if the role is unknown."""
        return self._role_names.get(role_definition_id.lower(), role_definition_id)

    def role_template_id(self, role_definition_id: str) -> str:
        """The template id that names a role in every tenant (policy files use it); built-in roles
        already have id == templateId, custom roles may not."""
        return self._role_templates.get(role_definition_id.lower(), role_definition_id.lower())

    def members_of(self, group_id: str) -> tuple[GraphObject, ...] | None:
        """The users among a group's transitive members (devices, contacts and nested groups left out);
        None when the members were not collected, which is not the same as an empty group."""
        members = _lookup(self.group_members, group_id)
        if members is None:
            return None
        users = []
        for member in members:
            if member.get("@odata.type", _USER_TYPE) != _USER_TYPE or self.is_deleted(member["id"]):
                continue
            users.append(self.user(member["id"]) or member)
        return tuple(users)

    def pim_group_instances(
        self, group_id: str
    ) -> tuple[tuple[GraphObject, ...], tuple[GraphObject, ...]] | None:
        """(eligibility instances, assignment instances) of PIM for Groups for this group; None when either
        was not collected (an older snapshot, or a read that failed), which is not "no PIM for Groups"."""
        eligible = _lookup(self.pim_group_eligibility_instances, group_id)
        active = _lookup(self.pim_group_assignment_instances, group_id)
        if eligible is None or active is None:
            return None
        return eligible, active

    @cached_property
    def skus_by_id(self) -> dict[str, GraphObject]:
        """The tenant's subscribedSkus by lower-case skuId, to name a user's assignedLicenses."""
        return {(sku.get("skuId") or "").lower(): sku for sku in self.subscribed_skus}

    @cached_property
    def _activity(self) -> dict[str, GraphObject]:
        return {(row.get("userPrincipalName") or "").lower(): row for row in self.email_activity}

    def mail_activity(self, user_principal_name: str) -> GraphObject | None:
        """The user's row of the 30-day email activity report, if collected."""
        return self._activity.get(user_principal_name.lower())

    def registration(self, user_id: str) -> GraphObject | None:
        """The user's userRegistrationDetails (MFA state, methods registered), if collected."""
        return self._registrations.get(user_id.lower())

    def risk(self, user_id: str) -> GraphObject | None:
        return self._risks.get(user_id.lower())

    def recovery_emails(self, user_id: str) -> tuple[GraphObject, ...] | None:
        """The user's email authentication methods; None when they were not collected."""
        return _lookup(self.email_methods, user_id)

    def recovery_phones(self, user_id: str) -> tuple[GraphObject, ...] | None:
        """The user's phone authentication methods; None when they were not collected."""
        return _lookup(self.phone_methods, user_id)

    def access_assignments(self, relationship_id: str) -> tuple[GraphObject, ...] | None:
        """A GDAP relationship's access assignments (which partner groups got which roles); None if not collected."""
        return _lookup(self.delegated_admin_access_assignments, relationship_id)

    def manager_of(self, user_id: str) -> str | None:
        """The object id of the user's manager in Entra ID, when collected and set."""
        found = _lookup(self.managers, user_id)
        return found[0]["id"] if found else None

    def recent_sign_ins(self, user_id: str) -> tuple[GraphObject, ...] | None:
        """The user's recent auditLogs/signIns (location, crossTenantAccessType); None when not collected."""
        return _lookup(self.sign_ins, user_id)

    def mfa_devices(self, user_id: str) -> tuple[GraphObject, ...] | None:
        """The user's registered authentication methods (``users/{id}/authentication/methods``, each with
        its ``@odata.type``); None when they were not collected, which is not "none registered"."""
        return _lookup(self.authentication_methods, user_id)

    @cached_property
    def _partner_sign_ins(self) -> dict[str, list[GraphObject]]:
        by_tenant: dict[str, list[GraphObject]] = {}
        for entry in self.partner_sign_ins:
            by_tenant.setdefault((entry.get("homeTenantId") or "").lower(), []).append(entry)
        for entries in by_tenant.values():
            entries.sort(key=lambda e: e.get("createdDateTime") or "", reverse=True)
        return by_tenant

    def sign_ins_by_partner(self, tenant_id: str) -> list[GraphObject]:
        """The service-provider sign-ins of people from ``tenant_id`` that were collected, newest first."""
        return self._partner_sign_ins.get(tenant_id.lower(), [])

    def activity_of_partner(self, tenant_id: str) -> GraphObject | None:
        """What accessbot has seen of ``tenant_id``'s sign-ins over its collections (``partnerActivity``)."""
        return next((a for a in self.partner_activity if a["tenantId"].lower() == tenant_id.lower()), None)

    def entra_diagnostic_settings(self) -> tuple[GraphObject, ...] | None:
        """The tenant's Entra diagnostic settings (log exports) from ARM; None when ARM was not read."""
        return _lookup(self.diagnostic_settings, self.tenant_id)

    def tenant(self, tenant_id: str) -> GraphObject | None:
        """findTenantInformationByTenantId's answer for another tenant: its name and default domain."""
        return self._tenants.get(tenant_id.lower())

    def recovery_contact_owners(self) -> Iterator[tuple[str, GraphObject]]:
        """(user id, method) for every collected email and phone method, to find contacts shared between people."""
        for per_user in (self.email_methods, self.phone_methods):
            for user_id, methods in per_user.items():
                for method in methods:
                    yield user_id, method


def _lookup(per_object: Mapping[str, tuple[GraphObject, ...]], object_id: str) -> tuple[GraphObject, ...] | None:
    if object_id in per_object:
        return per_object[object_id]
    key = object_id.lower()
    for owner, values in per_object.items():
        if owner.lower() == key:
            return values
    return None


# ---- loading ------------------------------------------------------------------------------------


def load_snapshot(path: str | Path) -> TenantSnapshot:
    """Read a snapshot file written by the collector (or the shipped demo tenant)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as bad:
        raise SnapshotError(f"{path}: not valid JSON (line {bad.lineno}, column {bad.colno}: {bad.msg})") from bad
    try:
        return snapshot_from_dict(data)
    except SnapshotError as bad:
        raise SnapshotError(f"{path}: {bad}") from bad


def snapshot_from_dict(data: Any) -> TenantSnapshot:
    """Validate the envelope and the container types; the Graph objects inside are kept as they are."""
    if not isinstance(data, dict):
        raise SnapshotError("a snapshot must be one JSON object")
    tenant_id = _text(data, "tenantId")
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "tenant_name": _text(data, "tenantName") if "tenantName" in data else tenant_id,
        "collected_at": _timestamp(data.get("collectedAt")),
        "verified_domains": tuple(_strings(data, "verifiedDomains")),
        "complete": _flag(data, "complete"),
        "missing": tuple(_strings(data, "missing")),
        "unavailable": tuple(_strings(data, "unavailable")),
        "delta_links": _links(data.get("deltaLinks", {})),
    }
    for attribute, key in _LISTS:
        values[attribute] = _objects(data.get(key, []), key, _REQUIRED.get(key, ("id",)))
    for attribute, key in _KEYED:
        per_object = data.get(key, {})
        if not isinstance(per_object, dict):
            raise SnapshotError(f"'{key}' must map object ids to lists, not {type(per_object).__name__}")
        values[attribute] = {owner: _objects(items, f"{key}.{owner}", ("id",)) for owner, items in per_object.items()}
    return TenantSnapshot(**values)


def snapshot_to_dict(snapshot: TenantSnapshot) -> dict[str, Any]:
    """The file form of a snapshot: what ``load_snapshot`` reads back to an equal snapshot."""
    data: dict[str, Any] = {
        "tenantId": snapshot.tenant_id,
        "tenantName": snapshot.tenant_name,
        "verifiedDomains": list(snapshot.verified_domains),
        "collectedAt": snapshot.collected_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "complete": snapshot.complete,
        "missing": list(snapshot.missing),
        "unavailable": list(snapshot.unavailable),
        "deltaLinks": dict(snapshot.delta_links),
    }
    for attribute, key in _LISTS:
        data[key] = [dict(item) for item in getattr(snapshot, attribute)]
    for attribute, key in _KEYED:
        data[key] = {owner: [dict(item) for item in items] for owner, items in getattr(snapshot, attribute).items()}
    return data


def collection_keys() -> tuple[str, ...]:
    """The JSON key of every collection, for the collector to name what it could not read in ``missing``."""
    return tuple(key for _, key in _LISTS + _KEYED)


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SnapshotError(f"'{key}' must be a non-empty string")
    return value.strip()


def _strings(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SnapshotError(f"'{key}' must be a list of strings")
    return value


def _links(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SnapshotError("'deltaLinks' must map collection names to Graph deltaLink URLs")
    return dict(value)


def _flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise SnapshotError(f"'{key}' must be true or false")
    return value


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise SnapshotError("'collectedAt' must be an ISO 8601 timestamp such as 2026-11-23T08:00:00Z")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as bad:
        raise SnapshotError(f"'collectedAt' is not an ISO 8601 timestamp: {value!r}") from bad
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _objects(items: Any, key: str, required: tuple[str, ...]) -> tuple[GraphObject, ...]:
    if not isinstance(items, list):
        raise SnapshotError(f"'{key}' must be a list of Graph objects, not {type(items).__name__}")
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise SnapshotError(f"'{key}[{position}]' must be a JSON object")
        for name in required:
            if not isinstance(item.get(name), str):
                raise SnapshotError(f"'{key}[{position}]' has no '{name}'")
    return tuple(items)


__all__ = [
    "GraphObject",
    "SnapshotError",
    "TenantSnapshot",
    "collection_keys",
    "load_snapshot",
    "snapshot_from_dict",
    "snapshot_to_dict",
]
