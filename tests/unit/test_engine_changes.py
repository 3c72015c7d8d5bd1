"""A review opened by one access change, on a fake clock: asked of the owner at once, reminded halfway,
with the security leads after the policy's change_escalate, overdue with them (never decided by silence)."""

from __future__ import annotations

from datetime import timedelta

from bot.engine.changes import change_campaign_id, change_policy, is_change_campaign, open_change_review
from bot.engine.model import ItemState, Stage
from bot.engine.state import CampaignState
from bot.engine.timeline import tick
from bot.policy import NoAnswer
from tests.unit.engine_fixtures import LEAD, MEGAN, MONDAY, OWNER, make_policy, make_routing, record, role_subject

TUESDAY = MONDAY + timedelta(days=1)


def change_review(**policy_overrides: object):  # type: ignore[no-untyped-def]
    policy = make_policy(change_escalate=timedelta(hours=2), **policy_overrides)
    subject = role_subject(MEGAN, "Megan Bowen")
    opened = open_change_review(
        tenant_id="tenant-contoso", tenant_name="Contoso", event_id="Directory_1", event_at=TUESDAY - timedelta(minutes=3),
        subject=subject, seed="customer-security-best-practices: x", routing=make_routing(), policy=policy,
        now=TUESDAY, roles_of_holder={},
    )
    state = CampaignState(opened.campaign, {item.id: item for item in opened.items})
    return opened, state, policy


def test_a_change_review_is_one_item_for_the_roles_owner_named_by_its_audit_event() -> None:
    opened, state, _ = change_review()
    assert opened.campaign.id == change_campaign_id("tenant-contoso", "Directory_1") == "tenant-contoso:change:Directory_1"
    assert is_change_campaign(opened.campaign) and opened.campaign.item_count == 1
    [item] = opened.items
    assert item.reviewers == (OWNER,) and item.due == TUESDAY + timedelta(hours=4)
    assert [e.type for e in opened.events] == ["campaign_opened", "access_change"]
    assert opened.events[1].data["activity_at"] == (TUESDAY - timedelta(minutes=3)).isoformat()
    assert [(n.to, n.item_ids) for n in opened.notices] == [(OWNER, (item.id,))]
    assert "Megan Bowen — Global Administrator" in opened.notices[0].text


def test_unanswered_change_is_reminded_halfway_then_escalated_to_the_security_leads_after_hours() -> None:
    _, state, policy = change_review()
    [item_id] = state.items
    paced = change_policy(policy)

    early = tick(state, make_routing(), paced, TUESDAY + timedelta(minutes=59))
    assert early.events == ()
    halfway = tick(state, make_routing(), paced, TUESDAY + timedelta(hours=1))
    assert [e.type for e in halfway.events] == ["reminded"]
    record(state, halfway.events)
    after = tick(state, make_routing(), paced, TUESDAY + timedelta(hours=2))
    assert [e.type for e in after.events if e.type == "escalated"] == ["escalated"]
    record(state, after.events)
    assert state.items[item_id].stage is Stage.SECURITY_LEADS and LEAD in state.items[item_id].reviewers


def test_silence_past_the_deadline_leaves_a_change_open_with_the_leads_even_when_the_policy_revokes() -> None:
    _, state, policy = change_review(no_answer=NoAnswer.REVOKE)
    [item_id] = state.items
    assert change_policy(policy).no_answer is NoAnswer.ESCALATE
    result = tick(state, make_routing(), change_policy(policy), TUESDAY + timedelta(hours=4))
    record(state, result.events)
    assert state.items[item_id].state is ItemState.OPEN and state.items[item_id].overdue
