"""Partner access seen from the customer's tenant: legacy DAP, GDAP relationships and partners' apps.

GDAP relationships that have ended (expired, terminated) grant nothing and are not reported.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from bot.engine.model import Subject
from checks import evidence
from checks.registry import (
    Advice,
    CheckMetadata,
    CheckSettings,
    FindingResult,
    Severity,
    check,
    recommend,
    subject_finding,
)
from checks.rules.holders import GLOBAL_ADMINISTRATOR, partner_subjects
from checks.snapshot import GraphObject, TenantSnapshot
from checks.subjects import HIGH_PRIVILEGE_PERMISSIONS

_ENDED = frozenset({"expired", "terminated"})
_REVIEW_ACCESS = "csp-partner-security-best-practices: Regularly review access to customer environments."

PARTNER_DAP_PRESENT = CheckMetadata(
    id="partner_dap_present",
    title="Partner still has DAP (delegated admin privileges)",
    severity=Severity.HIGH,
    subject_area="partners",
    rationale=(
        "Legacy DAP gives every agent in the partner's Admin Agents group Global Administrator in this "
        "tenant, with no end date and no way to narrow it; Microsoft is retiring it in favour of GDAP, "
        "which grants named roles for a limited time."
    ),
    remediation=(
        "Ask the partner to move to a GDAP relationship with least-privileged roles, then remove the DAP "
        "(Microsoft 365 admin center > Settings > Partner relationships > Remove admin roles)."
    ),
    seed="customer-security-best-practices: Microsoft recommends prioritizing a thorough review and audit of partner "
    "relationships to minimize any unnecessary permissions between your organization and upstream providers.",
    scuba=None,
)

PARTNER_GDAP_GLOBAL_ADMIN = CheckMetadata(
    id="partner_gdap_global_admin",
    title="GDAP relationship grants Global Administrator",
    severity=Severity.HIGH,
    subject_area="partners",
    rationale=(
        "GDAP exists so a partner can hold only the roles its work needs; a relationship that includes "
        "Global Administrator gives the partner's agents the whole tenant again, as DAP did."
    ),
    remediation=(
        "Agree with the partner which tasks they perform, and replace the relationship with one holding "
        "only the matching least-privileged roles."
    ),
    seed="customer-security-best-practices: It's important to consider and implement a least-privilege approach.",
    scuba=None,
)

PARTNER_GDAP_AUTO_EXTEND = CheckMetadata(
    id="partner_gdap_auto_extend",
    title="GDAP relationship renews itself",
    severity=Severity.MEDIUM,
    subject_area="partners",
    rationale=(
        "With auto-extend on, the relationship never reaches its end date: partner access continues "
        "without anyone deciding again that it is still needed."
    ),
    remediation="Turn auto-extend off and let the relationship be renewed deliberately after a review.",
    seed=_REVIEW_ACCESS,
    scuba=None,
)

PARTNER_GDAP_TOO_LONG = CheckMetadata(
    id="partner_gdap_too_long",
    title="GDAP relationship longer than allowed",
    severity=Severity.MEDIUM,
    subject_area="partners",
    rationale=(
        "The longer a relationship runs, the longer partner access outlives the contract that justified "
        "it; the configured maximum keeps every relationship coming back for a decision."
    ),
    remediation="Ask the partner for a new relationship within the maximum duration and end this one.",
    seed=_REVIEW_ACCESS,
    scuba=None,
)

PARTNER_APP_HIGH_PRIVILEGE = CheckMetadata(
    id="partner_app_high_privilege",
    title="Partner app with high-privilege permissions",
    severity=Severity.HIGH,
    subject_area="partners",
    rationale=(
        "An app published by another tenant and granted permissions such as Directory.ReadWrite.All or "
        "RoleManagement.ReadWrite.Directory can take over this tenant with the partner's credentials alone, "
        "with no user, no MFA and no GDAP relationship involved."
    ),
    remediation=(
        "Confirm with the partner what the app does; remove the permissions it does not need (Enterprise "
        "applications > Permissions) or delete the service principal."
    ),
    seed="customer-security-best-practices: Review, audit, and minimize access privileges and delegated permissions.",
    scuba=None,
)


def _relationships(snapshot: TenantSnapshot, subjects: Sequence[Subject]) -> Iterator[tuple[GraphObject, Subject]]:
    """Every GDAP relationship still granting access, with its review subject."""
    by_id = {r["id"].lower(): r for r in snapshot.delegated_admin_relationships}
    for relationship_id, subject in partner_subjects(subjects, "gdap"):
        relationship = by_id.get(relationship_id.lower())
        if relationship is not None and (relationship.get("status") or "").lower() not in _ENDED:
            yield relationship, subject


def _gdap_resource(subject: Subject) -> str:
    return f"{subject.partner_name or subject.holder_name} GDAP"


def _relationship_name(relationship: GraphObject) -> str:
    return relationship.get("displayName") or relationship["id"]


PARTNER_RECEIVES_NOTIFICATIONS = CheckMetadata(
    id="partner_receives_notifications",
    title="Security notifications go to another organisation",
    severity=Severity.LOW,
    subject_area="partners",
    rationale=(
        "An address outside the tenant's own domains among its technical or security notification e-mails "
        "is the trace of a relationship (often set up by a CSP when the tenant was created): it should belong "
        "to a partner you know and have audited, and your own team should receive those notices too."
    ),
    remediation=(
        "Confirm the organisation is a known, audited partner; set the technical and security notification "
        "e-mails to your own security team (Microsoft 365 admin center > Settings > Org settings > "
        "Organization profile)."
    ),
    seed="customer-security-best-practices: Microsoft recommends immediately removing access for any partner "
    "relationships that look unfamiliar or haven't yet been audited.",
    scuba=None,
)
_NOTIFICATION_FIELDS = {
    "technicalNotificationMails": "technical notifications",
    "securityComplianceNotificationMails": "security and compliance notifications",
}


@check(PARTNER_RECEIVES_NOTIFICATIONS)
def partner_receives_notifications(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    own = {d.lower() for d in snapshot.verified_domains}
    for organization in snapshot.organization:
        own.update(str(d.get("name", "")).lower() for d in organization.get("verifiedDomains") or ())
    for organization in snapshot.organization:
        for field, what in _NOTIFICATION_FIELDS.items():
            for address in organization.get(field) or ():
                domain = str(address).rpartition("@")[2].lower()
                if domain and domain not in own:
                    message = f"{what} go to {address}, outside this tenant's domains"
                    yield FindingResult(
                        PARTNER_RECEIVES_NOTIFICATIONS, None, str(address), message,
                        recommend(Advice.REVIEW, f"{message}; confirm the partner is known and audited"),
                    )


@check(PARTNER_DAP_PRESENT)
def partner_dap_present(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for _, subject in partner_subjects(subjects, "dap"):
        partner = subject.partner_name or subject.holder_name
        message = f"DAP gives {partner}'s agents Global Administrator with no end date"
        yield subject_finding(
            PARTNER_DAP_PRESENT, subject, message, Advice.REVOKE,
            f"{message}; move the partner to GDAP with least-privileged roles", resource=f"{partner} DAP",
        )


@check(PARTNER_GDAP_GLOBAL_ADMIN)
def partner_gdap_global_admin(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for relationship, subject in _relationships(snapshot, subjects):
        roles = (relationship.get("accessDetails") or {}).get("unifiedRoles") or []
        if not any((r.get("roleDefinitionId") or "").lower() == GLOBAL_ADMINISTRATOR for r in roles):
            continue
        message = f"{_relationship_name(relationship)} grants Global Administrator"
        yield subject_finding(
            PARTNER_GDAP_GLOBAL_ADMIN, subject, message, Advice.REVIEW,
            f"{message}; ask the partner for least-privileged roles", resource=_gdap_resource(subject),
        )


@check(PARTNER_GDAP_AUTO_EXTEND)
def partner_gdap_auto_extend(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for relationship, subject in _relationships(snapshot, subjects):
        extend = evidence.duration_days(relationship.get("autoExtendDuration") or "PT0S")
        if not extend:
            continue
        message = f"{_relationship_name(relationship)} extends itself every {extend} days"
        yield subject_finding(
            PARTNER_GDAP_AUTO_EXTEND, subject, message, Advice.REVIEW,
            f"{message}; turn auto-extend off", resource=_gdap_resource(subject),
        )


@check(PARTNER_GDAP_TOO_LONG)
def partner_gdap_too_long(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for relationship, subject in _relationships(snapshot, subjects):
        days = evidence.duration_days(relationship.get("duration"))
        if days is None or days <= settings.max_gdap_duration_days:
            continue
        message = f"{_relationship_name(relationship)} lasts {days} days, more than {settings.max_gdap_duration_days}"
        yield subject_finding(
            PARTNER_GDAP_TOO_LONG, subject, message, Advice.REVIEW,
            f"{message}; ask for a shorter relationship", resource=_gdap_resource(subject),
        )


def app_permissions(snapshot: TenantSnapshot, app_id: str) -> tuple[list[str], list[str]]:
    """(application permissions, delegated permissions) granted to a service principal, sorted.
    Application permissions are app role assignments named by the resource's appRoles; delegated ones
    are the scopes of its oauth2PermissionGrants."""
    application = {
        snapshot.app_role_name(a["resourceId"], a.get("appRoleId") or "")
        for a in snapshot.app_role_assignments
        if a["principalId"].lower() == app_id.lower()
    }
    delegated: set[str] = set()
    for grant in snapshot.oauth2_permission_grants:
        if grant["clientId"].lower() == app_id.lower():
            delegated.update((grant.get("scope") or "").split())
    return sorted(application - {""}), sorted(delegated, key=str.lower)


@check(PARTNER_APP_HIGH_PRIVILEGE)
def partner_app_high_privilege(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    """Apps the subjects module put up for partner review (published by another tenant, not Microsoft)."""
    for app_id, subject in partner_subjects(subjects, "app"):
        application, delegated = app_permissions(snapshot, app_id)
        powerful = {
            kind: [p for p in granted if p in HIGH_PRIVILEGE_PERMISSIONS]
            for kind, granted in (("application", application), ("delegated", delegated))
        }
        parts = [f"{kind} {', '.join(names)}" for kind, names in powerful.items() if names]
        if not parts:
            continue
        partner = subject.partner_name or "another tenant"
        message = f"app of {partner} holds {'; '.join(parts)}"
        yield subject_finding(
            PARTNER_APP_HIGH_PRIVILEGE, subject, message, Advice.REVIEW,
            f"{message}; confirm the partner needs them", resource=subject.holder_name,
        )
