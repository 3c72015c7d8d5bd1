"""Turn a tenant snapshot into the things a reviewer must confirm: role holdings, partner access and
the recovery contacts of admins.

Keys are built only from ids that do not change between collections (role template, principal, contract,
relationship, tenant), so the same access is the same item in every campaign and its history can be
followed. Graph lists one PIM activation twice (as a direct assignment and as an ``Activated`` schedule
instance) and a role held through a group only once (on the group): both are straightened out here, so
a reviewer sees one item per person, role and kind of assignment. A group whose membership PIM for Groups
governs passes its roles on as each member holds the membership: eligible members are eligible for the
group's roles, activated members hold an activation, assigned members hold the roles as the group does.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum

from bot.engine.model import MFA_DEVICES_EVIDENCE, AssignmentType, Subject, SubjectKind
from checks import azure_roles, evidence, pim_groups
from checks.pim_groups import GroupMembership, Membership, PimGroup
from checks.registry import PARTNER_SIGN_IN_WINDOW_DAYS
from checks.snapshot import GraphObject, TenantSnapshot

# Tenants that publish Microsoft's own first-party apps: their service principals are no partner's.
MICROSOFT_TENANTS = frozenset({"f8cdef31-a31e-4b4a-93e4-5f571e91255a", "72f988bf-86f1-41af-91ab-2d7cd011db47"})

# Permissions that let an app (or a user through it) take over the directory, its roles or its mail.
HIGH_PRIVILEGE_PERMISSIONS = frozenset(
    {
        "AppRoleAssignment.ReadWrite.All", "Application.ReadWrite.All", "Directory.AccessAsUser.All",
        "Directory.ReadWrite.All", "Domain.ReadWrite.All", "Files.ReadWrite.All", "full_access_as_app",
        "Group.ReadWrite.All", "Mail.ReadWrite", "Mail.Send", "Organization.ReadWrite.All",
        "Policy.ReadWrite.ConditionalAccess", "PrivilegedAccess.ReadWrite.AzureAD",
        "RoleManagement.ReadWrite.Directory", "Sites.FullControl.All", "User.ReadWrite.All",
        "UserAuthenticationMethod.ReadWrite.All",
    }
)

# The evidence row listing an admin's devices registered for MFA; a reviewer who does not recognise one
# of them answers "unfamiliar method" (offered only on items that show this row).
MFA_DEVICES = MFA_DEVICES_EVIDENCE

# Roles a DAP relationship grants a partner's agents, without asking the customer role by role.
_DAP_ROLES = (
    ("62e90394-69f5-4237-9190-012177145e10", "Admin Agents"),
    ("729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Agents"),
)
_USER = "#microsoft.graph.user"
_GROUP = "#microsoft.graph.group"
_SERVICE_PRINCIPAL = "#microsoft.graph.servicePrincipal"


def subjects_from_snapshot(
    snapshot: TenantSnapshot, now: datetime, break_glass: Collection[str] = ()
) -> list[Subject]:
    """Every subject of the snapshot, sorted by key. ``break_glass`` names emergency accounts by object
    id or UPN; their subjects are flagged so nothing ever proposes to revoke them."""
    emergency = _resolve_all(snapshot, break_glass)
    holdings = _holdings(snapshot)
    partners = _Partners.of(snapshot)
    subjects = [_role_subject(snapshot, h, now, emergency, partners) for h in holdings.by_key.values()]
    subjects += _recovery_subjects(snapshot, holdings, emergency)
    subjects += _partner_subjects(snapshot, holdings, partners, now)
    subjects += _azure_subjects(snapshot, partners, emergency)
    return sorted(subjects, key=lambda s: s.key)


def _resolve_all(snapshot: TenantSnapshot, names: Iterable[str]) -> frozenset[str]:
    ids = set()
    for name in names:
        object_id = snapshot.resolve_principal(name)
        ids.add((object_id or name.strip()).lower())
    return frozenset(ids)


# ---- role holdings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grant:
    """One line of Graph's answer about who holds a role, before de-duplication and group expansion."""

    role_definition_id: str
    principal_id: str
    kind: AssignmentType
    scope: str = "/"
    start: datetime | None = None
    end: datetime | None = None
    activation_end: datetime | None = None  # set on the grant standing for a PIM activation
    inherited: bool = False  # PIM's memberType Group/Inherited: held through a group, not directly
    principal: GraphObject | None = None  # Graph's expanded principal, when the listing carried it


class _Link(Enum):
    """How a grant reaches its holder: held directly, through a plain group, through a group PIM for Groups
    governs (as an assigned member, or a member PIM says nothing of), or through an eligible membership of one."""

    DIRECT = "direct"
    GROUP = "group"
    PIM_GROUP = "pim group"
    PIM_ELIGIBLE = "pim eligible"


@dataclass
class _Holding:
    """Everything one holder has of one role in one kind of assignment: the subject of a role review."""

    key: str
    role_id: str
    role_name: str
    holder: GraphObject
    holder_type: str
    kind: AssignmentType
    scopes: set[str] = field(default_factory=set)
    starts: list[datetime] = field(default_factory=list)
    ends: list[datetime | None] = field(default_factory=list)  # None: no end date
    activation_ends: list[datetime] = field(default_factory=list)
    direct: bool = False
    via_groups: dict[str, str] = field(default_factory=dict)  # group id -> "group X" or "PIM group X"
    # Groups whose PIM for Groups eligibility (or activation of it) is how the holder holds this role.
    pim_eligible_groups: dict[str, str] = field(default_factory=dict)  # group id -> group name

    @property
    def holder_id(self) -> str:
        return self.holder["id"]

    @property
    def holder_name(self) -> str:
        return self.holder.get("displayName") or self.holder.get("userPrincipalName") or self.holder["id"]

    @property
    def permanent(self) -> bool:
        return self.kind is AssignmentType.ACTIVE and (not self.ends or None in self.ends)


