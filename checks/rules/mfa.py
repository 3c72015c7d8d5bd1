"""Multifactor authentication of admins, read from userRegistrationDetails.

Break-glass accounts get no MFA findings: Microsoft's emergency-access guidance keeps them out of the
policies that could lock every admin out (or gives them a FIDO2 key of their own), the policy's
exception register records that choice once with who approved it, and repeating it every week would
only teach reviewers to skip the warning. Nor does a guest whose home tenant's MFA this tenant trusts:
they register their methods at home, where this collection cannot see them.
"""

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
from checks.rules.holders import Admin, admins
from checks.snapshot import TenantSnapshot

ADMIN_MFA_MISSING = CheckMetadata(
    id="admin_mfa_missing",
    title="Admin without MFA",
    severity=Severity.CRITICAL,
    subject_area="roles",
    rationale=(
        "An admin account protected by a password alone is one phished or sprayed password away from the "
        "whole tenant. Microsoft calls MFA the baseline for every account, and its CSP guidance says an "
        "account that will not use MFA should hold no administrator role."
    ),
    remediation=(
        "Enforce MFA for directory roles (security defaults or a Conditional Access policy), have the admin "
        "register a FIDO2 key, passkey or Microsoft Authenticator, and remove the role until they have."
    ),
    seed="customer-security-best-practices: Ensure multifactor authentication (MFA) is enabled and registered on "
    "every account.",
    scuba="MS.AAD.3.2v2",
)

ADMIN_MFA_NOT_PHISHING_RESISTANT = CheckMetadata(
    id="admin_mfa_not_phishing_resistant",
    title="Highly privileged admin without phishing-resistant MFA",
    severity=Severity.HIGH,
    subject_area="roles",
    rationale=(
        "Push notifications, codes and phone calls can be relayed by an adversary-in-the-middle phishing "
        "site; FIDO2 keys, device-bound passkeys and Windows Hello are bound to the sign-in origin and "
        "cannot. As in ScubaGear's MS.AAD.3.6v1, this covers CISA's highly privileged roles. An admin with "
        "no MFA at all is reported by admin_mfa_missing instead, not twice."
    ),
    remediation=(
        "Have the admin register a FIDO2 security key, a passkey or Windows Hello for Business, then require "
        "the 'Phishing-resistant MFA' authentication strength for directory roles in Conditional Access."
    ),
    seed="customer-security-best-practices: We strongly encourage the use of phishing-resistant MFA for all tenant "
    "administrators, review of devices registered for use with MFA, and minimizing the use of standing "
    "high-privilege access.",
    scuba="MS.AAD.3.6v1",
)

OTHER_ADMIN_MFA_NOT_PHISHING_RESISTANT = CheckMetadata(
    id="other_admin_mfa_not_phishing_resistant",
    title="Admin of another role without phishing-resistant MFA",
    severity=Severity.MEDIUM,
    subject_area="roles",
    rationale=(
        "Microsoft asks for phishing-resistant MFA for every administrator, not only for the highly "
        "privileged roles ScubaGear's MS.AAD.3.6v1 covers; admins of the other roles are reported here, "
        "without its id."
    ),
    remediation=(
        "Have the admin register a FIDO2 security key, a device-bound passkey or Windows Hello for Business, "
        "then require the 'Phishing-resistant MFA' authentication strength for their role."
    ),
    seed="customer-security-best-practices: We strongly encourage the use of phishing-resistant MFA for all tenant "
    "administrators, review of devices registered for use with MFA, and minimizing the use of standing "
    "high-privilege access.",
    scuba=None,
)


def mfa_trusted_from_home(snapshot: TenantSnapshot, user: Mapping[str, Any]) -> bool:
    """True for a guest whose home tenant's MFA this tenant accepts (cross-tenant access inbound trust):
    such a guest registers and performs MFA at home, so an empty registration here proves nothing."""
    if not evidence.is_guest(user):
        return False
    domain = evidence.home_domain(user)
    homes = {
        (t.get("tenantId") or "").lower()
        for t in snapshot.tenant_information
        if domain and (t.get("defaultDomainName") or "").lower() == domain
    }
    return any(
        (entry.get("tenantId") or "").lower() in homes and (entry.get("inboundTrust") or {}).get("isMfaAccepted")
        for entry in snapshot.cross_tenant_partners
    )


def _exempt(snapshot: TenantSnapshot, admin: Admin) -> bool:
    return admin.break_glass or mfa_trusted_from_home(snapshot, admin.user)


def second_factors(registration: Mapping[str, Any]) -> list[str]:
    """The registered methods that are a second factor (email, security questions and a Temporary
    Access Pass reset or bootstrap a sign-in but prove nothing about it)."""
    if not registration.get("isMfaRegistered"):
        return []
    return [m for m in registration.get("methodsRegistered") or [] if m not in evidence.NOT_MFA]


@check(ADMIN_MFA_MISSING)
def admin_mfa_missing(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    """An admin whose registration details (when collected) show no second factor."""
    for admin in admins(snapshot, subjects):
        registration = snapshot.registration(admin.id)
        if registration is None or _exempt(snapshot, admin) or second_factors(registration):
            continue
        others = [evidence.METHOD_NAMES.get(m, m) for m in registration.get("methodsRegistered") or []]
        message = "no MFA method registered" + (f" (only {evidence.listing(others, 60)})" if others else "")
        for subject in admin.roles:
            yield subject_finding(
                ADMIN_MFA_MISSING, subject, message, Advice.REVOKE,
                f"{message}; grant the role again once MFA is registered",
            )


def _without_phishing_resistant(snapshot: TenantSnapshot, subjects: Sequence[Subject]) -> Iterator[tuple[Admin, str]]:
    """(admin, message) for each admin with MFA whose methods include nothing phishing-resistant."""
    for admin in admins(snapshot, subjects):
        registration = snapshot.registration(admin.id)
        if registration is None or _exempt(snapshot, admin) or not second_factors(registration):
            continue
        if evidence.phishing_resistant(registration) == "yes":
            continue
        yield admin, f"MFA by {evidence.mfa_methods(registration)} only, none phishing-resistant"


@check(ADMIN_MFA_NOT_PHISHING_RESISTANT)
def admin_mfa_not_phishing_resistant(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for admin, message in _without_phishing_resistant(snapshot, subjects):
        for subject in admin.split_by_scubagear()[0]:
            yield subject_finding(
                ADMIN_MFA_NOT_PHISHING_RESISTANT, subject, message, Advice.REVIEW,
                "no phishing-resistant method; register a FIDO2 key or passkey",
            )


@check(OTHER_ADMIN_MFA_NOT_PHISHING_RESISTANT)
def other_admin_mfa_not_phishing_resistant(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for admin, message in _without_phishing_resistant(snapshot, subjects):
        for subject in admin.split_by_scubagear()[1]:
            yield subject_finding(
                OTHER_ADMIN_MFA_NOT_PHISHING_RESISTANT, subject, message, Advice.REVIEW,
                "no phishing-resistant method; register a FIDO2 key or passkey",
            )
