"""What is waiting for a reviewer, in the order worth answering it."""

from __future__ import annotations

from bot.engine.model import Campaign, ReviewItem, SubjectKind
from bot.engine.status import awaits_answer
from bot.service import ReviewService

KIND_LABELS = {
    SubjectKind.ROLE_ASSIGNMENT: "Privileged role",
    SubjectKind.PARTNER: "Partner relationship",
    SubjectKind.RECOVERY_CONTACT: "Recovery contacts",
}
_KIND_ORDER = {SubjectKind.ROLE_ASSIGNMENT: 0, SubjectKind.PARTNER: 1, SubjectKind.RECOVERY_CONTACT: 2}


def pending_for(service: ReviewService, object_id: str) -> list[tuple[ReviewItem, Campaign]]:
    """Open items this person may answer: accepted risks last; flagged before clean; privileged roles
    (Global Administrator first), then partners, then recovery contacts."""
    return sorted(service.items_for(object_id), key=lambda found: _order(found[0]))


def _order(item: ReviewItem) -> tuple[bool, bool, int, bool, str]:
    subject = item.subject
    return (
        item.exception is not None,
        not subject.findings,
        _KIND_ORDER[subject.kind],
        subject.role_name != "Global Administrator",
        subject.title,
    )


def waiting_summary(pending: list[tuple[ReviewItem, Campaign]]) -> str:
    """'21 items waiting for your answer (2 accepted exceptions listed apart)': the one wording of the count."""
    waiting = sum(1 for item, _ in pending if awaits_answer(item))
    text = f"{waiting} item{'s' if waiting != 1 else ''} waiting for your answer"
    excepted = sum(1 for item, _ in pending if item.is_open and not awaits_answer(item))
    if excepted:
        text += f" ({excepted} accepted exception{'s' if excepted != 1 else ''} listed apart, not counted)"
    return text
