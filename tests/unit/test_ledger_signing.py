"""Signed checkpoints, keys kept outside the data directory, key rotation, and what a writer does on opening
a ledger that its checkpoints do not fully cover."""

from __future__ import annotations

import base64
import json
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.engine.model import LedgerEvent
from bot.ledger import LedgerHead, canonical_json, record_hash
from bot.ledger_audit import audit
from bot.ledger_signing import (
    Checkpoint,
    CheckpointUnreadable,
    KeyRotation,
    LedgerKeyError,
    LedgerSigner,
    entry_to_line,
    parse_witness,
    write_key_pair,
)
from bot.store.base import LedgerIntegrityError
from bot.store.tinydb_store import TinyDBStore

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
HEAD = LedgerHead(7, "ab" * 32)


def keep(n: int) -> LedgerEvent:
    return LedgerEvent("decision", {"campaign_id": "c1", "item_id": f"item-{n}", "action": "keep"})


async def written(data_dir: Path, signer: LedgerSigner | None, count: int, first: int = 1) -> TinyDBStore:
    store = TinyDBStore(data_dir, signer=signer)
    for n in range(first, first + count):
        await store.append_ledger([keep(n)], MONDAY + timedelta(seconds=n))
    return store


async def proof(data_dir: Path, trusted: LedgerSigner, witnesses: list[Checkpoint] | None = None):  # type: ignore[no-untyped-def]
    store = TinyDBStore(data_dir, read_only=True)
    anchor, problem = await store.anchor_state()
    result = audit(await store.ledger_records(), anchor, await store.ledger_checkpoints(), trusted.public_key,
                   witnesses or [], problem)
    await store.close()
    return result


# ---- checkpoints and keys -----------------------------------------------------------------------


def test_a_checkpoint_verifies_with_its_key_and_not_when_any_field_changes() -> None:
    signer = LedgerSigner.generate()
    checkpoint = signer.checkpoint("id" * 32, HEAD, "2026-11-23T09:00:00.000000Z")

    assert checkpoint.signed_by(signer.public_key)
    assert not checkpoint.signed_by(LedgerSigner.generate().public_key)
    for change in ({"seq": 8}, {"hash": "cd" * 32}, {"at": "2026-11-24T09:00:00.000000Z"}, {"ledger_id": "x" * 64}):
        raw = {**checkpoint.to_dict(), **change}
        raw.pop("type")
        altered = Checkpoint(**raw)
        assert not altered.signed_by(signer.public_key), change


def test_keygen_writes_a_private_key_only_its_owner_can_read_and_never_overwrites_one(tmp_path: Path) -> None:
    signer = LedgerSigner.generate()
    public = write_key_pair(signer, tmp_path / "ledger.key")

    assert stat.S_IMODE((tmp_path / "ledger.key").stat().st_mode) == 0o600
    assert LedgerSigner.from_file(tmp_path / "ledger.key").fingerprint == signer.fingerprint
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    with pytest.raises(LedgerKeyError, match="refusing to overwrite"):
        write_key_pair(LedgerSigner.generate(), tmp_path / "ledger.key")


def test_a_key_inside_the_data_dir_is_refused(tmp_path: Path) -> None:
    write_key_pair(LedgerSigner.generate(), tmp_path / "ledger.key")
    with pytest.raises(LedgerKeyError, match="inside the data directory"):
        LedgerSigner.from_file(tmp_path / "ledger.key", data_dir=tmp_path)


@pytest.mark.parametrize("link_in", ["data dir", "key dir"])
def test_a_key_reached_through_a_symlink_into_or_out_of_the_data_dir_is_refused(tmp_path: Path, link_in: str) -> None:
    """A link in the data dir to a key elsewhere could be re-pointed by whoever writes the data dir; a link
    elsewhere to a key in the data dir is a key in the data dir."""
    data, keys = tmp_path / "data", tmp_path / "keys"
    data.mkdir()
    keys.mkdir()
    real = (keys if link_in == "data dir" else data) / "ledger.key"
    write_key_pair(LedgerSigner.generate(), real)
    link = (data if link_in == "data dir" else keys) / "linked.key"
    link.symlink_to(real)

    with pytest.raises(LedgerKeyError, match="inside the data directory"):
        LedgerSigner.from_file(link, data_dir=data)


def test_the_key_from_a_secret_may_be_pem_or_the_base64_seed_and_garbage_is_named(tmp_path: Path) -> None:
    signer = LedgerSigner.generate()
    seed = base64.b64encode(signer._private.private_bytes_raw()).decode()

    assert LedgerSigner.from_text(seed).fingerprint == signer.fingerprint
    assert LedgerSigner.from_text(signer.private_pem().decode()).fingerprint == signer.fingerprint
    with pytest.raises(LedgerKeyError, match="neither a PEM private key nor"):
        LedgerSigner.from_text("hunter2")
    with pytest.raises(LedgerKeyError, match="cannot read the ledger key"):
        LedgerSigner.from_file(tmp_path / "missing.key")