@dataclass
class _Holdings:
    by_key: dict[str, _Holding]
    foreign: dict[str, list[_Grant]]  # principal id -> what it holds

    def of_holder(self, holder_id: str) -> list[_Holding]:
        return [h for h in self.by_key.values() if h.holder_id.lower() == holder_id.lower()]


def _grants(snapshot: TenantSnapshot) -> list[_Grant]:
    """Direct assignments and PIM instances as grants, each access once.

    An ``Activated`` instance and the direct assignment Graph lists for it are one activation of an
    eligibility, not a second, permanent holding; an ``Assigned`` instance carries the dates its
    direct assignment lacks.
    """

    def where(item: GraphObject) -> tuple[str, str, str]:
        return (item["roleDefinitionId"].lower(), item["principalId"].lower(), item.get("directoryScopeId") or "/")

    grants: list[_Grant] = []
    scheduled: set[tuple[str, str, str]] = set()
    activated: set[tuple[str, str, str]] = set()
    for instance in snapshot.role_assignment_schedule_instances:
        start, end = evidence.parse_time(instance.get("startDateTime")), evidence.parse_time(instance.get("endDateTime"))
        role, principal_id = instance["roleDefinitionId"], instance["principalId"]
        scope, principal = instance.get("directoryScopeId") or "/", instance.get("principal")
        inherited = _inherited(instance)
        if instance.get("assignmentType") == "Activated":
            activated.add(where(instance))
            grants.append(_Grant(role, principal_id, AssignmentType.ELIGIBLE, scope, activation_end=end,
                                 principal=principal, inherited=inherited))
        else:
            scheduled.add(where(instance))
            grants.append(_Grant(role, principal_id, AssignmentType.ACTIVE, scope, start, end, principal=principal,
                                 inherited=inherited))
    for assignment in snapshot.role_assignments:
        if where(assignment) in scheduled or where(assignment) in activated:
            continue
        grants.append(
            _Grant(
                assignment["roleDefinitionId"], assignment["principalId"], AssignmentType.ACTIVE,
                scope=assignment.get("directoryScopeId") or "/", principal=assignment.get("principal"),
            )
        )
    for instance in snapshot.role_eligibility_schedule_instances:
        grants.append(
            _Grant(
                instance["roleDefinitionId"], instance["principalId"], AssignmentType.ELIGIBLE,
                scope=instance.get("directoryScopeId") or "/",
                start=evidence.parse_time(instance.get("startDateTime")),
                end=evidence.parse_time(instance.get("endDateTime")),
                principal=instance.get("principal"),
                inherited=_inherited(instance),
            )
        )
    return grants


def _inherited(instance: GraphObject) -> bool:
    return (instance.get("memberType") or "Direct") != "Direct"


def _holdings(snapshot: TenantSnapshot) -> _Holdings:
    """Group grants into one holding per (role, holder, kind); a group's role goes to each member."""
    by_key: dict[str, _Holding] = {}
    foreign: dict[str, list[_Grant]] = defaultdict(list)
    foreign_ids: dict[str, str] = {}  # lower-case id -> the id as first seen, for one subject per principal

    def hold_foreign(grant: _Grant) -> None:
        foreign[foreign_ids.setdefault(grant.principal_id.lower(), grant.principal_id)].append(grant)

    for record in snapshot.foreign_principals:
        hold_foreign(_Grant(record.get("roleDefinitionId") or "", record["id"], AssignmentType.ACTIVE,
                            scope=record.get("directoryScopeId") or "/"))
    # PIM for Groups' view of each group, read once per snapshot rather than once per member
    views = functools.cache(lambda group_id: pim_groups.pim_group(snapshot, group_id))
    for grant in _grants(snapshot):
        if snapshot.is_deleted(grant.principal_id):
            continue
        holders = _holders(snapshot, grant, views)
        if holders is None:
            hold_foreign(grant)
            continue
        for holder, holder_type, group in holders:
            for held, link in _through_group(snapshot, grant, holder, group, views):
                role_id = snapshot.role_template_id(held.role_definition_id)
                key = f"role:{role_id}:{holder['id']}:{held.kind.value}"
                holding = by_key.get(key)
                if holding is None:
                    holding = by_key[key] = _Holding(
                        key, role_id, snapshot.role_name(held.role_definition_id), holder, holder_type, held.kind
                    )
                _add(holding, held, group, link)
    return _Holdings(by_key, dict(foreign))


def _holders(
    snapshot: TenantSnapshot, grant: _Grant, views: Callable[[str], PimGroup | None]
) -> list[tuple[GraphObject, str, GraphObject | None]] | None:
    """(holder, holder type, group it comes through) for a grant; None when the principal is not in
    this tenant (a partner's group answers 404), so it is reviewed as a partner principal instead."""
    pid = grant.principal_id
    if snapshot.foreign_principal(pid) is not None:
        return None
    expanded = grant.principal or {}
    kind = expanded.get("@odata.type")
    user = snapshot.user(pid) or (expanded if kind == _USER else None)
    if user is not None:
        return [(user, "user", None)]
    group = snapshot.group(pid) or (expanded if kind == _GROUP else None)
    if group is not None:
        members = snapshot.members_of(pid)
        if members is None:  # not collected: review the group itself rather than lose the role
            return [(group, "group", None)]
        return [(member, "user", group) for member in _group_members(snapshot, pid, members, views)]
    app = snapshot.service_principal(pid) or (expanded if kind == _SERVICE_PRINCIPAL else None)
    if app is not None:
        return [(app, "servicePrincipal", None)]
    return None


