"""Where a campaign stands: the numbers a security lead asks for, computed from state alone."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from bot.engine.model import Action, ItemState, ReviewItem
from bot.engine.state import CampaignState


def awaits_answer(item: ReviewItem) -> bool:
    """The one meaning of "waiting": an item still open and not covered by an accepted exception.

    Every count a person or an auditor reads — the welcome, the digest, 'status', the review-open notice,
    reminders, the CLI — is a count of these, so they can never disagree. Accepted exceptions stay visible
    (and may be confirmed again) but are counted on their own line, never as waiting.
    """
    return item.is_open and item.exception is None


@dataclass(frozen=True)
class OwnerProgress:
    reviewer_id: str
    open: int
    answered: int


@dataclass(frozen=True)
class CampaignSummary:
    campaign_id: str
    tenant_name: str
    period: str
    due: datetime
    total: int
    kept: int
    revoked: int
    open: int
    overdue: int
    excepted: int
    expired: int
    snapshot_complete: bool
    snapshot_missing: tuple[str, ...]
    by_owner: tuple[OwnerProgress, ...]
    unfamiliar_methods: int = 0  # items on which a reviewer reported an MFA method they do not recognise

    @property
    def done(self) -> int:
        return self.kept + self.revoked


def summarize(state: CampaignState, now: datetime) -> CampaignSummary:
    counts: Counter[str] = Counter()
    open_by: Counter[str] = Counter()
    answered_by: Counter[str] = Counter()
    for item in state.items.values():
        if any(d.action is Action.UNFAMILIAR_METHOD for d in item.history):
            counts["unfamiliar_methods"] += 1
        if item.state is ItemState.OPEN:
            if not awaits_answer(item):
                counts["excepted"] += 1
                continue
            counts["open"] += 1
            if item.overdue or now >= item.due:
                counts["overdue"] += 1
            for reviewer in item.reviewers:
                open_by[reviewer] += 1
            continue
        assert item.decision is not None
        counts["kept" if item.decision.action is Action.KEEP else "revoked"] += 1
        if item.state is ItemState.EXPIRED:
            counts["expired"] += 1
        elif not item.decision.system:
            answered_by[item.decision.on_behalf_of or item.decision.actor_id] += 1
    owners = sorted(set(open_by) | set(answered_by), key=lambda r: (-open_by[r], r))
    campaign = state.campaign
    return CampaignSummary(
        campaign_id=campaign.id,
        tenant_name=campaign.tenant_name,
        period=campaign.period,
        due=campaign.due,
        total=len(state.items),
        kept=counts["kept"],
        revoked=counts["revoked"],
        open=counts["open"],
        overdue=counts["overdue"],
        excepted=counts["excepted"],
        expired=counts["expired"],
        snapshot_complete=campaign.snapshot_complete,
        snapshot_missing=campaign.snapshot_missing,
        by_owner=tuple(OwnerProgress(r, open_by[r], answered_by[r]) for r in owners),
        unfamiliar_methods=counts["unfamiliar_methods"],
    )
