"""The remediation workflow: revoke → proposal → (second approval for Global Administrator) → dry-run or apply.

Pure like the engine: it returns ledger events and notices; the service records them and runs the Graph
calls. Every step is a ledger record, so an auditor can follow a revoke to the exact call that removed
the access — or to the reason nothing was removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Mapping

from bot.engine.model import SECURITY_LEADS, LedgerEvent, Notice, NoticeKind, ReviewItem
from bot.engine.routing import Routing
from bot.policy import RemediationMode
from bot.remediation.plan import RemediationPlan


class Status(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    READY = "ready"  # approved, or needing no second approval: to be dry-run or applied
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class Remediation:
    item_id: str
    campaign_id: str
    plan: RemediationPlan
    mode: RemediationMode
    revoked_by: str
    status: Status
    approved_by: str | None = None
    results: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def ref(self) -> str:
        """The short name a security lead types: 'approve 3f9a1c2e'."""
        return self.item_id[:8]


def propose(item: ReviewItem, plan: RemediationPlan, mode: RemediationMode, dual_custody: bool, now: datetime) -> tuple[LedgerEvent, Notice]:
    """The first step after a revoke: what would be done, and whether a second security lead must agree."""
    assert item.decision is not None
    needs_approval = plan.global_admin and dual_custody and not plan.blocked and bool(plan.calls)
    status = Status.BLOCKED if plan.blocked else Status.AWAITING_APPROVAL if needs_approval else Status.READY
    event = LedgerEvent(
        "remediation_proposed",
        {
            "campaign_id": item.campaign_id,
            "item_id": item.id,
            "title": item.subject.title,
            "mode": mode.value,
            "status": status.value,
            "revoked_by": item.decision.actor_id,
            "plan": plan.to_data(),
            "at": now.isoformat(),
        },
    )
    lines = [f"{item.subject.title} was revoked by {item.decision.actor_name}: “{item.decision.justification}”."]
    if plan.blocked:
        lines.append(f"Nothing will be removed: {plan.blocked}.")
    else:
        verb = {RemediationMode.APPLY: "Will call", RemediationMode.DRY_RUN: "Dry-run, would call"}[mode]
        lines.extend(f"{verb}: {call.show()} ({call.description})" for call in plan.calls)
        lines.extend(f"By hand: {step}" for step in plan.manual)
        if needs_approval:
            lines.append(f"Global Administrator access: a second security lead must say 'approve {item.id[:8]}'.")
    notice = Notice(
        key=f"remediation:{item.id}", kind=NoticeKind.REVOKE_ALERT, to=SECURITY_LEADS, item_ids=(item.id,),
        text="\n".join(lines),
    )
    return event, notice


def approve(remediation: Remediation, approver_id: str, approver_name: str, holders: tuple[str, ...], routing: Routing, now: datetime) -> tuple[LedgerEvent | None, str]:
    """Dual custody: a security lead other than the one who revoked, and never the access holder."""
    if approver_id not in routing.security_leads:
        return None, "Only a security lead can approve a remediation."
    if remediation.status is not Status.AWAITING_APPROVAL:
        return None, f"{remediation.plan.title}: nothing to approve (it is {remediation.status.value.replace('_', ' ')})."
    if approver_id == remediation.revoked_by:
        return None, "Dual custody: the approval must come from a different security lead than the one who revoked."
    if approver_id in holders:
        return None, "You can't approve removing your own access."
    event = LedgerEvent(
        "remediation_approved",
        {"campaign_id": remediation.campaign_id, "item_id": remediation.item_id, "by_id": approver_id,
         "by": approver_name, "at": now.isoformat()},
    )
    return event, f"Approved by {approver_name}: {remediation.plan.title} will now be {_done_verb(remediation.mode)}."


def result_event(remediation: Remediation, results: list[dict[str, Any]], now: datetime) -> tuple[LedgerEvent, Notice]:
    ok = all(200 <= int(r.get("status", 0)) < 300 for r in results) if remediation.mode is RemediationMode.APPLY else True
    event = LedgerEvent(
        "remediation_result",
        {"campaign_id": remediation.campaign_id, "item_id": remediation.item_id, "mode": remediation.mode.value,
         "ok": ok, "results": results, "at": now.isoformat()},
    )
    if remediation.mode is RemediationMode.DRY_RUN:
        text = f"Dry-run for {remediation.plan.title}: nothing was changed; it would have made {len(results)} call(s)."
    elif ok:
        text = f"Removed: {remediation.plan.title} ({len(results)} Graph call(s) succeeded)."
    else:
        failed = [r for r in results if not 200 <= int(r.get("status", 0)) < 300]
        text = (f"Remediation of {remediation.plan.title} FAILED on {len(failed)} call(s): "
                + "; ".join(f"{r['call']} → {r.get('status')} {r.get('error', '')}".strip() for r in failed))
    notice = Notice(key=f"remediation-result:{remediation.item_id}", kind=NoticeKind.REVOKE_ALERT, to=SECURITY_LEADS,
                    item_ids=(remediation.item_id,), text=text)
    return event, notice


def _done_verb(mode: RemediationMode) -> str:
    return "removed through Microsoft Graph" if mode is RemediationMode.APPLY else "dry-run (nothing changes)"
