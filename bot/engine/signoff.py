"""Signing a campaign off: a security lead closes the period, and its answers can no longer change.

Signing off with items still waiting is a decision about those items too, so it is never done silently:
the first ask only shows what remains; the sign-off happens when the lead confirms. Each item still
waiting then takes the policy's no-answer outcome (keep or revoke, recorded as the policy's answer), or,
when the policy escalates (nobody is left to escalate to) or the item is a break-glass account that
silence never revokes, is recorded as unanswered at sign-off. Either way it is in the ledger: the
sign-off event names every item closed without an answer and carries the campaign's numbers, so the
evidence pack and the ledger agree on what was signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.engine.model import Action, LedgerEvent, ReviewItem
from bot.engine.routing import Routing
from bot.engine.state import CampaignState
from bot.engine.status import awaits_answer, summarize
from bot.engine.timeline import policy_decision
from bot.policy import NoAnswer

SIGNED_OFF = "campaign_signed_off"


@dataclass(frozen=True)
class SignOffOutcome:
    """``needs_confirmation``: nothing was recorded; ``remaining`` is what the lead must confirm closing."""

    ok: bool
    message: str
    events: tuple[LedgerEvent, ...] = ()
    needs_confirmation: bool = False
    remaining: tuple[ReviewItem, ...] = ()


def sign_off(
    state: CampaignState,
    actor_id: str,
    actor_name: str,
    routing: Routing,
    no_answer: NoAnswer,
    now: datetime,
    confirmed: bool = False,
) -> SignOffOutcome:
    if actor_id not in routing.security_leads:
        return SignOffOutcome(False, "Only a security lead can sign a review off.")
    if state.signed_off_by is not None:
        return SignOffOutcome(False, f"Already signed off by {state.signed_off_by} at {state.signed_off_at:%Y-%m-%d %H:%M} UTC.")
    remaining = tuple(sorted((i for i in state.items.values() if awaits_answer(i)), key=lambda i: i.subject.title))
    if remaining and not confirmed:
        return SignOffOutcome(
            False,
            f"{len(remaining)} item(s) are still waiting for an answer. Signing off closes them: "
            f"{_fate(no_answer)} Confirm to sign off, or cancel and chase them first.",
            needs_confirmation=True,
            remaining=remaining,
        )
    decisions: list[LedgerEvent] = []
    unanswered: list[str] = []
    for item in remaining:
        outcome = closing_outcome(item, no_answer)
        if outcome is None:
            unanswered.append(item.id)
            continue
        why = f"No answer when {actor_name} signed the review off; the policy's outcome is {no_answer.value}."
        decisions.append(policy_decision(state.campaign.id, item, outcome, now, why))
    summary = summarize(state, now)
    event = LedgerEvent(
        SIGNED_OFF,
        {
            "campaign_id": state.campaign.id,
            "by_id": actor_id,
            "by": actor_name,
            "at": now.isoformat(),
            "total": summary.total,
            "kept": summary.kept + sum(1 for e in decisions if e.data["action"] == Action.KEEP.value),
            "revoked": summary.revoked + sum(1 for e in decisions if e.data["action"] == Action.REVOKE.value),
            "open": len(unanswered),
            "excepted": summary.excepted,
            "closed_by_policy": len(decisions),
            "unanswered": unanswered,  # closed at sign-off with no answer and no outcome
        },
    )
    message = f"Signed off by {actor_name}: answers are now locked."
    if decisions:
        message += f" {len(decisions)} unanswered item(s) took the policy's outcome ({no_answer.value})."
    if unanswered:
        message += f" {len(unanswered)} item(s) are recorded as unanswered at sign-off."
    return SignOffOutcome(True, message, (*decisions, event))


def closing_outcome(item: ReviewItem, no_answer: NoAnswer) -> Action | None:
    """What signing off does to an item nobody answered: the policy's keep or revoke, or None (recorded as
    unanswered) when the policy would escalate or the item is a break-glass account."""
    if no_answer is NoAnswer.KEEP:
        return Action.KEEP
    if no_answer is NoAnswer.REVOKE and not item.subject.break_glass:
        return Action.REVOKE
    return None


def _fate(no_answer: NoAnswer) -> str:
    if no_answer is NoAnswer.KEEP:
        return "each is kept by policy (the policy's no-answer outcome is keep), and recorded so."
    if no_answer is NoAnswer.REVOKE:
        return "each is revoked by policy (the policy's no-answer outcome is revoke; break-glass accounts are " \
               "recorded as unanswered instead)."
    return "each is recorded in the ledger as unanswered at sign-off."
