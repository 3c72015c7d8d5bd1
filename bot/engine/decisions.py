"""Deciding an item: who may answer, what an answer needs, and what happens when it arrives twice.

Keep and Revoke are final. Don't know hands the item on (to the fallback reviewers, or to the security
leads when the fallback reviewer does not know either) and is never counted as Keep. Reassign gives it to
another person. Unfamiliar method (on an admin whose MFA devices the card lists) alerts the security
leads and hands them the item. The same answer delivered twice is recorded once; a different answer after a final one
is refused and the first answer shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Callable

from bot.engine.model import (
    MAX_JUSTIFICATION,
    MFA_DEVICES_EVIDENCE,
    MIN_JUSTIFICATION,
    SECURITY_LEADS,
    Action,
    Decision,
    LedgerEvent,
    Notice,
    NoticeKind,
    ReviewItem,
    Stage,
    SubjectKind,
    stage_rank,
)
from bot.engine.routing import Routing
from bot.engine.state import decision_to_data


class Verdict(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # the same answer again: nothing new recorded
    CONFLICT = "conflict"  # a different answer after a final one: refused, first answer shown
    REFUSED = "refused"  # not allowed or incomplete: nothing recorded


@dataclass(frozen=True)
class DecisionRequest:
    item_id: str
    action: Action
    actor_id: str
    actor_name: str
    justification: str = ""
    reassign_to: str | None = None


@dataclass(frozen=True)
class DecisionOutcome:
    verdict: Verdict
    message: str
    events: tuple[LedgerEvent, ...] = ()
    notices: tuple[Notice, ...] = ()
    first: Decision | None = None
    decision: Decision | None = field(default=None)


def decide(
    item: ReviewItem,
    request: DecisionRequest,
    routing: Routing,
    now: datetime,
    *,
    locked_by: str | None = None,
    max_justification: int = MAX_JUSTIFICATION,
    name_of: Callable[[str], str] | None = None,
) -> DecisionOutcome:
    """Validate one answer against the item and the routing; return what to record and send.

    ``locked_by`` names who signed the campaign off: its answers can no longer change.
    ``max_justification`` is the policy's cap on a justification's length, checked here so that every
    channel refuses an over-long one the same way, before anything is recorded.
    """
    if request.actor_id in item.subject.holder_ids and not _self_attestation_allowed(item, routing):
        return DecisionOutcome(Verdict.REFUSED, "You can't review your own access; it has been left for another reviewer.")
    if any(_same_answer(earlier, request) for earlier in item.history):
        if request.action is Action.UNFAMILIAR_METHOD:
            return DecisionOutcome(Verdict.DUPLICATE, "You already reported an unfamiliar method on this item.")
        return DecisionOutcome(Verdict.DUPLICATE, "You already passed this item on.")
    on_behalf = routing.may_act_for(request.actor_id, item.reviewers)
    if on_behalf is None:
        return DecisionOutcome(Verdict.REFUSED, "This item is assigned to someone else; your answer was not recorded.")

    if locked_by is not None:
        return DecisionOutcome(Verdict.REFUSED, f"This review was signed off by {locked_by}; its answers are locked.")

    if not item.is_open:
        first = item.decision
        assert first is not None
        if request.action is first.action:
            return DecisionOutcome(Verdict.DUPLICATE, f"Already answered: {first.summary()}.", first=first)
        if not _revoke_overrides(first, request, on_behalf, routing):
            return DecisionOutcome(
                Verdict.CONFLICT, f"Not recorded: this item was already answered — {first.summary()}.", first=first
            )

    refusal = _refusal(item, request, max_justification)
    if refusal:
        return DecisionOutcome(Verdict.REFUSED, refusal)

    decision = Decision(
        item_id=item.id,
        action=request.action,
        actor_id=request.actor_id,
        actor_name=request.actor_name,
        at=now,
        justification=request.justification.strip(),
        reassign_to=request.reassign_to,
        on_behalf_of=None if on_behalf == request.actor_id else on_behalf,
        on_behalf_of_name=name_of(on_behalf) if name_of is not None and on_behalf != request.actor_id else "",
    )
    data = decision_to_data(item.campaign_id, item, decision)
    notices: list[Notice] = []
    if request.action is Action.DONT_KNOW:
        stage, reviewers = _pass_on(item, request.actor_id, routing)
        data.update(stage=stage.value, reviewers=list(reviewers))
        notices.extend(_handed_over(item, reviewers, request, "doesn't know this one and passed it to you"))
    elif request.action is Action.REASSIGN:
        assert request.reassign_to is not None
        data.update(stage=item.stage.value, reviewers=[request.reassign_to])
        notices.extend(_handed_over(item, (request.reassign_to,), request, "reassigned this review to you"))
    elif request.action is Action.UNFAMILIAR_METHOD:
        leads = _security_leads(item, routing)
        data.update(stage=Stage.SECURITY_LEADS.value, reviewers=list(leads))
        notices.append(_method_alert(item, decision))
    elif request.action is Action.REVOKE:
        notices.append(
            Notice(
                key=f"revoke:{item.id}",
                kind=NoticeKind.REVOKE_ALERT,
                to=SECURITY_LEADS,
                item_ids=(item.id,),
                text=(
                    f"{request.actor_name} revoked {item.subject.title}. "
                    f"Justification: {decision.justification}"
                ),
            )
        )
    return DecisionOutcome(
        Verdict.RECORDED,
        "Recorded in the attestation ledger.",
        events=(LedgerEvent("decision", data),),
        notices=tuple(notices),
        decision=decision,
    )


def _revoke_overrides(first: Decision, request: DecisionRequest, on_behalf: str, routing: Routing) -> bool:
    """With several reviewers, another reviewer's Revoke wins over a Keep (when the policy says so);
    nobody overrides their own answer, and nothing overrides a Revoke."""
    answered_for = first.on_behalf_of or first.actor_id
    return (
        routing.revoke_wins
        and first.action is Action.KEEP
        and request.action is Action.REVOKE
        and request.actor_id != first.actor_id
        and on_behalf != answered_for
    )


def _same_answer(earlier: Decision, request: DecisionRequest) -> bool:
    """A hand-over answer (don't know, reassign) delivered again by the same person."""
    return (
        earlier.actor_id == request.actor_id
        and earlier.action is request.action
        and earlier.reassign_to == request.reassign_to
    )


def _self_attestation_allowed(item: ReviewItem, routing: Routing) -> bool:
    """Only an admin confirming their own recovery contacts, and only when the policy says so."""
    return item.subject.kind is SubjectKind.RECOVERY_CONTACT and routing.recovery_include_admin


def _refusal(item: ReviewItem, request: DecisionRequest, max_justification: int) -> str:
    length = len(request.justification.strip())
    if length > max_justification:
        return (
            f"Not recorded: the justification is {length:,} characters long and the limit is "
            f"{max_justification:,}. Shorten it and answer again."
        )
    if request.action is Action.REVOKE:
        if item.subject.break_glass:
            return (
                "This is a registered break-glass account: it is never revoked from a review. "
                "Remove it from the policy's break-glass register first if it really must go."
            )
        if len(request.justification.strip()) < MIN_JUSTIFICATION:
            return "Revoke needs a justification: say why this access should go."
    if request.action is Action.UNFAMILIAR_METHOD and MFA_DEVICES_EVIDENCE not in item.subject.evidence:
        return "This item lists no MFA methods, so there is no method to report; answer Keep, Revoke or Don't know."
    if request.action is Action.REASSIGN:
        target = request.reassign_to
        if not target:
            return "Reassign needs the person to hand the item to."
        if target in item.subject.holder_ids:
            return "An item can't be reassigned to the person whose access it is."
        if target == request.actor_id:
            return "The item is already yours."
    return ""


def _pass_on(item: ReviewItem, actor_id: str, routing: Routing) -> tuple[Stage, tuple[str, ...]]:
    """Don't know goes up the chain: to the fallback reviewers, or past them to the security leads."""
    for stage, people in ((Stage.FALLBACK, routing.fallback), (Stage.SECURITY_LEADS, routing.security_leads)):
        candidates = tuple(p for p in people if p != actor_id and p not in item.subject.holder_ids)
        if candidates and stage_rank(stage) >= stage_rank(item.stage):
            remaining = tuple(r for r in item.reviewers if r != actor_id)
            return stage, tuple(dict.fromkeys(candidates + remaining))
    return Stage.SECURITY_LEADS, _security_leads(item, routing)


def _security_leads(item: ReviewItem, routing: Routing) -> tuple[str, ...]:
    """The security leads who may answer the item: all of them but a lead whose access it is."""
    return tuple(p for p in routing.security_leads if p not in item.subject.holder_ids)


def _method_alert(item: ReviewItem, decision: Decision) -> Notice:
    """Tell the security leads at once: an MFA method nobody registered is someone else's way in."""
    said = f" They said: “{decision.justification}”." if decision.justification else ""
    devices = item.subject.evidence.get(MFA_DEVICES_EVIDENCE, "")
    return Notice(
        key=f"unfamiliar-method:{item.id}:{decision.actor_id}",
        kind=NoticeKind.METHOD_ALERT,
        to=SECURITY_LEADS,
        item_ids=(item.id,),
        text=(
            f"{decision.actor_name} does not recognise an MFA method of {item.subject.holder_name} "
            f"({item.subject.title}).{said} Registered: {devices}. If nobody can account for it, delete the "
            "method, revoke the account's sessions and check the audit log; the item now waits for your answer."
        ),
    )


def _handed_over(
    item: ReviewItem, recipients: tuple[str, ...], request: DecisionRequest, what: str
) -> list[Notice]:
    return [
        Notice(
            key=f"handover:{item.id}:{request.action.value}:{request.actor_id}:{recipient}",
            kind=NoticeKind.ESCALATION,
            to=recipient,
            item_ids=(item.id,),
            text=f"{request.actor_name} {what}: {item.subject.title}. Say 'my reviews' to answer it.",
        )
        for recipient in recipients
        if recipient != request.actor_id
    ]
