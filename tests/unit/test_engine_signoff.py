"""Signing off: nothing is closed without the lead confirming, and every item closed unanswered is in the ledger."""

from __future__ import annotations

from datetime import date, timedelta

from bot.engine.decisions import Verdict, decide
from bot.engine.model import Action, ItemState
from bot.engine.signoff import SIGNED_OFF, sign_off
from bot.engine.timeline import POLICY_ACTOR
from bot.policy import NoAnswer
from tests.unit.engine_fixtures import (
    BREAKGLASS,
    LEAD,
    MEGAN,
    MONDAY,
    OWNER,
    exception_until,
    make_routing,
    opened,
    record,
    role_subject,
)
from tests.unit.test_engine_decisions import ask

LATER = MONDAY + timedelta(days=2)


def _two_items():  # type: ignore[no-untyped-def]
    _, state = opened([role_subject(MEGAN, "Megan Bowen"), role_subject(BREAKGLASS, "Break Glass 01", break_glass=True)])
    return state


def test_sign_off_with_open_items_only_asks_and_records_nothing() -> None:
    state = _two_items()
    outcome = sign_off(state, LEAD, "Lynne Robbins", make_routing(), NoAnswer.ESCALATE, LATER)
    assert not outcome.ok and outcome.needs_confirmation and outcome.events == ()
    assert [i.subject.holder_name for i in outcome.remaining] == ["Break Glass 01", "Megan Bowen"]
    assert "2 item(s) are still waiting" in outcome.message and "unanswered at sign-off" in outcome.message
    assert state.signed_off_by is None


def test_confirmed_sign_off_under_escalate_records_every_open_item_as_unanswered() -> None:
    state = _two_items()
    outcome = sign_off(state, LEAD, "Lynne Robbins", make_routing(), NoAnswer.ESCALATE, LATER, confirmed=True)
    assert outcome.ok and [e.type for e in outcome.events] == [SIGNED_OFF]
    data = outcome.events[0].data
    assert sorted(data["unanswered"]) == sorted(state.items) and data["open"] == 2 and data["closed_by_policy"] == 0
    record(state, outcome.events)
    assert state.signed_off_by == "Lynne Robbins"
    item = next(iter(state.items.values()))
    refused = decide(item, ask(item, Action.KEEP, actor=OWNER, name="Alex Wilber"), make_routing(), LATER,
                     locked_by=state.signed_off_by)
    assert refused.verdict is Verdict.REFUSED and "signed off by Lynne Robbins" in refused.message


def test_confirmed_sign_off_under_revoke_revokes_by_policy_but_never_a_break_glass_account() -> None:
    state = _two_items()
    outcome = sign_off(state, LEAD, "Lynne Robbins", make_routing(), NoAnswer.REVOKE, LATER, confirmed=True)
    decisions = [e.data for e in outcome.events if e.type == "decision"]
    assert [(d["action"], d["actor_id"], d["system"]) for d in decisions] == [("revoke", POLICY_ACTOR, True)]
    assert "signed the review off" in decisions[0]["justification"]
    signed = outcome.events[-1].data
    assert signed["revoked"] == 1 and len(signed["unanswered"]) == 1
    record(state, outcome.events)
    megan = next(i for i in state.items.values() if MEGAN in i.subject.holder_ids)
    assert megan.state is ItemState.EXPIRED and megan.decision.action is Action.REVOKE
    assert "1 unanswered item(s) took the policy's outcome (revoke)" in outcome.message


def test_confirmed_sign_off_under_keep_keeps_every_open_item_by_policy() -> None:
    state = _two_items()
    outcome = sign_off(state, LEAD, "Lynne Robbins", make_routing(), NoAnswer.KEEP, LATER, confirmed=True)
    assert [e.data["action"] for e in outcome.events if e.type == "decision"] == ["keep", "keep"]
    assert outcome.events[-1].data["unanswered"] == [] and outcome.events[-1].data["kept"] == 2


def test_nothing_open_signs_off_at_once_and_an_accepted_exception_is_not_asked_about() -> None:
    _, state = opened([role_subject(BREAKGLASS, "Break Glass 01", break_glass=True)],
                      exceptions={BREAKGLASS: exception_until(date(2027, 3, 31))})
    outcome = sign_off(state, LEAD, "Lynne Robbins", make_routing(), NoAnswer.ESCALATE, LATER)
    assert outcome.ok and outcome.events[-1].data["excepted"] == 1 and outcome.events[-1].data["unanswered"] == []


def test_only_a_security_lead_signs_off_and_only_once() -> None:
    state = _two_items()
    assert "Only a security lead" in sign_off(state, OWNER, "Alex", make_routing(), NoAnswer.KEEP, LATER, True).message
    record(state, sign_off(state, LEAD, "Lynne Robbins", make_routing(), NoAnswer.KEEP, LATER, True).events)
    again = sign_off(state, LEAD, "Lynne Robbins", make_routing(), NoAnswer.KEEP, LATER, True)
    assert not again.ok and "Already signed off by Lynne Robbins" in again.message and again.events == ()
