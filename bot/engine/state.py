"""A campaign's live state, and the one function that moves it: applying a ledger event.

The ledger is the source of truth. Opening a campaign stores its items as they were; every later change
(an answer, an escalation, a reminder round, an expiry) is a ledger event, and the current state is the
opened items with the campaign's events applied in order. The service applies each event as it is
recorded and replays the ledger the same way at start-up, so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Mapping

from bot.engine.model import (
    Action,
    Campaign,
    Decision,
    ItemState,
    ReviewItem,
    Stage,
    stage_rank,
)
from bot.policy import RemediationMode
from bot.remediation.plan import RemediationPlan
from bot.remediation.workflow import Remediation, Status


@dataclass
class CampaignState:
    """Mutable holder of one campaign's items; the items themselves are immutable values."""

    campaign: Campaign
    items: dict[str, ReviewItem]
    reminder_round: int = 0
    signed_off_by: str | None = None
    signed_off_at: datetime | None = None
    remediations: dict[str, Remediation] = field(default_factory=dict)

    def open_items(self) -> list[ReviewItem]:
        return [item for item in self.items.values() if item.is_open]


def decision_to_data(campaign_id: str, item: ReviewItem, decision: Decision) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "item_id": decision.item_id,
        "subject": item.subject.key,
        "action": decision.action.value,
        "actor_id": decision.actor_id,
        "actor": decision.actor_name,
        "on_behalf_of": decision.on_behalf_of,
        "justification": decision.justification,
        "reassign_to": decision.reassign_to,
        "system": decision.system,
        "at": _iso(decision.at),
        **({"on_behalf_of_name": decision.on_behalf_of_name} if decision.on_behalf_of else {}),
    }


def decision_from_data(data: Mapping[str, Any]) -> Decision:
    return Decision(
        item_id=data["item_id"],
        action=Action(data["action"]),
        actor_id=data["actor_id"],
        actor_name=data["actor"],
        at=datetime.fromisoformat(data["at"]),
        justification=data.get("justification") or "",
        reassign_to=data.get("reassign_to"),
        on_behalf_of=data.get("on_behalf_of"),
        system=bool(data.get("system")),
        on_behalf_of_name=data.get("on_behalf_of_name") or "",
    )


def apply_event(state: CampaignState, event_type: str, data: Mapping[str, Any]) -> None:
    """Fold one ledger event into the campaign state. Unknown event types are other campaigns' business."""
    if data.get("campaign_id") != state.campaign.id:
        return
    handler = _HANDLERS.get(event_type)
    if handler is not None:
        handler(state, data)


def _apply_decision(state: CampaignState, data: Mapping[str, Any]) -> None:
    item = state.items[data["item_id"]]
    decision = decision_from_data(data)
    if decision.action in (Action.KEEP, Action.REVOKE):
        final_state = ItemState.EXPIRED if decision.system else ItemState.DECIDED
        overridden = (item.decision,) if item.decision is not None else ()
        state.items[item.id] = replace(item, state=final_state, decision=decision, history=item.history + overridden)
        return
    state.items[item.id] = replace(
        item,
        reviewers=tuple(data["reviewers"]),
        stage=Stage(data.get("stage", item.stage)),
        history=item.history + (decision,),
    )


def _apply_escalated(state: CampaignState, data: Mapping[str, Any]) -> None:
    stage = Stage(data["stage"])
    for item_id in data["item_ids"]:
        item = state.items[item_id]
        state.items[item_id] = replace(
            item,
            stage=stage if stage_rank(stage) > stage_rank(item.stage) else item.stage,
            reviewers=_add_reviewers(item, data["reviewers"]),
            overdue=item.overdue or bool(data.get("overdue")),
        )


def _apply_reminded(state: CampaignState, data: Mapping[str, Any]) -> None:
    state.reminder_round = max(state.reminder_round, int(data["round"]))


def _apply_exception_expired(state: CampaignState, data: Mapping[str, Any]) -> None:
    for item_id in data["item_ids"]:
        state.items[item_id] = replace(state.items[item_id], exception=None)


def _apply_signed_off(state: CampaignState, data: Mapping[str, Any]) -> None:
    state.signed_off_by = data["by"]
    state.signed_off_at = datetime.fromisoformat(data["at"])


def _apply_remediation_proposed(state: CampaignState, data: Mapping[str, Any]) -> None:
    state.remediations[data["item_id"]] = Remediation(
        item_id=data["item_id"],
        campaign_id=data["campaign_id"],
        plan=RemediationPlan.from_data(data["title"], data["plan"]),
        mode=RemediationMode(data["mode"]),
        revoked_by=data["revoked_by"],
        status=Status(data["status"]),
    )


def _apply_remediation_approved(state: CampaignState, data: Mapping[str, Any]) -> None:
    current = state.remediations[data["item_id"]]
    state.remediations[data["item_id"]] = replace(current, status=Status.READY, approved_by=data["by"])


def _apply_remediation_attempt(state: CampaignState, data: Mapping[str, Any]) -> None:
    current = state.remediations[data["item_id"]]
    state.remediations[data["item_id"]] = replace(current, status=Status.RUNNING, attempts=int(data["attempt"]))


def _apply_remediation_retry(state: CampaignState, data: Mapping[str, Any]) -> None:
    current = state.remediations[data["item_id"]]
    state.remediations[data["item_id"]] = replace(
        current, status=Status.READY, results=tuple(data["results"]), retry_at=datetime.fromisoformat(data["retry_at"])
    )


def _apply_remediation_result(state: CampaignState, data: Mapping[str, Any]) -> None:
    current = state.remediations[data["item_id"]]
    status = Status.DONE if data["ok"] else Status.FAILED
    # Ledgers from before remediation jobs recorded no attempts: their one run counts as one.
    attempts = int(data.get("attempts", max(current.attempts, 1)))
    state.remediations[data["item_id"]] = replace(
        current, status=status, results=tuple(data["results"]), attempts=attempts, retry_at=None
    )


def _add_reviewers(item: ReviewItem, added: list[str]) -> tuple[str, ...]:
    """Escalation widens the circle; it never hands anyone their own access."""
    merged = list(item.reviewers)
    merged.extend(r for r in added if r not in item.subject.holder_ids)
    return tuple(dict.fromkeys(merged))


def _iso(moment: datetime) -> str:
    return moment.isoformat()


_HANDLERS = {
    "decision": _apply_decision,
    "escalated": _apply_escalated,
    "reminded": _apply_reminded,
    "exception_expired": _apply_exception_expired,
    "campaign_signed_off": _apply_signed_off,
    "remediation_proposed": _apply_remediation_proposed,
    "remediation_approved": _apply_remediation_approved,
    "remediation_attempt": _apply_remediation_attempt,
    "remediation_retry": _apply_remediation_retry,
    "remediation_result": _apply_remediation_result,
}
