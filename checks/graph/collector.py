"""Collect one tenant through Microsoft Graph v1.0 into a ``TenantSnapshot``.

The order of work follows what each step needs to know:
1. tenant-wide lists, each paged to its end: role definitions, direct role assignments *and* PIM
   schedule instances (all with ``$expand=principal``), deleted users, risky users, contracts,
   cross-tenant partners, service principals, SKUs, the organization, the email activity report;
2. principals of other tenants (a partner's GDAP/DAP security group) become ``foreignPrincipals`` records,
   not failures: ``$expand=principal`` names their home tenant (``organizationId``) and their name, and a
   principal Graph did not expand is looked up, where a 404 ``Request_ResourceNotFound`` means it lives
   elsewhere too; their tenants are named through ``findTenantInformationByTenantId`` with the partners';
3. role-holding groups are expanded to their transitive members, and PIM for Groups is asked, group by group
   (its API requires a ``groupId`` filter), who is eligible for each one's membership and who is in it by
   activation or by assignment, so an eligible member is reviewed as eligible and not missed or taken for a
   permanent admin; a nested group eligible as a whole is expanded too;
4. everything asked per privileged user, per reviewed app and per partner tenant goes out in ``$batch``
   requests of 20, so the request count grows with ⌈items / 20⌉ instead of with the items.

Nothing that failed is ever written as an empty list: a failed collection is named in ``missing`` and
the snapshot is incomplete. Licence-gated data the tenant does not have (Entra ID P1/P2) is named in
``unavailable`` instead, and the snapshot stays complete. A snapshot that suddenly holds far fewer
privileged principals than the last complete one is not believed either (see ``max_drop``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from msgraph import GraphServiceClient

from checks.graph.batching import BatchRequest, BatchResponse, GraphError, GraphReader
from checks.graph.budget import TenantBudget
from checks.graph.client import DEFAULT_RETRY, RetrySettings
from checks.graph.reports import names_concealed, parse_email_activity
from checks.graph.partner_activity import carried_activity
from checks.registry import PARTNER_SIGN_IN_WINDOW_DAYS, SIGN_IN_WINDOW_DAYS
from checks.snapshot import GraphObject, TenantSnapshot
from checks.subjects import MICROSOFT_TENANTS

log = logging.getLogger(__name__)

USER_PROPERTIES = (
    "id", "displayName", "userPrincipalName", "mail", "userType", "accountEnabled", "onPremisesSyncEnabled",
    "onPremisesImmutableId", "assignedLicenses", "signInActivity", "createdDateTime", "externalUserState",
)
ROLE_DEFINITION_PROPERTIES = ("id", "templateId", "displayName", "description", "isBuiltIn", "isEnabled")
SERVICE_PRINCIPAL_PROPERTIES = (
    "id", "appId", "displayName", "appOwnerOrganizationId", "servicePrincipalType", "accountEnabled",
    "publisherName", "verifiedPublisher", "appRoles",
)
DELETED_USER_PROPERTIES = ("id", "displayName", "userPrincipalName", "mail", "userType", "deletedDateTime")
MEMBER_PROPERTIES = ("id", "displayName", "userPrincipalName")
MANAGER_PROPERTIES = ("id", "displayName", "userPrincipalName", "mail")
SIGN_INS_PER_PAGE = 50

# Data that exists only with an Entra ID licence; a 403 for it is "not in this tenant", not a failure.
LICENCE_GATED: Mapping[str, str] = {
    "signInActivity": "Microsoft Entra ID P1 or P2",
    "userRegistrationDetails": "Microsoft Entra ID P1 or P2",
    "signIns": "Microsoft Entra ID P1 or P2",
    "partnerSignIns": "Microsoft Entra ID P1 or P2",
    "riskyUsers": "Microsoft Entra ID P2",
    # PIM for Groups; only Graph's AadPremiumLicenseRequired says so (read_pim_groups), any other 401/403 is the
    # permission missing
    "pimGroupEligibilityScheduleInstances": "Microsoft Entra ID P2 or Microsoft Entra ID Governance",
    "pimGroupAssignmentScheduleInstances": "Microsoft Entra ID P2 or Microsoft Entra ID Governance",
}
_NO_PREMIUM = "AadPremiumLicenseRequired"  # what PIM answers (400 or 403) in a tenant without Entra ID P2
# The application permission that lets us read each collection, named when Graph refuses for lack of it.
READ_PERMISSIONS: Mapping[str, str] = {
    "roleDefinitions": "RoleManagement.Read.Directory",
    "roleAssignments": "RoleManagement.Read.Directory",
    "roleEligibilityScheduleInstances": "RoleManagement.Read.Directory",
    "roleAssignmentScheduleInstances": "RoleManagement.Read.Directory",
    "users": "User.Read.All and AuditLog.Read.All",
    "deletedUsers": "User.Read.All",
    "groupMembers": "GroupMember.Read.All",
    "foreignPrincipals": "Directory.Read.All",
    "servicePrincipals": "Application.Read.All",
    "appRoleAssignments": "Application.Read.All",
    "oauth2PermissionGrants": "Directory.Read.All",
    "subscribedSkus": "Organization.Read.All",
    "userRegistrationDetails": "AuditLog.Read.All",
    "emailMethods": "UserAuthenticationMethod.Read.All",
    "phoneMethods": "UserAuthenticationMethod.Read.All",
    "signIns": "AuditLog.Read.All",
    "partnerSignIns": "AuditLog.Read.All",
    "riskyUsers": "IdentityRiskyUser.Read.All",
    "emailActivity": "Reports.Read.All",
    "contracts": "Directory.Read.All",
    "crossTenantPartners": "Policy.Read.All",
    "tenantInformation": "CrossTenantInformation.ReadBasic.All",
    "organization": "Directory.Read.All",
    "managers": "User.Read.All",
    "authenticationMethods": "UserAuthenticationMethod.Read.All",
    "pimGroupEligibilityScheduleInstances": "PrivilegedEligibilitySchedule.Read.AzureADGroup",
    "pimGroupAssignmentScheduleInstances": "PrivilegedAssignmentSchedule.Read.AzureADGroup",
}
# PIM for Groups' lists, each asked once per role-holding group: (snapshot key, path under the version root).
PIM_GROUP_LISTS: tuple[tuple[str, str], ...] = (
    ("pimGroupEligibilityScheduleInstances", "/identityGovernance/privilegedAccess/group/eligibilityScheduleInstances"),
    ("pimGroupAssignmentScheduleInstances", "/identityGovernance/privilegedAccess/group/assignmentScheduleInstances"),
)
_NO_PERMISSION = "Authorization_RequestDenied"
_NOT_FOUND = "Request_ResourceNotFound"
_USER = "#microsoft.graph.user"
_GROUP = "#microsoft.graph.group"
_SERVICE_PRINCIPAL = "#microsoft.graph.servicePrincipal"
# Per-object collections and the noun a `missing` entry counts them in.
_PER_OBJECT: Mapping[str, str] = {
    "users": "users",
    "userRegistrationDetails": "users",
    "emailMethods": "users",
    "phoneMethods": "users",
    "signIns": "users",
    "appRoleAssignments": "service principals",
    "oauth2PermissionGrants": "service principals",
    "tenantInformation": "tenants",
    "foreignPrincipals": "unexpanded principals",
    "managers": "reviewers",
    "authenticationMethods": "users",
    "pimGroupEligibilityScheduleInstances": "groups",
    "pimGroupAssignmentScheduleInstances": "groups",
}


async def collect_tenant(
    client: GraphServiceClient,
    tenant_id: str,
    *,
    now: datetime,
    concurrency: int = 8,
    previous: TenantSnapshot | None = None,
    retry: RetrySettings = DEFAULT_RETRY,
    max_drop: float = 0.2,
    reviewers: Iterable[str] = (),
    budget: TenantBudget | None = None,
) -> TenantSnapshot:
    """Read ``tenant_id`` through ``client`` (at most ``concurrency`` requests in flight).

    With a ``budget`` the tenant's throttling is honoured for the whole tenant (checks/graph/budget.py), and a
    tenant throttled past it raises ``TenantThrottled`` rather than yielding a partial snapshot.

    ``reviewers`` (object ids or UPNs, as the policy names them) are read as users too, with their
    manager, so the policy's names resolve and escalations can reach the reviewers' managers.

    ``previous`` is the last complete snapshot of the same tenant: if the privileged principals fell by
    more than ``max_drop`` (a share) since then, the new snapshot is marked incomplete rather than
    believed, so a half-failed read can never close everybody's reviews as "no longer an admin".
    """
    run = _Run(GraphReader(client, concurrency=concurrency, retry=retry, budget=budget), tenant_id.lower())
    snapshot = await run.collect(tenant_id, now, _unique_ids(r.strip() for r in reviewers if r.strip()), previous)
    if previous is not None:  # a delta link still reads every change since it was issued: keep tracking
        snapshot = dataclasses.replace(snapshot, delta_links=previous.delta_links)
    drop = _implausible_drop(snapshot, previous, max_drop)
    if drop:
        snapshot = dataclasses.replace(snapshot, complete=False, missing=(*snapshot.missing, drop))
    log.info(
        "Collected tenant %s: %d requests, %d batch items re-sent, complete=%s",
        tenant_id, run.reader.requests, run.reader.batch_retries, snapshot.complete,
    )
    return snapshot


# Tenant-wide lists a change check takes from the last complete snapshot (role assignments are always re-read:
# Graph v1.0 offers no delta for them, and they are what the review is about).
_REUSABLE_LISTS: Mapping[str, str] = {
    "roleDefinitions": "role_definitions", "deletedUsers": "deleted_users", "riskyUsers": "risky_users",
    "contracts": "contracts", "crossTenantPartners": "cross_tenant_partners",
    "servicePrincipals": "service_principals", "subscribedSkus": "subscribed_skus", "organization": "organization",
}
USERS_DELTA = f"/users/delta?$select={','.join(p for p in USER_PROPERTIES if p != 'signInActivity')}"
GROUPS_DELTA = "/groups/delta?$select=displayName,members"
_EXPIRED_TOKEN = frozenset({400, 410})  # syncStateNotFound / resyncRequired: the delta link is older than 7 days


async def recollect_tenant(
    client: GraphServiceClient,
    previous: TenantSnapshot,
    *,
    now: datetime,
    concurrency: int = 8,
    retry: RetrySettings = DEFAULT_RETRY,
    max_drop: float = 0.2,
    reviewers: Iterable[str] = (),
    budget: TenantBudget | None = None,
) -> TenantSnapshot:
    """A change check between full collections: re-read the role assignments, read what changed through
    ``/users/delta`` and ``/groups/delta`` since the links ``previous`` holds, and ask Graph only about new or
    changed principals; everything else is taken from ``previous``, the tenant's last complete snapshot.

    What it does not refresh for unchanged people (their authentication methods, MFA registration, sign-ins,
    the mail activity report) is refreshed by the next full collection, which a review period opens from.
    The first change check after a full collection has no delta link yet: it reads every user and group once
    (pages of up to 999) to start tracking, and compares them with ``previous``. A previous snapshot that is
    incomplete, or a delta round Graph refuses, makes this a full collection."""
    if not previous.complete:
        return await collect_tenant(client, previous.tenant_id, now=now, concurrency=concurrency, previous=previous,
                                    retry=retry, max_drop=max_drop, reviewers=reviewers, budget=budget)
    reader = GraphReader(client, concurrency=concurrency, retry=retry, budget=budget)
    try:
        (users, users_link), (groups, groups_link) = await asyncio.gather(
            _delta_round(reader, previous.delta_links.get("users"), USERS_DELTA),
            _delta_round(reader, previous.delta_links.get("groups"), GROUPS_DELTA),
        )
    except GraphError as refused:
        log.info("Delta query refused for tenant %s (%s): collecting it in full", previous.tenant_id, refused.describe())
        return await collect_tenant(client, previous.tenant_id, now=now, concurrency=concurrency, previous=previous,
                                    retry=retry, max_drop=max_drop, reviewers=reviewers, budget=budget)
    tracked = tuple(p for p in USER_PROPERTIES if p != "signInActivity")
    changed_users = frozenset(
        u["id"].lower() for u in users
        if "@removed" in u or any(u.get(k) != (previous.user(u["id"]) or {}).get(k) for k in tracked if k in u)
    )
    baseline = "groups" not in previous.delta_links  # a first round reports every group: re-expand the role holders
    changed_groups = frozenset(g["id"].lower() for g in groups) if not baseline else frozenset(
        g.lower() for g in previous.group_members)
    run = _Run(reader, previous.tenant_id.lower(), _Reuse(previous, changed_users, changed_groups))
    snapshot = await run.collect(previous.tenant_id, now, _unique_ids(r.strip() for r in reviewers if r.strip()))
    snapshot = dataclasses.replace(snapshot, delta_links={"users": users_link, "groups": groups_link})
    drop = _implausible_drop(snapshot, previous, max_drop)
    if drop:
        snapshot = dataclasses.replace(snapshot, complete=False, missing=(*snapshot.missing, drop))
    log.info("Change check of tenant %s: %d requests, %d users and %d groups changed, complete=%s",
             previous.tenant_id, reader.requests, len(changed_users), len(changed_groups), snapshot.complete)
    return snapshot


async def _delta_round(reader: GraphReader, link: str | None, first: str) -> tuple[list[dict[str, Any]], str]:
    """Every item of one delta round and the deltaLink that ends it; a link Graph no longer knows (older than
    seven days) starts a new round from ``first``."""
    if link is not None:
        try:
            return await _follow_delta(reader, link)
        except GraphError as expired:
            if expired.status not in _EXPIRED_TOKEN:
                raise
    return await _follow_delta(reader, first)


async def _follow_delta(reader: GraphReader, url: str) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        page = await reader.get_json(next_url)
        items.extend(page.get("value") or [])
        if page.get("@odata.deltaLink"):
            return items, page["@odata.deltaLink"]
        next_url = page.get("@odata.nextLink")
    raise GraphError(200, "NoDeltaLink", "a delta round ended without @odata.deltaLink")


def privileged_principals(snapshot: TenantSnapshot) -> frozenset[str]:
    """Every principal (lower-case id) holding a role, directly, through PIM, through a role-assignable
    group or from another tenant; deleted principals are nobody's admins and are left out."""
    ids: set[str] = set()
    for item in (
        *snapshot.role_assignments,
        *snapshot.role_eligibility_schedule_instances,
        *snapshot.role_assignment_schedule_instances,
    ):
        ids.add(item["principalId"].lower())
    ids.update(record["id"].lower() for record in snapshot.foreign_principals)
    for members in snapshot.group_members.values():
        ids.update(m["id"].lower() for m in members if m.get("@odata.type", _USER) == _USER)
    for instances in snapshot.pim_group_eligibility_instances.values():  # eligible for a role-holding group
        ids.update(i["principalId"].lower() for i in instances
                   if (i.get("accessId") or "").lower() == "member" and isinstance(i.get("principalId"), str)
                   and (i.get("principal") or {}).get("@odata.type", _USER) == _USER)
    return frozenset(i for i in ids if not snapshot.is_deleted(i))


