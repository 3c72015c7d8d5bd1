"""How many people hold Global Administrator: at least two, at most eight (CISA ScubaGear MS.AAD.7.1v1).

The bounds are ScubaGear's and fixed: findings citing MS.AAD.7.1v1 must mean what the policy means.

What is counted, and why: every distinct user of this tenant holding the role active or PIM-eligible,
directly or through a role-assignable group, break-glass accounts and guests included. That is
ScubaGear's count (all permanent and eligible users holding the role) and Microsoft's (emergency
accounts are Global Administrators and are there precisely so the tenant is never left with one
admin). Apps and partner principals are not counted: they are nobody who can call Microsoft support
to recover the tenant, and the partner checks review them.

A count built from an incomplete collection is only a lower bound: "too few" is then not reported,
because a failed read must never look like a tenant with no admins; "too many" still is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from bot.engine.model import Subject, SubjectKind
from checks import evidence
from checks.registry import (
    Advice,
    CheckMetadata,
    CheckSettings,
    FindingResult,
    Severity,
    check,
    recommend,
)
from checks.rules.holders import GLOBAL_ADMINISTRATOR, Admin, admins
from checks.snapshot import TenantSnapshot

# MS.AAD.7.1v1: "A minimum of two users and a maximum of eight users SHALL be provisioned with the Global
# Administrator role."
SCUBAGEAR_MIN_GLOBAL_ADMINS = 2
SCUBAGEAR_MAX_GLOBAL_ADMINS = 8

# Collections the count is built from; when one of them failed, the count may be short.
_ROLE_COLLECTIONS = frozenset(
    {"roleAssignments", "roleEligibilityScheduleInstances", "roleAssignmentScheduleInstances", "groupMembers", "users",
     "pimGroupEligibilityScheduleInstances", "pimGroupAssignmentScheduleInstances"}
)

GLOBAL_ADMINS_TOO_FEW = CheckMetadata(
    id="global_admins_too_few",
    title="Fewer than two Global Administrators",
    severity=Severity.HIGH,
    subject_area="tenant",
    rationale=(
        "Keeping admin access to as few accounts as possible still means two: with a single Global "
        "Administrator, one lost phone, one leaver or one compromised account locks the organisation out "
        "of its own tenant. CISA's baseline sets the lower bound at two."
    ),
    remediation=(
        "Assign Global Administrator (PIM-eligible) to a second trusted admin, and keep at least one "
        "cloud-only break-glass account with a FIDO2 key stored safely."
    ),
    seed="csp-partner-security-best-practices: Regularly review administrative role access in Microsoft Entra ID, "
    "and limit access to as few accounts as possible.",
    scuba="MS.AAD.7.1v1",
)

GLOBAL_ADMINS_TOO_MANY = CheckMetadata(
    id="global_admins_too_many",
    title="More than eight Global Administrators",
    severity=Severity.HIGH,
    subject_area="tenant",
    rationale=(
        "Every Global Administrator can take over the whole tenant, so each extra one is another account "
        "whose compromise is total. Microsoft recommends fewer than five; CISA allows up to eight to cover "
        "emergency access."
    ),
    remediation=(
        "Give admins who do not need the whole tenant a least-privileged role instead (Exchange, User, "
        "Security Administrator, ...) and make the remaining Global Administrators PIM-eligible."
    ),
    seed="csp-partner-security-best-practices: Regularly review administrative role access in Microsoft Entra ID, "
    "and limit access to as few accounts as possible.",
    scuba="MS.AAD.7.1v1",
)


def global_admins(snapshot: TenantSnapshot, subjects: Sequence[Subject]) -> list[Admin]:
    """Users holding Global Administrator active or eligible, each once, sorted by object id."""
    return [admin for admin in admins(snapshot, subjects) if GLOBAL_ADMINISTRATOR in admin.role_ids]


def _count_is_complete(snapshot: TenantSnapshot, subjects: Sequence[Subject]) -> bool:
    # a ``missing`` entry starts with the collection's key: "groupMembers: 1 of 2 groups failed (503)"
    if _ROLE_COLLECTIONS.intersection(entry.split(":", 1)[0].strip() for entry in snapshot.missing):
        return False
    return not any(
        subject.kind is SubjectKind.ROLE_ASSIGNMENT
        and (subject.role_id or "").lower() == GLOBAL_ADMINISTRATOR
        and subject.holder_ids
        and snapshot.group(subject.holder_ids[0]) is not None  # a group whose members were not collected
        for subject in subjects
    )


def _named(holders: list[Admin]) -> str:
    count = evidence.plural(len(holders), "Global Administrator")
    return f"{count}: {evidence.listing(sorted(a.name for a in holders), 80)}" if holders else "no Global Administrator"


@check(GLOBAL_ADMINS_TOO_FEW)
def global_admins_too_few(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    holders = global_admins(snapshot, subjects)
    if len(holders) >= SCUBAGEAR_MIN_GLOBAL_ADMINS or not _count_is_complete(snapshot, subjects):
        return
    yield FindingResult(
        GLOBAL_ADMINS_TOO_FEW, None, snapshot.tenant_name, _named(holders),
        f"recommended: assign Global Administrator to at least {SCUBAGEAR_MIN_GLOBAL_ADMINS} people "
        "(a break-glass account counts) so one lost account cannot lock the tenant out",
    )


@check(GLOBAL_ADMINS_TOO_MANY)
def global_admins_too_many(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    holders = global_admins(snapshot, subjects)
    if len(holders) <= SCUBAGEAR_MAX_GLOBAL_ADMINS:
        return
    yield FindingResult(
        GLOBAL_ADMINS_TOO_MANY, None, snapshot.tenant_name, _named(holders),
        recommend(
            Advice.REVIEW,
            f"{len(holders)} Global Administrators, at most {SCUBAGEAR_MAX_GLOBAL_ADMINS}; "
            "give the others least-privileged roles",
        ),
    )
