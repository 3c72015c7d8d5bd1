"""One answer that cannot be stored fails alone; a disk that cannot be written fails loudly and recovers.

A lone UTF-16 surrogate is valid JSON but cannot be encoded as UTF-8. It used to make the ledger's group
commit raise outside its error handling, leaving every request of that commit waiting forever.
"""

from __future__ import annotations

import asyncio
import errno
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.engine.model import LedgerEvent
from bot.ledger_audit import audit
from bot.ledger_signing import LedgerSigner
from bot.store.base import RecordRejected, StoreUnavailable
from bot.store.tinydb_store import TinyDBStore

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
HANG_GUARD_S = 60.0  # only so a regression fails instead of hanging the suite; not a timing assertion


def decision(n: int, action: str = "keep", justification: str = "") -> LedgerEvent:
    return LedgerEvent("decision", {"campaign_id": "c1", "item_id": f"item-{n}", "action": action,
                                    "actor_id": "owner-alex", "justification": justification})


async def proven(store: TinyDBStore, signer: LedgerSigner) -> bool:
    anchor, problem = await store.anchor_state()
    result = audit(await store.ledger_records(), anchor, await store.ledger_checkpoints(), signer.public_key,
                   anchor_problem=problem)
    return result.ok


async def test_thirty_keeps_and_one_poisoned_revoke_in_one_burst_record_thirty_and_reject_one(tmp_path: Path) -> None:
    signer = LedgerSigner.generate()
    store = TinyDBStore(tmp_path, signer=signer)
    burst = [store.append_ledger([decision(n)], MONDAY) for n in range(30)]
    burst.insert(17, store.append_ledger([decision(99, "revoke", "left the company \ud800")], MONDAY))

    outcomes = await asyncio.wait_for(asyncio.gather(*burst, return_exceptions=True), HANG_GUARD_S)

    rejected = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(rejected) == 1 and isinstance(rejected[0], RecordRejected)
    assert "lone UTF-16 surrogate" in str(rejected[0])
    recorded = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(recorded) == 30
    assert sorted(r[0].data["item_id"] for r in recorded) == sorted(f"item-{n}" for n in range(30))
    assert [r.seq for r in await store.ledger_records()] == list(range(1, 31))
    assert store.write_problem() is None and await proven(store, signer)
    await store.close()


async def test_a_request_after_a_poisoned_one_still_commits(tmp_path: Path) -> None:
    store = TinyDBStore(tmp_path, signer=LedgerSigner.generate())
    with pytest.raises(RecordRejected):
        await store.append_ledger([decision(1, "revoke", "\udfff")], MONDAY)

    (record,) = await asyncio.wait_for(store.append_ledger([decision(2)], MONDAY), HANG_GUARD_S)

    assert record.seq == 1
    await store.close()


async def test_a_full_disk_answers_store_unavailable_records_nothing_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up between the records and their checkpoint (fsync reports ENOSPC, as delayed
    allocation does): the records are taken back, every waiter hears 'not recorded', health says why."""
    signer = LedgerSigner.generate()
    store = TinyDBStore(tmp_path, signer=signer)
    for n in range(3):
        await store.append_ledger([decision(n)], MONDAY)
    ledger_before = (tmp_path / "ledger.jsonl").read_bytes()
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("ledger-checkpoints.jsonl"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    burst = [store.append_ledger([decision(n)], MONDAY) for n in range(10, 15)]
    outcomes = await asyncio.wait_for(asyncio.gather(*burst, return_exceptions=True), HANG_GUARD_S)

    assert all(isinstance(o, StoreUnavailable) and "nothing was recorded" in str(o) for o in outcomes), outcomes
    assert "No space left on device" in (store.write_problem() or "")
    assert (tmp_path / "ledger.jsonl").read_bytes() == ledger_before  # the unsigned records were taken back

    monkeypatch.setattr(os, "fsync", real_fsync)  # space again
    (record,) = await asyncio.wait_for(store.append_ledger([decision(20)], MONDAY), HANG_GUARD_S)

    assert record.seq == 4 and store.write_problem() is None
    assert await proven(store, signer)
    await store.close()


async def test_a_poisoned_decision_fails_alone_and_leaves_its_item_answerable(tmp_path: Path) -> None:
    from bot.app import build_runtime, load_inputs
    from bot.channels.teams import BotCredentials
    from bot.clock import ManualClock
    from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
    from bot.engine.decisions import DecisionRequest, Verdict
    from bot.engine.model import Action

    alex = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    runtime = await build_runtime(data_dir=tmp_path, policy=policy, snapshot=snapshot, clock=ManualClock(MONDAY),
                                  credentials=BotCredentials(), ledger_signer=LedgerSigner.generate())
    state, _ = await runtime.service.open_current_campaign()
    items = [i.id for i in state.open_items() if alex in i.reviewers]
    poisoned, others = items[0], items[1:]
    burst = [runtime.service.decide(DecisionRequest(i, Action.KEEP, alex, "Alex Wilber")) for i in others]
    why = "Left the company in March"
    burst.append(runtime.service.decide(DecisionRequest(poisoned, Action.REVOKE, alex, "Alex Wilber", why + "\ud800")))

    outcomes = await asyncio.wait_for(asyncio.gather(*burst, return_exceptions=True), HANG_GUARD_S)

    assert isinstance(outcomes[-1], RecordRejected)
    assert all(o.outcome.verdict is Verdict.RECORDED for o in outcomes[:-1])
    assert runtime.service.item(poisoned)[0].is_open  # nothing changed on the poisoned item …
    again = await asyncio.wait_for(  # … and its lock was released: a clean answer is recorded
        runtime.service.decide(DecisionRequest(poisoned, Action.REVOKE, alex, "Alex Wilber", why)), HANG_GUARD_S)
    assert again.outcome.verdict is Verdict.RECORDED
    await runtime.store.close()