def test_a_witness_is_read_back_from_the_posted_text_or_a_json_file() -> None:
    checkpoint = LedgerSigner.generate().checkpoint("id" * 32, HEAD, "2026-11-23T09:00:00.000000Z")

    assert parse_witness("Forwarded message:\n" + checkpoint.witness_text() + "\nthanks") == checkpoint
    assert parse_witness(json.dumps(checkpoint.to_dict(), indent=2)) == checkpoint
    with pytest.raises(CheckpointUnreadable):
        parse_witness("accessbot-checkpoint {\"seq\": 1}")
    with pytest.raises(CheckpointUnreadable):
        parse_witness("nothing here")


# ---- the writer ---------------------------------------------------------------------------------


async def test_every_group_commit_writes_a_checkpoint_of_its_head(tmp_path: Path) -> None:
    signer = LedgerSigner.generate()
    store = await written(tmp_path, signer, 3)

    entries = await store.ledger_checkpoints()
    records = await store.ledger_records()

    assert [(c.seq, c.hash) for c in entries] == [(r.seq, r.hash) for r in records]
    assert all(isinstance(c, Checkpoint) and c.ledger_id == records[0].hash and c.signed_by(signer.public_key)
               for c in entries)
    assert await store.latest_checkpoint() == entries[-1] and entries[-1].at == records[-1].at
    await store.close()
    assert (await proof(tmp_path, signer)).ok


async def test_records_no_checkpoint_signs_are_set_aside_when_the_writer_starts(tmp_path: Path) -> None:
    signer = LedgerSigner.generate()
    await (await written(tmp_path, signer, 5)).close()
    ledger = tmp_path / "ledger.jsonl"
    last = json.loads(ledger.read_text().splitlines()[-1])
    data = {"campaign_id": "c1", "item_id": "item-forged", "action": "keep"}
    at = "2026-11-23T09:01:00.000000Z"
    tail = {"seq": 6, "at": at, "type": "decision", "data": data, "prev": last["hash"],
            "hash": record_hash(6, at, "decision", data, last["hash"])}
    with ledger.open("ab") as out:  # a crash between the records and their checkpoint leaves exactly this
        out.write(canonical_json(tail) + b"\n")
    assert not (await proof(tmp_path, signer)).ok

    store = TinyDBStore(tmp_path, signer=signer)
    (record,) = await store.append_ledger([keep(6)], MONDAY)
    await store.close()

    assert record.seq == 6 and record.data["item_id"] == "item-6"
    assert json.loads((tmp_path / "ledger-unsigned-6-6.jsonl").read_text())["data"]["item_id"] == "item-forged"
    assert (await proof(tmp_path, signer)).ok


async def test_a_first_commit_that_died_before_it_was_signed_is_set_aside(tmp_path: Path) -> None:
    signer = LedgerSigner.generate()
    await (await written(tmp_path, signer, 1)).close()
    (tmp_path / "ledger-checkpoints.jsonl").unlink()
    (tmp_path / "ledger.head").write_bytes(canonical_json({"seq": 0, "hash": "0" * 64}))

    store = TinyDBStore(tmp_path, signer=signer)

    assert store.write_problem() is None and await store.ledger_records() == []
    await store.close()


async def test_a_ledger_signed_by_another_key_refuses_to_grow(tmp_path: Path) -> None:
    await (await written(tmp_path, LedgerSigner.generate(), 2)).close()
    store = TinyDBStore(tmp_path, signer=LedgerSigner.generate())

    with pytest.raises(LedgerIntegrityError, match="not by the configured key"):
        await store.append_ledger([keep(3)], MONDAY)
    await store.close()


async def test_a_signed_ledger_refuses_to_grow_unsigned_and_an_unsigned_one_refuses_a_key(tmp_path: Path) -> None:
    await (await written(tmp_path / "signed", LedgerSigner.generate(), 2)).close()
    await (await written(tmp_path / "unsigned", None, 2)).close()

    unsigned_writer = TinyDBStore(tmp_path / "signed")
    signing_writer = TinyDBStore(tmp_path / "unsigned", signer=LedgerSigner.generate())

    assert "no signing key was given" in (unsigned_writer.write_problem() or "")
    assert "no signed checkpoint" in (signing_writer.write_problem() or "")
    await unsigned_writer.close()
    await signing_writer.close()


async def test_a_deleted_anchor_stops_the_writer_as_verify_fails(tmp_path: Path) -> None:
    signer = LedgerSigner.generate()
    await (await written(tmp_path, signer, 2)).close()
    (tmp_path / "ledger.head").unlink()

    store = TinyDBStore(tmp_path, signer=signer)

    assert "ledger.head is missing" in (store.write_problem() or "")
    await store.close()
    assert any("ledger.head is missing" in p for p in (await proof(tmp_path, signer)).problems)


