"""The password-recovery contacts of admins: whoever controls them can reset an admin's password.

Only masked contacts leave this module (the evidence module's masks), because findings are posted
to chat channels.
"""

from __future__ import annotations

from collections import defaultdict
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
    subject_finding,
)
from checks.rules.holders import admins, recovery_subjects
from checks.snapshot import GraphObject, TenantSnapshot
from checks.subjects import contact_key

_SEED = (
    "customer-security-best-practices: Regularly review and verify password recovery email addresses and phone "
    "numbers within Microsoft Entra ID for all users with the privileged Entra admin roles and update immediately."
)

RECOVERY_CONTACT_MISSING = CheckMetadata(
    id="recovery_contact_missing",
    title="Privileged admin without a recovery contact",
    severity=Severity.MEDIUM,
    subject_area="recovery",
    rationale=(
        "A privileged admin with no recovery email or phone cannot reset their own password, so a lost "
        "credential becomes a support case and pressure to hand out another admin's access; there is also "
        "nothing for the reviewer to verify."
    ),
    remediation=(
        "Have the admin register a recovery phone and an email address that they alone control, and "
        "verify both with them."
    ),
    seed=_SEED,
    scuba=None,
)

RECOVERY_CONTACT_SHARED = CheckMetadata(
    id="recovery_contact_shared",
    title="Recovery contact shared with other accounts",
    severity=Severity.HIGH,
    subject_area="recovery",
    rationale=(
        "A recovery email or phone registered for several accounts (a team mailbox, a switchboard number) "
        "lets everyone who reads it reset each of those passwords, and usually means nobody checked whose "
        "it is."
    ),
    remediation="Replace the shared contact with one that belongs to this admin alone, and verify it with them.",
    seed=_SEED,
    scuba=None,
)

RECOVERY_CONTACT_FREE_MAIL = CheckMetadata(
    id="recovery_contact_free_mail",
    title="Recovery email on a free-mail domain",
    severity=Severity.MEDIUM,
    subject_area="recovery",
    rationale=(
        "A personal free-mail address is outside the organisation's control and audit: whoever takes it "
        "over (an old password, no MFA, an expired account re-registered) can reset the admin's password."
    ),
    remediation=(
        "Verify with the admin that the address is theirs and protected by MFA, or replace it with a phone "
        "number or an address the organisation can verify."
    ),
    seed="csp-partner-security-best-practices: Regularly review and verify password recovery email addresses and "
    "phone numbers within Microsoft Entra ID for all users with the Global admin roles, and update if necessary.",
    scuba=None,
)


def _describe(method: GraphObject) -> str:
    if "emailAddress" in method:
        return f"email {evidence.mask_email(method.get('emailAddress') or '')}"
    label = evidence.PHONE_LABELS.get(method.get("phoneType") or "", "Phone").lower()
    return f"{label} {evidence.mask_phone(method.get('phoneNumber') or '')}"


def _contacts(snapshot: TenantSnapshot, user_id: str) -> list[GraphObject]:
    methods = [*(snapshot.recovery_emails(user_id) or ()), *(snapshot.recovery_phones(user_id) or ())]
    return [m for m in methods if (m.get("emailAddress") or m.get("phoneNumber") or "").strip()]


@check(RECOVERY_CONTACT_MISSING)
def recovery_contact_missing(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    """Both email and phone methods collected, and both empty, for a holder of a highly privileged role."""
    recovery = recovery_subjects(subjects)
    for admin in admins(snapshot, subjects):
        subject = recovery.get(admin.id.lower())
        emails, phones = snapshot.recovery_emails(admin.id), snapshot.recovery_phones(admin.id)
        if subject is None or not admin.privileged or emails is None or phones is None or emails or phones:
            continue
        yield subject_finding(
            RECOVERY_CONTACT_MISSING, subject, "no recovery email or phone registered", Advice.REVIEW,
            "no recovery email or phone; register contacts only this admin controls",
            break_glass_note="no recovery contact by design: verify its stored credentials and the hardware key",
        )


@check(RECOVERY_CONTACT_SHARED)
def recovery_contact_shared(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    owners: dict[str, set[str]] = defaultdict(set)
    for user_id, method in snapshot.recovery_contact_owners():
        owners[contact_key(method)].add(user_id.lower())
    recovery = recovery_subjects(subjects)
    for admin in admins(snapshot, subjects):
        subject = recovery.get(admin.id.lower())
        if subject is None:
            continue
        shared = []
        for method in _contacts(snapshot, admin.id):
            others = sorted(snapshot.display_name(o) for o in owners[contact_key(method)] - {admin.id.lower()})
            if others:
                shared.append(f"{_describe(method)} (also {evidence.listing(others, 60)})")
        if shared:
            message = "recovery contact shared: " + "; ".join(shared)
            yield subject_finding(
                RECOVERY_CONTACT_SHARED, subject, message, Advice.REVIEW,
                f"{message}; replace it with one only this admin controls",
            )


@check(RECOVERY_CONTACT_FREE_MAIL)
def recovery_contact_free_mail(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    recovery = recovery_subjects(subjects)
    for admin in admins(snapshot, subjects):
        subject = recovery.get(admin.id.lower())
        if subject is None:
            continue
        free = [
            evidence.mask_email(address)
            for address in (m.get("emailAddress") or "" for m in snapshot.recovery_emails(admin.id) or ())
            if address and evidence.email_domain(address) in evidence.FREE_MAIL_DOMAINS
        ]
        if free:
            message = f"recovery email {', '.join(free)} is on a free-mail domain"
            yield subject_finding(
                RECOVERY_CONTACT_FREE_MAIL, subject, message, Advice.REVIEW,
                f"{message}; verify it is the admin's own and protected by MFA",
            )
