"""How highly privileged roles are held: standing (permanent active) versus just-in-time (PIM-eligible)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from bot.engine.model import Subject, SubjectKind
from checks.registry import (
    Advice,
    CheckMetadata,
    CheckSettings,
    FindingResult,
    Severity,
    check,
    subject_finding,
)
from checks.rules.holders import is_highly_privileged
from checks.snapshot import TenantSnapshot

PRIVILEGED_ROLE_PERMANENT = CheckMetadata(
    id="privileged_role_permanent",
    title="Permanent assignment of a highly privileged role",
    severity=Severity.HIGH,
    subject_area="roles",
    rationale=(
        "A permanent active assignment is standing privilege: the account is an admin every minute, "
        "whether or not its owner is doing admin work, so a stolen session or token is immediately a "
        "tenant takeover. A PIM-eligible assignment is activated for a few hours, with MFA, a reason and "
        "optionally an approval. Emergency accounts are the documented exception."
    ),
    remediation=(
        "In Privileged Identity Management, convert the assignment to eligible (with an end date) and "
        "remove the permanent active one; keep permanent assignments only for registered break-glass "
        "accounts."
    ),
    seed="csp-partner-security-best-practices: If you have Microsoft Entra ID P2, use Privileged Identity "
    "Management (PIM) to enforce just-in-time (JIT) access.",
    scuba="MS.AAD.7.4v1",
)


@check(PRIVILEGED_ROLE_PERMANENT)
def privileged_role_permanent(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    """Permanent active holdings of a highly privileged role by a user or group. An app's role is left
    to the partner and app review: an app cannot activate an eligible role, so PIM is no remedy there."""
    for subject in sorted(subjects, key=lambda s: s.key):
        if subject.kind is not SubjectKind.ROLE_ASSIGNMENT or not subject.permanent:
            continue
        if not is_highly_privileged(subject.role_id):
            continue
        if subject.holder_ids and snapshot.service_principal(subject.holder_ids[0]) is not None:
            continue
        yield subject_finding(
            PRIVILEGED_ROLE_PERMANENT, subject, f"{subject.role_name} is permanently active", Advice.REVIEW,
            "permanent active assignment; make it PIM-eligible (just-in-time)",
        )
