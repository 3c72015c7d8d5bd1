"""The devices admins registered for MFA, read from ``users/{id}/authentication/methods``.

Registering a method is what an intruder does first with a stolen session or a Temporary Access Pass:
it outlives the password reset that follows. The registration report (``userRegistrationDetails``)
says which *kinds* of method an admin has; these checks look at the devices themselves (when each was
registered, which phone number) so a reviewer can say whether they recognise them. Break-glass
accounts and guests whose home tenant's MFA is trusted are left out, as in ``checks/rules/mfa.py``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

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
from checks.rules.mfa import mfa_trusted_from_home
from checks.snapshot import GraphObject, TenantSnapshot

_SEED = (
    "customer-security-best-practices: We strongly encourage the use of phishing-resistant MFA for all tenant "
    "administrators, review of devices registered for use with MFA, and minimizing the use of standing "
    "high-privilege access."
)

ADMIN_MFA_METHOD_NEW = CheckMetadata(
    id="admin_mfa_method_new",
    title="MFA method registered on an admin in the last days",
    severity=Severity.HIGH,
    subject_area="roles",
    rationale=(
        "An attacker holding an admin's session or a Temporary Access Pass registers an Authenticator or a "
        "key of their own, and keeps the account through any password reset. A method registered in the last "
        "days (CheckSettings.new_mfa_method_days) is asked about while the admin still remembers doing it."
    ),
    remediation=(
        "Ask the admin whether they registered it. If not, answer 'unfamiliar method': delete the method "
        "(Entra admin centre > Users > Authentication methods), revoke the admin's sessions and review the "
        "audit log for what the account did since."
    ),
    seed=_SEED,
)

ADMIN_MFA_PHONE_SHARED = CheckMetadata(
    id="admin_mfa_phone_shared",
    title="One phone number signs in two admins",
    severity=Severity.HIGH,
    subject_area="roles",
    rationale=(
        "A phone registered as an MFA method on two admin accounts answers the second factor of both, so "
        "whoever holds it (a shared desk phone, a team mobile) is half of each admin. recovery_contact_shared "
        "reports the same phone as a way to reset passwords; this check reports it on the admins' roles."
    ),
    remediation=(
        "Give each admin a method of their own (a FIDO2 key or passkey) and remove the shared number from "
        "the accounts that do not own it."
    ),
    seed=_SEED,
)

ADMIN_MFA_PHONE_ONLY = CheckMetadata(
    id="admin_mfa_phone_only",
    title="Admin whose only MFA devices are phones",
    severity=Severity.MEDIUM,
    subject_area="roles",
    rationale=(
        "Text messages and voice calls are the weakest second factor: a SIM swap or a forwarded number "
        "takes them over without touching the admin's device, and they can be relayed by a phishing site."
    ),
    remediation=(
        "Have the admin register a FIDO2 key, a passkey or Windows Hello for Business, then remove SMS and "
        "voice from the methods allowed for admins."
    ),
    seed=_SEED,
)


def _reviewable(snapshot: TenantSnapshot, subjects: Sequence[Subject]) -> Iterator[tuple[Admin, list[GraphObject]]]:
    """(admin, their devices registered for MFA) for every admin whose methods were collected."""
    for admin in admins(snapshot, subjects):
        if admin.break_glass or mfa_trusted_from_home(snapshot, admin.user):
            continue
        methods = snapshot.mfa_devices(admin.id)
        if methods is not None:
            yield admin, evidence.device_methods(methods)


@check(ADMIN_MFA_METHOD_NEW)
def admin_mfa_method_new(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    since = now - timedelta(days=settings.new_mfa_method_days)
    for admin, devices in _reviewable(snapshot, subjects):
        recent = []
        for method in devices:
            created = evidence.parse_time(method.get("createdDateTime"))
            if created is not None and since <= created <= now:
                recent.append(f"{evidence.device_name(method)} registered {evidence.day(created)} "
                              f"({evidence.days_ago(created, now)})")
        if not recent:
            continue
        message = evidence.shorten("; ".join(recent))
        for subject in admin.roles:
            yield subject_finding(
                ADMIN_MFA_METHOD_NEW, subject, message, Advice.REVIEW,
                "confirm the admin registered it; answer 'unfamiliar method' if not",
            )


@check(ADMIN_MFA_PHONE_SHARED)
def admin_mfa_phone_shared(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    reviewable = list(_reviewable(snapshot, subjects))
    holders: dict[str, dict[str, Admin]] = defaultdict(dict)  # phone digits -> admin id -> admin
    for admin, devices in reviewable:
        for method in devices:
            if method.get("@odata.type") == evidence.PHONE_METHOD:
                digits = evidence.normalise_phone(method.get("phoneNumber") or "")
                if digits:
                    holders[digits][admin.id.lower()] = admin
    for admin, devices in reviewable:
        shared: dict[str, list[str]] = {}
        for method in devices:
            digits = evidence.normalise_phone(method.get("phoneNumber") or "")
            if method.get("@odata.type") != evidence.PHONE_METHOD or not digits:
                continue
            others = sorted(a.name for key, a in holders[digits].items() if key != admin.id.lower())
            if others:
                shared[evidence.device_name(method)] = others
        if not shared:
            continue
        message = evidence.shorten("; ".join(
            f"{name} is also an MFA method of {evidence.listing(others, 60)}" for name, others in shared.items()
        ))
        for subject in admin.roles:
            yield subject_finding(
                ADMIN_MFA_PHONE_SHARED, subject, message, Advice.REVIEW,
                "a phone that signs in two admins; give each admin a method of their own",
            )


@check(ADMIN_MFA_PHONE_ONLY)
def admin_mfa_phone_only(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for admin, devices in _reviewable(snapshot, subjects):
        if not devices or any(m.get("@odata.type") != evidence.PHONE_METHOD for m in devices):
            continue  # no device at all is admin_mfa_missing's finding
        message = "MFA by " + evidence.listing(evidence.device_name(m) for m in devices) + " only"
        for subject in admin.roles:
            yield subject_finding(
                ADMIN_MFA_PHONE_ONLY, subject, message, Advice.REVIEW,
                "phone-only MFA; register a FIDO2 key or passkey",
            )