def _group_members(
    snapshot: TenantSnapshot, group_id: str, members: tuple[GraphObject, ...], views: Callable[[str], PimGroup | None]
) -> list[GraphObject]:
    """The users who hold a group's roles: its members now, and, when PIM for Groups governs it, the users
    eligible to become members (directly, or through a nested group eligible as a whole), whom
    ``transitiveMembers`` does not list until they activate. Each user once."""
    found: dict[str, GraphObject] = {m["id"].lower(): m for m in members}
    pim = views(group_id)
    for membership in pim.eligible() if pim is not None else ():
        if membership.is_group:
            for member in snapshot.members_of(membership.principal_id) or ():
                found.setdefault(member["id"].lower(), member)
            continue
        user = snapshot.user(membership.principal_id) or membership.principal
        if user is not None and not snapshot.is_deleted(membership.principal_id):
            found.setdefault(membership.principal_id.lower(), user)
    return list(found.values())


def _through_group(
    snapshot: TenantSnapshot, grant: _Grant, holder: GraphObject, group: GraphObject | None,
    views: Callable[[str], PimGroup | None],
) -> list[tuple[_Grant, _Link]]:
    """How ``holder`` holds ``grant`` when it comes through ``group``: what the group holds, bounded by how the
    holder is in the group. A member eligible in PIM for Groups is eligible for the group's roles (until the
    earlier of the two end dates), an activated member is an activation of that eligibility, an assigned member
    holds the roles as the group does; a member PIM says nothing of is a member the ordinary way."""
    if group is None:
        return [(grant, _Link.DIRECT)]
    pim = views(group["id"])
    if pim is None or not pim.enrolled:
        return [(grant, _Link.GROUP)]
    memberships = pim.of(holder["id"]) or _through_nested(snapshot, pim, holder["id"])
    if not memberships or grant.activation_end is not None:
        return [(grant, _Link.PIM_GROUP)]
    held: list[tuple[_Grant, _Link]] = []
    for membership in memberships:
        end = pim_groups.earlier_end(grant.end, membership.end)
        if grant.kind is AssignmentType.ELIGIBLE and membership.how is Membership.ACTIVATED:
            # a member now through PIM for Groups, but the group's role itself still waits for an activation
            held.append((grant, _Link.PIM_ELIGIBLE))
        elif membership.how is Membership.ASSIGNED:
            held.append((replace(grant, end=end, start=grant.start or membership.start), _Link.PIM_GROUP))
        elif membership.how is Membership.ACTIVATED and end is not None:
            held.append((replace(grant, kind=AssignmentType.ELIGIBLE, activation_end=end), _Link.PIM_ELIGIBLE))
        else:
            held.append((replace(grant, kind=AssignmentType.ELIGIBLE, start=membership.start, end=end),
                         _Link.PIM_ELIGIBLE))
    return held


def _through_nested(snapshot: TenantSnapshot, pim: PimGroup, holder_id: str) -> tuple[GroupMembership, ...]:
    """The eligibility a user has through a nested group that is eligible for membership as a whole."""
    return tuple(
        m for m in pim.eligible()
        if m.is_group and any(u["id"].lower() == holder_id.lower() for u in snapshot.members_of(m.principal_id) or ())
    )


def _add(holding: _Holding, grant: _Grant, group: GraphObject | None, link: _Link) -> None:
    holding.scopes.add(grant.scope)
    if group is not None:
        name = group.get("displayName") or group["id"]
        if link is _Link.PIM_ELIGIBLE:
            holding.pim_eligible_groups[group["id"]] = name
        else:
            holding.via_groups[group["id"]] = f"PIM group {name}" if link is _Link.PIM_GROUP else f"group {name}"
    if grant.activation_end is not None:  # an activation says nothing about how the role is held
        holding.activation_ends.append(grant.activation_end)
        return
    if group is None and not grant.inherited:
        holding.direct = True
    if grant.start is not None:
        holding.starts.append(grant.start)
    holding.ends.append(grant.end)


def _assignment_text(holding: _Holding) -> str:
    since = f" since {evidence.day(min(holding.starts))}" if holding.starts else ""
    known_ends = [e for e in holding.ends if e is not None]
    if holding.kind is AssignmentType.ACTIVE:
        if holding.permanent:
            text = f"Active, permanent{since}"
        else:
            text = f"Active, time-bound until {evidence.day(max(known_ends))}"
    elif holding.pim_eligible_groups and not holding.direct and not holding.via_groups:
        # Eligible only because PIM for Groups lets them activate a membership: say through which group.
        groups = evidence.listing(holding.pim_eligible_groups.values(), 60)
        if not holding.ends:  # only an activation was listed, not the eligibility behind it
            text = f"Eligible through PIM group {groups}"
        elif None in holding.ends:
            text = f"Eligible through PIM group {groups} (no end date)"
        else:
            text = f"Eligible through PIM group {groups} (until {evidence.day(max(known_ends))})"
        if holding.activation_ends:
            text += f"; activated now until {max(holding.activation_ends):%Y-%m-%d %H:%M} UTC"
        return evidence.shorten(text)
    else:
        if not holding.ends:
            text = "Eligible (PIM)"
        elif None in holding.ends:
            text = "Eligible (PIM), no end date"
        else:
            text = f"Eligible (PIM) until {evidence.day(max(known_ends))}"
        if holding.activation_ends:
            text += f"; activated now until {max(holding.activation_ends):%Y-%m-%d %H:%M} UTC"
    sources = ["direct"] if holding.direct and (holding.via_groups or holding.pim_eligible_groups) else []
    if holding.via_groups:
        sources.append("via " + evidence.listing(holding.via_groups.values(), 60))
    if holding.pim_eligible_groups:
        sources.append("through PIM group " + evidence.listing(holding.pim_eligible_groups.values(), 60))
    if sources:
        text += ", " + " and ".join(sources)
    return evidence.shorten(text)


