"""Hand-made campaigns and messages for the store tests: every optional field of an item is filled in
somewhere, so a field the codec forgets shows up as a failed round trip."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from bot.engine.model import (
    Action,
    AssignmentType,
    Campaign,
    Decision,
    Finding,
    ItemState,
    PolicyExceptionGrant,
    ReviewItem,
    Stage,
    Subject,
    SubjectKind,
)
from bot.store.base import OutboxMessage

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def campaign(period: str = "2026-11-23T09:00", *, opened_at: datetime = MONDAY, items: int = 2) -> Campaign:
    return Campaign(
        id=f"tenant-contoso:{period}",
        tenant_id="tenant-contoso",
        tenant_name="Contoso",
        period=period,
        opened_at=opened_at,
        due=opened_at + timedelta(days=5),
        item_count=items,
        snapshot_complete=False,
        snapshot_missing=("recovery contacts",),
        items_digest="d" * 64,
    )


def items(for_campaign: Campaign) -> list[ReviewItem]:
    """A plain open role item and a decided partner item carrying history, a decision and an exception."""
    cid = for_campaign.id
    role = Subject(
        key="role:ga:admin-megan:active",
        kind=SubjectKind.ROLE_ASSIGNMENT,
        title="Megan Bowen — Global Administrator",
        holder_name="Megan Bowen",
        holder_ids=("admin-megan",),
        role_id="62e90394-69f5-4237-9190-012177145e10",
        role_name="Global Administrator",
        assignment_type=AssignmentType.ACTIVE,
        permanent=True,
        evidence={"MFA": "none registered", "Last sign-in": "2026-11-01"},
        findings=(Finding("admin-without-mfa", "Admin without MFA", "high", "Require phishing-resistant MFA"),),
    )
    partner = Subject(
        key="partner:gdap:rel-1",
        kind=SubjectKind.PARTNER,
        title="Northwind IT Services — GDAP",
        holder_name="Northwind IT Services",
        partner_id="tenant-northwind",
        partner_name="Northwind IT Services",
    )
    passed_on = Decision(
        item_id=f"{cid}|partner",
        action=Action.DONT_KNOW,
        actor_id="owner-alex",
        actor_name="Alex Wilber",
        at=for_campaign.opened_at + timedelta(hours=1),
        on_behalf_of="owner-ann",
    )
    revoked = Decision(
        item_id=f"{cid}|partner",
        action=Action.REVOKE,
        actor_id="fallback-lee",
        actor_name="Lee Gu",
        at=for_campaign.opened_at + timedelta(hours=2),
        justification="No contract with Northwind since 2024 — «remove»",
    )
    return [
        ReviewItem(
            id=f"{cid}|role",
            campaign_id=cid,
            subject=role,
            reviewers=("owner-alex", "owner-ann"),
            due=for_campaign.due,
            opened_at=for_campaign.opened_at,
        ),
        ReviewItem(
            id=f"{cid}|partner",
            campaign_id=cid,
            subject=partner,
            reviewers=("fallback-lee",),
            due=for_campaign.due,
            opened_at=for_campaign.opened_at,
            state=ItemState.DECIDED,
            stage=Stage.FALLBACK,
            decision=revoked,
            exception=PolicyExceptionGrant("partner:gdap:rel-1", "migration", "lead-lynne", date(2026, 12, 31)),
            overdue=True,
            history=(passed_on,),
        ),
    ]


def message(
    key: str, *, created_at: datetime = MONDAY, next_attempt_at: datetime | None = None, recipient: str | None = None
) -> OutboxMessage:
    return OutboxMessage(
        key=key,
        recipient=recipient or f"person-{key}",
        kind="review_request",
        payload={"text": f"Please review ({key})", "item_ids": ["a", "b"]},
        created_at=created_at,
        next_attempt_at=next_attempt_at or created_at,
    )