def _implausible_drop(snapshot: TenantSnapshot, previous: TenantSnapshot | None, max_drop: float) -> str | None:
    if previous is None or not previous.complete:
        return None
    before, after = len(privileged_principals(previous)), len(privileged_principals(snapshot))
    if before and after < before * (1 - max_drop):
        return (
            f"privileged principals fell from {before} to {after} since the last complete collection "
            f"({previous.collected_at:%Y-%m-%d %H:%M} UTC): not believed"
        )
    return None


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """A single-object answer without its ``@odata.context`` (list items never carry one)."""
    return {k: v for k, v in item.items() if k != "@odata.context"}


@dataclass
class _Outcome:
    """How the per-object requests of one collection went."""

    asked: int = 0
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    licence_refusals: int = 0


@dataclass(frozen=True)
class _Reuse:
    """A change check's licence to take unchanged data from the last complete snapshot instead of Graph:
    everything but the role assignments, the users ``/users/delta`` reported changed and the groups
    ``/groups/delta`` reported changed (or that hold roles and were never tracked)."""

    previous: TenantSnapshot
    changed_users: frozenset[str]
    changed_groups: frozenset[str]

    def user_evidence(self, uid: str) -> dict[str, Any] | None:
        """The five per-user answers of an unchanged user, from the previous snapshot; None to ask Graph."""
        previous = self.previous
        if uid.lower() in self.changed_users or previous.user(uid) is None:
            return None
        emails, phones = previous.recovery_emails(uid), previous.recovery_phones(uid)
        if emails is None or phones is None:
            return None
        return {"users": previous.user(uid), "userRegistrationDetails": previous.registration(uid),
                "emailMethods": emails, "phoneMethods": phones, "signIns": previous.recent_sign_ins(uid)}