def _role_subject(
    snapshot: TenantSnapshot, holding: _Holding, now: datetime, emergency: frozenset[str], partners: _Partners
) -> Subject:
    break_glass = holding.holder_id.lower() in emergency
    scopes = sorted(s for s in holding.scopes if s != "/")
    role = holding.role_name + (f" (scope: {', '.join(scopes)})" if scopes else "")
    rows = {"Role": evidence.shorten(role), "Assignment": _assignment_text(holding)}
    if holding.holder_type == "user":
        rows.update(_person_rows(snapshot, holding.holder, now, break_glass=break_glass))
    elif holding.holder_type == "group":
        rows["Account"] = "Role-assignable group; its members were not collected"
    else:
        owner = holding.holder.get("appOwnerOrganizationId") or ""
        origin = "this tenant" if owner.lower() == partners.own_tenant else _tenant_label(owner, partners)
        rows["Account"] = evidence.shorten(f"Service principal (app), published by {origin}")
    return Subject(
        key=holding.key,
        kind=SubjectKind.ROLE_ASSIGNMENT,
        title=f"{holding.holder_name} — {holding.role_name}",
        holder_name=holding.holder_name,
        holder_ids=(holding.holder_id,),
        role_id=holding.role_id,
        role_name=holding.role_name,
        assignment_type=holding.kind,
        permanent=holding.permanent,
        break_glass=break_glass,
        evidence=rows,
    )


def _person_rows(snapshot: TenantSnapshot, user: GraphObject, now: datetime, *, break_glass: bool) -> dict[str, str]:
    registration = snapshot.registration(user["id"])
    activity = snapshot.mail_activity(user.get("userPrincipalName") or "")
    devices = snapshot.mfa_devices(user["id"])
    rows = {
        "Account": evidence.account(user, break_glass=break_glass),
        "Last sign-in": evidence.last_sign_in(user, now),
        # The devices themselves, named and dated, say more than the kinds of method registered; a card
        # holds eight lines, so they take the kinds' line when they were collected.
        **({MFA_DEVICES: evidence.mfa_devices(devices)} if devices is not None
           else {"MFA": evidence.mfa_methods(registration)}),
        "Phishing-resistant MFA": evidence.phishing_resistant(registration),
        "Licences": evidence.licences(user, snapshot.skus_by_id, activity),
    }
    risk = evidence.risk(snapshot.risk(user["id"]))
    if risk:
        rows["Risk"] = risk
    return rows


def _roles_text(holdings: Iterable[_Holding]) -> str:
    return evidence.listing(f"{h.role_name} ({h.kind.value})" for h in sorted(holdings, key=lambda h: h.key))


# ---- recovery contacts --------------------------------------------------------------------------


def _recovery_subjects(snapshot: TenantSnapshot, holdings: _Holdings, emergency: frozenset[str]) -> list[Subject]:
    """One subject per privileged person, covering every email and phone that can reset their password."""
    owners: dict[str, set[str]] = defaultdict(set)
    for user_id, method in snapshot.recovery_contact_owners():
        owners[contact_key(method)].add(user_id.lower())
    people: dict[str, list[_Holding]] = defaultdict(list)
    for holding in holdings.by_key.values():
        if holding.holder_type == "user":
            people[holding.holder_id].append(holding)
    subjects = []
    for user_id, held in people.items():
        name = held[0].holder_name
        rows = {"Roles": _roles_text(held)}
        rows.update(_contact_rows(snapshot, user_id, owners))
        subjects.append(
            Subject(
                key=f"recovery:{user_id}",
                kind=SubjectKind.RECOVERY_CONTACT,
                title=f"{name} — recovery contacts",
                holder_name=name,
                holder_ids=(user_id,),
                break_glass=user_id.lower() in emergency,
                evidence=rows,
            )
        )
    return subjects


def contact_key(method: GraphObject) -> str:
    if "emailAddress" in method:
        return "email:" + evidence.normalise_email(method.get("emailAddress") or "")
    return "phone:" + evidence.normalise_phone(method.get("phoneNumber") or "")


def _contact_rows(snapshot: TenantSnapshot, user_id: str, owners: Mapping[str, set[str]]) -> dict[str, str]:
    emails, phones = snapshot.recovery_emails(user_id), snapshot.recovery_phones(user_id)
    if emails is None and phones is None:
        return {"Recovery contacts": "not collected"}
    if not emails and not phones:
        return {"Recovery contacts": "missing — no email or phone registered"}
    rows: dict[str, str] = {}

    def note(method: GraphObject, masked: str, extra: list[str]) -> str:
        others = sorted(snapshot.display_name(o) for o in owners.get(contact_key(method), set()) - {user_id.lower()})
        if others:
            extra.append("shared with " + evidence.listing(others, 60))
        return evidence.shorten(" — ".join([masked, "; ".join(extra)]) if extra else masked)

    def put(label: str, value: str) -> None:
        numbered, n = label, 1
        while numbered in rows:
            n += 1
            numbered = f"{label} {n}"
        rows[numbered] = value

    if emails is None:
        rows["Email"] = "not collected"
    elif not emails:
        rows["Email"] = "none registered"
    for method in emails or ():
        address = method.get("emailAddress") or ""
        free = ["free-mail domain"] if evidence.email_domain(address) in evidence.FREE_MAIL_DOMAINS else []
        put("Email", note(method, evidence.mask_email(address), free))
    if phones is None:
        rows["Phone"] = "not collected"
    elif not phones:
        rows["Phone"] = "none registered"
    for method in phones or ():
        label = evidence.PHONE_LABELS.get(method.get("phoneType") or "", "Phone")
        put(label, note(method, evidence.mask_phone(method.get("phoneNumber") or ""), []))
    return rows


# ---- partners -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Partner:
    tenant_id: str | None
    name: str
    domain: str | None = None


