"""The plain-copy backup of docs/operations.md, taken while answers keep being recorded.

The documented order (``campaigns.json`` first, ``ledger.jsonl`` last) is what makes a copy of a running
data directory verify and restore; the control shows that the order matters.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

from bot.app import Runtime, build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.decisions import DecisionRequest, Verdict
from bot.engine.model import Action, ItemState
from bot.ledger import verify
from bot.store.tinydb_store import TinyDBStore

ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"  # the demo's IT director, who owns most roles
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
NOT_STATE = {"writer.lock"}


async def runtime_at(data_dir: Path, clock: ManualClock) -> Runtime:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    return await build_runtime(data_dir=data_dir, policy=policy, snapshot=snapshot, clock=clock, credentials=BotCredentials())


async def keep_next(runtime: Runtime) -> str:
    """Alex keeps one more item he may answer; returns its id."""
    item = next(i for i, _ in runtime.service.items_for(ALEX) if runtime.service.may_answer(ALEX, i))
    result = await runtime.service.decide(DecisionRequest(item.id, Action.KEEP, ALEX, "Alex Wilber"))
    assert result.outcome.verdict is Verdict.RECORDED
    return item.id


def copy_file(source: Path, target: Path) -> None:
    shutil.copy2(source, target / source.name)


def copy_all_but(source: Path, target: Path, *skipped: str) -> None:
    """Step 2 of the documented copy: everything except the named files, locks and writes in progress."""
    for entry in source.iterdir():
        if entry.name in skipped or entry.name in NOT_STATE or entry.name.endswith(".tmp"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name)
        else:
            copy_file(entry, target)


async def verdict_on(copy: Path):  # type: ignore[no-untyped-def]
    reader = TinyDBStore(copy, read_only=True)
    try:
        return verify(await reader.ledger_records(), await reader.ledger_anchor())
    finally:
        await reader.close()


async def test_a_copy_taken_in_the_documented_order_while_answers_arrive_verifies_and_restores(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    live_dir, copy = tmp_path / "live", tmp_path / "copy"
    copy.mkdir()
    live = await runtime_at(live_dir, clock)
    await live.service.open_current_campaign()
    answered = [await keep_next(live)]

    copy_file(live_dir / "campaigns.json", copy)  # 1. the campaign list first
    answered.append(await keep_next(live))
    copy_all_but(live_dir, copy, "campaigns.json", "ledger.jsonl")  # 2. everything else (anchor included)
    answered.append(await keep_next(live))  # the ledger grows past the copied anchor
    copy_file(live_dir / "ledger.jsonl", copy)  # 3. the ledger last
    await live.store.close()

    result = await verdict_on(copy)
    assert result.ok, result.problem
    restored = await runtime_at(copy, clock)
    try:
        (state,) = restored.service.campaigns()
        assert all(state.items[item].state is ItemState.DECIDED for item in answered)
        again = await restored.service.decide(DecisionRequest(answered[-1], Action.KEEP, ALEX, "Alex Wilber"))
        assert again.outcome.verdict is Verdict.DUPLICATE
    finally:
        await restored.store.close()


async def test_a_ledger_copied_before_its_anchor_reads_as_cut_off(tmp_path: Path) -> None:
    """The control: the same copy with the ledger taken first is refused, which is why the order matters."""
    clock = ManualClock(MONDAY)
    live_dir, copy = tmp_path / "live", tmp_path / "copy"
    copy.mkdir()
    live = await runtime_at(live_dir, clock)
    await live.service.open_current_campaign()
    await keep_next(live)
    copy_file(live_dir / "ledger.jsonl", copy)
    await keep_next(live)
    copy_all_but(live_dir, copy, "ledger.jsonl")
    await live.store.close()

    result = await verdict_on(copy)
    assert not result.ok
    assert "cut off" in result.problem
