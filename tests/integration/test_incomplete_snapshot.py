"""A collection that failed part-way is shown as such on every card and in status, never as 'no admins'."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from dialogs.review import item_view
from dialogs.status import campaign_status

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
MISSING = ("phoneMethods: 3 of 12 users failed (503)",)


async def test_a_campaign_from_an_incomplete_snapshot_warns_on_every_card_and_in_status(tmp_path: Path) -> None:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    runtime = await build_runtime(
        data_dir=tmp_path, policy=policy, snapshot=replace(snapshot, complete=False, missing=MISSING),
        clock=ManualClock(MONDAY), credentials=BotCredentials(),
    )
    state, _ = await runtime.service.open_current_campaign()
    assert not state.campaign.snapshot_complete and state.campaign.snapshot_missing == MISSING
    for item in state.items.values():
        view = item_view(runtime.service, item, state.campaign)
        assert any("Incomplete data: phoneMethods: 3 of 12 users failed (503)" in w for w in view.warnings)
    status = campaign_status(runtime.service)
    assert any("incomplete collection" in w and "nothing absent from it was closed or revoked" in w for w in status.warnings)
    records = await runtime.store.ledger_records()
    assert records[0].data["snapshot_complete"] is False and records[0].data["snapshot_missing"] == list(MISSING)
    await runtime.store.close()


async def test_licence_gated_data_the_tenant_lacks_is_said_in_status_but_the_campaign_stays_complete(tmp_path: Path) -> None:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    gated = ("riskyUsers: not available in this tenant (needs Microsoft Entra ID P2)",)
    runtime = await build_runtime(
        data_dir=tmp_path, policy=policy, snapshot=replace(snapshot, unavailable=gated),
        clock=ManualClock(MONDAY), credentials=BotCredentials(),
    )
    state, _ = await runtime.service.open_current_campaign()
    assert state.campaign.snapshot_complete
    assert any(gated[0] in w for w in campaign_status(runtime.service).warnings)
    await runtime.store.close()