@dataclass
class _Partners:
    """What the snapshot says about other tenants: names, domains, and which are known partners."""

    own_tenant: str
    names: dict[str, str]
    domains: dict[str, str]
    known: set[str]

    @classmethod
    def of(cls, snapshot: TenantSnapshot) -> _Partners:
        names: dict[str, str] = {}
        domains: dict[str, str] = {}
        known: set[str] = set()

        def learn(tenant_id: str | None, name: str | None, domain: str | None, partner: bool) -> None:
            if not tenant_id:
                return
            tid = tenant_id.lower()
            if name:
                names.setdefault(tid, name)
            if domain:
                domains.setdefault(tid, domain.lower())
            if partner:
                known.add(tid)

        for info in snapshot.tenant_information:
            learn(info.get("tenantId"), info.get("displayName"), info.get("defaultDomainName"), False)
        for relationship in snapshot.delegated_admin_relationships:
            other = _relationship_partner(snapshot, relationship)
            learn(other.tenant_id, other.name, None, True)
        for contract in snapshot.contracts:
            other = _contract_partner(snapshot, contract)
            learn(other.tenant_id, other.name, other.domain, True)
        for entry in snapshot.cross_tenant_partners:
            learn(entry.get("tenantId"), None, None, bool(entry.get("isServiceProvider")))
        for record in snapshot.foreign_principals:
            learn(record.get("tenantId"), None, None, True)
        return cls(snapshot.tenant_id.lower(), names, domains, known)

    def get(self, tenant_id: str | None) -> _Partner:
        if not tenant_id:
            return _Partner(None, "Unknown partner")
        tid = tenant_id.lower()
        return _Partner(tenant_id, self.names.get(tid) or f"Unknown tenant {tenant_id[:8]}…", self.domains.get(tid))

    def by_domain(self, domain: str | None) -> _Partner | None:
        for tid, known_domain in self.domains.items():
            if domain and known_domain == domain.lower():
                return self.get(tid)
        return None


def _relationship_partner(snapshot: TenantSnapshot, relationship: GraphObject) -> _Partner:
    """The other side of a GDAP relationship: the customer when we are the partner, else the partner
    the collector named (Graph itself never names the partner of a relationship)."""
    partner = relationship.get("partner") or {}
    if partner.get("tenantId") or partner.get("displayName"):
        return _Partner(partner.get("tenantId"), partner.get("displayName") or "Unknown partner")
    customer = relationship.get("customer") or {}
    if customer.get("tenantId") and customer["tenantId"].lower() != snapshot.tenant_id.lower():
        return _Partner(customer["tenantId"], customer.get("displayName") or customer["tenantId"])
    return _Partner(None, relationship.get("displayName") or "Unknown partner")


def _contract_partner(snapshot: TenantSnapshot, contract: GraphObject) -> _Partner:
    """The other side of a contract; Graph names it in ``customerId``/``displayName``/``defaultDomainName``."""
    other = contract.get("customerId")
    if other and other.lower() == snapshot.tenant_id.lower():
        return _Partner(None, "Unknown partner")
    return _Partner(other, contract.get("displayName") or other or "Unknown partner", contract.get("defaultDomainName"))


def _tenant_label(tenant_id: str | None, partners: _Partners) -> str:
    """Name, domain and tenant id of another tenant: the name to recognise it by, the id to verify it."""
    if not tenant_id:
        return "unknown"
    partner = partners.get(tenant_id)
    label = f"{partner.name}, " if tenant_id.lower() in partners.names else ""
    label += f"{partner.domain} ({tenant_id})" if partner.domain else tenant_id
    return evidence.shorten(label)


def _partner_subjects(
    snapshot: TenantSnapshot, holdings: _Holdings, partners: _Partners, now: datetime
) -> list[Subject]:
    delegated = [_dap_subject(snapshot, c, partners) for c in snapshot.contracts]
    delegated += [_gdap_subject(snapshot, r, partners) for r in snapshot.delegated_admin_relationships]
    delegated += [
        _service_provider_subject(snapshot, entry, partners)
        for entry in snapshot.cross_tenant_partners
        if entry.get("isServiceProvider")
    ]
    delegated += [_foreign_subject(snapshot, pid, grants, partners) for pid, grants in holdings.foreign.items()]
    subjects = [_with_partner_sign_ins(snapshot, subject, now) for subject in delegated]
    subjects += _app_subjects(snapshot, holdings, partners)
    subjects += _guest_subjects(snapshot, holdings, partners, now)
    return subjects


PARTNER_SIGN_INS = "Partner sign-ins"


def _with_partner_sign_ins(snapshot: TenantSnapshot, subject: Subject, now: datetime) -> Subject:
    """Delegated admin access (DAP, GDAP, a service provider, a partner's group) shows how its partner's
    people have been signing in: what the admin centre shows under "Cross-tenant access type: Service
    provider". Apps and B2B guests sign in otherwise and are not counted here."""
    if not subject.partner_id:
        return subject
    if any(entry.startswith("partnerSignIns:") for entry in snapshot.unavailable):
        value = "not available in this tenant (needs Microsoft Entra ID P1 or P2)"
    else:
        since = now - timedelta(days=PARTNER_SIGN_IN_WINDOW_DAYS)
        recent = [e for e in snapshot.sign_ins_by_partner(subject.partner_id)
                  if (moment := evidence.parse_time(e.get("createdDateTime"))) is not None and since <= moment <= now]
        value = evidence.partner_sign_ins(recent, snapshot.activity_of_partner(subject.partner_id), now,
                                          PARTNER_SIGN_IN_WINDOW_DAYS)
    return replace(subject, evidence={**subject.evidence, PARTNER_SIGN_INS: value})


def _partner_subject(key: str, title: str, partner: _Partner, rows: dict[str, str], holder: str = "",
                     holder_ids: tuple[str, ...] = ()) -> Subject:
    return Subject(
        key=key,
        kind=SubjectKind.PARTNER,
        title=evidence.shorten(title),
        holder_name=holder or partner.name,
        holder_ids=holder_ids,
        partner_id=partner.tenant_id,
        partner_name=partner.name,
        evidence=rows,
    )


