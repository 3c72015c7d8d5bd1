"""Hand-made subjects, routing and policy for the engine tests: a small tenant one can hold in one's head."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from bot.engine.campaigns import OpenedCampaign, open_campaign
from bot.engine.model import (
    AssignmentType,
    PolicyExceptionGrant,
    Subject,
    SubjectKind,
)
from bot.engine.routing import Routing
from bot.engine.state import CampaignState, apply_event
from bot.policy import NoAnswer, Policy

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
GA = "62e90394-69f5-4237-9190-012177145e10"

OWNER = "owner-alex"
DELEGATE = "delegate-lynne"
FALLBACK = "fallback-lee"
LEAD = "lead-lynne"
MEGAN = "admin-megan"
BREAKGLASS = "admin-breakglass"
STRANGER = "stranger-sam"


def role_subject(holder: str, name: str, *, break_glass: bool = False) -> Subject:
    return Subject(
        key=f"role:{GA}:{holder}:active",
        kind=SubjectKind.ROLE_ASSIGNMENT,
        title=f"{name} — Global Administrator",
        holder_name=name,
        holder_ids=(holder,),
        role_id=GA,
        role_name="Global Administrator",
        assignment_type=AssignmentType.ACTIVE,
        permanent=True,
        break_glass=break_glass,
        evidence={"MFA": "none registered"},
    )


def recovery_subject(holder: str, name: str) -> Subject:
    return Subject(
        key=f"recovery:{holder}",
        kind=SubjectKind.RECOVERY_CONTACT,
        title=f"{name} — recovery contacts",
        holder_name=name,
        holder_ids=(holder,),
    )


def partner_subject() -> Subject:
    return Subject(
        key="partner:gdap:rel-1",
        kind=SubjectKind.PARTNER,
        title="Northwind IT Services — GDAP",
        holder_name="Northwind IT Services",
        partner_id="tenant-northwind",
        partner_name="Northwind IT Services",
    )


def make_policy(**overrides: object) -> Policy:
    values: dict[str, object] = dict(
        tenant_id="tenant-contoso",
        tenant_name="Contoso",
        role_owners={GA.lower(): ("alexw@contoso.com",)},
        partner_owners={"*": ("alexw@contoso.com",)},
        recovery_owners_include_admin=False,
        fallback_reviewers=("leeg@contoso.com",),
        security_leads=("lynner@contoso.com",),
        deadline=timedelta(days=5),
        reminder_every=timedelta(days=1),
        no_answer=NoAnswer.ESCALATE,
    )
    values.update(overrides)
    return Policy(**values)  # type: ignore[arg-type]


def make_routing(*, include_admin: bool = False, owners: tuple[str, ...] = (OWNER,)) -> Routing:
    return Routing(
        role_owners={GA: owners},
        partner_owners={"*": (OWNER,)},
        fallback=(FALLBACK,),
        security_leads=(LEAD,),
        delegates={OWNER: (DELEGATE,)},
        recovery_include_admin=include_admin,
    )


def opened(
    subjects: list[Subject] | None = None,
    *,
    policy: Policy | None = None,
    routing: Routing | None = None,
    exceptions: dict[str, PolicyExceptionGrant] | None = None,
) -> tuple[OpenedCampaign, CampaignState]:
    result = open_campaign(
        tenant_id="tenant-contoso",
        tenant_name="Contoso",
        period="2026-11-23T09:00",
        subjects=subjects if subjects is not None else [role_subject(MEGAN, "Megan Bowen")],
        routing=routing or make_routing(),
        policy=policy or make_policy(),
        now=MONDAY,
        exceptions=exceptions,
    )
    state = CampaignState(result.campaign, {item.id: item for item in result.items})
    return result, state


def record(state: CampaignState, events) -> None:  # type: ignore[no-untyped-def]
    """Apply events as the service does after the ledger made them durable."""
    for event in events:
        apply_event(state, event.type, event.data)


def exception_until(day: date) -> PolicyExceptionGrant:
    return PolicyExceptionGrant(
        subject="x", rationale="hardware key in the safe", approved_by="alexw@contoso.com", expires=day
    )