# ---- rotation -----------------------------------------------------------------------------------


async def test_after_a_rotation_both_the_old_and_the_new_public_key_prove_the_ledger(tmp_path: Path) -> None:
    old, new = LedgerSigner.generate(), LedgerSigner.generate()
    store = await written(tmp_path, old, 3)
    rotation = await store.rotate_ledger_key(new, MONDAY + timedelta(days=1))
    await store.close()
    store = await written(tmp_path, new, 2, first=4)
    await store.close()

    assert isinstance(rotation, KeyRotation) and rotation.signed_by(old.public_key) and rotation.seq == 3
    assert (await proof(tmp_path, old)).ok  # follows the rotation from the old key
    assert (await proof(tmp_path, new)).ok


async def test_the_retired_key_can_no_longer_write_or_sign(tmp_path: Path) -> None:
    old, new = LedgerSigner.generate(), LedgerSigner.generate()
    store = await written(tmp_path, old, 3)
    await store.rotate_ledger_key(new, MONDAY)
    await store.close()

    stale = TinyDBStore(tmp_path, signer=old)
    assert "not by the configured key" in (stale.write_problem() or "")
    await stale.close()
    # a thief of the retired key appends a record and signs it with that key
    records = (tmp_path / "ledger.jsonl").read_text().splitlines()
    head = json.loads(records[-1])
    forged = old.checkpoint(json.loads(records[0])["hash"], LedgerHead(head["seq"], head["hash"]), "2026-12-01T00:00:00.000000Z")
    with (tmp_path / "ledger-checkpoints.jsonl").open("ab") as out:
        out.write(entry_to_line(forged))

    result = await proof(tmp_path, old)
    assert not result.ok and "not by the key you trust" in result.problems[0]


async def test_a_rotation_not_signed_by_the_trusted_key_is_refused(tmp_path: Path) -> None:
    trusted, forger = LedgerSigner.generate(), LedgerSigner.generate()
    store = await written(tmp_path, trusted, 2)
    await store.close()
    records = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    head = LedgerHead(records[-1]["seq"], records[-1]["hash"])
    honest = forger.rotation(records[0]["hash"], head, "2026-12-01T00:00:00.000000Z", forger.public_key)
    claimed = KeyRotation(**{**{k: v for k, v in honest.to_dict().items() if k != "type"}, "key": trusted.fingerprint})
    with (tmp_path / "ledger-checkpoints.jsonl").open("ab") as out:
        out.write(entry_to_line(claimed) + entry_to_line(forger.checkpoint(records[0]["hash"], head, "2026-12-01T00:00:00.000000Z")))

    result = await proof(tmp_path, trusted)

    assert not result.ok
    assert any("its signature does not verify" in p for p in result.problems)


# ---- adopting a ledger written before signing ------------------------------------------------


async def test_a_ledger_written_before_signing_is_adopted_once_and_then_grows_signed(tmp_path: Path) -> None:
    signer = LedgerSigner.generate()
    await (await written(tmp_path, None, 3)).close()
    store = TinyDBStore(tmp_path, signer=signer)
    assert "ledger adopt" in (store.write_problem() or "")

    checkpoint = await store.adopt_unsigned_ledger(MONDAY)
    (record,) = await store.append_ledger([keep(4)], MONDAY)
    with pytest.raises(ValueError, match="nothing to adopt"):
        await store.adopt_unsigned_ledger(MONDAY)
    await store.close()

    assert (checkpoint.seq, record.seq, store.write_problem()) == (3, 4, None)
    assert (await proof(tmp_path, signer)).ok


async def test_an_edited_unsigned_ledger_is_not_adopted(tmp_path: Path) -> None:
    await (await written(tmp_path, None, 3)).close()
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(ledger.read_text().replace('"item-2"', '"item-9"'))
    store = TinyDBStore(tmp_path, signer=LedgerSigner.generate())

    with pytest.raises(LedgerIntegrityError, match="record 2 was edited"):
        await store.adopt_unsigned_ledger(MONDAY)
    await store.close()
    assert not (tmp_path / "ledger-checkpoints.jsonl").exists()


async def test_a_garbage_last_checkpoint_stops_the_writer_with_its_reason(tmp_path: Path) -> None:
    signer = LedgerSigner.generate()
    await (await written(tmp_path, signer, 2)).close()
    with (tmp_path / "ledger-checkpoints.jsonl").open("ab") as out:
        out.write(b"{not json\n")

    store = TinyDBStore(tmp_path, signer=signer)

    assert store.write_problem() == "the last line of ledger-checkpoints.jsonl is not JSON " \
        "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"
    await store.close()