def _dap_subject(snapshot: TenantSnapshot, contract: GraphObject, partners: _Partners) -> Subject:
    partner = _contract_partner(snapshot, contract)
    roles = ", ".join(f"{snapshot.role_name(role)} ({agents})" for role, agents in _DAP_ROLES)
    rows = {
        "Type": "DAP (delegated admin privileges, legacy)",
        "Roles": roles,
        "Contract": contract.get("contractType") or "unknown",
        "Status": "in force, no end date",
        "Partner tenant": _tenant_label(partner.tenant_id, partners),
    }
    return _partner_subject(f"partner:dap:{contract['id']}", f"{partner.name} — DAP (delegated admin)", partner, rows)


def _gdap_subject(snapshot: TenantSnapshot, relationship: GraphObject, partners: _Partners) -> Subject:
    partner = _relationship_partner(snapshot, relationship)
    roles = [r.get("roleDefinitionId") or "" for r in (relationship.get("accessDetails") or {}).get("unifiedRoles") or []]
    status = relationship.get("status") or "unknown"
    activated = evidence.parse_time(relationship.get("activatedDateTime"))
    ends = evidence.parse_time(relationship.get("endDateTime"))
    duration = relationship.get("duration") or ""
    days = evidence.duration_days(duration)
    extend = relationship.get("autoExtendDuration") or "PT0S"
    extend_days = evidence.duration_days(extend)
    assignments = snapshot.access_assignments(relationship["id"])
    if assignments is None:
        assigned = "not collected"
    else:
        live = [a for a in assignments if (a.get("status") or "active") == "active"]
        assigned = evidence.plural(len(live), "partner security group") if live else "no access assignments"
    rows = {
        "Type": "GDAP (granular delegated admin)",
        "Relationship": evidence.shorten(relationship.get("displayName") or relationship["id"]),
        "Roles": evidence.listing(snapshot.role_name(r) for r in roles) or "none",
        "Status": f"{status} since {evidence.day(activated)}" if status == "active" and activated else status,
        # one line with the auto-extension, so the card keeps room for the partner's sign-ins
        "Duration": evidence.shorten(
            (f"{days} days ({duration})" if days is not None else duration or "unknown")
            + (f", ends {evidence.day(ends)}" if ends else "")
            + (f"; auto-extends every {extend_days} days ({extend})" if extend_days else "; no auto-extend")
        ),
        "Partner tenant": _tenant_label(partner.tenant_id, partners),
        "Assigned to": assigned,
    }
    if partner.tenant_id:
        partner = partners.get(partner.tenant_id)
    return _partner_subject(f"partner:gdap:{relationship['id']}", f"{partner.name} — GDAP relationship", partner, rows)


def _service_provider_subject(snapshot: TenantSnapshot, entry: GraphObject, partners: _Partners) -> Subject:
    partner = partners.get(entry.get("tenantId"))
    trust = entry.get("inboundTrust") or {}
    trusted = [
        label
        for key, label in (
            ("isMfaAccepted", "partner MFA"),
            ("isCompliantDeviceAccepted", "compliant devices"),
            ("isHybridAzureADJoinedDeviceAccepted", "hybrid-joined devices"),
        )
        if trust.get(key)
    ]
    related = [
        r for r in snapshot.delegated_admin_relationships
        if (_relationship_partner(snapshot, r).tenant_id or "").lower() == (partner.tenant_id or "").lower()
    ]
    rows = {
        "Type": "Service provider in cross-tenant access settings",
        "Partner tenant": _tenant_label(partner.tenant_id, partners),
        "Inbound trust": ("accepts " + ", ".join(trusted)) if trusted else "nothing trusted",
        "GDAP": evidence.listing(f"{r.get('displayName') or r['id']} ({r.get('status') or 'unknown'})" for r in related)
        or "none in this snapshot",
    }
    return _partner_subject(
        f"partner:csp:{entry['tenantId']}", f"{partner.name} — service provider access", partner, rows
    )


def _app_subjects(snapshot: TenantSnapshot, holdings: _Holdings, partners: _Partners) -> list[Subject]:
    """Apps published by another tenant that a partner owns or that hold directory-wide power."""
    subjects = []
    for app in snapshot.service_principals:
        owner = (app.get("appOwnerOrganizationId") or "").lower()
        if not owner or owner == partners.own_tenant or owner in MICROSOFT_TENANTS:
            continue
        granted = sorted(
            {
                snapshot.app_role_name(a["resourceId"], a.get("appRoleId") or "")
                for a in snapshot.app_role_assignments
                if a.get("principalId", "").lower() == app["id"].lower()
            }
        )
        delegated: dict[str, set[str]] = defaultdict(set)
        for grant in snapshot.oauth2_permission_grants:
            if (grant.get("clientId") or "").lower() == app["id"].lower():
                audience = "all users" if grant.get("consentType") == "AllPrincipals" else snapshot.display_name(
                    grant.get("principalId") or "")
                delegated[audience].update((grant.get("scope") or "").split())
        roles = holdings.of_holder(app["id"])
        scopes = set().union(*delegated.values()) if delegated else set()
        powerful = HIGH_PRIVILEGE_PERMISSIONS.intersection(set(granted) | scopes)
        if owner not in partners.known and not powerful and not roles:
            continue
        partner = partners.get(app["appOwnerOrganizationId"])
        rows = {
            "Type": "App published by another tenant",
            "Application permissions": evidence.listing(granted) or "none",
            "Delegated permissions": evidence.listing(
                f"{', '.join(sorted(s, key=str.lower))} ({who})" for who, s in sorted(delegated.items())
            ) or "none",
        }
        if roles:
            rows["Directory roles"] = _roles_text(roles)
        rows["Partner tenant"] = _tenant_label(partner.tenant_id, partners)
        rows["App id"] = app.get("appId") or "unknown"
        name = app.get("displayName") or app["id"]
        subjects.append(
            _partner_subject(f"partner:app:{app['id']}", f"{name} — app of {partner.name}", partner, rows, holder=name)
        )
    return subjects


