"""Someone writes the ledger's files while the bot is running. The writer must notice before its next append
(else its records land after the stranger's and its next checkpoint looks like it vouches for them), refuse
every append from then on, and /healthz must say so with 503."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bot.engine.model import LedgerEvent
from bot.ledger import canonical_json, record_hash
from bot.ledger_signing import LedgerSigner
from bot.store.base import StoreUnavailable
from bot.store.tinydb_store import TinyDBStore
from tests.reliability.served_bot import ServedBot

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def keep(n: int) -> LedgerEvent:
    return LedgerEvent("decision", {"campaign_id": "c1", "item_id": f"item-{n}", "action": "keep", "actor": "Alex Wilber",
                                    "actor_id": "owner-alex", "justification": ""})


def stranger_appends_a_line(data_dir: Path) -> bytes:
    ledger = data_dir / "ledger.jsonl"
    with ledger.open("ab") as out:
        out.write(b'{"forged": true}\n')
    return ledger.read_bytes()


@pytest.mark.parametrize("tamper", ["append", "cut"])
async def test_a_ledger_changed_under_the_running_writer_refuses_every_later_append(tmp_path: Path, tamper: str) -> None:
    store = TinyDBStore(tmp_path, signer=LedgerSigner.generate())
    await store.append_ledger([keep(1)], MONDAY)
    await store.append_ledger([keep(2)], MONDAY)
    ledger = tmp_path / "ledger.jsonl"
    if tamper == "append":
        stranger_appends_a_line(tmp_path)
    else:
        ledger.write_bytes(ledger.read_bytes().split(b"\n")[0] + b"\n")
    tampered = ledger.read_bytes()
    checkpoints = (tmp_path / "ledger-checkpoints.jsonl").read_bytes()

    for n in (3, 4):  # the first refusal sticks: the second append is refused too
        with pytest.raises(StoreUnavailable):
            await store.append_ledger([keep(n)], MONDAY)

    assert ledger.read_bytes() == tampered
    assert (tmp_path / "ledger-checkpoints.jsonl").read_bytes() == checkpoints  # nothing signed over the stranger's line
    assert "changed by another process" in (store.write_problem() or "")
    await store.close()


def test_healthz_answers_503_once_the_running_bot_found_its_ledger_tampered_with(tmp_path: Path) -> None:
    bot = ServedBot(tmp_path).start()
    try:
        assert bot.request("GET", "/healthz").status == 200
        stranger_appends_a_line(tmp_path)
        assert bot.runtime is not None
        with pytest.raises(StoreUnavailable):
            bot.run(bot.runtime.writes.append_ledger([keep(1)], MONDAY))

        health = bot.request("GET", "/healthz")

        assert health.status == 503
        assert "changed by another process" in json.loads(health.body)["problem"]
    finally:
        bot.stop()


def test_records_appended_by_someone_else_while_the_bot_runs_reach_no_export(tmp_path: Path) -> None:
    bot = ServedBot(tmp_path).start()
    try:
        assert bot.runtime is not None
        service = bot.runtime.service
        campaign_id = service.campaigns()[0].campaign.id
        exported = bot.run(service.campaign_ledger(campaign_id))
        last = exported[-1]
        data = {**keep(1).data, "campaign_id": campaign_id, "actor": "Forger"}
        forged = {"seq": last.seq + 1, "at": last.at, "type": "decision", "data": data, "prev": last.hash,
                  "hash": record_hash(last.seq + 1, last.at, "decision", data, last.hash)}
        with (tmp_path / "ledger.jsonl").open("ab") as out:
            out.write(canonical_json(forged) + b"\n")

        assert bot.run(service.campaign_ledger(campaign_id)) == exported
        with zipfile.ZipFile(io.BytesIO(bot.run(service.evidence(campaign_id)))) as pack:
            assert not [name for name in pack.namelist() if b"Forger" in pack.read(name)]
    finally:
        bot.stop()
