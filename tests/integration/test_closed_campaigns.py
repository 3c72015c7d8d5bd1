"""Start-up rebuilds only the campaigns that can still change; a closed one is rebuilt when someone asks for it.

A signed-off past week is closed: the restart holds only this week's campaign in memory, yet the history of a
person, the export and the evidence pack of the closed week still give exactly its ledger records."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.decisions import DecisionRequest, Verdict
from bot.engine.model import Action, ItemState
from dialogs.review import card_action, current_item
from dialogs.views import Actor, TextView

ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
MEGAN_GA = "Megan Bowen — Global Administrator"


async def runtime_at(data_dir: Path, clock: ManualClock):  # type: ignore[no-untyped-def]
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    return await build_runtime(data_dir=data_dir, policy=policy, snapshot=snapshot, clock=clock, credentials=BotCredentials())


async def two_weeks(data_dir: Path, clock: ManualClock, *, sign_off_first: bool) -> tuple[str, str, str]:
    """Week one: Megan's Global Administrator access kept by Alex (and the week signed off, if asked);
    week two opened a week later. Returns both campaign ids and Megan's object id."""
    runtime = await runtime_at(data_dir, clock)
    first, _ = await runtime.service.open_current_campaign()
    item = next(i for i in first.items.values() if i.subject.title == MEGAN_GA)
    kept = await runtime.service.decide(DecisionRequest(item.id, Action.KEEP, ALEX, "Alex Wilber", "still on call"))
    assert kept.outcome.verdict is Verdict.RECORDED
    if sign_off_first:
        assert (await runtime.service.sign_off(ALEX, "Alex Wilber", confirmed=True)).ok
    clock.advance(timedelta(days=7))
    second, opened = await runtime.service.open_current_campaign()
    assert opened and second.campaign.id != first.campaign.id
    await runtime.store.close()
    return first.campaign.id, second.campaign.id, item.subject.holder_ids[0]


async def test_a_restart_loads_only_the_open_campaign_not_the_signed_off_week_before(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    closed, current, _ = await two_weeks(tmp_path, clock, sign_off_first=True)

    restarted = await runtime_at(tmp_path, clock)
    held = restarted.service.campaigns()
    assert [state.campaign.id for state in held] == [current]
    assert restarted.service.campaign(closed) is None
    assert restarted.service.items_for(ALEX)  # this week's work is all there
    assert {c.id for c in await restarted.store.list_campaigns()} == {closed, current}
    await restarted.store.close()


async def test_a_past_week_never_signed_off_is_still_loaded_and_chased(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    unsigned, current, _ = await two_weeks(tmp_path, clock, sign_off_first=False)

    restarted = await runtime_at(tmp_path, clock)
    assert {state.campaign.id for state in restarted.service.campaigns()} == {unsigned, current}
    await restarted.store.close()


async def test_history_export_and_evidence_of_a_closed_campaign_come_from_its_ledger_records(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    closed, current, megan = await two_weeks(tmp_path, clock, sign_off_first=True)

    restarted = await runtime_at(tmp_path, clock)
    service = restarted.service
    everything = await restarted.store.ledger_records()
    of_closed = [r for r in everything if r.data.get("campaign_id") == closed]
    assert [r.type for r in of_closed][:1] == ["campaign_opened"] and "campaign_signed_off" in [r.type for r in of_closed]

    answers = await service.history(megan)
    assert [(item.subject.title, decision.actor_name, decision.justification, campaign.id)
            for item, decision, campaign in answers] == [(MEGAN_GA, "Alex Wilber", "still on call", closed)]

    assert await service.campaign_ledger(closed) == of_closed
    assert await service.knows_campaign(closed) and not await service.knows_campaign("tenant:1999-W01")

    pack = zipfile.ZipFile(io.BytesIO(await service.evidence(closed)))
    attested = json.loads(pack.read("attestations.json"))
    assert [row["seq"] for row in attested] == [r.seq for r in of_closed]
    summary = json.loads(pack.read("summary.json"))
    assert summary["campaign_id"] == closed
    assert summary["items"]["kept"] == 1
    assert summary["signed_off"]["by"] is not None

    rebuilt = await service.campaign_state(closed)
    assert rebuilt is not None and rebuilt.signed_off_by is not None
    assert next(i for i in rebuilt.items.values() if i.subject.title == MEGAN_GA).state is ItemState.DECIDED
    assert service.campaign(closed) is None  # asked for, not kept: memory does not grow with exports
    await restarted.store.close()


async def test_an_old_card_of_a_signed_off_week_reads_as_closed_after_a_restart_not_as_vanished(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    closed, _, _ = await two_weeks(tmp_path, clock, sign_off_first=True)
    restarted = await runtime_at(tmp_path, clock)
    old_item = next(r.data["item_id"] for r in await restarted.store.ledger_records_of(closed) if r.type == "decision")

    refreshed = current_item(restarted.service, old_item, ALEX)
    clicked = await card_action(restarted.service, Actor(ALEX, "Alex Wilber"), {"item": old_item, "action": "keep"})

    assert isinstance(refreshed, TextView) and "signed off and closed" in refreshed.text
    assert isinstance(clicked, TextView) and "signed off and closed" in clicked.text and "nothing was recorded" in clicked.text
    await restarted.store.close()