def _guest_subjects(snapshot: TenantSnapshot, holdings: _Holdings, partners: _Partners, now: datetime) -> list[Subject]:
    """A partner's people invited as guests and given admin roles: access the partner programme never shows."""
    guests: dict[str, list[_Holding]] = defaultdict(list)
    for holding in holdings.by_key.values():
        if holding.holder_type == "user" and evidence.is_guest(holding.holder):
            guests[holding.holder_id].append(holding)
    subjects = []
    for guest_id, held in guests.items():
        user = held[0].holder
        domain = evidence.home_domain(user)
        partner = partners.by_domain(domain) or _Partner(None, domain or "an unknown organisation", domain)
        rows = {
            "Type": "Guest account (B2B) holding admin roles",
            "Roles": _roles_text(held),
            "Home domain": domain or "unknown",
            "Partner tenant": _tenant_label(partner.tenant_id, partners),
            "Invitation": user.get("externalUserState") or "unknown",
            "Last sign-in": evidence.last_sign_in(user, now),
            "MFA": evidence.mfa_methods(snapshot.registration(guest_id)),
        }
        name = held[0].holder_name
        subjects.append(
            _partner_subject(
                f"partner:guest:{guest_id}", f"{name} — guest admin from {partner.name}", partner, rows,
                holder=name, holder_ids=(guest_id,),
            )
        )
    return subjects


def foreign_relationship(snapshot: TenantSnapshot, principal_id: str) -> GraphObject | None:
    """The GDAP relationship whose access assignments gave this partner security group its roles."""
    for relationship in snapshot.delegated_admin_relationships:
        for assignment in snapshot.access_assignments(relationship["id"]) or ():
            container = (assignment.get("accessContainer") or {}).get("accessContainerId") or ""
            if container.lower() == principal_id.lower():
                return relationship
    return None


def partner_standing(snapshot: TenantSnapshot, tenant_id: str) -> list[str]:
    """What in this tenant makes ``tenant_id`` a known partner: a service-provider entry in the
    cross-tenant access settings, a GDAP relationship still in force, a DAP or reseller contract.
    Empty when nothing does: that tenant's access is unexplained."""
    key = tenant_id.lower()
    reasons = []
    if any(
        (e.get("tenantId") or "").lower() == key and e.get("isServiceProvider") for e in snapshot.cross_tenant_partners
    ):
        reasons.append("a service provider in the cross-tenant access settings")
    reasons += [
        f"GDAP relationship {r.get('displayName') or r['id']}"
        for r in snapshot.delegated_admin_relationships
        if (_relationship_partner(snapshot, r).tenant_id or "").lower() == key
        and (r.get("status") or "").lower() not in ("expired", "terminated")
    ]
    reasons += [
        f"{c.get('contractType') or 'partner'} contract (DAP)"
        for c in snapshot.contracts
        if (c.get("customerId") or "").lower() == key
    ]
    return reasons


def foreign_partner_tenant(snapshot: TenantSnapshot, principal_id: str) -> str | None:
    """The home tenant of a principal of another tenant: as Graph named it, else the partner of the
    GDAP relationship that assigned it its roles; None when nothing says."""
    record = snapshot.foreign_principal(principal_id) or {}
    if record.get("tenantId"):
        return record["tenantId"]
    relationship = foreign_relationship(snapshot, principal_id)
    return _relationship_partner(snapshot, relationship).tenant_id if relationship is not None else None


def _foreign_subject(snapshot: TenantSnapshot, principal_id: str, grants: list[_Grant], partners: _Partners) -> Subject:
    record = snapshot.foreign_principal(principal_id) or {}
    relationship = foreign_relationship(snapshot, principal_id)
    tenant_id = foreign_partner_tenant(snapshot, principal_id)
    partner = partners.get(tenant_id) if tenant_id else _Partner(None, "Unknown partner")
    role_names = sorted({snapshot.role_name(g.role_definition_id) for g in grants if g.role_definition_id})
    group = record.get("displayName")
    rows = {
        "Type": "Principal from another tenant (a partner's security group)" if group or tenant_id
        else "Principal from another tenant (cannot be expanded)",
        "Roles": evidence.listing(role_names) or "unknown",
        "Partner tenant": _tenant_label(partner.tenant_id, partners),
    }
    if group:
        rows["Group"] = evidence.shorten(group)
    if tenant_id:
        rows["Partner standing"] = evidence.shorten(
            "; ".join(partner_standing(snapshot, tenant_id)) or "no service-provider entry, relationship or contract"
        )
    if relationship is not None:
        rows["GDAP relationship"] = evidence.shorten(
            f"{relationship.get('displayName') or relationship['id']} ({relationship.get('status') or 'unknown'})"
        )
    rows["Object id"] = principal_id
    holder = f"group {group}" if group else "foreign principal"
    title = f"{partner.name} — {holder} holding {evidence.listing(role_names, 60) or 'a role'}"
    return _partner_subject(f"partner:foreign:{principal_id}", title, partner, rows)


# ---- Azure subscriptions --------------------------------------------------------------------------


@dataclass
class _AzureHolding:
    """Everything one principal holds of one privileged Azure role under one subscription (or management
    group), in one kind of assignment: the subject of an Azure role review."""

    root: str
    role: str
    principal_id: str
    principal_type: str
    kind: AssignmentType
    scopes: set[str] = field(default_factory=set)
    created: list[datetime] = field(default_factory=list)
    ends: list[datetime | None] = field(default_factory=list)


