"""How highly privileged roles are held: standing (permanent active) versus just-in-time (PIM-eligible).

MS.AAD.7.4v1 is cited only for ScubaGear's own list of highly privileged roles; permanent holdings of the
other roles accessbot treats as privileged (Helpdesk, Security, Authentication Administrator, ...) are a
separate check with no ScubaGear id, so a tenant with sixty permanent helpdesk agents is not reported as
sixty breaches of a baseline that does not cover them.

PIM for Groups. ScubaGear's instructions for MS.AAD.7.4v1 list, among the exception cases: "If using PIM for
Groups, a group that is enrolled in PIM is allowed to have a perpetual active assignment to a role because
activation is handled by PIM for Groups." accessbot reviews the people behind a group's role, so the exception is
applied to them (checks/subjects.py, checks/pim_groups.py): a member who is only eligible for the group's
membership, or is a member through an activation of that eligibility, holds the role eligible, not permanently
active, and is not reported here however the group itself holds the role. A permanent member of such a group is
still a permanent active holder: for them no activation is handled by PIM for Groups, which is the reason the
exception gives. A group whose PIM for Groups instances could not be read is named in the snapshot's ``missing``
and its current members count as members, as they did before PIM for Groups was collected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from bot.engine.model import Subject, SubjectKind
from checks.pim_groups import pim_group
from checks.registry import (
    Advice,
    CheckMetadata,
    CheckSettings,
    FindingResult,
    Severity,
    check,
    subject_finding,
)
from checks.rules.holders import OTHER_PRIVILEGED_ROLES, is_scubagear_privileged
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
        "optionally an approval. Emergency accounts are the documented exception. So is a group enrolled in PIM "
        "for Groups, in ScubaGear's words \"allowed to have a perpetual active assignment to a role because "
        "activation is handled by PIM for Groups\": its members who are only eligible for the membership are not "
        "reported, its permanent members are."
    ),
    remediation=(
        "In Privileged Identity Management, convert the assignment to eligible (with an end date) and "
        "remove the permanent active one; for a role held through a group enrolled in PIM for Groups, make the "
        "person's membership of the group eligible instead. Keep permanent assignments only for registered "
        "break-glass accounts."
    ),
    seed="csp-partner-security-best-practices: If you have Microsoft Entra ID P2, use Privileged Identity "
    "Management (PIM) to enforce just-in-time (JIT) access.",
    scuba="MS.AAD.7.4v1",
)

OTHER_PRIVILEGED_ROLE_PERMANENT = CheckMetadata(
    id="other_privileged_role_permanent",
    title="Permanent assignment of another privileged role",
    severity=Severity.MEDIUM,
    subject_area="roles",
    rationale=(
        "Roles outside CISA's list of highly privileged roles still reset other people's credentials, "
        "change security policy or manage billing (Helpdesk, Authentication, Security Administrator, ...); "
        "held permanently, they are standing privilege an attacker can use at once. ScubaGear's MS.AAD.7.4v1 "
        "does not cover them, so they are reported here, without its id. Members only eligible for a group "
        "enrolled in PIM for Groups are not permanent holders here either."
    ),
    remediation=(
        "Make the assignment PIM-eligible with an end date where the tenant has Entra ID P2 (or, through a group "
        "enrolled in PIM for Groups, the person's membership of it), or confirm the person needs the role every day."
    ),
    seed="csp-partner-security-best-practices: If you have Microsoft Entra ID P2, use Privileged Identity "
    "Management (PIM) to enforce just-in-time (JIT) access.",
    scuba=None,
)


def _permanent_holdings(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], in_scope: Callable[[str | None], bool]
) -> Iterator[Subject]:
    """Permanent active holdings, by a user or group, of a role ``in_scope``. An app's role is left to
    the partner and app review: an app cannot activate an eligible role, so PIM is no remedy there."""
    for subject in sorted(subjects, key=lambda s: s.key):
        if subject.kind is not SubjectKind.ROLE_ASSIGNMENT or not subject.permanent or not in_scope(subject.role_id):
            continue
        if subject.holder_ids and snapshot.service_principal(subject.holder_ids[0]) is not None:
            continue
        if subject.holder_ids and _enrolled_in_pim_for_groups(snapshot, subject.holder_ids[0]):
            continue  # the group itself (its members were not collected): ScubaGear's exception, word for word
        yield subject


def _enrolled_in_pim_for_groups(snapshot: TenantSnapshot, object_id: str) -> bool:
    view = pim_group(snapshot, object_id) if snapshot.group(object_id) is not None else None
    return view is not None and view.enrolled


@check(PRIVILEGED_ROLE_PERMANENT)
def privileged_role_permanent(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    """ScubaGear's highly privileged roles only (MS.AAD.7.4v1)."""
    for subject in _permanent_holdings(snapshot, subjects, is_scubagear_privileged):
        yield subject_finding(
            PRIVILEGED_ROLE_PERMANENT, subject, f"{subject.role_name} is permanently active", Advice.REVIEW,
            "permanent active assignment; make it PIM-eligible (just-in-time)",
        )


@check(OTHER_PRIVILEGED_ROLE_PERMANENT)
def other_privileged_role_permanent(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    def in_scope(role_id: str | None) -> bool:
        return (role_id or "").lower() in OTHER_PRIVILEGED_ROLES

    for subject in _permanent_holdings(snapshot, subjects, in_scope):
        yield subject_finding(
            OTHER_PRIVILEGED_ROLE_PERMANENT, subject, f"{subject.role_name} is permanently active", Advice.REVIEW,
            "permanent active assignment; make it PIM-eligible or confirm it is needed every day",
        )
