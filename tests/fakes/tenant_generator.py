"""Synthetic Entra ID tenants for the fake Graph server, of any size, with the awkward cases built in.

Every tenant holds: privileged users spread over built-in roles with one role held by many (paging),
PIM-eligible and activated holders, active assignments Graph lists without a PIM schedule instance,
a role-assignable group, a partner's GDAP group that lives in the partner's tenant (foreign principal,
named by ``$expand=principal``) and a foreign principal nothing explains (not expandable at all), a deleted
user still holding a role, guest admins from a partner, partner apps with application and delegated
permissions, a DAP contract and a cross-tenant service-provider entry. Objects are built in Graph's
v1.0 JSON shapes; the generator also records the truth a collector must find (``privileged_user_ids``...).
Generation is deterministic for a given seed.
"""

from __future__ import annotations

import base64
import dataclasses
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from collections.abc import Sequence
from typing import Any, Callable

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"
HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
SECURITY_ADMIN = "194ae4cb-b126-40b2-bd5b-6091b380977d"
APPLICATION_ADMIN = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
BILLING_ADMIN = "b0f54661-2d74-4c50-afa3-1ec803f12efe"
SECURITY_READER = "5d6b6bb7-de71-4623-b4af-96380a352509"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"

ROLES: tuple[tuple[str, str, str], ...] = (
    (GLOBAL_ADMIN, "Global Administrator", "Can manage all aspects of Microsoft Entra ID and Microsoft services."),
    (PRIVILEGED_ROLE_ADMIN, "Privileged Role Administrator", "Can manage role assignments in Microsoft Entra ID."),
    (HELPDESK_ADMIN, "Helpdesk Administrator", "Can reset passwords for non-administrators."),
    (USER_ADMIN, "User Administrator", "Can manage all aspects of users and groups."),
    (EXCHANGE_ADMIN, "Exchange Administrator", "Can manage all aspects of the Exchange product."),
    (SECURITY_ADMIN, "Security Administrator", "Can read security information and reports, and manage configuration."),
    (APPLICATION_ADMIN, "Application Administrator", "Can create and manage all aspects of app registrations."),
    (BILLING_ADMIN, "Billing Administrator", "Can perform common billing related tasks."),
    (SECURITY_READER, "Security Reader", "Can read security information and reports."),
    (GLOBAL_READER, "Global Reader", "Can read everything that a Global Administrator can, but not update anything."),
)
# Roles handed out to the ordinary privileged users, after the one crowded role.
_SPREAD = (GLOBAL_ADMIN, USER_ADMIN, EXCHANGE_ADMIN, SECURITY_ADMIN, GLOBAL_READER, BILLING_ADMIN, SECURITY_READER)

SKUS = (
    ("6fd2c87f-b296-42f0-b197-1e91e994b900", "ENTERPRISEPACK", "OFFICE 365 E3", "EXCHANGE_S_ENTERPRISE"),
    ("06ebc4ee-1bb5-47dd-8120-11324bc54e06", "SPE_E5", "MICROSOFT 365 E5", "EXCHANGE_S_ENTERPRISE"),
    ("eec0eb4f-6444-4f95-aba0-50c24d67f998", "AAD_PREMIUM_P2", "MICROSOFT ENTRA ID P2", "AAD_PREMIUM_P2"),
)
GRAPH_APP_ROLES = {
    "Directory.ReadWrite.All": "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
}


@dataclass(frozen=True)
class TenantShape:
    """How big and how busy a generated tenant is. ``privileged_users`` counts distinct users holding a
    role directly or through the role-assignable group; ``crowded_role_holders`` hold one role (>50 pages)."""

    users: int = 200
    privileged_users: int = 40
    crowded_role_holders: int = 60
    group_members: int = 4
    guests: int = 2
    outside_pim: int = 3
    premium: bool = True
    seed: int = 1


@dataclass(frozen=True)
class Partner:
    """Another tenant as a customer tenant sees it."""

    tenant_id: str
    name: str
    domain: str