class _Run:
    """One collection: what was read so far, and what could not be."""

    def __init__(self, reader: GraphReader, own_tenant: str, reuse: _Reuse | None = None) -> None:
        self.reader = reader
        self.own_tenant = own_tenant
        self.reuse = reuse
        self.missing: list[str] = []
        self.unavailable: list[str] = list(reuse.previous.unavailable) if reuse else []

    # ---- bookkeeping -----------------------------------------------------------------------------

    def failed(self, key: str, error: GraphError) -> None:
        if _is_licence_refusal(key, error):
            self.unavailable.append(_unavailable(key))
            return
        hint = f"; needs {READ_PERMISSIONS[key]}" if error.code == _NO_PERMISSION and key in READ_PERMISSIONS else ""
        self.missing.append(f"{key}: could not be read ({error.describe()}{hint})")

    def account(self, key: str, outcome: _Outcome) -> None:
        """Turn per-object failures into a ``missing`` (or ``unavailable``) entry."""
        if outcome.asked and outcome.licence_refusals == outcome.asked:
            self.unavailable.append(_unavailable(key))
            return
        failed = sum(outcome.failures.values())
        if failed:
            noun = _PER_OBJECT[key]
            reasons = ", ".join(sorted(outcome.failures))
            self.missing.append(f"{key}: {failed} of {outcome.asked} {noun} failed ({reasons})")

    async def read_list(self, key: str, path: str) -> list[dict[str, Any]] | None:
        if self.reuse is not None and key in _REUSABLE_LISTS:
            return [dict(item) for item in getattr(self.reuse.previous, _REUSABLE_LISTS[key])]
        try:
            return await self.reader.list_all(path)
        except GraphError as error:
            self.failed(key, error)
            return None

    # ---- the collection --------------------------------------------------------------------------

    async def collect(
        self, tenant_id: str, now: datetime, reviewers: list[str], previous: TenantSnapshot | None = None
    ) -> TenantSnapshot:
        (
            definitions, assignments, eligible, scheduled, deleted, risky, contracts, partners, apps, skus,
            organization, report, partner_sign_ins,
        ) = await asyncio.gather(
            self.read_list(
                "roleDefinitions",
                f"/roleManagement/directory/roleDefinitions?$select={','.join(ROLE_DEFINITION_PROPERTIES)}",
            ),
            self.read_list("roleAssignments", "/roleManagement/directory/roleAssignments?$expand=principal"),
            self.read_list(
                "roleEligibilityScheduleInstances",
                "/roleManagement/directory/roleEligibilityScheduleInstances?$expand=principal",
            ),
            self.read_list(
                "roleAssignmentScheduleInstances",
                "/roleManagement/directory/roleAssignmentScheduleInstances?$expand=principal",
            ),
            self.read_list(
                "deletedUsers",
                f"/directory/deletedItems/microsoft.graph.user?$select={','.join(DELETED_USER_PROPERTIES)}&$top=999",
            ),
            self.read_list("riskyUsers", "/identityProtection/riskyUsers"),
            self.read_list("contracts", "/contracts"),
            self.read_list("crossTenantPartners", "/policies/crossTenantAccessPolicy/partners"),
            self.read_list(
                "servicePrincipals", f"/servicePrincipals?$select={','.join(SERVICE_PRINCIPAL_PROPERTIES)}&$top=999"
            ),
            self.read_list("subscribedSkus", "/subscribedSkus"),
            self.read_list("organization", "/organization"),
            self.read_report(),
            self.read_list("partnerSignIns", _partner_sign_ins_url(now)),
        )
        grants = [*(assignments or []), *(eligible or []), *(scheduled or [])]
        deleted_ids = {u["id"].lower() for u in deleted or []}
        deleted_ids.update(
            g["principalId"].lower() for g in grants if (g.get("principal") or {}).get("deletedDateTime")
        )
        homes = self.foreign_homes(grants, deleted_ids)
        not_here = deleted_ids | homes.keys()
        principals = {
            g["principalId"].lower(): g["principal"]
            for g in grants
            if g.get("principal") and g["principalId"].lower() not in not_here
        }
        foreign = await self.resolve_unexpanded(grants, principals, deleted_ids, homes)
        groups = _unique(p for p in principals.values() if p.get("@odata.type") == _GROUP)
        members, pim = await asyncio.gather(self.expand_groups(groups), self.read_pim_groups(groups))
        pim_eligible = [i for per_group in pim["pimGroupEligibilityScheduleInstances"].values() for i in per_group
                    if (i.get("accessId") or "").lower() == "member" and i.get("principalId")]
        nested = _unique(
            {"id": i["principalId"], **(i.get("principal") or {})} for i in pim_eligible
            if (i.get("principal") or {}).get("@odata.type") == _GROUP and i["principalId"] not in members
        )
        if nested:  # a group eligible as a whole: its own members may activate the membership
            members.update(await self.expand_groups(nested))
            groups = _unique([*groups, *nested])
        eligible_users = [i["principalId"] for i in pim_eligible if (i.get("principal") or {}).get("@odata.type", _USER) == _USER]

        user_ids = _unique_ids(
            [p["id"] for p in principals.values() if p.get("@odata.type") == _USER]
            + [m["id"] for ms in members.values() for m in ms if m.get("@odata.type", _USER) == _USER]
            + eligible_users,
            exclude=deleted_ids,
        )
        listed_apps = {sp["id"].lower(): sp for sp in apps or []}
        role_apps = [p for p in principals.values() if p.get("@odata.type") == _SERVICE_PRINCIPAL]
        reviewed_apps = _unique(
            [listed_apps.get(p["id"].lower(), p) for p in role_apps]
            + [sp for sp in apps or [] if self.is_partner_app(sp)]
        )
        other_tenants = _unique_ids(
            [c.get("customerId") or "" for c in contracts or []]
            + [p.get("tenantId") or "" for p in partners or []]
            + [f.get("tenantId") or "" for f in foreign]
            + [sp.get("appOwnerOrganizationId") or "" for sp in reviewed_apps if self.is_partner_app(sp)],
            exclude={self.own_tenant, ""},
        )
        known_names = {
            (name or "").lower()
            for p in [*principals.values(), *(m for ms in members.values() for m in ms), *({"id": u} for u in eligible_users)]
            if p["id"].lower() not in deleted_ids
            for name in (p["id"], p.get("userPrincipalName"))
        }
        per_object = await self.read_per_object(
            user_ids, [r for r in reviewers if r.lower() not in known_names], reviewers,
            [sp["id"] for sp in reviewed_apps], other_tenants, now - timedelta(days=SIGN_IN_WINDOW_DAYS),
        )

        users = per_object["users"]
        email_activity = self.mail_users(report, users) if report is not None else []
        resources = {a.get("resourceId", "").lower() for a in per_object["appRoleAssignments"]}
        resources.update(g.get("resourceId", "").lower() for g in per_object["oauth2PermissionGrants"])
        kept_apps = _unique(reviewed_apps + [sp for sid, sp in listed_apps.items() if sid in resources])
        org = organization or []
        return TenantSnapshot(
            tenant_id=tenant_id,
            tenant_name=(org[0].get("displayName") if org else None) or tenant_id,
            collected_at=now,
            verified_domains=tuple(d["name"] for o in org[:1] for d in o.get("verifiedDomains") or [] if d.get("name")),
            complete=not self.missing,
            missing=tuple(self.missing),
            unavailable=tuple(dict.fromkeys(self.unavailable)),
            role_definitions=tuple(definitions or ()),
            role_assignments=tuple(assignments or ()),
            role_eligibility_schedule_instances=tuple(eligible or ()),
            role_assignment_schedule_instances=tuple(scheduled or ()),
            users=tuple(users),
            deleted_users=tuple(deleted or ()),
            groups=tuple(_plain(g) for g in groups),
            group_members=members,
            service_principals=tuple(_plain(sp) for sp in kept_apps),
            app_role_assignments=tuple(per_object["appRoleAssignments"]),
            oauth2_permission_grants=tuple(per_object["oauth2PermissionGrants"]),
            subscribed_skus=tuple(skus or ()),
            user_registration_details=tuple(per_object["userRegistrationDetails"]),
            email_methods=per_object["emailMethods"],
            phone_methods=per_object["phoneMethods"],
            risky_users=tuple(risky or ()),
            email_activity=tuple(email_activity),
            contracts=tuple(contracts or ()),
            cross_tenant_partners=tuple(partners or ()),
            tenant_information=tuple(per_object["tenantInformation"]),
            foreign_principals=tuple(foreign),
            organization=tuple(org),
            sign_ins=per_object["signIns"],
            managers=per_object["managers"],
            authentication_methods=per_object["authenticationMethods"],
            pim_group_eligibility_instances=pim["pimGroupEligibilityScheduleInstances"],
            pim_group_assignment_instances=pim["pimGroupAssignmentScheduleInstances"],
            partner_sign_ins=tuple(partner_sign_ins or ()),
            partner_activity=tuple(carried_activity(previous, partner_sign_ins, other_tenants, now)),
        )

    def is_partner_app(self, app: GraphObject) -> bool:
        """An app published by another tenant that is not Microsoft (Microsoft's own first-party apps
        number in the hundreds in every tenant and are no partner's access)."""
        owner = (app.get("appOwnerOrganizationId") or "").lower()
        return bool(owner) and owner != self.own_tenant and owner not in MICROSOFT_TENANTS

    def mail_users(self, report: list[dict[str, Any]], users: list[GraphObject]) -> list[dict[str, Any]]:
        """The report's rows for the users collected (the report covers everyone in the tenant)."""
        if names_concealed(report):
            self.unavailable.append(
                "emailActivity: user names are concealed in usage reports (Microsoft 365 admin centre > "
                "Settings > Org settings > Reports)"
            )
            return []
        upns = {(u.get("userPrincipalName") or "").lower() for u in users}
        return [row for row in report if row["userPrincipalName"].lower() in upns]

    async def read_report(self) -> list[dict[str, Any]] | None:
        if self.reuse is not None:  # the previous rows of the reviewed users (the report is refreshed daily at best)
            return [dict(row) for row in self.reuse.previous.email_activity]
        try:
            content = await self.reader.get_bytes("/reports/getEmailActivityUserDetail(period='D30')")
        except GraphError as error:
            self.failed("emailActivity", error)
            return None
        return parse_email_activity(content)

    def foreign_homes(self, grants: list[dict[str, Any]], deleted_ids: set[str]) -> dict[str, GraphObject]:
        """Principals that say they live in another tenant, by lower-case id: what ``$expand=principal``
        shows of a partner's GDAP/DAP group (its ``organizationId``, name and type), or the assignment's
        ``principalOrganizationId``. Each maps to ``{tenantId, displayName?, @odata.type?}``."""
        homes: dict[str, GraphObject] = {}
        for grant in grants:
            pid = grant["principalId"].lower()
            principal = grant.get("principal") or {}
            home = (grant.get("principalOrganizationId") or principal.get("organizationId") or "").lower()
            if not home or home == self.own_tenant or pid in deleted_ids:
                continue
            known = {k: principal[k] for k in ("@odata.type", "displayName") if principal.get(k)}
            homes[pid] = {**homes.get(pid, {}), **known, "tenantId": home}
        return homes

    async def resolve_unexpanded(
        self, grants: list[dict[str, Any]], principals: dict[str, GraphObject], deleted_ids: set[str],
        homes: Mapping[str, GraphObject],
    ) -> list[dict[str, Any]]:
        """The principals of other tenants, recorded once per role and scope they hold: those whose home
        tenant Graph named (``homes``), and those Graph did not expand at all, looked up one by one: a
        found one joins ``principals``, a 404 means another tenant's principal whose home is unknown."""
        unexpanded = _unique_ids(
            [g["principalId"] for g in grants if g["principalId"].lower() not in principals],
            exclude=deleted_ids | homes.keys(),
        )
        foreign: dict[str, GraphObject] = dict(homes)
        if unexpanded:
            answers = await self.reader.batch([BatchRequest(pid, f"/directoryObjects/{pid}") for pid in unexpanded])
            outcome = _Outcome(asked=len(unexpanded))
            for pid in unexpanded:
                answer = answers[pid]
                if answer.ok and isinstance(answer.body, dict):
                    principals[pid.lower()] = _plain(answer.body)
                    outcome.ok += 1
                elif answer.status == 404:
                    foreign[pid.lower()] = {"error": _NOT_FOUND}
                    outcome.ok += 1
                else:
                    outcome.failures[answer.error().describe()] += 1
            self.account("foreignPrincipals", outcome)
        records: dict[tuple[str, str, str], dict[str, Any]] = {}
        for grant in grants:
            pid = grant["principalId"]
            if pid.lower() not in foreign:
                continue
            scope = grant.get("directoryScopeId") or "/"
            records.setdefault(
                (pid.lower(), grant["roleDefinitionId"].lower(), scope),
                {
                    "id": pid,
                    "roleDefinitionId": grant["roleDefinitionId"],
                    "directoryScopeId": scope,
                    "assignmentId": grant["id"],
                    **foreign[pid.lower()],
                },
            )
        return list(records.values())

    async def expand_groups(self, groups: list[GraphObject]) -> dict[str, tuple[GraphObject, ...]]:
        """Transitive members of every role-holding group, each paged to its end."""
        select = ",".join(MEMBER_PROPERTIES)

        async def members(group_id: str) -> list[dict[str, Any]] | GraphError:
            try:
                return await self.reader.list_all(f"/groups/{group_id}/transitiveMembers?$select={select}&$top=999")
            except GraphError as error:
                return error

        expanded: dict[str, tuple[GraphObject, ...]] = {}
        if self.reuse is not None:
            kept = {g["id"]: self.reuse.previous.group_members.get(g["id"]) for g in groups
                    if g["id"].lower() not in self.reuse.changed_groups}
            expanded.update({gid: members for gid, members in kept.items() if members is not None})
            groups = [g for g in groups if g["id"] not in expanded]
        answers = await asyncio.gather(*(members(g["id"]) for g in groups))
        failures: Counter[str] = Counter()
        for group, answer in zip(groups, answers, strict=True):
            if isinstance(answer, GraphError):
                failures[answer.describe()] += 1
            else:
                expanded[group["id"]] = tuple(answer)
        if failures:
            self.missing.append(
                f"groupMembers: {sum(failures.values())} of {len(groups)} groups failed ({', '.join(sorted(failures))})"
            )
        return expanded

    async def read_pim_groups(self, groups: list[GraphObject]) -> dict[str, dict[str, tuple[GraphObject, ...]]]:
        """PIM for Groups' eligibility and assignment schedule instances of every role-holding group (owners and
        members, with ``principal`` expanded), batched, each list paged to its end. A group whose answer failed
        is left out of that list, so it reads as "not collected", never as "nobody eligible". A 401 or 403 names
        the permission whatever error code comes with it, unless the code is ``AadPremiumLicenseRequired``: a
        tenant without Entra ID P2 (or ID Governance) cannot have set up PIM for Groups, so that is recorded as
        unavailable and the snapshot stays complete, its groups' members counted as members."""
        found: dict[str, dict[str, tuple[GraphObject, ...]]] = {key: {} for key, _ in PIM_GROUP_LISTS}
        if not groups:
            return found
        requests = [
            BatchRequest((key, g["id"]), f"{path}?$filter=" + quote(f"groupId eq '{g['id']}'") + "&$expand=principal")
            for key, path in PIM_GROUP_LISTS for g in groups
        ]
        answers = await self.reader.batch(requests)
        outcomes: dict[str, _Outcome] = defaultdict(_Outcome)
        refused: set[str] = set()
        for request in requests:
            key, group_id = request.key  # type: ignore[misc]
            answer, outcome = answers[request.key], outcomes[key]
            outcome.asked += 1
            if answer.status == 404:  # the group went away since its role assignment was listed
                outcome.ok += 1
                continue
            try:
                if not answer.ok:
                    raise answer.error()
                values = await self.values_of(answer.body if isinstance(answer.body, dict) else {})
            except GraphError as error:
                outcome.failures[error.describe()] += 1
                if error.code == _NO_PREMIUM:
                    outcome.licence_refusals += 1
                refused.update([key] if error.status in (401, 403) and error.code != _NO_PREMIUM else [])
                continue
            outcome.ok += 1
            found[key][group_id] = tuple(values)
        for key, _ in PIM_GROUP_LISTS:
            if outcomes[key].licence_refusals == outcomes[key].asked:
                self.unavailable.append(_unavailable(key))
                continue
            failed = sum(outcomes[key].failures.values())
            if failed:
                hint = f"; needs {READ_PERMISSIONS[key]}" if key in refused else ""
                self.missing.append(
                    f"{key}: {failed} of {outcomes[key].asked} groups failed ({', '.join(sorted(outcomes[key].failures))}"
                    f"{hint})"
                )
        return found

    async def read_per_object(
        self, user_ids: list[str], other_people: list[str], reviewers: list[str], app_ids: list[str],
        tenant_ids: list[str], sign_ins_since: datetime,
    ) -> dict[str, Any]:
        """Every per-user, per-reviewer, per-app and per-tenant request, batched together 20 at a time.
        ``other_people`` are reviewers who hold no role, read as users too so the policy's names resolve.
        Sign-ins are asked for the checks' window only (``sign_ins_since``) and read to the last page,
        so a busy admin's week is seen whole however many sign-ins it holds."""
        since = sign_ins_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        reused = self.reused_evidence(user_ids, app_ids, tenant_ids)
        user_ids = [uid for uid in user_ids if uid not in reused["user_ids"]]
        app_ids = [sid for sid in app_ids if sid not in reused["app_ids"]]
        tenant_ids = [tid for tid in tenant_ids if tid not in reused["tenant_ids"]]
        requests = [
            BatchRequest(("users", name), _user_url(quote(name, safe="@"), USER_PROPERTIES)) for name in other_people
        ]
        for reviewer in reviewers:
            requests.append(
                BatchRequest(
                    ("managers", reviewer),
                    f"/users/{quote(reviewer, safe='@')}/manager?$select={','.join(MANAGER_PROPERTIES)}",
                )
            )
        for uid in user_ids:
            requests += [
                BatchRequest(("users", uid), _user_url(uid, USER_PROPERTIES)),
                BatchRequest(("userRegistrationDetails", uid), f"/reports/authenticationMethods/userRegistrationDetails/{uid}"),
                BatchRequest(("emailMethods", uid), f"/users/{uid}/authentication/emailMethods"),
                BatchRequest(("phoneMethods", uid), f"/users/{uid}/authentication/phoneMethods"),
                BatchRequest(("authenticationMethods", uid), f"/users/{uid}/authentication/methods"),
                BatchRequest(
                    ("signIns", uid),
                    "/auditLogs/signIns?$filter=" + quote(f"userId eq '{uid}' and createdDateTime ge {since}")
                    + f"&$top={SIGN_INS_PER_PAGE}",
                ),
            ]
        for sid in app_ids:
            requests += [
                BatchRequest(("appRoleAssignments", sid), f"/servicePrincipals/{sid}/appRoleAssignments"),
                BatchRequest(("oauth2PermissionGrants", sid), f"/servicePrincipals/{sid}/oauth2PermissionGrants"),
            ]
        for tid in tenant_ids:
            requests.append(
                BatchRequest(
                    ("tenantInformation", tid), f"/tenantRelationships/findTenantInformationByTenantId(tenantId='{tid}')"
                )
            )
        answers = await self.reader.batch(requests)
        await self.retry_without_sign_in_activity(answers)

        outcomes: dict[str, _Outcome] = defaultdict(_Outcome)
        lists: dict[str, list[dict[str, Any]]] = defaultdict(list)
        keyed: dict[str, dict[str, tuple[GraphObject, ...]]] = defaultdict(dict)
        for request in requests:
            kind, owner = request.key  # type: ignore[misc]
            answer = answers[request.key]
            outcome = outcomes[kind]
            outcome.asked += 1
            if answer.status == 404:  # the object went away since it was listed, or has no such record
                outcome.ok += 1
                if kind == "managers":  # Graph's way of saying "no manager set"
                    keyed[kind][owner] = ()
                continue
            if not answer.ok:
                error = answer.error()
                if _is_licence_refusal(kind, error):
                    outcome.licence_refusals += 1
                outcome.failures[error.describe()] += 1
                continue
            body = answer.body if isinstance(answer.body, dict) else {}
            try:
                values = await self.values_of(body)
            except GraphError as error:
                outcome.failures[error.describe()] += 1
                continue
            outcome.ok += 1
            if kind in ("users", "userRegistrationDetails", "tenantInformation"):
                lists[kind].append(_plain(body))
            elif kind == "managers":
                keyed[kind][owner] = (_plain(body),)
            elif kind in ("appRoleAssignments", "oauth2PermissionGrants"):
                lists[kind].extend(values)
            else:
                keyed[kind][owner] = tuple(values)
        unknown = [
            name for name in other_people if "@" in name and answers[("users", name)].status == 404
        ]
        if unknown:  # a policy may name people by mail address rather than sign-in name
            found, managers, failures = await self.people_by_mail(unknown)
            lists["users"] += found
            keyed["managers"].update(managers)
            outcomes["users"].failures.update(failures)
        for kind in (
            "users", "userRegistrationDetails", "emailMethods", "phoneMethods", "authenticationMethods", "signIns",
            "managers",
        ):
            if outcomes[kind].asked:
                self.account(kind, outcomes[kind])
        for kind in ("appRoleAssignments", "oauth2PermissionGrants"):
            if app_ids:
                self.account(kind, outcomes[kind])
        if tenant_ids:
            self.account("tenantInformation", outcomes["tenantInformation"])
        for kind in ("users", "userRegistrationDetails", "tenantInformation", "appRoleAssignments",
                     "oauth2PermissionGrants"):
            lists[kind].extend(reused[kind])
        for kind in ("emailMethods", "phoneMethods", "signIns"):
            keyed[kind].update(reused[kind])
        users = _unique(lists["users"])
        return {
            "users": users,
            "managers": _by_object_id(keyed["managers"], users),
            "userRegistrationDetails": lists["userRegistrationDetails"],
            "tenantInformation": lists["tenantInformation"],
            "appRoleAssignments": lists["appRoleAssignments"],
            "oauth2PermissionGrants": lists["oauth2PermissionGrants"],
            "emailMethods": keyed["emailMethods"],
            "phoneMethods": keyed["phoneMethods"],
            "authenticationMethods": keyed["authenticationMethods"],
            "signIns": keyed["signIns"],
        }

    def reused_evidence(self, user_ids: list[str], app_ids: list[str], tenant_ids: list[str]) -> dict[str, Any]:
        """What a change check takes from the previous snapshot instead of asking again: the per-user answers of
        unchanged users, the permissions of apps and the names of tenants it already holds."""
        found: dict[str, Any] = {"user_ids": set(), "app_ids": set(), "tenant_ids": set(), "users": [],
                                 "userRegistrationDetails": [], "tenantInformation": [], "appRoleAssignments": [],
                                 "oauth2PermissionGrants": [], "emailMethods": {}, "phoneMethods": {}, "signIns": {}}
        if self.reuse is None:
            return found
        previous = self.reuse.previous
        for uid in user_ids:
            evidence = self.reuse.user_evidence(uid)
            if evidence is None:
                continue
            found["user_ids"].add(uid)
            found["users"].append(dict(evidence["users"]))
            if evidence["userRegistrationDetails"] is not None:
                found["userRegistrationDetails"].append(dict(evidence["userRegistrationDetails"]))
            for kind in ("emailMethods", "phoneMethods", "signIns"):
                if evidence[kind] is not None:
                    found[kind][uid] = evidence[kind]
        known_apps = {sp["id"].lower() for sp in previous.service_principals}
        for sid in app_ids:
            if sid.lower() in known_apps:
                found["app_ids"].add(sid)
                found["appRoleAssignments"] += [dict(a) for a in previous.app_role_assignments
                                                if a.get("principalId", "").lower() == sid.lower()]
                found["oauth2PermissionGrants"] += [dict(g) for g in previous.oauth2_permission_grants
                                                    if g.get("clientId", "").lower() == sid.lower()]
        for tid in tenant_ids:
            if (info := previous.tenant(tid)) is not None:
                found["tenant_ids"].add(tid)
                found["tenantInformation"].append(dict(info))
        return found

    async def people_by_mail(
        self, names: list[str]
    ) -> tuple[list[dict[str, Any]], dict[str, tuple[GraphObject, ...]], Counter[str]]:
        """(users, managers by name, failures) for names ``users/{name}`` did not know, looked up as mail
        addresses; a name matching no user, or several, stays unresolved for the policy check to name."""
        select = ",".join(p for p in USER_PROPERTIES if p != "signInActivity")  # reviewers, not admins
        answers = await self.reader.batch([
            BatchRequest(name, "/users?$filter=" + quote(f"mail eq '{name.replace(chr(39), chr(39) * 2)}'")
                         + f"&$select={select}")
            for name in names
        ])
        failures: Counter[str] = Counter()
        users: dict[str, dict[str, Any]] = {}
        for name in names:
            answer = answers[name]
            if not answer.ok:
                failures[answer.error().describe()] += 1
                continue
            body = answer.body if isinstance(answer.body, dict) else {}
            matches = body.get("value") or []
            if len(matches) == 1 and not body.get("@odata.nextLink"):  # a further page means several people
                users[name] = _plain(matches[0])
        managers: dict[str, tuple[GraphObject, ...]] = {}
        if users:
            replies = await self.reader.batch([
                BatchRequest(name, f"/users/{user['id']}/manager?$select={','.join(MANAGER_PROPERTIES)}")
                for name, user in users.items()
            ])
            for name, reply in replies.items():
                if reply.status == 404:
                    managers[str(name)] = ()
                elif reply.ok and isinstance(reply.body, dict):
                    managers[str(name)] = (_plain(reply.body),)
                else:
                    failures[reply.error().describe()] += 1
        return list(users.values()), managers, failures

    async def values_of(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A collection answer's items, with every further page (a single object has neither)."""
        values = list(body.get("value") or [])
        next_link = body.get("@odata.nextLink")
        if next_link:
            values += await self.reader.list_all(next_link)
        return values

    async def retry_without_sign_in_activity(self, answers: dict[Hashable, BatchResponse]) -> None:
        """``signInActivity`` needs an Entra ID P1/P2 tenant; without one Graph refuses the whole user
        object, so the refused users are asked again without it and the gap is recorded."""
        asked = [
            key[1] for key, answer in answers.items()
            if isinstance(key, tuple) and key[0] == "users" and answer.status != 404
        ]
        refused = [
            uid for uid in asked
            if not answers[("users", uid)].ok and _is_licence_refusal("signInActivity", answers[("users", uid)].error())
        ]
        if not refused:
            return
        without = tuple(p for p in USER_PROPERTIES if p != "signInActivity")
        again = await self.reader.batch(
            [BatchRequest(("users", uid), _user_url(quote(uid, safe="@"), without)) for uid in refused]
        )
        answers.update(again)
        if len(refused) == len(asked):
            self.unavailable.append(_unavailable("signInActivity"))
        else:
            self.missing.append(f"signInActivity: refused for {len(refused)} of {len(asked)} users (403)")


def _partner_sign_ins_url(now: datetime) -> str:
    """Sign-ins into this tenant by people of a partner with delegated admin rights (the admin centre's
    "Cross-tenant access type: Service provider" filter) over the window the log keeps, to the last page."""
    since = (now - timedelta(days=PARTNER_SIGN_IN_WINDOW_DAYS)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = f"crossTenantAccessType eq 'serviceProvider' and createdDateTime ge {since}"
    return "/auditLogs/signIns?$filter=" + quote(query) + f"&$top={SIGN_INS_PER_PAGE}"


def _user_url(user_id: str, properties: Iterable[str]) -> str:
    return f"/users/{user_id}?$select={','.join(properties)}"


def _is_licence_refusal(key: str, error: GraphError) -> bool:
    """A 403 on licence-gated data that is not a missing permission (Graph says
    ``Authentication_RequestFromNonPremiumTenantOrB2CTenant`` or just ``Forbidden`` for those)."""
    return key in LICENCE_GATED and error.status == 403 and error.code != _NO_PERMISSION


def _unavailable(key: str) -> str:
    return f"{key}: not available in this tenant (needs {LICENCE_GATED[key]})"


def _by_object_id(
    per_reviewer: Mapping[str, tuple[GraphObject, ...]], users: list[GraphObject]
) -> dict[str, tuple[GraphObject, ...]]:
    """Managers keyed by the reviewer's object id, whichever way the policy named the reviewer; a
    reviewer who is no user of this tenant has no entry (a 404 for them is no "manager not set")."""
    ids = {}
    for user in users:
        for name in (user.get("id"), user.get("userPrincipalName"), user.get("mail")):
            if name:
                ids[name.lower()] = user["id"]
    return {ids[name.lower()]: managers for name, managers in per_reviewer.items() if name.lower() in ids}


def _unique(items: Iterable[GraphObject]) -> list[GraphObject]:
    seen: dict[str, GraphObject] = {}
    for item in items:
        seen.setdefault(item["id"].lower(), item)
    return list(seen.values())


def _unique_ids(ids: Iterable[str], *, exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    seen: dict[str, str] = {}
    for object_id in ids:
        if object_id.lower() not in exclude:
            seen.setdefault(object_id.lower(), object_id)
    return list(seen.values())


__all__ = [
    "GROUPS_DELTA",
    "LICENCE_GATED",
    "READ_PERMISSIONS",
    "USERS_DELTA",
    "USER_PROPERTIES",
    "collect_tenant",
    "privileged_principals",
    "recollect_tenant",
]
