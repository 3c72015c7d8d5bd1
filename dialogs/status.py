"""The status flow: where the current campaigns stand, for a security lead or for one reviewer."""

from __future__ import annotations

from bot.service import ReviewService
from dialogs.views import Actor, StatusRow, StatusView, TextView, Tone


def status(service: ReviewService, actor: Actor) -> StatusView | TextView:
    campaigns = service.campaigns()
    if not campaigns:
        return TextView("No review campaign is open yet.")
    state = campaigns[0]
    summary = service.summary(state)
    warnings = []
    if not summary.snapshot_complete:
        warnings.append(
            "This campaign was opened from an incomplete collection ("
            + (", ".join(summary.snapshot_missing) or "unknown parts missing")
            + "): nothing absent from it was closed or revoked."
        )
    if actor.object_id and service.is_security_lead(actor.object_id):
        rows = (
            StatusRow("Items", str(summary.total)),
            StatusRow("Answered", f"{summary.done} ({summary.kept} kept, {summary.revoked} revoked)"),
            StatusRow("Open", str(summary.open)),
            StatusRow("Overdue", str(summary.overdue)),
            StatusRow("Accepted exceptions", str(summary.excepted)),
            StatusRow("Expired by policy", str(summary.expired)),
            StatusRow("Due", f"{summary.due:%a %d %b %H:%M} UTC"),
        )
        owners = tuple(
            StatusRow(service.display_name(o.reviewer_id), f"{o.open} open, {o.answered} answered")
            for o in summary.by_owner
        )
        return StatusView(f"{summary.tenant_name} review {summary.period}", rows, owners, tuple(warnings))
    if not actor.object_id:
        return TextView("I can't tell who you are, so I can only show status to identified users.", Tone.WARNING)
    mine = [item for item in state.items.values() if actor.object_id in item.reviewers]
    open_count = sum(1 for item in mine if item.is_open and item.exception is None)
    rows = (
        StatusRow("Assigned to you", str(len(mine))),
        StatusRow("Waiting for your answer", str(open_count)),
        StatusRow("Due", f"{summary.due:%a %d %b %H:%M} UTC"),
    )
    return StatusView(f"Your part of the {summary.tenant_name} review {summary.period}", rows, (), tuple(warnings))