def _azure_subjects(snapshot: TenantSnapshot, partners: _Partners, emergency: frozenset[str]) -> list[Subject]:
    """One subject per (subscription or management group, privileged role, principal, kind). ARM lists a
    partner's group holding a role (AOBO) as a ``ForeignGroup``: it is attributed to its partner tenant the
    way a foreign principal in the directory is."""
    holdings: dict[tuple[str, str, str, AssignmentType], _AzureHolding] = {}

    def hold(item: GraphObject, kind: AssignmentType) -> None:
        properties = item.get("properties") or {}
        role = azure_roles.role_guid(properties.get("roleDefinitionId"))
        principal = properties.get("principalId") or ""
        if role not in azure_roles.PRIVILEGED_AZURE_ROLES or not principal:
            return
        root, where = azure_roles.scope_root(properties.get("scope"))
        key = (root.lower(), role, principal.lower(), kind)
        holding = holdings.setdefault(
            key, _AzureHolding(root, role, principal, properties.get("principalType") or "Unknown", kind))
        holding.scopes.add(where)
        moment = evidence.parse_time(properties.get("startDateTime") or properties.get("createdOn"))
        if moment is not None:
            holding.created.append(moment)
        holding.ends.append(evidence.parse_time(properties.get("endDateTime")))

    for assignment in snapshot.azure_role_assignments:
        hold(assignment, AssignmentType.ACTIVE)
    for instance in snapshot.azure_role_eligibility_schedule_instances:
        hold(instance, AssignmentType.ELIGIBLE)
    names = {(s.get("subscriptionId") or "").lower(): s.get("displayName") or s["subscriptionId"]
             for s in snapshot.azure_subscriptions}
    names.update({(g.get("name") or "").lower(): (g.get("properties") or {}).get("displayName") or g.get("name")
                  for g in snapshot.azure_management_groups if g.get("name")})
    return [_azure_subject(snapshot, h, names.get(h.root.lower(), h.root), partners, emergency)
            for h in holdings.values()]


def _azure_subject(snapshot: TenantSnapshot, holding: _AzureHolding, where: str, partners: _Partners,
                   emergency: frozenset[str]) -> Subject:
    role_name = azure_roles.PRIVILEGED_AZURE_ROLES[holding.role]
    pid = holding.principal_id
    partner: _Partner | None = None
    user = snapshot.user(pid)
    if holding.principal_type == azure_roles.FOREIGN_GROUP:
        tenant_id = foreign_partner_tenant(snapshot, pid) or _sole_delegated_partner(snapshot)
        partner = partners.get(tenant_id) if tenant_id else _Partner(None, "Unknown partner")
        holder = f"{partner.name} (foreign group)"
        principal = "Foreign group of another tenant (AOBO)"
    elif user is not None:
        holder = user.get("displayName") or user.get("userPrincipalName") or pid
        principal = evidence.account(user, break_glass=pid.lower() in emergency)
    else:
        found = snapshot.group(pid) or snapshot.service_principal(pid)
        holder = (found or {}).get("displayName") or pid
        principal = {"Group": "Group", "ServicePrincipal": "Service principal (app)"}.get(
            holding.principal_type, holding.principal_type) + ("" if found else ", not in this snapshot")
    known_ends = [e for e in holding.ends if e is not None]
    permanent = holding.kind is AssignmentType.ACTIVE and (not holding.ends or None in holding.ends)
    since = f" since {evidence.day(min(holding.created))}" if holding.created else ""
    if holding.kind is AssignmentType.ELIGIBLE:
        assignment = "Eligible (PIM)" + (f" until {evidence.day(max(known_ends))}" if known_ends and not permanent
                                         and None not in holding.ends else ", no end date")
    else:
        assignment = f"Active, permanent{since}" if permanent else f"Active, time-bound until {evidence.day(max(known_ends))}"
    rows = {
        "Subscription": evidence.shorten(where),
        "Role": role_name,
        "Assignment": assignment,
        "Scope": evidence.listing(sorted(holding.scopes)),
        "Principal": evidence.shorten(principal),
    }
    if partner is not None:
        rows["Partner tenant"] = _tenant_label(partner.tenant_id, partners)
        rows["Object id"] = pid
    return Subject(
        key=f"azure:{holding.root}:{holding.role}:{pid}:{holding.kind.value}",
        kind=SubjectKind.AZURE_ROLE,
        title=evidence.shorten(f"{holder} — {role_name} of {where}"),
        holder_name=holder,
        holder_ids=(pid,) if partner is None else (),
        role_id=holding.role,
        role_name=role_name,
        partner_id=partner.tenant_id if partner else None,
        partner_name=partner.name if partner else None,
        assignment_type=holding.kind,
        permanent=permanent,
        break_glass=pid.lower() in emergency,
        evidence=rows,
    )


def _sole_delegated_partner(snapshot: TenantSnapshot) -> str | None:
    """The partner a foreign group holding an Azure role most likely belongs to, when only one fits: AOBO is
    given to the CSP reseller that sold the subscription (a partner contract here), so the one reseller
    contract names it; without one, the one partner with a GDAP relationship in force. None when several fit."""
    for tenants in (
        {(c.get("customerId") or "").lower() for c in snapshot.contracts if c.get("customerId")},
        {(_relationship_partner(snapshot, r).tenant_id or "").lower() for r in snapshot.delegated_admin_relationships
         if (r.get("status") or "").lower() not in ("expired", "terminated")} - {""},
    ):
        if tenants:
            return next(iter(tenants)) if len(tenants) == 1 else None
    return None


__all__ = [
    "HIGH_PRIVILEGE_PERMISSIONS",
    "MFA_DEVICES",
    "MICROSOFT_TENANTS",
    "PARTNER_SIGN_INS",
    "foreign_partner_tenant",
    "foreign_relationship",
    "partner_standing",
    "subjects_from_snapshot",
]
