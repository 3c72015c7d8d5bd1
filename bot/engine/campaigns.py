"""Opening a review campaign: one item per subject, each with its reviewers and due time.

Ids are derived, never random: the campaign id from tenant and period, the item id from campaign and
subject key. A restart, a retry or a second instance therefore computes the same campaign and the store
refuses to open it twice.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

from croniter import croniter

from bot.engine.model import (
    Campaign,
    LedgerEvent,
    Notice,
    NoticeKind,
    PolicyExceptionGrant,
    ReviewItem,
    Stage,
    Subject,
    SubjectKind,
)
from bot.engine.routing import Routing
from bot.engine.status import awaits_answer
from bot.policy import Policy


@dataclass(frozen=True)
class OpenedCampaign:
    campaign: Campaign
    items: tuple[ReviewItem, ...]
    events: tuple[LedgerEvent, ...]
    notices: tuple[Notice, ...]


def current_period(cron: str, timezone: str, now: datetime) -> str:
    """The scheduled start this moment belongs to, in the policy's time zone (e.g. '2026-11-23T09:00')."""
    return period_start(cron, timezone, now).strftime("%Y-%m-%dT%H:%M")


def period_start(cron: str, timezone: str, now: datetime) -> datetime:
    """When the period this moment belongs to began (the schedule's last start at or before ``now``), in the
    policy's time zone: data collected before it is last period's."""
    local = now.astimezone(ZoneInfo(timezone)).replace(second=0, microsecond=0)
    if croniter.match(cron, local):
        return local
    start: datetime = croniter(cron, local).get_prev(datetime)
    return start


def campaign_id(tenant_id: str, period: str) -> str:
    return f"{tenant_id}:{period}"


def campaign_tenant(cid: str) -> str:
    """The tenant id a campaign id names (``campaign_id``), lower-cased: whose review service holds it."""
    return cid.partition(":")[0].lower()


def item_id(campaign: str, subject_key: str) -> str:
    return hashlib.sha256(f"{campaign}|{subject_key}".encode()).hexdigest()[:20]


def open_campaign(
    *,
    tenant_id: str,
    tenant_name: str,
    period: str,
    subjects: Sequence[Subject],
    routing: Routing,
    policy: Policy,
    now: datetime,
    exceptions: Mapping[str, PolicyExceptionGrant] | None = None,
    snapshot_complete: bool = True,
    snapshot_missing: Sequence[str] = (),
) -> OpenedCampaign:
    """Build the campaign, its items, the ledger event that opens it and the review requests to send.

    ``exceptions`` maps a subject key or a holder's object id to an accepted-risk grant; grants that
    have already expired are ignored, so an expired exception is simply asked again.
    """
    cid = campaign_id(tenant_id, period)
    due = now + policy.deadline
    roles_of_holder: dict[str, list[Subject]] = defaultdict(list)
    for subject in subjects:
        if subject.kind is SubjectKind.ROLE_ASSIGNMENT:
            for holder in subject.holder_ids:
                roles_of_holder[holder].append(subject)

    items = []
    for subject in sorted(subjects, key=lambda s: s.key):
        reviewers = first_reviewers(subject, routing, roles_of_holder)
        items.append(
            ReviewItem(
                id=item_id(cid, subject.key),
                campaign_id=cid,
                subject=subject,
                reviewers=reviewers,
                due=due,
                opened_at=now,
                stage=Stage.OWNER,
                exception=_active_exception(subject, exceptions or {}, now),
            )
        )

    digest = hashlib.sha256(
        json.dumps([[i.id, i.subject.key, list(i.reviewers)] for i in items], separators=(",", ":")).encode()
    ).hexdigest()
    campaign = Campaign(
        id=cid,
        tenant_id=tenant_id,
        tenant_name=tenant_name,
        period=period,
        opened_at=now,
        due=due,
        item_count=len(items),
        snapshot_complete=snapshot_complete,
        snapshot_missing=tuple(snapshot_missing),
        items_digest=digest,
    )
    return OpenedCampaign(campaign, tuple(items), (opened_event(campaign),), tuple(review_requests(campaign, items)))


def opened_event(campaign: Campaign) -> LedgerEvent:
    """The ledger's record of an opening; derived from the campaign alone, so it can be re-derived after a crash."""
    return LedgerEvent(
        "campaign_opened",
        {
            "campaign_id": campaign.id,
            "tenant_id": campaign.tenant_id,
            "period": campaign.period,
            "opened_at": campaign.opened_at.isoformat(),
            "due": campaign.due.isoformat(),
            "item_count": campaign.item_count,
            "items_digest": campaign.items_digest,
            "snapshot_complete": campaign.snapshot_complete,
            "snapshot_missing": list(campaign.snapshot_missing),
        },
    )


def first_reviewers(
    subject: Subject, routing: Routing, roles_of_holder: Mapping[str, list[Subject]]
) -> tuple[str, ...]:
    """Owners of the subject, else the fallback reviewers, else the security leads — never its holder,
    except an admin confirming their own recovery contact when the policy allows it."""
    allowed_self = subject.kind is SubjectKind.RECOVERY_CONTACT and routing.recovery_include_admin
    for candidates in (routing.owners_of(subject, roles_of_holder), routing.fallback, routing.security_leads):
        chosen = tuple(r for r in candidates if allowed_self or r not in subject.holder_ids)
        if chosen:
            return chosen
    return ()


def _active_exception(
    subject: Subject, exceptions: Mapping[str, PolicyExceptionGrant], now: datetime
) -> PolicyExceptionGrant | None:
    for key in (subject.key.lower(), *subject.holder_ids):
        grant = exceptions.get(key)
        if grant is not None and grant.expires >= now.date():
            return grant
    return None


def review_requests(campaign: Campaign, items: Sequence[ReviewItem]) -> list[Notice]:
    waiting: dict[str, list[str]] = defaultdict(list)
    for item in items:
        if awaits_answer(item):
            for reviewer in item.reviewers:
                waiting[reviewer].append(item.id)
    return [
        Notice(
            key=f"request:{campaign.id}:{reviewer}",
            kind=NoticeKind.REVIEW_REQUEST,
            to=reviewer,
            item_ids=tuple(item_ids),
            text=(
                f"The {campaign.tenant_name} access review is open: {len(item_ids)} "
                f"item{'s' if len(item_ids) != 1 else ''} need your answer by {campaign.due:%a %d %b %H:%M} UTC. "
                "Say 'my reviews' to see them."
            ),
        )
        for reviewer, item_ids in waiting.items()
    ]
