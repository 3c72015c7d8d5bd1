"""Privileged roles on Azure subscriptions: AOBO, guests and partners as Owner, standing Owners.

Microsoft's guidance names AOBO (Administer On Behalf Of) explicitly: a CSP reseller that sold an Azure
subscription gets Owner on it through a group of its own tenant ("Admin Agents"), which ARM lists as a
``ForeignGroup``. It is invisible in the Entra admin centre and outlives the end of DAP in the directory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from bot.engine.model import AssignmentType, Subject, SubjectKind
from checks import azure_roles
from checks.registry import (
    Advice,
    CheckMetadata,
    CheckSettings,
    FindingResult,
    Severity,
    check,
    subject_finding,
)
from checks.snapshot import TenantSnapshot

AZURE_AOBO_PRESENT = CheckMetadata(
    id="azure_aobo_present",
    title="Partner holds a subscription role through AOBO",
    severity=Severity.HIGH,
    subject_area="roles",
    rationale=(
        "Administer On Behalf Of gives a CSP partner's agents a privileged role on a subscription through a "
        "group in the partner's own tenant: nobody here controls its members, and it stays after the directory "
        "side of the relationship (DAP) is gone."
    ),
    remediation=(
        "Ask the partner whether they still manage this subscription. If not, remove the foreign group's role "
        "assignment (Subscription > Access control (IAM) > Role assignments); if they do, move them to Azure "
        "Lighthouse or GDAP with the least role that does the job."
    ),
    seed="customer-security-best-practices: All organizations should thoroughly review all tenant admin users, "
    "including users associated with Administer On Behalf Of (AOBO) in Azure subscriptions, and verify the "
    "authenticity of the users and activity.",
)

AZURE_OWNER_GUEST_OR_FOREIGN = CheckMetadata(
    id="azure_owner_guest_or_foreign",
    title="Guest or another tenant's principal is Owner of a subscription",
    severity=Severity.HIGH,
    subject_area="roles",
    rationale=(
        "An Owner can do anything to the subscription, including giving access to others. A guest account or "
        "a group of another tenant in that role is governed by that other organisation's joiners and leavers."
    ),
    remediation=(
        "Give the person a role that does only what they need (Contributor on a resource group, say), or an "
        "account of this tenant under its own controls, and remove the Owner assignment."
    ),
    seed="customer-security-best-practices: We recommend that you identify whether your cloud service providers "
    "use these accounts, and if so, ensure that those accounts are well governed and have least-privilege access "
    "in your tenant.",
)

AZURE_OWNER_STANDING = CheckMetadata(
    id="azure_owner_standing",
    title="Standing Owner or access administrator where PIM is available",
    severity=Severity.MEDIUM,
    subject_area="roles",
    rationale=(
        "A permanent active assignment of a role that grants access to others (Owner, User Access "
        "Administrator, Role Based Access Control Administrator) is always usable by whoever takes over the "
        "account. The tenant has Microsoft Entra ID P2, so PIM for Azure resources can make it eligible and "
        "activated only when needed."
    ),
    remediation=(
        "Privileged Identity Management > Azure resources: make the assignment eligible (with approval or "
        "MFA on activation) and remove the permanent active one."
    ),
    seed="csp-partner-security-best-practices: If you have Microsoft Entra ID P2, use Privileged Identity "
    "Management (PIM) to enforce just-in-time (JIT) access.",
)


def _azure(subjects: Sequence[Subject]) -> Iterator[Subject]:
    return (s for s in sorted(subjects, key=lambda s: s.key) if s.kind is SubjectKind.AZURE_ROLE)


def _foreign(subject: Subject) -> bool:
    return subject.evidence.get("Principal", "").startswith("Foreign group")


def _pim_available(snapshot: TenantSnapshot) -> bool:
    plans = {p.get("servicePlanName") for sku in snapshot.subscribed_skus for p in sku.get("servicePlans") or []}
    return "AAD_PREMIUM_P2" in plans


@check(AZURE_AOBO_PRESENT)
def azure_aobo_present(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for subject in _azure(subjects):
        if _foreign(subject):
            message = (f"{subject.partner_name} holds {subject.role_name} of {subject.evidence['Subscription']} "
                       "through a group of its own tenant (AOBO)")
            yield subject_finding(AZURE_AOBO_PRESENT, subject, message, Advice.REVIEW,
                                  "confirm the partner still manages this subscription; remove AOBO if not")


@check(AZURE_OWNER_GUEST_OR_FOREIGN)
def azure_owner_guest_or_foreign(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for subject in _azure(subjects):
        if subject.role_id != azure_roles.OWNER:
            continue
        user = snapshot.user(subject.holder_ids[0]) if subject.holder_ids else None
        if _foreign(subject):
            message = f"Owner held by a group of {subject.partner_name}"
        elif user is not None and (user.get("userType") or "").lower() == "guest":
            message = f"Owner held by guest {user.get('userPrincipalName') or subject.holder_name}"
        else:
            continue
        yield subject_finding(AZURE_OWNER_GUEST_OR_FOREIGN, subject, message, Advice.REVOKE,
                              f"{message}; give a least-privilege role instead")


@check(AZURE_OWNER_STANDING)
def azure_owner_standing(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    if not _pim_available(snapshot):
        return
    for subject in _azure(subjects):
        if (subject.role_id in azure_roles.ACCESS_GRANTING_ROLES and subject.permanent
                and subject.assignment_type is AssignmentType.ACTIVE and not _foreign(subject)):
            yield subject_finding(
                AZURE_OWNER_STANDING, subject,
                f"{subject.role_name} of {subject.evidence['Subscription']} held permanently, with PIM available",
                Advice.REVIEW, "make it eligible in PIM for Azure resources",
                break_glass_note="keep it outside PIM only if it is the emergency path to Azure",
            )
