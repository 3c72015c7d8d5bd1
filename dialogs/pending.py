"""What is waiting for a reviewer, in the order worth answering it."""

from __future__ import annotations

from dataclasses import replace

from bot.engine.changes import is_change_item
from bot.engine.model import Campaign, Decision, ReviewItem, SubjectKind
from bot.engine.status import awaits_answer
from bot.engine.state import CampaignState
from bot.service import ReviewService
from dialogs.views import TextView, Tone

KIND_LABELS = {
    SubjectKind.ROLE_ASSIGNMENT: "Privileged role",
    SubjectKind.PARTNER: "Partner relationship",
    SubjectKind.RECOVERY_CONTACT: "Recovery contacts",
    SubjectKind.AZURE_ROLE: "Azure subscription role",
    SubjectKind.APP_PERMISSION: "App permission",
}
_KIND_ORDER = {
    SubjectKind.ROLE_ASSIGNMENT: 0, SubjectKind.PARTNER: 1, SubjectKind.RECOVERY_CONTACT: 2, SubjectKind.AZURE_ROLE: 3,
    SubjectKind.APP_PERMISSION: 4,
}


def pending_for(service: ReviewService, object_id: str) -> list[tuple[ReviewItem, Campaign]]:
    """Open items this person may answer: access changes first; accepted risks last; flagged before clean; privileged roles
    (Global Administrator first), then partners, then recovery contacts, then Azure subscription roles."""
    return sorted(service.items_for(object_id), key=lambda found: _order(found[0]))


def _order(item: ReviewItem) -> tuple[bool, bool, bool, int, bool, str]:
    subject = item.subject
    return (
        not is_change_item(item),  # an access change just seen in the audit log is asked first: it is urgent
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


def closed_line(state: CampaignState) -> str | None:
    """'Review closed, signed off by Alex Wilber on Mon 23 Nov 10:00 UTC', or None while it is open."""
    if state.signed_off_by is None:
        return None
    when = f" on {state.signed_off_at:%a %d %b %H:%M} UTC" if state.signed_off_at else ""
    return f"Review closed, signed off by {state.signed_off_by}{when}"


def nothing_waiting(service: ReviewService) -> TextView:
    """What 'my reviews' says when nothing is left: thanks, or that the review was closed."""
    campaigns = service.campaigns()
    closed = closed_line(campaigns[0]) if campaigns else None
    if closed:
        return TextView(f"{closed}: there is nothing to answer until the next review.")
    return TextView("Nothing is waiting for you. Thank you!", Tone.GOOD)


def delegation_line(service: ReviewService, viewer: str | None, item: ReviewItem) -> str:
    """The line "You answer as Patti Fernandez's delegate." when ``viewer`` may answer this item only for one of
    its reviewers (the policy's delegates), else "": a delegate must see on whose behalf the answer will be
    recorded, as the ledger records it (a reviewer's own items come first, as in the engine)."""
    if not viewer:
        return ""
    answers_for = service.routing.may_act_for(viewer, item.reviewers)
    if answers_for is None or answers_for == viewer:
        return ""
    return f"You answer as {service.display_name(answers_for)}'s delegate."


def answer_line(service: ReviewService, decision: Decision) -> str:
    """The decision's one-line summary. A delegate's answer recorded before the ledger kept the reviewer's
    name gets it from the directory, so every card says on whose behalf it was given."""
    if decision.on_behalf_of and not decision.on_behalf_of_name:
        decision = replace(decision, on_behalf_of_name=service.display_name(decision.on_behalf_of))
    return decision.summary()
