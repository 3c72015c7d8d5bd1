"""What kind of account holds an admin role: guests and other tenants' principals, accounts synced from
on-premises, accounts that also carry a mailbox, and accounts that look shared."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.engine.model import Subject
from checks import evidence
from checks.registry import (
    Advice,
    CheckMetadata,
    CheckSettings,
    FindingResult,
    Severity,
    check,
    subject_finding,
)
from checks.rules.holders import admins, partner_subjects
from checks.snapshot import TenantSnapshot
from checks.subjects import foreign_partner_tenant, foreign_relationship, partner_standing

ADMIN_GUEST_OR_EXTERNAL = CheckMetadata(
    id="admin_guest_or_external",
    title="Admin role held from outside the organisation",
    severity=Severity.HIGH,
    subject_area="partners",
    rationale=(
        "A guest (B2B) account or a principal of another tenant holding a directory role is admin access "
        "governed by someone else's joiners-and-leavers process and sign-in policies; service providers "
        "use such accounts beside delegated admin, and nothing in the partner programme shows them."
    ),
    remediation=(
        "Confirm with the partner who uses the account and why; replace it with a GDAP relationship "
        "holding least-privileged roles, or remove the role."
    ),
    seed="customer-security-best-practices: We recommend that you identify whether your cloud service providers "
    "use these accounts, and if so, ensure that those accounts are well governed and have least-privilege access "
    "in your tenant.",
    scuba=None,
)

ADMIN_SYNCED = CheckMetadata(
    id="admin_synced",
    title="Highly privileged admin account not cloud-only",
    severity=Severity.MEDIUM,
    subject_area="roles",
    rationale=(
        "An account synced from Active Directory is controlled by whoever controls the domain controllers "
        "and the sync server: compromising on-premises then gives cloud admin without touching Entra ID. "
        "Privileged accounts should be separate, dedicated, cloud-only accounts. As in ScubaGear's "
        "MS.AAD.7.3v1, this covers holders of CISA's highly privileged roles whose account has an "
        "on-premises immutable id (synced or federated) or is synced now."
    ),
    remediation=(
        "Create a cloud-only admin account (name@tenant.onmicrosoft.com) for the person, move the role to "
        "it, and leave the synced account for everyday work."
    ),
    seed="csp-partner-security-best-practices: Use separate, dedicated user accounts for Partner Center privileged "
    "users who have customer access.",
    scuba="MS.AAD.7.3v1",
)

OTHER_ADMIN_SYNCED = CheckMetadata(
    id="other_admin_synced",
    title="Admin account of another role not cloud-only",
    severity=Severity.LOW,
    subject_area="roles",
    rationale=(
        "The same risk as admin_synced for roles outside CISA's list of highly privileged roles: whoever "
        "controls on-premises Active Directory controls this admin. ScubaGear's MS.AAD.7.3v1 does not "
        "cover these roles, so they are reported here, without its id."
    ),
    remediation=(
        "Create a cloud-only admin account for the person, move the role to it, and leave the synced account "
        "for everyday work."
    ),
    seed="csp-partner-security-best-practices: Use separate, dedicated user accounts for Partner Center privileged "
    "users who have customer access.",
    scuba=None,
)

_MAIL_SEED = (
    "customer-security-best-practices: Users who have Microsoft Entra administrative roles shouldn't regularly use "
    "those accounts for email and collaboration."
)

ADMIN_MAILBOX_IN_USE = CheckMetadata(
    id="admin_mailbox_in_use",
    title="Admin account used for email",
    severity=Severity.MEDIUM,
    subject_area="roles",
    rationale=(
        "Mail is where phishing arrives: an admin who reads mail with the admin account opens every "
        "malicious link and attachment with admin rights. The 30-day email activity report shows this "
        "mailbox sending or reading mail."
    ),
    remediation=(
        "Give the person a separate account without admin roles for mail and collaboration, then remove "
        "the mailbox licence from the admin account."
    ),
    seed=_MAIL_SEED,
    scuba=None,
)

ADMIN_MAILBOX_LICENSED = CheckMetadata(
    id="admin_mailbox_licensed",
    title="Admin account with a mailbox licence",
    severity=Severity.LOW,
    subject_area="roles",
    rationale=(
        "A licence that includes Exchange Online gives the admin account a mailbox, and a mailbox invites "
        "everyday use. When the activity report shows it in use, admin_mailbox_in_use reports it instead."
    ),
    remediation="Remove the licence (or disable its Exchange plan) on the admin account; read mail elsewhere.",
    seed=_MAIL_SEED,
    scuba=None,
)

ADMIN_MANY_ROLES = CheckMetadata(
    id="admin_many_roles",
    title="One account holding many admin roles",
    severity=Severity.MEDIUM,
    subject_area="roles",
    rationale=(
        "An account that collects many directory roles is usually shared by a team (the Exchange person, "
        "the helpdesk, the app owner), so nobody is accountable for its actions and its password is known "
        "to several people; it is also far more than one person's job needs."
    ),
    remediation=(
        "Find out who uses the account; give each person their own account with only the roles their job "
        "needs, then remove the roles from the shared one."
    ),
    seed='customer-security-best-practices: Microsoft recommends against the use of "shared" administrator accounts.',
    scuba=None,
)


def is_external(user: Mapping[str, Any]) -> bool:
    """A guest, or a member account whose sign-in name says it was invited from elsewhere (#EXT#)."""
    return evidence.is_guest(user) or "#EXT#" in (user.get("userPrincipalName") or "").upper()


@check(ADMIN_GUEST_OR_EXTERNAL)
def admin_guest_or_external(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    guests = {guest_id.lower(): subject for guest_id, subject in partner_subjects(subjects, "guest")}
    for admin in admins(snapshot, subjects):
        if not is_external(admin.user):
            continue
        origin = evidence.home_domain(admin.user) or "an unknown organisation"
        message = f"account from {origin} holds {evidence.listing(admin.role_names(), 80)}"
        guest_subject = guests.get(admin.id.lower())
        for subject in (guest_subject,) if guest_subject else admin.roles:
            yield subject_finding(
                ADMIN_GUEST_OR_EXTERNAL, subject, message, Advice.REVIEW,
                f"{message}; confirm the partner still needs it, or use GDAP",
            )
    for principal_id, subject in partner_subjects(subjects, "foreign"):
        yield _foreign_finding(snapshot, principal_id, subject)


def _foreign_finding(snapshot: TenantSnapshot, principal_id: str, subject: Subject) -> FindingResult:
    """Advice on a principal of another tenant, from what explains it: the GDAP relationship that assigned
    it, else its home tenant's standing as a partner here (a service provider, a relationship, a
    contract); "revoke" only when nothing does, naming the tenant whenever Graph said which it is."""
    roles = evidence.listing(_foreign_roles(snapshot, principal_id), 80) or "a directory role"
    group = (snapshot.foreign_principal(principal_id) or {}).get("displayName")
    tenant_id = foreign_partner_tenant(snapshot, principal_id)
    relationship = foreign_relationship(snapshot, principal_id)
    if tenant_id and subject.partner_name:
        message = f"{f'group {group}' if group else 'a principal'} of {subject.partner_name} holds {roles}"
    else:
        message = f"principal of another tenant holds {roles}"
    if relationship is not None:
        name = relationship.get("displayName") or relationship["id"]
        advice, reason = Advice.REVIEW, f"{message} through GDAP relationship {name}; confirm that relationship is audited"
    elif tenant_id and (standing := partner_standing(snapshot, tenant_id)):
        advice = Advice.REVIEW
        reason = f"{message}; {subject.partner_name} is {' and '.join(standing)}: confirm this access is part of it"
    elif tenant_id:
        advice = Advice.REVOKE
        reason = f"{message}; that tenant is no service provider, relationship or contract of this tenant"
    else:
        advice, reason = Advice.REVOKE, f"{message}; no partner relationship in this snapshot explains it"
    return subject_finding(ADMIN_GUEST_OR_EXTERNAL, subject, message, advice, reason, resource=subject.title)


def _foreign_roles(snapshot: TenantSnapshot, principal_id: str) -> list[str]:
    key = principal_id.lower()
    listings = (
        snapshot.foreign_principals, snapshot.role_assignments, snapshot.role_eligibility_schedule_instances,
        snapshot.role_assignment_schedule_instances,
    )
    roles = set()
    for listing in listings:
        for entry in listing:
            if (entry.get("principalId") or entry.get("id") or "").lower() == key and entry.get("roleDefinitionId"):
                roles.add(snapshot.role_name(entry["roleDefinitionId"]))
    return sorted(roles)


def not_cloud_only(user: Mapping[str, Any]) -> bool:
    """ScubaGear's test (an on-premises immutable id: synced or federated), or sync switched on now."""
    return bool(user.get("onPremisesImmutableId")) or user.get("onPremisesSyncEnabled") is True


def _synced_findings(metadata: CheckMetadata, subjects: Sequence[Subject]) -> Iterator[FindingResult]:
    for subject in subjects:
        yield subject_finding(
            metadata, subject, "account synced from on-premises Active Directory", Advice.REVIEW,
            "synced from on-premises; move the role to a cloud-only admin account",
            break_glass_note="a break-glass account must be cloud-only: check how this one is synced",
        )


@check(ADMIN_SYNCED)
def admin_synced(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for admin in admins(snapshot, subjects):
        if not_cloud_only(admin.user):
            yield from _synced_findings(ADMIN_SYNCED, admin.split_by_scubagear()[0])


@check(OTHER_ADMIN_SYNCED)
def other_admin_synced(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for admin in admins(snapshot, subjects):
        if not_cloud_only(admin.user):
            yield from _synced_findings(OTHER_ADMIN_SYNCED, admin.split_by_scubagear()[1])


def mailbox_licences(user: Mapping[str, Any], skus: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Names of the user's licences that give a mailbox (an enabled Exchange Online plan)."""
    names = []
    for assigned in user.get("assignedLicenses") or []:
        sku = skus.get((assigned.get("skuId") or "").lower())
        if sku is None:
            continue
        if evidence.gives_mailbox(assigned, sku):
            part_number = sku.get("skuPartNumber") or sku.get("skuId") or "unknown licence"
            names.append(evidence.SKU_NAMES.get(part_number, part_number))
    return names


def _mail_use(activity: Mapping[str, Any] | None) -> tuple[int, int, str] | None:
    """(sent, read, days) from the email activity report when it shows the mailbox in use."""
    if activity is None:
        return None
    sent, read = int(activity.get("sendCount") or 0), int(activity.get("readCount") or 0)
    return (sent, read, str(activity.get("reportPeriod") or "30")) if sent or read else None


@check(ADMIN_MAILBOX_IN_USE)
def admin_mailbox_in_use(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for admin in admins(snapshot, subjects):
        use = _mail_use(snapshot.mail_activity(admin.user.get("userPrincipalName") or ""))
        if use is None:
            continue
        sent, read, days = use
        message = f"mailbox in use: {sent:,} sent, {read:,} read in {days} days"
        for subject in admin.roles:
            yield subject_finding(
                ADMIN_MAILBOX_IN_USE, subject, message, Advice.REVIEW,
                f"{message}; read mail from a separate account without admin roles",
            )


@check(ADMIN_MAILBOX_LICENSED)
def admin_mailbox_licensed(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for admin in admins(snapshot, subjects):
        activity = snapshot.mail_activity(admin.user.get("userPrincipalName") or "")
        licences = mailbox_licences(admin.user, snapshot.skus_by_id)
        if not licences or _mail_use(activity) is not None:
            continue
        message = f"{evidence.listing(licences, 60)} includes a mailbox"
        if activity is not None:
            message += f" (unused for {activity.get('reportPeriod') or '30'} days)"
        for subject in admin.roles:
            yield subject_finding(
                ADMIN_MAILBOX_LICENSED, subject, message, Advice.REVIEW,
                f"{message}; remove the mailbox licence from the admin account",
            )


@check(ADMIN_MANY_ROLES)
def admin_many_roles(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for admin in admins(snapshot, subjects):
        roles = admin.role_names()
        if len(roles) < settings.shared_account_min_roles:
            continue
        message = f"holds {len(roles)} roles: {evidence.listing(roles, 80)}"
        for subject in admin.roles:
            yield subject_finding(
                ADMIN_MANY_ROLES, subject, message, Advice.REVIEW,
                f"{message}; confirm one person uses it and split the roles",
            )