@dataclass
class GeneratedTenant:
    """A tenant's directory, as the fake Graph serves it, plus the truth a collector must recover."""

    tenant_id: str
    name: str
    domain: str
    premium: bool = True
    role_definitions: list[dict[str, Any]] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    managers: dict[str, str] = field(default_factory=dict)  # user id -> their manager's id
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    group_members: dict[str, list[str]] = field(default_factory=dict)
    service_principals: dict[str, dict[str, Any]] = field(default_factory=dict)
    role_assignments: list[dict[str, Any]] = field(default_factory=list)
    eligibility_instances: list[dict[str, Any]] = field(default_factory=list)
    assignment_instances: list[dict[str, Any]] = field(default_factory=list)
    registration_details: dict[str, dict[str, Any]] = field(default_factory=dict)
    email_methods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    phone_methods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # FIDO2 keys, Authenticator devices and Windows Hello, each with its @odata.type (phones and e-mail
    # addresses are the two collections above): users/{id}/authentication/methods joins them all.
    device_methods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    sign_ins: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Sign-ins into the tenant by people of other tenants (crossTenantAccessType serviceProvider, b2b...).
    partner_sign_ins: list[dict[str, Any]] = field(default_factory=list)
    directory_audits: list[dict[str, Any]] = field(default_factory=list)  # auditLogs/directoryAudits, oldest first
    risky_users: list[dict[str, Any]] = field(default_factory=list)
    contracts: list[dict[str, Any]] = field(default_factory=list)
    cross_tenant_partners: list[dict[str, Any]] = field(default_factory=list)
    organization: list[dict[str, Any]] = field(default_factory=list)
    subscribed_skus: list[dict[str, Any]] = field(default_factory=list)
    app_role_assignments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    oauth2_permission_grants: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tenant_directory: dict[str, dict[str, Any]] = field(default_factory=dict)  # findTenantInformationByTenantId
    # What $expand=principal shows of principals living in other tenants (a directory lookup answers 404).
    foreign_principals: dict[str, dict[str, Any]] = field(default_factory=dict)
    email_activity: list[dict[str, Any]] = field(default_factory=list)
    delegated_admin_relationships: list[dict[str, Any]] = field(default_factory=list)
    access_assignments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    delegated_admin_customers: list[dict[str, Any]] = field(default_factory=list)
    # PIM for Groups: privilegedAccessGroupEligibilityScheduleInstance and ...AssignmentScheduleInstance objects,
    # each naming its groupId (Graph serves them only filtered on a groupId or a principalId).
    pim_group_eligibility_instances: list[dict[str, Any]] = field(default_factory=list)
    pim_group_assignment_instances: list[dict[str, Any]] = field(default_factory=list)
    # Every change made after generation, as (collection, object id), in order: what /users/delta and
    # /groups/delta report since a delta token (a token is a position in this list).
    change_log: list[tuple[str, str]] = field(default_factory=list)
    # ---- the truth ----
    privileged_user_ids: list[str] = field(default_factory=list)
    foreign_principal_ids: list[str] = field(default_factory=list)
    deleted_principal_ids: list[str] = field(default_factory=list)
    role_group_ids: list[str] = field(default_factory=list)
    reviewed_app_ids: list[str] = field(default_factory=list)  # apps of partners and apps holding roles
    partner_tenant_ids: list[str] = field(default_factory=list)
    crowded_role_id: str = HELPDESK_ADMIN

    def privileged_principal_count(self) -> int:
        """Distinct non-deleted principals holding a role: users, the group, apps, foreign principals."""
        holders = {g["principalId"] for g in self.grants()} - set(self.deleted_principal_ids)
        return len(holders | set(self.privileged_user_ids))

    def grants(self) -> list[dict[str, Any]]:
        return [*self.role_assignments, *self.eligibility_instances, *self.assignment_instances]

    def holders_of(self, role_id: str) -> set[str]:
        return {g["principalId"] for g in self.grants() if g["roleDefinitionId"] == role_id}

    def change_user(self, user_id: str, **properties: Any) -> None:
        """A user's properties changed (disabled, renamed...): /users/delta reports them."""
        self.users[user_id].update(properties)
        self.change_log.append(("users", user_id))

    def add_user(self, user_id: str, name: str) -> None:
        """A new member user: /users/delta reports them."""
        self.users[user_id] = {
            "id": user_id, "displayName": name, "userPrincipalName": f"{name.lower().replace(' ', '.')}@{self.domain}",
            "mail": f"{name.lower().replace(' ', '.')}@{self.domain}", "userType": "Member", "accountEnabled": True,
            "assignedLicenses": [], "createdDateTime": _iso(NOW), "signInActivity": None,
        }
        self.change_log.append(("users", user_id))

    def grant_role(self, user_id: str, role_id: str) -> None:
        """An active assignment outside PIM for a user (role assignments have no delta: they are re-read)."""
        self.role_assignments.append({"id": _assignment_id(role_id, user_id), "roleDefinitionId": role_id,
                                      "principalId": user_id, "directoryScopeId": "/"})
        self.privileged_user_ids.append(user_id)

    def add_group_member(self, group_id: str, user_id: str) -> None:
        """Someone joined a group: /groups/delta reports the group."""
        self.group_members[group_id].append(user_id)
        self.change_log.append(("groups", group_id))

    def enrol_in_pim_for_groups(
        self, group_id: str, *, eligible: Sequence[str] = (), activated: Sequence[str] = (),
        assigned: Sequence[str] = (), owners: Sequence[str] = (),
    ) -> None:
        """Govern ``group_id``'s membership with PIM for Groups: ``eligible`` users may activate a membership
        (until a year from now), ``activated`` did (for four hours, and are members now), ``assigned`` are members
        with no end date, ``owners`` are eligible owners. Instances in Graph's v1.0 shapes."""

        def one(principal: str, access: str, start: datetime, end: datetime | None, assignment: str | None) -> dict[str, Any]:
            item: dict[str, Any] = {
                "id": f"{group_id}_{access}_{principal}", "startDateTime": _iso(start),
                "endDateTime": _iso(end) if end else None, "accessId": access, "principalId": principal,
                "groupId": group_id, "memberType": "Direct",
            }
            if assignment is None:
                return {**item, "eligibilityScheduleId": item["id"]}
            return {**item, "assignmentType": assignment, "assignmentScheduleId": item["id"]}

        for user in [*eligible, *activated]:
            self.pim_group_eligibility_instances.append(one(user, "member", NOW - timedelta(days=30),
                                                            NOW + timedelta(days=365), None))
        for user in owners:
            self.pim_group_eligibility_instances.append(one(user, "owner", NOW - timedelta(days=30), None, None))
        for user in activated:
            self.pim_group_assignment_instances.append(one(user, "member", NOW - timedelta(minutes=30),
                                                           NOW + timedelta(hours=4), "Activated"))
        for user in assigned:
            self.pim_group_assignment_instances.append(one(user, "member", NOW - timedelta(days=200), None, "Assigned"))
        self.group_members[group_id] = list(dict.fromkeys([*self.group_members.get(group_id, []), *activated, *assigned]))
        self.privileged_user_ids = list(dict.fromkeys([*self.privileged_user_ids, *eligible, *activated, *assigned]))

    def remove_privileged(self, user_ids: set[str]) -> None:
        """Take roles away from users (a tenant that shrank, or a collection that lost them)."""
        self.role_assignments = [a for a in self.role_assignments if a["principalId"] not in user_ids]
        self.eligibility_instances = [a for a in self.eligibility_instances if a["principalId"] not in user_ids]
        self.assignment_instances = [a for a in self.assignment_instances if a["principalId"] not in user_ids]
        for group_id, members in self.group_members.items():
            self.group_members[group_id] = [m for m in members if m not in user_ids]
        self.privileged_user_ids = [u for u in self.privileged_user_ids if u not in user_ids]


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def opaque(self, size: int = 16) -> str:
        return base64.urlsafe_b64encode(self.rng.randbytes(size)).decode().rstrip("=")


