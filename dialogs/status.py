"""The status flow: where the current campaign stands, for a security lead or for one reviewer.

The security leads' view is also the live status card: posted once in their channel ('watch status')
and updated in place as answers arrive, so nobody has to ask.
"""

from __future__ import annotations

from datetime import datetime

from bot.engine.state import CampaignState
from bot.engine.status import CampaignSummary
from bot.exports import CHART_FORMAT, ExportRequest
from bot.service import ReviewService
from dialogs.charts import Chart, owners_bars, progress_donut
from dialogs.views import Actor, StatusRow, StatusView, TextView, Tone


def period_label(period: str) -> str:
    """'2026-11-23T09:00' -> 'of Mon 23 Nov 2026'."""
    try:
        return f"of {datetime.strptime(period, '%Y-%m-%dT%H:%M'):%a %d %b %Y}"
    except ValueError:
        return period


def status(service: ReviewService, actor: Actor) -> StatusView | TextView:
    if not actor.object_id:
        return TextView("I can't tell who you are, so I can only show status to identified users.", Tone.WARNING)
    if service.is_security_lead(actor.object_id):
        return campaign_status(service)
    campaigns = service.campaigns()
    if not campaigns:
        return TextView("No review campaign is open yet.")
    state = campaigns[0]
    summary = service.summary(state)
    # Yours, or of someone you answer for as their delegate: the same circle 'my reviews' shows.
    mine = [item for item in state.items.values() if service.routing.may_act_for(actor.object_id, item.reviewers)]
    rows = (
        StatusRow("Assigned to you", str(len(mine))),
        StatusRow("Waiting for your answer", str(len(service.waiting_for(actor.object_id)))),
        StatusRow("Due", f"{summary.due:%a %d %b %H:%M} UTC"),
    )
    title = f"Your part of the {summary.tenant_name} review {period_label(summary.period)}"
    return StatusView(title, rows, (), _warnings(summary))


def campaign_status(service: ReviewService, live: bool = False) -> StatusView | TextView:
    """The whole campaign by owner: done / open / overdue / revoked. ``live`` marks the channel card."""
    campaigns = service.campaigns()
    if not campaigns:
        return TextView(" ".join(("No review campaign is open yet.", *filter(None, (service.audit_source,)))))
    state = campaigns[0]
    summary = service.summary(state)
    rows = (
        StatusRow("Items", str(summary.total)),
        StatusRow("Answered", f"{summary.done} ({summary.kept} kept, {summary.revoked} revoked)"),
        StatusRow("Unanswered at sign-off" if state.signed_off_by else "Open", str(summary.open)),
        StatusRow("Overdue", str(summary.overdue)),
        StatusRow("Accepted exceptions", str(summary.excepted)),
        StatusRow("Expired by policy", str(summary.expired)),
        StatusRow("Due", f"{summary.due:%a %d %b %H:%M} UTC"),
    )
    changes_open = service.open_change_reviews()
    if changes_open:
        rows += (StatusRow("Access changes awaiting an answer", str(changes_open)),)
    if summary.unfamiliar_methods:
        rows += (StatusRow("Unfamiliar MFA methods reported", str(summary.unfamiliar_methods)),)
    if state.signed_off_by:
        rows += (StatusRow("Signed off", f"by {state.signed_off_by}, {state.signed_off_at:%a %d %b %H:%M} UTC"),)
    # Once signed off nothing is open any more: each reviewer's remainder is what went unanswered.
    left = "unanswered at sign-off" if state.signed_off_by else "open"
    owners = tuple(
        StatusRow(service.display_name(o.reviewer_id), f"{o.open} {left}, {o.answered} answered") for o in summary.by_owner
    )
    footer = (f"Live: updated as answers arrive (last {service.clock.now():%a %d %b %H:%M} UTC).",) if live else ()
    if service.snapshot.unavailable:
        footer = ("Not available in this tenant (licence), so not shown on cards: "
                  + "; ".join(service.snapshot.unavailable),) + footer
    if service.audit_source:  # the change watch: read, hidden by the licence, or failing — never silent
        footer = (service.audit_source,) + footer
    title = f"{summary.tenant_name} review {period_label(summary.period)}"
    charts = status_charts(service, state)
    # The same charts as one image, for channels that show pictures rather than draw charts (Slack): a
    # signed link that expires, made for nobody in particular, since the card it sits on is the leads' own.
    image = service.export_link(ExportRequest(state.campaign.id, CHART_FORMAT, ""))
    return StatusView(title, rows, owners, _warnings(summary) + footer, live=live, charts=charts, chart_image=image)


def status_charts(service: ReviewService, state: CampaignState) -> tuple[Chart, ...]:
    """The campaign's progress and each reviewer's part, as charts: on the card, and as the chart image."""
    summary = service.summary(state)
    left = "Unanswered" if state.signed_off_by else "Open"
    return progress_donut(summary, left), owners_bars(summary, service.display_name, left)


def _warnings(summary: CampaignSummary) -> tuple[str, ...]:
    if summary.snapshot_complete:
        return ()
    missing = ", ".join(summary.snapshot_missing) or "unknown parts missing"
    return (f"This campaign was opened from an incomplete collection ({missing}): nothing absent from it was closed or revoked.",)
