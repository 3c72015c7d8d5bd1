"""What the passing of time does to a campaign: reminders, escalation, expired exceptions, the deadline.

Everything is computed from the clock and the campaign's state, so calling ``tick`` twice at the same
moment, or again after a restart, produces nothing new: each step leaves a ledger event that the state
remembers, and each notice has a deterministic key the outbox refuses to store twice.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Mapping

from bot.engine.model import (
    SECURITY_LEADS,
    Action,
    Decision,
    LedgerEvent,
    Notice,
    NoticeKind,
    ReviewItem,
    Stage,
    stage_rank,
)
from bot.engine.routing import Routing
from bot.engine.state import CampaignState, decision_to_data
from bot.engine.status import awaits_answer
from bot.policy import NoAnswer, Policy

POLICY_ACTOR = "accessbot-policy"


def policy_decision(campaign_id: str, item: ReviewItem, action: Action, now: datetime, why: str) -> LedgerEvent:
    """The answer the policy gives for an item nobody answered (at the deadline, or at sign-off): recorded
    like a person's, under the policy's own name, so the ledger shows who decided and why."""
    decision = Decision(
        item_id=item.id, action=action, actor_id=POLICY_ACTOR, actor_name="accessbot policy", at=now,
        justification=why, system=True,
    )
    return LedgerEvent("decision", decision_to_data(campaign_id, item, decision))


@dataclass(frozen=True)
class TickResult:
    events: tuple[LedgerEvent, ...]
    notices: tuple[Notice, ...]


def tick(state: CampaignState, routing: Routing, policy: Policy, now: datetime) -> TickResult:
    """Everything due at ``now`` for one campaign, in the order a person would expect it."""
    events: list[LedgerEvent] = []
    notices: list[Notice] = []
    _expire_exceptions(state, now, events, notices)
    if now >= state.campaign.due:
        _deadline(state, routing, policy, now, events, notices)
    else:
        _escalate(state, routing, policy, now, events, notices)
        _remind(state, policy, now, events, notices)
    return TickResult(tuple(events), tuple(notices))


def _waiting(state: CampaignState) -> list[ReviewItem]:
    """Open items that someone still owes an answer on (accepted-risk items are not chased)."""
    return [item for item in state.open_items() if awaits_answer(item)]


def _expire_exceptions(
    state: CampaignState, now: datetime, events: list[LedgerEvent], notices: list[Notice]
) -> None:
    expired = [i for i in state.open_items() if i.exception is not None and i.exception.expires < now.date()]
    if not expired:
        return
    cid = state.campaign.id
    events.append(LedgerEvent("exception_expired", {"campaign_id": cid, "item_ids": [i.id for i in expired]}))
    notices.extend(
        _per_person(
            f"exception-expired:{cid}", NoticeKind.REVIEW_REQUEST, _by_reviewer(expired),
            lambda n: f"An accepted exception has expired: {n} item(s) need your answer again. Say 'my reviews'.",
        )
    )


def _escalate(
    state: CampaignState,
    routing: Routing,
    policy: Policy,
    now: datetime,
    events: list[LedgerEvent],
    notices: list[Notice],
) -> None:
    elapsed = now - state.campaign.opened_at
    for step in policy.escalation:
        if elapsed < step.after:
            break
        behind = [i for i in _waiting(state) if stage_rank(i.stage) < stage_rank(step.to)]
        if not behind:
            continue
        if step.to is Stage.MANAGER:
            for managers, items in _by_managers(behind, routing).items():
                _escalation(state, step.to, items, managers, False, events, notices)
            continue
        people = routing.fallback if step.to is Stage.FALLBACK else routing.security_leads
        _escalation(state, step.to, behind, people, False, events, notices)


def _escalation(
    state: CampaignState,
    stage: Stage,
    items: list[ReviewItem],
    people: tuple[str, ...],
    overdue: bool,
    events: list[LedgerEvent],
    notices: list[Notice],
) -> None:
    cid = state.campaign.id
    events.append(
        LedgerEvent(
            "escalated",
            {
                "campaign_id": cid,
                "stage": stage.value,
                "item_ids": [i.id for i in items],
                "reviewers": list(people),
                "overdue": overdue,
            },
        )
    )
    why = "past their deadline" if overdue else "still unanswered"
    if stage is Stage.SECURITY_LEADS:
        notices.append(
            Notice(
                key=f"escalate:{cid}:{stage.value}:{'overdue' if overdue else 'open'}:{_digest(i.id for i in items)}",
                kind=NoticeKind.EXPIRED if overdue else NoticeKind.ESCALATION,
                to=SECURITY_LEADS,
                item_ids=tuple(i.id for i in items),
                text=f"{len(items)} item(s) of the {state.campaign.tenant_name} review are {why}. "
                "Say 'status' or 'my reviews'.",
            )
        )
        return
    groups = {person: [i.id for i in items if person not in i.subject.holder_ids] for person in people}
    notices.extend(
        _per_person(
            f"escalate:{cid}:{stage.value}", NoticeKind.ESCALATION, groups,
            lambda n: f"{n} item(s) of the {state.campaign.tenant_name} review are {why} and were escalated to you. "
            "Say 'my reviews'.",
        )
    )


def _remind(
    state: CampaignState, policy: Policy, now: datetime, events: list[LedgerEvent], notices: list[Notice]
) -> None:
    due_round = int((now - state.campaign.opened_at) / policy.reminder_every)
    if due_round < 1 or due_round <= state.reminder_round:
        return
    cid = state.campaign.id
    events.append(LedgerEvent("reminded", {"campaign_id": cid, "round": due_round}))
    notices.extend(
        _per_person(
            f"remind:{cid}:{due_round}", NoticeKind.REMINDER, _by_reviewer(_waiting(state)),
            lambda n: f"Reminder: {n} access review item(s) of the {state.campaign.tenant_name} review are waiting "
            f"for you, due {state.campaign.due:%a %d %b %H:%M} UTC. Say 'my reviews'.",
        )
    )


def _deadline(
    state: CampaignState,
    routing: Routing,
    policy: Policy,
    now: datetime,
    events: list[LedgerEvent],
    notices: list[Notice],
) -> None:
    """At the deadline an unanswered item takes the policy's outcome — but a break-glass account is
    never revoked by silence: it is escalated instead."""
    waiting = [i for i in _waiting(state) if not i.overdue]
    if not waiting:
        return
    to_escalate: list[ReviewItem] = []
    for item in waiting:
        outcome = policy.no_answer
        if outcome is NoAnswer.REVOKE and item.subject.break_glass:
            outcome = NoAnswer.ESCALATE
        if outcome is NoAnswer.ESCALATE:
            to_escalate.append(item)
            continue
        action = Action.KEEP if outcome is NoAnswer.KEEP else Action.REVOKE
        why = f"No answer by the deadline; the policy's outcome is {outcome.value}."
        events.append(policy_decision(state.campaign.id, item, action, now, why))
    if to_escalate:
        _escalation(state, Stage.SECURITY_LEADS, to_escalate, routing.security_leads, True, events, notices)
    expired = len(waiting) - len(to_escalate)
    if expired:
        notices.append(
            Notice(
                key=f"deadline:{state.campaign.id}:{_digest(i.id for i in waiting)}",
                kind=NoticeKind.EXPIRED,
                to=SECURITY_LEADS,
                item_ids=tuple(i.id for i in waiting if i not in to_escalate),
                text=f"{expired} unanswered item(s) of the {state.campaign.tenant_name} review expired with the "
                f"policy's outcome ({policy.no_answer.value}).",
            )
        )


def _by_managers(items: list[ReviewItem], routing: Routing) -> dict[tuple[str, ...], list[ReviewItem]]:
    """Group items by the managers of their reviewers (never the holder). Items whose reviewers have no
    manager still move to the manager stage, with nobody added: the later steps cover them."""
    groups: dict[tuple[str, ...], list[ReviewItem]] = defaultdict(list)
    for item in items:
        managers = {routing.managers[r] for r in item.reviewers if r in routing.managers} - set(item.subject.holder_ids)
        groups[tuple(sorted(managers))].append(item)
    return groups


def _per_person(
    key: str, kind: NoticeKind, groups: Mapping[str, list[str]], text: Callable[[int], str]
) -> list[Notice]:
    """One digest notice per person for their items; the key names the exact set, so twins are refused."""
    return [
        Notice(key=f"{key}:{person}:{_digest(item_ids)}", kind=kind, to=person, item_ids=tuple(item_ids),
               text=text(len(item_ids)))
        for person, item_ids in groups.items()
        if item_ids
    ]


def _digest(item_ids: Iterable[str]) -> str:
    """A short name for a set of items, so two different batches never share a notice key."""
    return hashlib.sha256(",".join(sorted(item_ids)).encode()).hexdigest()[:12]


def _by_reviewer(items: Iterable[ReviewItem]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for item in items:
        for reviewer in item.reviewers:
            grouped[reviewer].append(item.id)
    return grouped
