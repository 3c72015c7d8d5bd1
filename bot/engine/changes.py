"""A review opened by one access change: a campaign of a single item, asked at once and escalated in hours.

Each change seen in the directory audit log gets a campaign of its own, with the id ``{tenant}:change:{audit
event id}``. Ids are derived, never random, so the store refuses a second opening of the same event: a
duplicate entry in the log, the overlap between two reads, a restart, or a second instance reading the same
log all come to the one review (the same event key the weekly campaign relies on). The opening's ledger
record is followed by an ``access_change`` record holding the audit event's own time: the durable cursor the
next read starts from (``latest_change_read``).

The clock's work is the weekly engine's (``timeline.tick``) with the change's pace (``change_policy``): the
owner is reminded halfway, the security leads get the item after ``[review] change_escalate``, and at twice
that it stays with them, marked overdue. Silence never keeps or removes a change: nobody decided it was fine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime
from typing import Any, Mapping, Sequence

from bot.engine.campaigns import OpenedCampaign, campaign_id, first_reviewers, item_id, opened_event
from bot.engine.model import (
    Campaign,
    LedgerEvent,
    Notice,
    NoticeKind,
    ReviewItem,
    Stage,
    Subject,
)
from bot.engine.routing import Routing
from bot.policy import EscalationStep, NoAnswer, Policy

CHANGE_PERIOD = "change:"  # a change review's period: "change:{audit event id}"
CHANGE_KEY = "change:"  # a change subject's key: "change:{audit event id}" (checks/access_changes.py)
ACCESS_CHANGE = "access_change"  # the ledger record naming the audit event a change review was opened for


def change_campaign_id(tenant_id: str, event_id: str) -> str:
    return campaign_id(tenant_id, CHANGE_PERIOD + event_id)


def is_change_campaign(campaign: Campaign) -> bool:
    return campaign.period.startswith(CHANGE_PERIOD)


def is_change_item(item: ReviewItem) -> bool:
    """An item asking about one access change (its subject is keyed by the audit event)."""
    return item.subject.key.startswith(CHANGE_KEY)


def change_policy(policy: Policy) -> Policy:
    """The policy a change review runs on: the owner first, the security leads after ``change_escalate``,
    overdue with them at twice that, a reminder halfway. ``no_answer`` is always escalate."""
    after = policy.change_escalate
    return dataclasses.replace(
        policy,
        deadline=after * 2,
        reminder_every=after / 2,
        escalation=(EscalationStep(Stage.SECURITY_LEADS, after),),
        no_answer=NoAnswer.ESCALATE,
    )


def open_change_review(
    *,
    tenant_id: str,
    tenant_name: str,
    event_id: str,
    event_at: datetime,
    subject: Subject,
    seed: str,
    routing: Routing,
    policy: Policy,
    now: datetime,
    roles_of_holder: Mapping[str, list[Subject]],
) -> OpenedCampaign:
    """The single-item campaign for one audit event, its two ledger events and the request to its owner.
    ``roles_of_holder`` (from the weekly campaign) lets an admin's MFA change reach the owners of their roles."""
    cid = change_campaign_id(tenant_id, event_id)
    due = now + change_policy(policy).deadline
    item = ReviewItem(
        id=item_id(cid, subject.key),
        campaign_id=cid,
        subject=subject,
        reviewers=first_reviewers(subject, routing, roles_of_holder),
        due=due,
        opened_at=now,
        stage=Stage.OWNER,
    )
    digest = hashlib.sha256(
        json.dumps([[item.id, subject.key, list(item.reviewers)]], separators=(",", ":")).encode()
    ).hexdigest()
    campaign = Campaign(
        id=cid, tenant_id=tenant_id, tenant_name=tenant_name, period=CHANGE_PERIOD + event_id, opened_at=now,
        due=due, item_count=1, items_digest=digest,
    )
    recorded = LedgerEvent(ACCESS_CHANGE, {
        "campaign_id": cid, "item_id": item.id, "audit_event_id": event_id, "activity_at": event_at.isoformat(),
        "question": subject.title, "seed": seed,
    })
    return OpenedCampaign(campaign, (item,), (opened_event(campaign), recorded), tuple(change_requests(campaign, item)))


def change_requests(campaign: Campaign, item: ReviewItem) -> list[Notice]:
    """One message per first reviewer, now: the question itself, not 'your review is open'."""
    return [
        Notice(
            key=f"request:{campaign.id}:{reviewer}",
            kind=NoticeKind.REVIEW_REQUEST,
            to=reviewer,
            item_ids=(item.id,),
            text=f"Access change in {campaign.tenant_name}: {item.subject.title} Please answer by "
            f"{campaign.due:%a %d %b %H:%M} UTC. Say 'my reviews'.",
        )
        for reviewer in item.reviewers
    ]


def latest_change_read(records: Sequence[Any]) -> datetime | None:
    """The audit time of the newest change recorded in the ledger: where the next read of the log may start
    (less an overlap). ``records`` are ledger records (``type`` and ``data``)."""
    times = [datetime.fromisoformat(r.data["activity_at"]) for r in records if r.type == ACCESS_CHANGE]
    return max(times, default=None)