def _assignment_id(role_id: str, principal_id: str) -> str:
    """Graph's role assignment ids are the role and principal GUIDs, base64url encoded, plus ``-1``."""
    raw = uuid.UUID(role_id).bytes_le + uuid.UUID(principal_id).bytes_le
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "-1"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_tenant(
    shape: TenantShape = TenantShape(),
    *,
    name: str = "Contoso",
    gdap_partner: Partner | None = None,
    gdap_group_id: str | None = None,
    gdap_group_name: str = "GDAP Tier2 Admins",
) -> GeneratedTenant:
    """A customer tenant of ``shape``. ``gdap_partner`` / ``gdap_group_id`` / ``gdap_group_name`` name the
    CSP partner whose security group holds Global Administrator here (generated when not given); a
    second foreign principal, from a tenant nothing here names, holds User Administrator."""
    if shape.privileged_users < shape.group_members + shape.guests + 2:
        raise ValueError("privileged_users must leave room for group members, guests and direct holders")
    rng = random.Random(shape.seed)
    ids = _Ids(rng)
    slug = name.lower().replace(" ", "")
    domain = f"{slug}.com"
    tenant = GeneratedTenant(tenant_id=ids.guid(), name=name, domain=domain, premium=shape.premium)
    csp = gdap_partner or Partner(ids.guid(), "Northwind IT Services", "northwindit.com")
    reseller = Partner(ids.guid(), "Fabrikam MSP", "fabrikam-msp.com")
    isv = Partner(ids.guid(), "Adatum Software", "adatum.com")
    tenant.partner_tenant_ids = [csp.tenant_id, reseller.tenant_id, isv.tenant_id]
    for partner in (csp, reseller, isv):
        tenant.tenant_directory[partner.tenant_id] = {
            "tenantId": partner.tenant_id, "federationBrandName": None,
            "displayName": partner.name, "defaultDomainName": partner.domain,
        }
    tenant.role_definitions = [
        {"id": rid, "templateId": rid, "displayName": title, "description": text, "isBuiltIn": True, "isEnabled": True,
         "rolePermissions": [{"allowedResourceActions": ["microsoft.directory/allEntities/allProperties/read"],
                              "condition": None}]}
        for rid, title, text in ROLES
    ]
    _organization_and_skus(tenant, csp)
    _people(tenant, shape, ids, rng, reseller)
    _roles(tenant, shape, ids, csp, gdap_group_id or ids.guid(), gdap_group_name)
    _apps(tenant, ids, reseller, isv)
    _partners(tenant, ids, csp, reseller)
    _evidence(tenant, ids, rng)
    return tenant


