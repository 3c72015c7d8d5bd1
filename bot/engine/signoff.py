"""Signing a campaign off: a security lead closes the period, and its answers can no longer change.

The sign-off is a ledger event carrying the campaign's numbers at that moment, so the evidence pack
and the ledger agree on what was signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.engine.model import LedgerEvent
from bot.engine.routing import Routing
from bot.engine.state import CampaignState
from bot.engine.status import summarize


@dataclass(frozen=True)
class SignOffOutcome:
    ok: bool
    message: str
    events: tuple[LedgerEvent, ...] = ()


def sign_off(state: CampaignState, actor_id: str, actor_name: str, routing: Routing, now: datetime) -> SignOffOutcome:
    if actor_id not in routing.security_leads:
        return SignOffOutcome(False, "Only a security lead can sign a review off.")
    if state.signed_off_by is not None:
        return SignOffOutcome(False, f"Already signed off by {state.signed_off_by} at {state.signed_off_at:%Y-%m-%d %H:%M} UTC.")
    summary = summarize(state, now)
    event = LedgerEvent(
        "campaign_signed_off",
        {
            "campaign_id": state.campaign.id,
            "by_id": actor_id,
            "by": actor_name,
            "at": now.isoformat(),
            "total": summary.total,
            "kept": summary.kept,
            "revoked": summary.revoked,
            "open": summary.open,
            "excepted": summary.excepted,
        },
    )
    unanswered = f" {summary.open} item(s) were still unanswered and are listed as such." if summary.open else ""
    return SignOffOutcome(True, f"Signed off by {actor_name}: answers are now locked.{unanswered}", (event,))
