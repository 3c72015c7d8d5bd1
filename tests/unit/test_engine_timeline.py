"""Time: reminders, escalation along the chain, the deadline outcome, exceptions that expire."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from bot.engine.campaigns import campaign_id, current_period, item_id
from bot.engine.decisions import DecisionRequest, decide
from bot.engine.model import SECURITY_LEADS, Action, ItemState, NoticeKind, Stage
from bot.engine.status import summarize
from bot.engine.timeline import tick
from bot.policy import EscalationStep, NoAnswer
from tests.unit.engine_fixtures import (
    BREAKGLASS,
    FALLBACK,
    LEAD,
    MEGAN,
    MONDAY,
    OWNER,
    exception_until,
    make_policy,
    make_routing,
    opened,
    record,
    role_subject,
)


def advance(state, policy, hours: float):  # type: ignore[no-untyped-def]
    result = tick(state, make_routing(), policy, MONDAY + timedelta(hours=hours))
    record(state, result.events)
    return result


def test_campaign_id_is_derived_from_tenant_and_period() -> None:
    first, _ = opened()
    second, _ = opened()
    assert first.campaign.id == second.campaign.id == campaign_id("tenant-contoso", "2026-11-23T09:00")
    assert [i.id for i in first.items] == [i.id for i in second.items]
    assert first.items[0].id == item_id(first.campaign.id, first.items[0].subject.key)


def test_period_is_the_last_scheduled_start_in_the_policy_time_zone() -> None:
    wednesday = MONDAY + timedelta(days=2, hours=5)
    assert current_period("0 9 * * MON", "Europe/London", wednesday) == "2026-11-23T09:00"
    assert current_period("0 9 * * MON", "Europe/London", MONDAY) == "2026-11-23T09:00"
    assert current_period("0 9 * * MON", "America/New_York", MONDAY) == "2026-11-16T09:00"


def test_opening_sends_one_review_request_per_reviewer() -> None:
    result, _ = opened([role_subject(MEGAN, "Megan Bowen"), role_subject("admin-isaiah", "Isaiah Langer")])
    (notice,) = result.notices
    assert notice.to == OWNER and notice.kind is NoticeKind.REVIEW_REQUEST and len(notice.item_ids) == 2
    assert result.events[0].type == "campaign_opened" and result.events[0].data["item_count"] == 2


def test_reminder_goes_out_once_per_cadence_and_not_again_after_a_restart() -> None:
    policy = make_policy()
    _, state = opened()
    assert advance(state, policy, 12).notices == ()
    first = advance(state, policy, 25)
    assert [n.kind for n in first.notices] == [NoticeKind.REMINDER] and first.notices[0].to == OWNER
    assert advance(state, policy, 25).notices == ()  # the same moment again: nothing new
    assert advance(state, policy, 26).events == ()
    assert [n.key for n in advance(state, policy, 49).notices] != [n.key for n in first.notices]


def test_unanswered_item_escalates_to_fallback_then_security_leads_on_schedule() -> None:
    policy = make_policy()
    _, state = opened()
    advance(state, policy, 71)
    (item,) = state.items.values()
    assert item.stage is Stage.OWNER
    result = advance(state, policy, 72)
    (item,) = state.items.values()
    assert item.stage is Stage.FALLBACK and item.reviewers == (OWNER, FALLBACK)
    assert [n.to for n in result.notices if n.kind is NoticeKind.ESCALATION] == [FALLBACK]
    result = advance(state, policy, 96)
    (item,) = state.items.values()
    assert item.stage is Stage.SECURITY_LEADS and LEAD in item.reviewers
    assert any(n.to == SECURITY_LEADS for n in result.notices)
    assert advance(state, policy, 97).events == ()


def test_unanswered_item_escalates_to_security_lead_after_deadline() -> None:
    policy = make_policy(no_answer=NoAnswer.ESCALATE)
    _, state = opened()
    result = advance(state, policy, 5 * 24)
    (item,) = state.items.values()
    assert item.is_open and item.overdue and item.stage is Stage.SECURITY_LEADS
    assert [n.kind for n in result.notices] == [NoticeKind.EXPIRED]
    assert result.notices[0].to == SECURITY_LEADS
    assert summarize(state, MONDAY + timedelta(days=5)).overdue == 1
    assert advance(state, policy, 5 * 24 + 1).events == ()


def test_deadline_outcome_revoke_is_recorded_as_the_policy_not_a_person() -> None:
    policy = make_policy(no_answer=NoAnswer.REVOKE)
    _, state = opened([role_subject(MEGAN, "Megan Bowen"), role_subject(BREAKGLASS, "BG", break_glass=True)])
    advance(state, policy, 5 * 24)
    by_holder = {i.subject.holder_ids[0]: i for i in state.items.values()}
    megan = by_holder[MEGAN]
    assert megan.state is ItemState.EXPIRED and megan.decision.action is Action.REVOKE and megan.decision.system
    assert "policy" in megan.decision.summary()
    breakglass = by_holder[BREAKGLASS]
    assert breakglass.is_open and breakglass.overdue  # silence never revokes a break-glass account


def test_deadline_outcome_keep() -> None:
    policy = make_policy(no_answer=NoAnswer.KEEP)
    _, state = opened()
    advance(state, policy, 5 * 24)
    (item,) = state.items.values()
    assert item.state is ItemState.EXPIRED and item.decision.action is Action.KEEP


def test_answered_item_is_neither_reminded_nor_escalated() -> None:
    policy = make_policy()
    _, state = opened()
    (item,) = state.items.values()
    record(state, decide(item, DecisionRequest(item.id, Action.KEEP, OWNER, "Alex"), make_routing(), MONDAY).events)
    for hours in (25, 73, 97, 121):
        assert advance(state, policy, hours).notices == ()


def test_excepted_item_shows_as_such_and_is_asked_again_when_the_exception_expires() -> None:
    policy = make_policy()
    grant = exception_until(date(2026, 11, 24))
    result, state = opened(exceptions={MEGAN: grant})
    (item,) = state.items.values()
    assert item.exception == grant
    assert result.notices == ()  # nobody is chased about an accepted risk
    assert summarize(state, MONDAY).excepted == 1
    assert advance(state, policy, 24).notices == ()  # still valid on the 24th
    asked = advance(state, policy, 48)  # the 25th: expired
    (item,) = state.items.values()
    assert item.exception is None
    assert [n.to for n in asked.notices if n.kind is NoticeKind.REVIEW_REQUEST] == [OWNER]


def test_exception_already_expired_at_opening_is_ignored() -> None:
    _, state = opened(exceptions={MEGAN: exception_until(date(2026, 11, 1))})
    (item,) = state.items.values()
    assert item.exception is None


def test_status_counts_by_owner() -> None:
    _, state = opened([role_subject(MEGAN, "Megan Bowen"), role_subject("admin-isaiah", "Isaiah Langer")])
    first = sorted(state.items.values(), key=lambda i: i.id)[0]
    record(
        state,
        decide(first, DecisionRequest(first.id, Action.REVOKE, OWNER, "Alex", "no longer needed"), make_routing(), MONDAY).events,
    )
    summary = summarize(state, MONDAY)
    assert (summary.total, summary.revoked, summary.open, summary.kept) == (2, 1, 1, 0)
    (owner,) = summary.by_owner
    assert (owner.reviewer_id, owner.open, owner.answered) == (OWNER, 1, 1)


def test_escalation_can_go_to_the_reviewers_manager_first_but_never_to_the_holder() -> None:
    steps = (
        EscalationStep(Stage.MANAGER, timedelta(days=2)),
        EscalationStep(Stage.FALLBACK, timedelta(days=3)),
    )
    policy = make_policy(escalation=steps)
    routing = replace(make_routing(), managers={OWNER: "manager-morgan"})
    _, state = opened([role_subject(MEGAN, "Megan Bowen"), role_subject("manager-morgan", "Morgan")], routing=routing)
    result = tick(state, routing, policy, MONDAY + timedelta(days=2))
    record(state, result.events)
    by_holder = {i.subject.holder_ids[0]: i for i in state.items.values()}
    assert by_holder[MEGAN].stage is Stage.MANAGER and "manager-morgan" in by_holder[MEGAN].reviewers
    # Morgan's own access is escalated to the manager stage, but not to Morgan
    assert by_holder["manager-morgan"].stage is Stage.MANAGER
    assert "manager-morgan" not in by_holder["manager-morgan"].reviewers
    assert [n.to for n in result.notices if n.kind is NoticeKind.ESCALATION] == ["manager-morgan"]
    later = tick(state, routing, policy, MONDAY + timedelta(days=3))
    record(state, later.events)
    assert all(i.stage is Stage.FALLBACK for i in state.items.values())
