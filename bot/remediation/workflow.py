"""The remediation workflow: revoke → proposal → (second approval for Global Administrator) → attempts → result.

Pure like the engine: it returns ledger events and notices; the service records them, and its worker runs
the Graph calls after the click, never inside it. Every step is a ledger record, so an auditor can follow a
revoke to the exact call that removed the access — or to the reason nothing was removed. The record of an
attempt is the job's durable claim: a remediation whose ledger shows an attempt and no outcome was cut
short by a crash, and the worker takes it up again at start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Mapping

from bot.engine.model import SECURITY_LEADS, LedgerEvent, Notice, NoticeKind, ReviewItem
from bot.engine.routing import Routing
from bot.policy import RemediationMode
from bot.remediation.plan import RemediationPlan


class Status(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    READY = "ready"  # approved, or needing no second approval: to be dry-run or applied (again, after a retry)
    RUNNING = "running"  # an attempt is recorded without its outcome: under way, or cut short by a crash
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
    attempts: int = 0
    retry_at: datetime | None = None  # after a transient failure: not before then

    def runnable(self, now: datetime) -> bool:
        """Whether the worker should run it now: ready and not waiting out a backoff, or cut short."""
        if self.status is Status.RUNNING:
            return True
        return self.status is Status.READY and (self.retry_at is None or now >= self.retry_at)

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


MAX_ATTEMPTS = 5  # transient failures (throttling, outages, timeouts) retried across this many attempts
FIRST_BACKOFF = timedelta(minutes=1)  # doubled after each transient failure, at least Graph's Retry-After
MAX_BACKOFF = timedelta(hours=1)


def attempt_event(remediation: Remediation, now: datetime) -> LedgerEvent:
    """Recorded before any Graph call of an attempt: the claim that makes a crash mid-attempt visible."""
    return LedgerEvent(
        "remediation_attempt",
        {"campaign_id": remediation.campaign_id, "item_id": remediation.item_id,
         "attempt": remediation.attempts + 1, "at": now.isoformat()},
    )


def succeeded(result: Mapping[str, Any]) -> bool:
    """A call that needs no repeating: dry-run, a 2xx, or a DELETE already removed earlier (see ``settle``)."""
    return bool(result.get("dry_run") or result.get("already_removed")) or 200 <= int(result.get("status", 0)) < 300


def settle(call_result: dict[str, Any], method: str, resumed: bool) -> dict[str, Any]:
    """On a repeated attempt, a DELETE that answers 404 removed nothing because an earlier attempt (perhaps
    one cut short by a crash before its outcome was recorded) already did: the access is gone, so it counts
    as done. On a first attempt a 404 stays a failure: the snapshot named something Graph does not have."""
    if resumed and method == "DELETE" and int(call_result.get("status", 0)) == 404:
        return {**call_result, "already_removed": True}
    return call_result


def outcome_event(
    remediation: Remediation, results: list[dict[str, Any]], attempt: int, now: datetime
) -> tuple[LedgerEvent, Notice | None]:
    """What an attempt's call results mean: done, failed for good (the leads are told), or — when every
    failure is transient and attempts remain — a retry after a backoff that honours Graph's Retry-After."""
    failures = [r for r in results if not succeeded(r)]
    if failures and all(r.get("retryable") for r in failures) and attempt < MAX_ATTEMPTS:
        backoff = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1))
        asked = max((float(r.get("retry_after") or 0) for r in failures), default=0.0)
        retry_at = now + max(backoff, timedelta(seconds=asked))
        event = LedgerEvent(
            "remediation_retry",
            {"campaign_id": remediation.campaign_id, "item_id": remediation.item_id, "attempt": attempt,
             "results": results, "retry_at": retry_at.isoformat(), "at": now.isoformat()},
        )
        return event, None
    return result_event(remediation, results, attempt, now)


def result_event(
    remediation: Remediation, results: list[dict[str, Any]], attempt: int, now: datetime
) -> tuple[LedgerEvent, Notice]:
    ok = all(succeeded(r) for r in results)
    event = LedgerEvent(
        "remediation_result",
        {"campaign_id": remediation.campaign_id, "item_id": remediation.item_id, "mode": remediation.mode.value,
         "ok": ok, "results": results, "attempts": attempt, "at": now.isoformat()},
    )
    if remediation.mode is RemediationMode.DRY_RUN:
        text = f"Dry-run for {remediation.plan.title}: nothing was changed; it would have made {len(results)} call(s)."
    elif ok:
        text = f"Removed: {remediation.plan.title} ({len(results)} Graph call(s) succeeded)."
    else:
        failed = [r for r in results if not succeeded(r)]
        gave_up = f" after {attempt} attempts" if all(r.get("retryable") for r in failed) else ""
        text = (f"Remediation of {remediation.plan.title} FAILED{gave_up} on {len(failed)} call(s): "
                + "; ".join(f"{r['call']} → {r.get('status')} {r.get('error', '')}".strip() for r in failed))
    notice = Notice(key=f"remediation-result:{remediation.item_id}", kind=NoticeKind.REVOKE_ALERT, to=SECURITY_LEADS,
                    item_ids=(remediation.item_id,), text=text)
    return event, notice


def _done_verb(mode: RemediationMode) -> str:
    return "removed through Microsoft Graph" if mode is RemediationMode.APPLY else "dry-run (nothing changes)"
