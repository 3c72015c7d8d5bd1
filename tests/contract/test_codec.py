"""Stored dicts come back as the exact values that were stored, through real JSON text."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.engine.model import (
    Action,
    AssignmentType,
    Campaign,
    Decision,
    Finding,
    ItemState,
    PolicyExceptionGrant,
    ReviewItem,
    Stage,
    Subject,
    SubjectKind,
)
from bot.store.base import OutboxMessage, PostedCard
from bot.store.codec import (
    campaign_from_dict,
    campaign_to_dict,
    card_from_dict,
    card_to_dict,
    item_from_dict,
    item_to_dict,
    outbox_from_dict,
    outbox_to_dict,
)

text = st.text(max_size=20)
ids = st.tuples(text) | st.lists(text, max_size=3).map(tuple)
zones = st.just(timezone.utc) | st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
times = st.datetimes(timezones=zones)
maybe = st.none().__or__

findings = st.builds(Finding, check_id=text, title=text, severity=text, recommendation=text, scuba=st.none() | text)
subjects = st.builds(
    Subject,
    key=text,
    kind=st.sampled_from(SubjectKind),
    title=text,
    holder_name=text,
    holder_ids=ids,
    role_id=maybe(text),
    role_name=maybe(text),
    partner_id=maybe(text),
    partner_name=maybe(text),
    assignment_type=maybe(st.sampled_from(AssignmentType)),
    permanent=st.booleans(),
    break_glass=st.booleans(),
    evidence=st.dictionaries(text, text, max_size=3),
    findings=st.lists(findings, max_size=2).map(tuple),
)
decisions = st.builds(
    Decision,
    item_id=text,
    action=st.sampled_from(Action),
    actor_id=text,
    actor_name=text,
    at=times,
    justification=text,
    reassign_to=maybe(text),
    on_behalf_of=maybe(text),
    system=st.booleans(),
    on_behalf_of_name=text,
)
grants = st.builds(PolicyExceptionGrant, subject=text, rationale=text, approved_by=text, expires=st.dates())
review_items = st.builds(
    ReviewItem,
    id=text,
    campaign_id=text,
    subject=subjects,
    reviewers=ids,
    due=times,
    opened_at=times,
    state=st.sampled_from(ItemState),
    stage=st.sampled_from(Stage),
    decision=maybe(decisions),
    exception=maybe(grants),
    overdue=st.booleans(),
    history=st.lists(decisions, max_size=3).map(tuple),
)
campaigns = st.builds(
    Campaign,
    id=text,
    tenant_id=text,
    tenant_name=text,
    period=text,
    opened_at=times,
    due=times,
    item_count=st.integers(0, 10**6),
    snapshot_complete=st.booleans(),
    snapshot_missing=st.lists(text, max_size=3).map(tuple),
    items_digest=text,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=10,
)
messages = st.builds(
    OutboxMessage,
    key=text,
    recipient=text,
    kind=text,
    payload=st.dictionaries(text, json_values, max_size=3),
    created_at=times,
    attempts=st.integers(0, 100),
    next_attempt_at=times,
    sent_at=maybe(times),
    last_error=text,
)


def through_json(raw: dict) -> dict:  # type: ignore[type-arg]
    return json.loads(json.dumps(raw))


@settings(max_examples=150)
@given(review_items)
def test_an_item_round_trips_exactly(item: ReviewItem) -> None:
    back = item_from_dict(through_json(item_to_dict(item)))
    assert back == item
    assert back.due.utcoffset() == item.due.utcoffset()


@given(campaigns)
def test_a_campaign_round_trips_exactly(campaign: Campaign) -> None:
    assert campaign_from_dict(through_json(campaign_to_dict(campaign))) == campaign


@given(messages)
def test_an_outbox_message_round_trips_exactly(message: OutboxMessage) -> None:
    assert outbox_from_dict(through_json(outbox_to_dict(message))) == message


def test_an_item_stored_before_optional_fields_existed_still_loads() -> None:
    minimal = {
        "id": "i1",
        "campaign_id": "c1",
        "subject": {"key": "recovery:u1", "kind": "recovery_contact", "title": "t", "holder_name": "Megan"},
        "reviewers": ["owner-alex"],
        "due": "2026-11-28T09:00:00+00:00",
        "opened_at": "2026-11-23T09:00:00+00:00",
    }

    item = item_from_dict(minimal)

    assert (item.state, item.stage, item.decision, item.history) == (ItemState.OPEN, Stage.OWNER, None, ())
    assert item.subject.kind is SubjectKind.RECOVERY_CONTACT


def test_a_posted_card_comes_back_as_stored_and_a_card_stored_before_channels_reads_as_teams() -> None:
    card = PostedCard("slack", "1700000000.000100", {"channel": "D0ALEX", "team": "T0001"})
    assert card_from_dict(json.loads(json.dumps(card_to_dict(card)))) == card
    reference = {"conversation": {"id": "a:alex"}, "serviceUrl": "https://smba.example/"}
    assert card_from_dict({"item_id": "i1", "reference": reference, "activity_id": "activity-1"}) == PostedCard(
        "teams", "activity-1", reference)
