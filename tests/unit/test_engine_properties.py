"""Properties that must hold whatever order clicks and clock ticks arrive in."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.engine.decisions import DecisionRequest, Verdict, decide
from bot.engine.model import Action, ItemState, SubjectKind
from bot.engine.state import CampaignState, apply_event
from bot.engine.timeline import tick
from bot.policy import NoAnswer
from tests.unit.engine_fixtures import (
    BREAKGLASS,
    DELEGATE,
    FALLBACK,
    LEAD,
    MEGAN,
    MONDAY,
    OWNER,
    STRANGER,
    make_policy,
    make_routing,
    opened,
    partner_subject,
    recovery_subject,
    role_subject,
)

PEOPLE = [OWNER, DELEGATE, FALLBACK, LEAD, MEGAN, BREAKGLASS, STRANGER]
SUBJECTS = [
    role_subject(MEGAN, "Megan Bowen"),
    role_subject(BREAKGLASS, "Break glass", break_glass=True),
    recovery_subject(MEGAN, "Megan Bowen"),
    partner_subject(),
]

clicks = st.tuples(
    st.integers(0, len(SUBJECTS) - 1),
    st.sampled_from(list(Action)),
    st.sampled_from(PEOPLE),
    st.sampled_from(["", "no longer needed"]),
    st.sampled_from([None, STRANGER, MEGAN, FALLBACK]),
)
steps = st.lists(st.one_of(clicks, st.integers(1, 40)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(steps=steps, no_answer=st.sampled_from(list(NoAnswer)))
def test_any_sequence_keeps_the_review_invariants(steps: list, no_answer: NoAnswer) -> None:  # type: ignore[type-arg]
    policy = make_policy(no_answer=no_answer)
    routing = make_routing()
    result, state = opened(SUBJECTS, policy=policy, routing=routing)
    ids = sorted(state.items)
    log = []
    now = MONDAY
    first_final: dict[str, object] = {}
    for step in steps:
        if isinstance(step, int):
            now += timedelta(hours=step)
            events = tick(state, routing, policy, now).events
        else:
            index, action, actor, justification, target = step
            item = state.items[ids[index]]
            outcome = decide(item, DecisionRequest(item.id, action, actor, actor, justification, target), routing, now)
            events = outcome.events
            if outcome.verdict is not Verdict.RECORDED:
                assert events == ()
        for event in events:
            apply_event(state, event.type, event.data)
            log.append(event)
        for item in state.items.values():
            # a final answer never changes once given, except another reviewer's Revoke over a Keep
            if not item.is_open:
                first = first_final.setdefault(item.id, item.decision)
                if item.decision != first:
                    assert first.action is Action.KEEP and item.decision.action is Action.REVOKE
                    assert item.decision.actor_id != first.actor_id and item.history[-1] == first
            # nobody is ever asked to review their own access
            if item.subject.kind is not SubjectKind.RECOVERY_CONTACT:
                assert not set(item.reviewers) & set(item.subject.holder_ids)
            # silence never revokes a break-glass account, and neither does a person
            if item.subject.break_glass and item.decision is not None:
                assert item.decision.action is Action.KEEP
            # don't know is never a keep
            if item.decision is not None:
                assert item.decision.action in (Action.KEEP, Action.REVOKE)
    # the ledger is the source of truth: replaying it from the opened items gives the same state
    replayed = CampaignState(result.campaign, {item.id: item for item in result.items})
    for event in log:
        apply_event(replayed, event.type, event.data)
    assert replayed.items == state.items and replayed.reminder_round == state.reminder_round
    finals = [e for e in log if e.type == "decision" and e.data["action"] in ("keep", "revoke")]
    per_item = {item_id: [e.data["action"] for e in finals if e.data["item_id"] == item_id] for item_id in ids}
    assert all(actions in ([], ["keep"], ["revoke"], ["keep", "revoke"]) for actions in per_item.values())
    assert sum(1 for i in state.items.values() if i.state is not ItemState.OPEN) == sum(1 for a in per_item.values() if a)