def _organization_and_skus(tenant: GeneratedTenant, csp: Partner) -> None:
    tenant.organization = [{
        "id": tenant.tenant_id, "displayName": tenant.name, "countryLetterCode": "GB", "tenantType": "AAD",
        "technicalNotificationMails": [f"it-alerts@{tenant.domain}", f"noc@{csp.domain}"],
        "securityComplianceNotificationMails": [f"security@{tenant.domain}"],
        "verifiedDomains": [
            {"name": tenant.domain, "isDefault": True, "isInitial": False, "type": "Managed"},
            {"name": f"{tenant.domain.split('.')[0]}.onmicrosoft.com", "isDefault": False, "isInitial": True,
             "type": "Managed"},
        ],
    }]
    tenant.subscribed_skus = [
        {"id": f"{tenant.tenant_id}_{sku}", "skuId": sku, "skuPartNumber": part, "appliesTo": "User",
         "capabilityStatus": "Enabled", "consumedUnits": 100, "prepaidUnits": {"enabled": 150, "suspended": 0,
                                                                                "warning": 0},
         "servicePlans": [{"servicePlanId": str(uuid.uuid5(uuid.NAMESPACE_URL, plan)), "servicePlanName": plan,
                           "provisioningStatus": "Success", "appliesTo": "User"}]}
        for sku, part, _, plan in SKUS
    ]


