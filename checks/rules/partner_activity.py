"""Partner access nobody from the partner uses: least privilege says it should go.

A partner's people signing in to this tenant show up in its sign-in log as "Cross-tenant access type:
Service provider". The log keeps 30 days, so "unused for 90 days" comes from ``partnerActivity``, which
accessbot carries from one collection to the next (``checks/graph/partner_activity.py``): the check speaks
only once the log has been watched without a gap for the whole period, never from a silence it did not see.
"""

from __future__ import annotations

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
from checks.rules.holders import partner_subjects
from checks.snapshot import TenantSnapshot

_ENDED = frozenset({"expired", "terminated"})

PARTNER_UNUSED = CheckMetadata(
    id="partner_unused",
    title="Partner access unused for 90 days",
    severity=Severity.MEDIUM,
    subject_area="partners",
    rationale=(
        "Delegated admin access that the partner's people have not used for months is standing privilege "
        "with no purpose: it still works for whoever compromises the partner. Unused for "
        "CheckSettings.partner_unused_after_days (90) by the sign-in log watched without a gap."
    ),
    remediation=(
        "Ask the partner whether they still need it. If not, terminate the GDAP relationship (or remove the "
        "partner's DAP / role) in the Microsoft 365 admin centre > Partner relationships."
    ),
    seed="customer-security-best-practices: Microsoft recommends prioritizing a thorough review and audit of "
    "partner relationships to minimize any unnecessary permissions between your organization and upstream "
    "providers.",
)

# Delegated admin rights: a DAP contract, a GDAP relationship, a partner's group holding a role. A
# service-provider entry in the cross-tenant settings grants nothing by itself, and apps and B2B guests
# sign in otherwise.
_KINDS = ("dap", "gdap", "foreign")


@check(PARTNER_UNUSED)
def partner_unused(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    cutoff = now - timedelta(days=settings.partner_unused_after_days)
    for kind in _KINDS:
        for object_id, subject in partner_subjects(subjects, kind):
            if not subject.partner_id:
                continue
            if kind == "gdap" and not _gdap_in_force_since(snapshot, object_id, cutoff):
                continue
            activity = snapshot.activity_of_partner(subject.partner_id)
            watched = evidence.parse_time((activity or {}).get("watchedSince"))
            if watched is None or watched > cutoff:
                continue  # not watched long enough to know
            last = evidence.parse_time((activity or {}).get("lastSignInDateTime"))
            if last is not None and last >= cutoff:
                continue
            message = (f"no sign-in by {subject.partner_name} for {settings.partner_unused_after_days} days"
                       + (f" (last {evidence.day(last)})" if last else f" (none seen since {evidence.day(watched)})"))
            yield subject_finding(
                PARTNER_UNUSED, subject, message, Advice.REVOKE,
                f"{message}; remove access the partner does not use (least privilege)",
                resource=subject.title,
            )


def _gdap_in_force_since(snapshot: TenantSnapshot, relationship_id: str, cutoff: datetime) -> bool:
    """A GDAP relationship still in force and active since before the period (a new one is not yet unused)."""
    relationship = next((r for r in snapshot.delegated_admin_relationships if r["id"] == relationship_id), None)
    if relationship is None or (relationship.get("status") or "").lower() in _ENDED:
        return False
    activated = evidence.parse_time(relationship.get("activatedDateTime"))
    return activated is not None and activated <= cutoff
