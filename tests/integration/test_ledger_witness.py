"""Witnesses and evidence: the signed checkpoint leaves the data directory at every sign-off, once a day, and
inside every evidence pack — and what left proves the ledger later."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.app import Runtime, build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.decisions import DecisionRequest
from bot.engine.model import Action
from bot.ledger_audit import audit
from bot.ledger_signing import LedgerSigner, load_public_key, parse_witness
from bot.store.base import OutboxMessage

ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"  # IT director, a security lead in the demo policy
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


async def signed_runtime(data_dir: Path, clock: ManualClock, signer: LedgerSigner) -> Runtime:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    return await build_runtime(data_dir=data_dir, policy=policy, snapshot=snapshot, clock=clock,
                               credentials=BotCredentials(), ledger_signer=signer, witness_every=timedelta(hours=24))


async def witnesses(runtime: Runtime) -> list[OutboxMessage]:
    due = await runtime.store.due_messages(datetime.max.replace(tzinfo=timezone.utc), 100_000)
    return [message for message in due if message.kind == "witness"]


async def keep_one(runtime: Runtime) -> None:
    (state,) = runtime.service.campaigns()
    item = next(i for i in state.open_items() if ALEX in i.reviewers)
    await runtime.service.decide(DecisionRequest(item.id, Action.KEEP, ALEX, "Alex Wilber"))


async def test_sign_off_posts_the_latest_checkpoint_to_every_security_lead(tmp_path: Path) -> None:
    signer = LedgerSigner.generate()
    runtime = await signed_runtime(tmp_path, ManualClock(MONDAY), signer)
    await runtime.service.open_current_campaign()

    outcome = await runtime.service.sign_off(ALEX, "Alex Wilber", confirmed=True)

    assert outcome.ok
    posted = await witnesses(runtime)
    leads = runtime.service.routing.security_leads
    assert sorted(m.recipient for m in posted) == sorted(leads) and len(posted) >= 1
    checkpoint = parse_witness(posted[0].payload["text"])
    records = await runtime.store.ledger_records()
    assert checkpoint == await runtime.store.latest_checkpoint()
    assert (checkpoint.seq, records[-1].type) == (len(records), "campaign_signed_off")
    assert checkpoint.signed_by(signer.public_key)
    await runtime.store.close()


async def test_the_daily_round_posts_the_latest_checkpoint_once_a_day_and_never_the_same_one_twice(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    runtime = await signed_runtime(tmp_path, clock, LedgerSigner.generate())
    leads = len(runtime.service.routing.security_leads)

    await runtime.scheduler.review_round()  # opens the campaign, then witnesses it
    first = await witnesses(runtime)
    await keep_one(runtime)
    clock.advance(timedelta(hours=23))
    await runtime.scheduler.review_round()  # not a day yet
    assert len(await witnesses(runtime)) == len(first) == leads

    clock.advance(timedelta(hours=1))
    await runtime.scheduler.review_round()
    second = await witnesses(runtime)
    assert len(second) == 2 * leads
    assert {parse_witness(m.payload["text"]).seq for m in second} == {1, (await runtime.store.latest_checkpoint()).seq}

    await runtime.service.witness_checkpoint()  # nothing recorded since: the same checkpoint is not posted twice
    assert len(await witnesses(runtime)) == 2 * leads
    await runtime.store.close()


async def test_an_unsigned_ledger_posts_no_witness(tmp_path: Path) -> None:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    runtime = await build_runtime(data_dir=tmp_path, policy=policy, snapshot=snapshot, clock=ManualClock(MONDAY),
                                  credentials=BotCredentials(), witness_every=timedelta(hours=24))
    await runtime.scheduler.review_round()
    assert await runtime.service.witness_checkpoint() is None and await witnesses(runtime) == []
    await runtime.store.close()


async def test_an_evidence_pack_carries_the_public_key_and_a_checkpoint_that_proves_the_ledger(tmp_path: Path) -> None:
    signer = LedgerSigner.generate()
    runtime = await signed_runtime(tmp_path, ManualClock(MONDAY), signer)
    state, _ = await runtime.service.open_current_campaign()
    await keep_one(runtime)

    pack = zipfile.ZipFile(io.BytesIO(await runtime.service.evidence(state.campaign.id)))

    public_key = load_public_key(pack.read("ledger-public-key.pem"))
    checkpoint = parse_witness(pack.read("ledger-checkpoint.json").decode())
    summary = json.loads(pack.read("summary.json"))
    assert summary["ledger_key_fingerprint"] == signer.fingerprint == checkpoint.key
    assert summary["ledger_checkpoint"]["seq"] == checkpoint.seq == summary["ledger_head"]["seq"]
    anchor, problem = await runtime.store.anchor_state()
    result = audit(await runtime.store.ledger_records(), anchor, await runtime.store.ledger_checkpoints(), public_key,
                   [checkpoint], problem)
    assert result.ok, result.problems
    await runtime.store.close()
