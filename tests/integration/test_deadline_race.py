"""A click that races the deadline in one process: the store, not the service's memory, decides which answer
stands. Before the conditional append both were recorded — the policy's outcome and the person's answer on
the same item, one after the other — because each was decided on a view the other had not reached yet."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from bot.app import load_inputs
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.decisions import DecisionRequest, Verdict
from bot.engine.model import Action
from bot.policy import NoAnswer
from bot.service import ReviewService
from bot.store.tinydb_store import TinyDBStore
from tests.integration.test_teams_messages import MONDAY

POLICY, SNAPSHOT = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)


async def test_a_click_at_the_deadline_and_the_policys_outcome_leave_one_answer_per_item(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    store = TinyDBStore(tmp_path / "data", clock=clock)
    try:
        service = ReviewService(store, replace(POLICY, no_answer=NoAnswer.REVOKE), SNAPSHOT, clock)
        await service.start()
        state, _ = await service.open_current_campaign()
        item = next(i for i in state.open_items() if not i.subject.break_glass
                    and any(service.may_answer(r, i) for r in i.reviewers))
        reviewer = next(r for r in item.reviewers if service.may_answer(r, item))
        clock.advance(state.campaign.due - MONDAY)

        _, clicked = await asyncio.gather(
            service.tick(),
            service.decide(DecisionRequest(item.id, Action.KEEP, reviewer, SNAPSHOT.display_name(reviewer))),
        )

        answers = [r for r in await store.ledger_records() if r.type == "decision" and r.data["item_id"] == item.id]
        assert len(answers) == 1
        assert clicked.outcome.verdict is Verdict.CONFLICT
        assert "policy (no answer by the deadline)" in clicked.outcome.message
    finally:
        await store.close()