def _people(tenant: GeneratedTenant, shape: TenantShape, ids: _Ids, rng: random.Random, reseller: Partner) -> None:
    initial = f"{tenant.domain.split('.')[0]}.onmicrosoft.com"
    total = max(shape.users, shape.privileged_users + 5)
    guests_from = shape.privileged_users - shape.guests
    for n in range(total):
        uid = ids.guid()
        guest = guests_from <= n < shape.privileged_users
        if guest:
            alias = f"agent{n}"
            upn = f"{alias}_{reseller.domain}#EXT#@{initial}"
            mail = f"{alias}@{reseller.domain}"
        else:
            upn = mail = f"user{n:05d}@{tenant.domain}"
        created = NOW - timedelta(days=30 + rng.randrange(2000))
        last = NOW - timedelta(hours=rng.randrange(24 * 120))
        tenant.users[uid] = {
            "id": uid, "displayName": f"{'Partner Agent' if guest else 'User'} {n:05d}", "userPrincipalName": upn,
            "mail": mail, "givenName": "User", "surname": f"{n:05d}", "jobTitle": "Engineer" if n % 3 else None,
            "mobilePhone": None, "officeLocation": None, "preferredLanguage": "en-GB", "businessPhones": [],
            "userType": "Guest" if guest else "Member", "accountEnabled": n % 17 != 5,
            "onPremisesSyncEnabled": True if n % 11 == 7 else None,
            "onPremisesImmutableId": ids.opaque(16) if n % 11 == 7 else None,
            "externalUserState": "Accepted" if guest else None,
            "createdDateTime": _iso(created),
            "assignedLicenses": [] if guest else [{"skuId": SKUS[n % 2][0], "disabledPlans": []}],
            "signInActivity": {
                "lastSignInDateTime": _iso(last), "lastSignInRequestId": ids.guid(),
                "lastNonInteractiveSignInDateTime": _iso(last), "lastNonInteractiveSignInRequestId": ids.guid(),
                "lastSuccessfulSignInDateTime": _iso(last), "lastSuccessfulSignInRequestId": ids.guid(),
            },
        }
    tenant.privileged_user_ids = list(tenant.users)[: shape.privileged_users]
    everyone = list(tenant.users)
    for n, uid in enumerate(everyone):
        if n % 7 != 0:  # every seventh user has no manager set
            tenant.managers[uid] = everyone[(n // 10) * 7]
    gone = ids.guid()
    tenant.deleted_users[gone] = {
        "id": gone, "displayName": "Departed Admin", "userPrincipalName": f"{gone.replace('-', '')}departed@{tenant.domain}",
        "mail": f"departed@{tenant.domain}", "userType": "Member", "deletedDateTime": _iso(NOW - timedelta(days=40)),
    }
    tenant.deleted_principal_ids = [gone]


def _grant_records(
    tenant: GeneratedTenant, role_id: str, principal_id: str, kind: str, ids: _Ids, start: datetime
) -> None:
    """The lines Graph lists for one grant. ``kind``: ``active`` (assignment + Assigned instance),
    ``outside_pim`` (assignment only), ``eligible`` (eligibility instance), ``activated`` (eligibility +
    Activated instance + the assignment Graph lists for the activation)."""
    assignment_id = _assignment_id(role_id, principal_id)
    assignment = {"id": assignment_id, "roleDefinitionId": role_id, "principalId": principal_id, "directoryScopeId": "/"}
    if kind in ("eligible", "activated"):
        tenant.eligibility_instances.append({
            "id": assignment_id + "-e", "principalId": principal_id, "roleDefinitionId": role_id,
            "directoryScopeId": "/", "appScopeId": None, "startDateTime": _iso(start),
            "endDateTime": _iso(start + timedelta(days=365)), "memberType": "Direct",
            "roleEligibilityScheduleId": ids.guid(),
        })
    if kind == "eligible":
        return
    tenant.role_assignments.append(assignment)
    if kind == "outside_pim":
        return
    activated = kind == "activated"
    tenant.assignment_instances.append({
        "id": assignment_id, "principalId": principal_id, "roleDefinitionId": role_id, "directoryScopeId": "/",
        "appScopeId": None, "startDateTime": _iso(NOW - timedelta(hours=2) if activated else start),
        "endDateTime": _iso(NOW + timedelta(hours=6)) if activated else None,
        "assignmentType": "Activated" if activated else "Assigned", "memberType": "Direct",
        "roleAssignmentOriginId": assignment_id, "roleAssignmentScheduleId": ids.guid(),
    })


def _roles(
    tenant: GeneratedTenant, shape: TenantShape, ids: _Ids, csp: Partner, gdap_group_id: str, gdap_group_name: str
) -> None:
    privileged = tenant.privileged_user_ids
    members = privileged[: shape.group_members]
    # The first group member also holds a role directly: one user, reached twice.
    direct = privileged[:1] + privileged[shape.group_members:]
    crowded = min(shape.crowded_role_holders, len(direct))
    outside = shape.outside_pim
    for n, uid in enumerate(direct):
        roles = [HELPDESK_ADMIN] if n < crowded else [_SPREAD[n % len(_SPREAD)]]
        if n % 5 == 0:
            roles.append(_SPREAD[(n // 5) % len(_SPREAD)] if roles[0] == HELPDESK_ADMIN else HELPDESK_ADMIN)
        for k, role in enumerate(dict.fromkeys(roles)):
            step = (n + k) % 10
            if step in (0, 1, 2):
                kind = "eligible"
            elif step == 3:
                kind = "activated"
            elif outside > 0:
                kind, outside = "outside_pim", outside - 1
            else:
                kind = "active"
            _grant_records(tenant, role, uid, kind, ids, NOW - timedelta(days=10 + n))
    group = ids.guid()
    tenant.groups[group] = {
        "id": group, "displayName": "PIM-Tier0-RoleAdmins", "description": "Eligible for Privileged Role Administrator",
        "isAssignableToRole": True, "securityEnabled": True, "mailEnabled": False, "groupTypes": [],
        "onPremisesSyncEnabled": None, "createdDateTime": _iso(NOW - timedelta(days=400)), "mail": None,
        "mailNickname": "pim-tier0", "visibility": "Private",
    }
    tenant.group_members[group] = list(members)
    tenant.role_group_ids = [group]
    _grant_records(tenant, PRIVILEGED_ROLE_ADMIN, group, "eligible", ids, NOW - timedelta(days=90))
    _grant_records(tenant, SECURITY_READER, group, "active", ids, NOW - timedelta(days=90))
    # A partner's GDAP security group: it lives in the partner's tenant, so a directory lookup answers 404,
    # but $expand=principal names its home tenant (organizationId) and its name.
    tenant.foreign_principals[gdap_group_id] = {
        "@odata.type": "#microsoft.graph.group", "id": gdap_group_id, "displayName": gdap_group_name,
        "organizationId": csp.tenant_id, "securityEnabled": True, "mailEnabled": False,
    }
    _grant_records(tenant, GLOBAL_ADMIN, gdap_group_id, "active", ids, NOW - timedelta(days=300))
    _grant_records(tenant, EXCHANGE_ADMIN, gdap_group_id, "outside_pim", ids, NOW - timedelta(days=300))
    # A principal of another tenant that nothing explains: Graph neither expands it nor finds it.
    stray = ids.guid()
    _grant_records(tenant, USER_ADMIN, stray, "outside_pim", ids, NOW - timedelta(days=60))
    tenant.foreign_principal_ids = [gdap_group_id, stray]
    # A deleted user Graph still lists in a role.
    _grant_records(tenant, USER_ADMIN, tenant.deleted_principal_ids[0], "outside_pim", ids, NOW - timedelta(days=500))


def _apps(tenant: GeneratedTenant, ids: _Ids, reseller: Partner, isv: Partner) -> None:
    graph = ids.guid()
    tenant.service_principals[graph] = {
        "id": graph, "appId": GRAPH_APP_ID, "displayName": "Microsoft Graph", "appOwnerOrganizationId": MICROSOFT_TENANT,
        "servicePrincipalType": "Application", "accountEnabled": True, "publisherName": "Microsoft Services",
        "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
        "appRoles": [
            {"id": role_id, "value": value, "displayName": value, "allowedMemberTypes": ["Application"],
             "isEnabled": True, "description": value, "origin": "Application"}
            for value, role_id in GRAPH_APP_ROLES.items()
        ],
        "tags": [],
    }
    for n in range(12):  # Microsoft's first-party apps: present everywhere, nobody's partner
        sid = ids.guid()
        tenant.service_principals[sid] = _app(sid, ids.guid(), f"Microsoft App {n}", MICROSOFT_TENANT, "Microsoft Services")
    for n in range(3):  # the tenant's own apps
        sid = ids.guid()
        tenant.service_principals[sid] = _app(sid, ids.guid(), f"{tenant.name} Internal App {n}", tenant.tenant_id, tenant.name)
    portal = ids.guid()
    tenant.service_principals[portal] = _app(portal, ids.guid(), f"{reseller.name} Management Portal", reseller.tenant_id,
                                             reseller.name)
    signer = ids.guid()
    tenant.service_principals[signer] = _app(signer, ids.guid(), f"{isv.name} Sign", isv.tenant_id, isv.name)
    tenant.reviewed_app_ids = [portal, signer]
    _grant_records(tenant, APPLICATION_ADMIN, portal, "active", ids, NOW - timedelta(days=700))
    tenant.app_role_assignments = {
        portal: [
            {"id": ids.opaque(), "appRoleId": GRAPH_APP_ROLES[value], "createdDateTime": _iso(NOW - timedelta(days=700)),
             "principalId": portal, "principalDisplayName": f"{reseller.name} Management Portal",
             "principalType": "ServicePrincipal", "resourceId": graph, "resourceDisplayName": "Microsoft Graph",
             "deletedDateTime": None}
            for value in ("Directory.ReadWrite.All", "User.Read.All")
        ],
        signer: [],
    }
    tenant.oauth2_permission_grants = {
        portal: [{"id": ids.opaque(32), "clientId": portal, "consentType": "AllPrincipals", "principalId": None,
                  "resourceId": graph, "scope": "Directory.AccessAsUser.All offline_access User.Read"}],
        signer: [{"id": ids.opaque(32), "clientId": signer, "consentType": "AllPrincipals", "principalId": None,
                  "resourceId": graph, "scope": "openid profile email User.Read"}],
    }


def _app(sid: str, app_id: str, name: str, owner: str, publisher: str) -> dict[str, Any]:
    return {
        "id": sid, "appId": app_id, "displayName": name, "appOwnerOrganizationId": owner,
        "servicePrincipalType": "Application", "accountEnabled": True, "publisherName": publisher,
        "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
        "appRoles": [], "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
    }


def _partners(tenant: GeneratedTenant, ids: _Ids, csp: Partner, reseller: Partner) -> None:
    tenant.contracts = [{
        "id": ids.guid(), "contractType": "ResellerPartner", "customerId": reseller.tenant_id,
        "defaultDomainName": reseller.domain, "displayName": reseller.name, "deletedDateTime": None,
    }]
    tenant.cross_tenant_partners = [{
        "tenantId": csp.tenant_id, "isServiceProvider": True, "isInMultiTenantOrganization": False,
        "inboundTrust": {"isMfaAccepted": True, "isCompliantDeviceAccepted": False,
                         "isHybridAzureADJoinedDeviceAccepted": False},
        "b2bCollaborationInbound": None, "b2bCollaborationOutbound": None, "b2bDirectConnectInbound": None,
        "b2bDirectConnectOutbound": None, "automaticUserConsentSettings": {"inboundAllowed": None,
                                                                          "outboundAllowed": None},
    }]
    # The CSP's agents sign in every ~10 hours (more than a page of them), one agent last did so 40 days ago
    # (past the log's window), and a B2B guest of the reseller signs in too: not a service provider.
    def sign_in(moment: datetime, agent: int, access: str, home: Partner) -> dict[str, Any]:
        return {
            "id": ids.guid(), "createdDateTime": _iso(moment), "userId": ids.guid(),
            "userPrincipalName": f"agent{agent}@{home.domain}", "userDisplayName": f"{home.name} agent {agent}",
            "appDisplayName": "Microsoft 365 admin center", "appId": "00000006-0000-0ff1-ce00-000000000000",
            "ipAddress": "203.0.113.40", "clientAppUsed": "Browser", "crossTenantAccessType": access,
            "homeTenantId": home.tenant_id, "homeTenantName": home.name, "resourceTenantId": tenant.tenant_id,
            "isInteractive": True, "location": {"city": "Leeds", "state": "", "countryOrRegion": "GB"},
            "status": {"errorCode": 0},
        }
    tenant.partner_sign_ins = [sign_in(NOW - timedelta(hours=10 * k + 2), k % 3, "serviceProvider", csp)
                               for k in range(60)]
    tenant.partner_sign_ins.append(sign_in(NOW - timedelta(days=40), 9, "serviceProvider", csp))
    tenant.partner_sign_ins.append(sign_in(NOW - timedelta(days=2), 1, "b2bCollaboration", reseller))


def _evidence(tenant: GeneratedTenant, ids: _Ids, rng: random.Random) -> None:
    methods = ("microsoftAuthenticatorPush", "mobilePhone", "email", "fido2", "softwareOneTimePasscode")
    shared_phone = "+44 7700900001"
    privileged = set(tenant.privileged_user_ids)
    for n, (uid, user) in enumerate(tenant.users.items()):
        registered = [m for k, m in enumerate(methods) if (n + k) % 3 != 0]
        tenant.registration_details[uid] = {
            "id": uid, "userPrincipalName": user["userPrincipalName"], "userDisplayName": user["displayName"],
            "userType": user["userType"].lower(), "isAdmin": uid in privileged, "isMfaRegistered": bool(registered),
            "isMfaCapable": bool(registered), "isPasswordlessCapable": "fido2" in registered,
            "isSsprRegistered": "email" in registered, "isSsprEnabled": True, "isSsprCapable": "email" in registered,
            "isSystemPreferredAuthenticationMethodEnabled": True, "methodsRegistered": registered,
            "systemPreferredAuthenticationMethods": ["push"] if registered else [],
            "userPreferredMethodForSecondaryAuthentication": "push" if registered else "none",
            "lastUpdatedDateTime": _iso(NOW - timedelta(hours=5)),
        }
        if user["userType"] == "Member":
            tenant.email_activity.append({
                "reportRefreshDate": "2026-11-22", "userPrincipalName": user["userPrincipalName"],
                "displayName": user["displayName"], "isDeleted": False, "deletedDate": None,
                "lastActivityDate": "2026-11-2" + str(n % 3), "sendCount": rng.randrange(500),
                "receiveCount": rng.randrange(3000), "readCount": rng.randrange(2000), "meetingCreatedCount": 0,
                "meetingInteractedCount": n % 4,
                "assignedProducts": [SKUS[n % 2][2]] + (["ENTERPRISE MOBILITY + SECURITY E3"] if n % 6 == 0 else []),
                "reportPeriod": "30",
            })
    for n, uid in enumerate(tenant.privileged_user_ids):
        user = tenant.users[uid]
        tenant.email_methods[uid] = (
            [{"id": ids.guid(), "emailAddress": f"recovery{n}@{'gmail.com' if n % 5 == 0 else 'example.org'}"}]
            if n % 4 else []
        )
        if n % 4 == 1:  # a second address of their own: the list has more than one entry to page through
            tenant.email_methods[uid].append({"id": ids.guid(), "emailAddress": f"alt{n}@example.net"})
        phone = shared_phone if n in (1, 2) else f"+44 7700{900100 + n}"
        tenant.phone_methods[uid] = (
            [{"id": "3179e48a-750b-4051-897c-87b9720928f7", "phoneNumber": phone, "phoneType": "mobile",
              "smsSignInState": "notAllowedByPolicy"}]
            if n % 3 else []
        )
        tenant.device_methods[uid] = [
            {"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "id": ids.guid(),
             "displayName": f"iPhone {n}", "deviceTag": "SoftwareTokenActivated", "phoneAppVersion": "6.8.17",
             # every fifth admin registered theirs yesterday
             "createdDateTime": _iso(NOW - timedelta(days=1 if n % 5 == 3 else 400 + n))},
        ]
        if n % 2 == 0:
            tenant.device_methods[uid].append(
                {"@odata.type": "#microsoft.graph.fido2AuthenticationMethod", "id": ids.guid(),
                 "displayName": "YubiKey 5 NFC", "createdDateTime": _iso(NOW - timedelta(days=200 + n)),
                 "aaGuid": "cb69481e-8ff7-4039-93ec-0a2729a154a8", "model": "YubiKey 5 Series with NFC",
                 "attestationCertificates": [], "attestationLevel": "attested"})
        if n % 3 == 2:
            tenant.device_methods[uid].append(
                {"@odata.type": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod", "id": ids.guid(),
                 "displayName": f"DESKTOP-{n:04d}", "createdDateTime": _iso(NOW - timedelta(days=90 + n)),
                 "keyStrength": "normal"})
        tenant.sign_ins[uid] = [
            {"id": ids.guid(), "createdDateTime": _iso(NOW - timedelta(hours=7 * k + 1)), "userId": uid,
             "userPrincipalName": user["userPrincipalName"], "userDisplayName": user["displayName"],
             "appDisplayName": "Microsoft Office", "ipAddress": "81.2.69.142", "clientAppUsed": "Browser",
             "crossTenantAccessType": "none", "isInteractive": True,
             "location": {"city": "London", "state": "", "countryOrRegion": "GB"}, "status": {"errorCode": 0}}
            for k in range(n % 3)
        ]
        if n % 4 == 0:  # older than any check looks back: never asked for
            tenant.sign_ins[uid].append(
                {"id": ids.guid(), "createdDateTime": _iso(NOW - timedelta(days=12)), "userId": uid,
                 "userPrincipalName": user["userPrincipalName"], "userDisplayName": user["displayName"],
                 "appDisplayName": "Microsoft Office", "ipAddress": "203.0.113.9", "clientAppUsed": "Browser",
                 "crossTenantAccessType": "none", "isInteractive": True,
                 "location": {"city": "Lagos", "state": "", "countryOrRegion": "NG"}, "status": {"errorCode": 0}})
    risky = [tenant.privileged_user_ids[0], list(tenant.users)[-1]]
    tenant.risky_users = [
        {"id": uid, "userPrincipalName": tenant.users[uid]["userPrincipalName"],
         "userDisplayName": tenant.users[uid]["displayName"], "riskLevel": "high", "riskState": "atRisk",
         "riskDetail": "none", "riskLastUpdatedDateTime": _iso(NOW - timedelta(hours=9)), "isDeleted": False,
         "isProcessing": False}
        for uid in risky
    ]


def generate_csp(customers: int = 3, shape: TenantShape = TenantShape(), *, name: str = "Northwind IT Services",
                 shape_of: Callable[[int], TenantShape] | None = None) -> tuple[GeneratedTenant, list[GeneratedTenant]]:
    """A CSP partner tenant and its customers: an active GDAP relationship to each customer (assigned to
    the partner's Admin Agents group, which holds Global Administrator there) and one terminated one.
    ``shape_of(n)`` gives customer ``n`` its own shape (most small, a few large), else every one is ``shape``."""
    rng = random.Random(shape.seed * 7919)
    ids = _Ids(rng)
    partner = GeneratedTenant(tenant_id=ids.guid(), name=name, domain="northwindit.com")
    identity = Partner(partner.tenant_id, name, partner.domain)
    agents_group = ids.guid()
    partner.organization = [{"id": partner.tenant_id, "displayName": name, "verifiedDomains": [
        {"name": partner.domain, "isDefault": True, "isInitial": False, "type": "Managed"}]}]
    partner.groups[agents_group] = {"id": agents_group, "displayName": "AdminAgents", "securityEnabled": True,
                                    "mailEnabled": False, "groupTypes": [], "isAssignableToRole": False}
    helpdesk_group = ids.guid()
    partner.groups[helpdesk_group] = {"id": helpdesk_group, "displayName": "HelpdeskAgents", "securityEnabled": True,
                                      "mailEnabled": False, "groupTypes": [], "isAssignableToRole": False}
    agents = []
    for n in range(3):
        uid = ids.guid()
        partner.users[uid] = {"id": uid, "displayName": f"Agent {n}", "userPrincipalName": f"agent{n}@{partner.domain}",
                              "mail": f"agent{n}@{partner.domain}", "userType": "Member", "accountEnabled": True}
        agents.append(uid)
    partner.group_members[agents_group] = agents
    clients = [
        generate_tenant(
            dataclasses.replace(shape_of(n) if shape_of else shape, seed=shape.seed + 100 * (n + 1)),
            name=f"Customer {n + 1:03d}", gdap_partner=identity, gdap_group_id=agents_group,
            gdap_group_name="AdminAgents",
        )
        for n in range(customers)
    ]
    for customer in clients:
        relationship_id = f"{ids.guid()}-{ids.guid()}"
        partner.delegated_admin_relationships.append(_relationship(relationship_id, customer, "active", "P180D"))
        partner.access_assignments[relationship_id] = [{
            "@odata.etag": f'W/"{ids.opaque(12)}"', "id": ids.guid().replace("-", ""), "status": "active",
            "createdDateTime": _iso(NOW - timedelta(days=300)), "lastModifiedDateTime": _iso(NOW - timedelta(days=300)),
            "accessContainer": {"accessContainerId": agents_group, "accessContainerType": "securityGroup"},
            "accessDetails": {"unifiedRoles": [{"roleDefinitionId": GLOBAL_ADMIN}, {"roleDefinitionId": EXCHANGE_ADMIN}]},
        }]
        partner.delegated_admin_customers.append({
            "@odata.type": "#microsoft.graph.delegatedAdminCustomer", "@odata.etag": f'W/"{ids.opaque(12)}"',
            "id": customer.tenant_id, "tenantId": customer.tenant_id, "displayName": customer.name,
        })
    former = GeneratedTenant(tenant_id=ids.guid(), name="Former Customer", domain="former.example")
    ended = f"{ids.guid()}-{ids.guid()}"
    partner.delegated_admin_relationships.append(_relationship(ended, former, "terminated", "PT0S"))
    partner.access_assignments[ended] = []
    return partner, clients


def _relationship(relationship_id: str, customer: GeneratedTenant, status: str, extend: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.delegatedAdminRelationship", "@odata.etag": 'W/"JyIwMzAwZTM0ZS0wMDAwIic="',
        "id": relationship_id, "displayName": f"{customer.name} managed services", "duration": "P730D",
        "customer": {"tenantId": customer.tenant_id, "displayName": customer.name},
        "accessDetails": {"unifiedRoles": [{"roleDefinitionId": GLOBAL_ADMIN}, {"roleDefinitionId": EXCHANGE_ADMIN}]},
        "status": status, "autoExtendDuration": extend, "createdDateTime": _iso(NOW - timedelta(days=310)),
        "lastModifiedDateTime": _iso(NOW - timedelta(days=300)), "activatedDateTime": _iso(NOW - timedelta(days=300)),
        "endDateTime": _iso(NOW + timedelta(days=430)),
    }


__all__ = ["NOW", "GeneratedTenant", "Partner", "TenantShape", "generate_csp", "generate_tenant"]
