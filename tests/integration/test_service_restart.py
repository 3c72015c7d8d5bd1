"""A restart rebuilds every campaign from the store and the ledger: nothing opened, answered or sent twice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.decisions import DecisionRequest, Verdict, decide
from bot.engine.model import Action, ItemState, LedgerEvent, Stage
from bot.ledger import verify
from bot.service import NOTICES, ReviewService, notice_to_data

ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


async def runtime_at(data_dir: Path, clock: ManualClock):  # type: ignore[no-untyped-def]
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    return await build_runtime(data_dir=data_dir, policy=policy, snapshot=snapshot, clock=clock, credentials=BotCredentials())


def megan_item(runtime) -> str:  # type: ignore[no-untyped-def]
    (state,) = runtime.service.campaigns()
    return next(i.id for i in state.items.values() if i.subject.title == "Megan Bowen — Global Administrator")


async def test_decisions_and_escalations_survive_a_restart_and_the_campaign_is_not_reopened(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    first = await runtime_at(tmp_path, clock)
    state, opened = await first.service.open_current_campaign()
    assert opened
    item = megan_item(first)
    result = await first.service.decide(DecisionRequest(item, Action.KEEP, ALEX, "Alex Wilber"))
    assert result.outcome.verdict is Verdict.RECORDED
    clock.advance(timedelta(days=3, minutes=1))
    assert await first.service.tick() > 0
    await first.store.close()

    second = await runtime_at(tmp_path, clock)
    state, opened = await second.service.open_current_campaign()
    assert not opened
    kept = state.items[item]
    assert kept.state is ItemState.DECIDED and kept.decision is not None and kept.decision.actor_name == "Alex Wilber"
    assert all(i.stage is Stage.FALLBACK for i in state.open_items() if i.exception is None)
    assert await second.service.tick() == 0  # the escalation already happened before the restart
    again = await second.service.decide(DecisionRequest(item, Action.KEEP, ALEX, "Alex Wilber"))
    assert again.outcome.verdict is Verdict.DUPLICATE
    records = await second.store.ledger_records()
    assert [r.type for r in records].count("campaign_opened") == 1
    assert [r.type for r in records].count("decision") == 1
    assert verify(records, await second.store.ledger_anchor()).ok
    await second.store.close()


async def test_an_opening_interrupted_before_the_ledger_record_is_completed_at_start(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    first = await runtime_at(tmp_path, clock)
    state, _ = await first.service.open_current_campaign()
    await first.store.close()
    # Simulate the crash: the items were stored, the ledger record and review requests never were.
    (tmp_path / "ledger.jsonl").unlink()
    (tmp_path / "ledger.head").unlink(missing_ok=True)
    for outbox in tmp_path.glob("outbox*"):
        outbox.unlink()

    second = await runtime_at(tmp_path, clock)
    records = await second.store.ledger_records()
    assert [r.type for r in records] == ["campaign_opened"]
    assert records[0].data["campaign_id"] == state.campaign.id
    due = await second.store.due_messages(MONDAY, 100)
    assert {m.recipient for m in due} >= {ALEX}
    await second.store.close()


async def test_a_service_that_finds_the_campaign_already_stored_adopts_it(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    first = await runtime_at(tmp_path, clock)
    _, opened = await first.service.open_current_campaign()
    late = ReviewService(first.store, first.service.policy, first.service.snapshot, clock)  # started before the opening
    state, opened_late = await late.open_current_campaign()
    assert (opened, opened_late) == (True, False)
    assert state.campaign.id == first.service.current_campaign_id()
    assert [r.type for r in await first.store.ledger_records()].count("campaign_opened") == 1
    await first.store.close()


async def test_notices_recorded_but_not_yet_queued_when_the_process_died_are_queued_at_start(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    first = await runtime_at(tmp_path, clock)
    await first.service.open_current_campaign()
    item = megan_item(first)
    decision = DecisionRequest(item, Action.REVOKE, ALEX, "Alex Wilber", "No MFA on a permanent Global Administrator")
    outcome = decide(first.service.item(item)[0], decision, first.service.routing, clock.now())
    # The process dies right after the ledger write: the record (with its notices) is durable, the outbox
    # never heard of the revoke alert.
    (event,) = outcome.events
    carried = LedgerEvent(event.type, {**event.data, NOTICES: [notice_to_data(n) for n in outcome.notices]})
    await first.store.append_ledger([carried], clock.now())
    await first.store.close()

    second = await runtime_at(tmp_path, clock)
    due = await second.store.due_messages(clock.now(), 100)
    alerts = [m for m in due if m.kind == "revoke_alert" and "No MFA on a permanent Global Administrator" in m.payload["text"]]
    assert {m.recipient for m in alerts} == set(second.service.routing.security_leads)
    await second.store.close()
    third = await runtime_at(tmp_path, clock)  # and a second restart queues nothing twice
    assert len(await third.store.due_messages(clock.now(), 100)) == len(due)
    await third.store.close()
