"""Decisions: who may answer, what an answer needs, and idempotency."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.engine.decisions import DecisionRequest, Verdict, decide
from bot.engine.model import MFA_DEVICES_EVIDENCE, SECURITY_LEADS, Action, ItemState, NoticeKind, Stage
from bot.engine.status import summarize
from tests.unit.engine_fixtures import (
    BREAKGLASS,
    DELEGATE,
    FALLBACK,
    LEAD,
    MEGAN,
    MONDAY,
    OWNER,
    STRANGER,
    make_routing,
    opened,
    record,
    recovery_subject,
    role_subject,
)


def only_item(state):  # type: ignore[no-untyped-def]
    (item,) = state.items.values()
    return item


def ask(item, action, actor=OWNER, name="Alex Wilber", **kw):  # type: ignore[no-untyped-def]
    return DecisionRequest(item_id=item.id, action=action, actor_id=actor, actor_name=name, **kw)


def test_owner_keep_is_recorded_and_closes_the_item() -> None:
    _, state = opened()
    item = only_item(state)
    outcome = decide(item, ask(item, Action.KEEP), make_routing(), MONDAY)
    assert outcome.verdict is Verdict.RECORDED
    (event,) = outcome.events
    assert event.type == "decision" and event.data["action"] == "keep" and event.data["actor_id"] == OWNER
    record(state, outcome.events)
    assert only_item(state).state is ItemState.DECIDED
    assert only_item(state).decision.actor_name == "Alex Wilber"


def test_same_click_delivered_twice_records_one_attestation() -> None:
    _, state = opened()
    item = only_item(state)
    first = decide(item, ask(item, Action.KEEP), make_routing(), MONDAY)
    record(state, first.events)
    again = decide(only_item(state), ask(item, Action.KEEP), make_routing(), MONDAY + timedelta(seconds=1))
    assert again.verdict is Verdict.DUPLICATE
    assert again.events == () and again.notices == ()
    assert again.first == first.decision


def test_conflicting_later_answer_is_refused_and_first_answer_shown() -> None:
    _, state = opened()
    item = only_item(state)
    record(state, decide(item, ask(item, Action.KEEP), make_routing(), MONDAY).events)
    later = decide(
        only_item(state), ask(item, Action.REVOKE, actor=DELEGATE, justification="left the company"),
        make_routing(), MONDAY + timedelta(minutes=3),
    )
    assert later.verdict is Verdict.CONFLICT
    assert later.events == ()
    assert "Kept by Alex Wilber" in later.message
    assert only_item(state).decision.action is Action.KEEP


def test_self_review_is_refused_even_for_an_assigned_reviewer() -> None:
    # Megan owns the role she holds: she must not be asked, and her click must not count.
    routing = make_routing(owners=(MEGAN, OWNER))
    _, state = opened(routing=routing)
    item = only_item(state)
    assert MEGAN not in item.reviewers
    outcome = decide(item, ask(item, Action.KEEP, actor=MEGAN, name="Megan Bowen"), routing, MONDAY)
    assert outcome.verdict is Verdict.REFUSED and "own access" in outcome.message
    assert outcome.events == ()


def test_owner_who_is_the_only_owner_and_the_holder_falls_back_to_the_fallback_reviewer() -> None:
    routing = make_routing(owners=(MEGAN,))
    _, state = opened(routing=routing)
    assert only_item(state).reviewers == (FALLBACK,)


def test_someone_not_assigned_is_refused() -> None:
    _, state = opened()
    item = only_item(state)
    outcome = decide(item, ask(item, Action.KEEP, actor=STRANGER, name="Sam"), make_routing(), MONDAY)
    assert outcome.verdict is Verdict.REFUSED and "assigned to someone else" in outcome.message


def test_delegate_may_answer_for_the_reviewer_and_is_recorded_as_such() -> None:
    _, state = opened()
    item = only_item(state)
    names = {OWNER: "Alex Wilber"}
    outcome = decide(item, ask(item, Action.KEEP, actor=DELEGATE, name="Lynne Robbins"), make_routing(), MONDAY,
                     name_of=names.__getitem__)
    assert outcome.verdict is Verdict.RECORDED
    assert outcome.decision.on_behalf_of == OWNER and outcome.decision.on_behalf_of_name == "Alex Wilber"
    (event,) = outcome.events
    assert (event.data["actor"], event.data["on_behalf_of"], event.data["on_behalf_of_name"]) == (
        "Lynne Robbins", OWNER, "Alex Wilber")
    assert outcome.decision.summary().startswith("Kept by Lynne Robbins as Alex Wilber's delegate at ")


def test_a_reviewers_own_answer_records_no_delegation() -> None:
    _, state = opened()
    item = only_item(state)
    outcome = decide(item, ask(item, Action.KEEP), make_routing(), MONDAY, name_of=lambda oid: "someone")
    assert outcome.decision.on_behalf_of is None and outcome.decision.on_behalf_of_name == ""
    assert "on_behalf_of_name" not in outcome.events[0].data and "delegate" not in outcome.decision.summary()


def test_revoke_without_justification_is_refused() -> None:
    _, state = opened()
    item = only_item(state)
    outcome = decide(item, ask(item, Action.REVOKE, justification="  "), make_routing(), MONDAY)
    assert outcome.verdict is Verdict.REFUSED and "justification" in outcome.message


def test_revoke_with_justification_alerts_the_security_leads() -> None:
    _, state = opened()
    item = only_item(state)
    outcome = decide(item, ask(item, Action.REVOKE, justification="Left the company in October"), make_routing(), MONDAY)
    assert outcome.verdict is Verdict.RECORDED
    (notice,) = outcome.notices
    assert notice.kind is NoticeKind.REVOKE_ALERT and notice.to == SECURITY_LEADS
    assert "Left the company in October" in notice.text


def test_break_glass_account_is_never_revoked_from_a_review() -> None:
    _, state = opened([role_subject(BREAKGLASS, "Break glass 01", break_glass=True)])
    item = only_item(state)
    outcome = decide(item, ask(item, Action.REVOKE, justification="looks unused"), make_routing(), MONDAY)
    assert outcome.verdict is Verdict.REFUSED and "break-glass" in outcome.message
    assert decide(item, ask(item, Action.KEEP), make_routing(), MONDAY).verdict is Verdict.RECORDED


def test_dont_know_goes_to_the_fallback_reviewer_and_is_never_a_keep() -> None:
    _, state = opened()
    item = only_item(state)
    outcome = decide(item, ask(item, Action.DONT_KNOW), make_routing(), MONDAY)
    assert outcome.verdict is Verdict.RECORDED
    record(state, outcome.events)
    after = only_item(state)
    assert after.state is ItemState.OPEN and after.decision is None
    assert after.stage is Stage.FALLBACK and after.reviewers == (FALLBACK,)
    assert [n.to for n in outcome.notices] == [FALLBACK]
    # the fallback reviewer may now answer; the owner who passed may not
    assert decide(after, ask(after, Action.KEEP), make_routing(), MONDAY).verdict is Verdict.REFUSED
    assert decide(after, ask(after, Action.KEEP, actor=FALLBACK, name="Lee Gu"), make_routing(), MONDAY).verdict is (
        Verdict.RECORDED
    )


def test_dont_know_from_the_fallback_reviewer_goes_to_the_security_leads() -> None:
    _, state = opened()
    item = only_item(state)
    record(state, decide(item, ask(item, Action.DONT_KNOW), make_routing(), MONDAY).events)
    outcome = decide(only_item(state), ask(item, Action.DONT_KNOW, actor=FALLBACK, name="Lee Gu"), make_routing(), MONDAY)
    record(state, outcome.events)
    assert only_item(state).stage is Stage.SECURITY_LEADS
    assert only_item(state).reviewers == (LEAD,)


def test_dont_know_clicked_twice_records_once() -> None:
    _, state = opened()
    item = only_item(state)
    record(state, decide(item, ask(item, Action.DONT_KNOW), make_routing(), MONDAY).events)
    again = decide(only_item(state), ask(item, Action.DONT_KNOW), make_routing(), MONDAY)
    assert again.verdict is Verdict.DUPLICATE and again.events == ()


def test_reassign_hands_the_item_to_another_person_but_never_to_its_holder() -> None:
    _, state = opened()
    item = only_item(state)
    refused = decide(item, ask(item, Action.REASSIGN, reassign_to=MEGAN), make_routing(), MONDAY)
    assert refused.verdict is Verdict.REFUSED
    outcome = decide(item, ask(item, Action.REASSIGN, reassign_to=STRANGER), make_routing(), MONDAY)
    record(state, outcome.events)
    assert only_item(state).reviewers == (STRANGER,)
    assert decide(only_item(state), ask(item, Action.KEEP, actor=STRANGER, name="Sam"), make_routing(), MONDAY).verdict is (
        Verdict.RECORDED
    )


def test_admin_may_confirm_own_recovery_contact_only_when_policy_allows() -> None:
    subjects = [role_subject(MEGAN, "Megan Bowen"), recovery_subject(MEGAN, "Megan Bowen")]
    _, state = opened(subjects)
    recovery = next(i for i in state.items.values() if i.subject.key.startswith("recovery:"))
    assert recovery.reviewers == (OWNER,)  # the owner of her role
    assert decide(recovery, ask(recovery, Action.KEEP, actor=MEGAN), make_routing(), MONDAY).verdict is Verdict.REFUSED

    allowing = make_routing(include_admin=True)
    _, state = opened(subjects, routing=allowing)
    recovery = next(i for i in state.items.values() if i.subject.key.startswith("recovery:"))
    assert recovery.reviewers == (OWNER, MEGAN)
    assert decide(recovery, ask(recovery, Action.KEEP, actor=MEGAN), allowing, MONDAY).verdict is Verdict.RECORDED


def test_another_reviewers_revoke_wins_over_a_keep_and_the_keep_stays_in_history() -> None:
    _, state = opened()
    item = only_item(state)
    record(state, decide(item, ask(item, Action.DONT_KNOW), make_routing(), MONDAY).events)  # now with Lee too
    routing = make_routing()
    lee_keeps = decide(only_item(state), ask(item, Action.KEEP, actor=FALLBACK, name="Lee Gu"), routing, MONDAY)
    record(state, lee_keeps.events)
    escalated = only_item(state)
    # Lynne joins as a security lead after escalation and revokes
    state.items[item.id] = replace(escalated, reviewers=escalated.reviewers + (LEAD,))
    revoke = decide(
        state.items[item.id], ask(item, Action.REVOKE, actor=LEAD, name="Lynne Robbins", justification="shared account"),
        routing, MONDAY,
    )
    assert revoke.verdict is Verdict.RECORDED
    record(state, revoke.events)
    final = only_item(state)
    assert final.decision.action is Action.REVOKE and final.history[-1].action is Action.KEEP


def test_nobody_overrides_their_own_keep_and_nothing_overrides_a_revoke() -> None:
    _, state = opened()
    item = only_item(state)
    record(state, decide(item, ask(item, Action.KEEP), make_routing(), MONDAY).events)
    mine = decide(only_item(state), ask(item, Action.REVOKE, justification="changed my mind"), make_routing(), MONDAY)
    assert mine.verdict is Verdict.CONFLICT
    by_delegate = decide(
        only_item(state), ask(item, Action.REVOKE, actor=DELEGATE, justification="for Alex"), make_routing(), MONDAY
    )
    assert by_delegate.verdict is Verdict.CONFLICT  # the delegate speaks for the same reviewer


def test_revoke_wins_can_be_switched_off() -> None:
    routing = replace(make_routing(), revoke_wins=False)
    _, state = opened(routing=routing)
    item = only_item(state)
    record(state, decide(item, ask(item, Action.DONT_KNOW), routing, MONDAY).events)
    record(state, decide(only_item(state), ask(item, Action.KEEP, actor=FALLBACK, name="Lee"), routing, MONDAY).events)
    state.items[item.id] = replace(only_item(state), reviewers=only_item(state).reviewers + (LEAD,))
    later = decide(
        state.items[item.id], ask(item, Action.REVOKE, actor=LEAD, name="Lynne", justification="shared account"), routing, MONDAY
    )
    assert later.verdict is Verdict.CONFLICT


def test_signed_off_campaign_refuses_every_answer() -> None:
    _, state = opened()
    item = only_item(state)
    outcome = decide(item, ask(item, Action.KEEP), make_routing(), MONDAY, locked_by="Lynne Robbins")
    assert outcome.verdict is Verdict.REFUSED and "signed off by Lynne Robbins" in outcome.message


def test_a_justification_over_the_policy_limit_is_refused_with_the_limit_for_every_action() -> None:
    _, state = opened()
    item = only_item(state)
    for action in (Action.REVOKE, Action.KEEP, Action.DONT_KNOW):
        outcome = decide(item, ask(item, action, justification="x" * 81), make_routing(), MONDAY, max_justification=80)
        assert outcome.verdict is Verdict.REFUSED and outcome.events == ()
        assert "81 characters long and the limit is 80" in outcome.message
    at_limit = decide(item, ask(item, Action.REVOKE, justification="x" * 80), make_routing(), MONDAY, max_justification=80)
    assert at_limit.verdict is Verdict.RECORDED


# ---- unfamiliar MFA method ----------------------------------------------------------------------


def _with_devices():  # type: ignore[no-untyped-def]
    subject = role_subject(MEGAN, "Megan Bowen")
    devices = {**subject.evidence, MFA_DEVICES_EVIDENCE: "Authenticator “SM-A546B” (2026-11-21)"}
    return opened([replace(subject, evidence=devices)])


def test_unfamiliar_method_alerts_the_security_leads_and_hands_them_the_item() -> None:
    _, state = _with_devices()
    item = only_item(state)
    outcome = decide(item, ask(item, Action.UNFAMILIAR_METHOD, justification="She has an iPhone"), make_routing(),
                     MONDAY)
    assert outcome.verdict is Verdict.RECORDED
    [alert] = outcome.notices
    assert alert.kind is NoticeKind.METHOD_ALERT and alert.to == SECURITY_LEADS
    assert "Alex Wilber does not recognise an MFA method of Megan Bowen" in alert.text
    assert "“She has an iPhone”" in alert.text and "Authenticator “SM-A546B” (2026-11-21)" in alert.text
    record(state, outcome.events)
    after = only_item(state)
    assert after.is_open and after.decision is None  # never a Keep: the leads answer it
    assert after.stage is Stage.SECURITY_LEADS and after.reviewers == (LEAD,)
    assert after.history[-1].summary().startswith("Unfamiliar MFA method reported by Alex Wilber")
    assert summarize(state, MONDAY).unfamiliar_methods == 1
    revoked = decide(after, ask(after, Action.REVOKE, actor=LEAD, name="Lynne", justification="not hers, removed"),
                     make_routing(), MONDAY)
    assert revoked.verdict is Verdict.RECORDED


def test_unfamiliar_method_reported_twice_is_recorded_once() -> None:
    _, state = _with_devices()
    item = only_item(state)
    record(state, decide(item, ask(item, Action.UNFAMILIAR_METHOD), make_routing(), MONDAY).events)
    lead_view = only_item(state)
    again = decide(replace(lead_view, reviewers=(OWNER,)), ask(item, Action.UNFAMILIAR_METHOD), make_routing(), MONDAY)
    assert again.verdict is Verdict.DUPLICATE and again.events == ()


def test_unfamiliar_method_is_refused_on_an_item_that_lists_no_mfa_devices() -> None:
    _, state = opened()
    item = only_item(state)
    outcome = decide(item, ask(item, Action.UNFAMILIAR_METHOD), make_routing(), MONDAY)
    assert outcome.verdict is Verdict.REFUSED and outcome.events == ()
    assert "lists no MFA methods" in outcome.message
