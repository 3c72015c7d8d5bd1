"""The attestation ledger: tampering with the file on disk is caught and the first bad record is named."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.engine.model import LedgerEvent
from bot.ledger import (
    CSV_COLUMNS,
    EMPTY_HEAD,
    GENESIS,
    LedgerHead,
    LedgerRecord,
    LedgerUnreadable,
    canonical_json,
    chain,
    export_csv,
    export_json,
    record_hash,
    verify,
)
from bot.store.base import LedgerIntegrityError
from bot.store.tinydb_store import TinyDBStore

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def decision(n: int) -> LedgerEvent:
    return LedgerEvent(
        "decision",
        {
            "campaign_id": "tenant-contoso:2026-11-23T09:00",
            "item_id": f"item-{n}",
            "subject": f"role:ga:admin-{n}:active",
            "action": "keep",
            "actor": "Alex Wilber",
            "actor_id": "owner-alex",
            "justification": "",
        },
    )


async def written_ledger(data_dir: Path, count: int) -> list[LedgerRecord]:
    """A real ledger on disk, one append (one fsync) per record as decisions arrive."""
    store = TinyDBStore(data_dir)
    for n in range(1, count + 1):
        await store.append_ledger([decision(n)], MONDAY + timedelta(seconds=n))
    records = await store.ledger_records()
    await store.close()
    return records


def ledger_lines(data_dir: Path) -> list[str]:
    return (data_dir / "ledger.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)


def rewrite(data_dir: Path, lines: list[str]) -> None:
    (data_dir / "ledger.jsonl").write_text("".join(lines), encoding="utf-8")


async def verify_on_disk(data_dir: Path):  # type: ignore[no-untyped-def]
    store = TinyDBStore(data_dir)
    try:
        return verify(await store.ledger_records(), await store.ledger_anchor())
    finally:
        await store.close()


def resealed(line: str, **changes: object) -> str:
    """A record edited by someone who also recomputed its own hash (but not the records after it)."""
    raw = json.loads(line)
    raw.update(changes)
    raw["hash"] = record_hash(raw["seq"], raw["at"], raw["type"], raw["data"], raw["prev"])
    return canonical_json(raw).decode() + "\n"


# ---- tampering ----------------------------------------------------------------------------------


async def test_edited_record_is_named_by_verify(tmp_path: Path) -> None:
    await written_ledger(tmp_path, 10)
    lines = ledger_lines(tmp_path)
    lines[4] = lines[4].replace('"action":"keep"', '"action":"revoke"')
    rewrite(tmp_path, lines)

    result = await verify_on_disk(tmp_path)

    assert not result.ok
    assert result.first_bad_seq == 5
    assert "record 5 was edited" in result.problem
    assert result.head.seq == 4


async def test_deleted_middle_record_is_named_by_verify(tmp_path: Path) -> None:
    await written_ledger(tmp_path, 10)
    lines = ledger_lines(tmp_path)
    del lines[6]
    rewrite(tmp_path, lines)

    result = await verify_on_disk(tmp_path)

    assert (result.ok, result.first_bad_seq) == (False, 7)
    assert "record 7 is missing" in result.problem


async def test_swapped_records_are_named_by_verify(tmp_path: Path) -> None:
    await written_ledger(tmp_path, 10)
    lines = ledger_lines(tmp_path)
    lines[3], lines[4] = lines[4], lines[3]
    rewrite(tmp_path, lines)

    result = await verify_on_disk(tmp_path)

    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "record 4 is out of order" in result.problem


async def test_truncated_tail_is_caught_by_the_anchor(tmp_path: Path) -> None:
    await written_ledger(tmp_path, 57)
    rewrite(tmp_path, ledger_lines(tmp_path)[:41])

    result = await verify_on_disk(tmp_path)

    assert (result.ok, result.first_bad_seq) == (False, 42)
    assert "ledger ends at record 41 but 57 were written" in result.problem


async def test_flipped_hash_digit_is_named_by_verify(tmp_path: Path) -> None:
    await written_ledger(tmp_path, 10)
    lines = ledger_lines(tmp_path)
    raw = json.loads(lines[2])
    flipped = raw["hash"][:10] + ("0" if raw["hash"][10] != "0" else "1") + raw["hash"][11:]
    lines[2] = lines[2].replace(raw["hash"], flipped)
    rewrite(tmp_path, lines)

    result = await verify_on_disk(tmp_path)

    assert (result.ok, result.first_bad_seq) == (False, 3)


async def test_resealed_edit_is_named_by_the_record_after_it(tmp_path: Path) -> None:
    await written_ledger(tmp_path, 10)
    lines = ledger_lines(tmp_path)
    raw = json.loads(lines[5])
    lines[5] = resealed(lines[5], data={**raw["data"], "actor": "Mallory"})
    rewrite(tmp_path, lines)

    result = await verify_on_disk(tmp_path)

    assert (result.ok, result.first_bad_seq, result.head.seq) == (False, 6, 5)
    assert "record 6 was changed after record 7 was written" in result.problem


async def test_a_chain_rewritten_to_the_end_is_caught_by_the_anchor(tmp_path: Path) -> None:
    await written_ledger(tmp_path, 10)
    lines = ledger_lines(tmp_path)
    prev = json.loads(lines[7])["prev"]
    for index in range(7, 10):
        raw = json.loads(lines[index])
        lines[index] = resealed(lines[index], prev=prev, data={**raw["data"], "action": "revoke"})
        prev = json.loads(lines[index])["hash"]
    rewrite(tmp_path, lines)

    result = await verify_on_disk(tmp_path)

    assert (result.ok, result.first_bad_seq) == (False, 10)
    assert "not the record the writer acknowledged" in result.problem


async def test_untouched_ledger_of_a_thousand_records_verifies(tmp_path: Path) -> None:
    written = await written_ledger(tmp_path, 1000)

    result = await verify_on_disk(tmp_path)

    assert result.ok, result.problem
    assert (result.count, result.head) == (1000, written[-1].head)


async def test_ledger_longer_than_its_anchor_is_fine(tmp_path: Path) -> None:
    written = await written_ledger(tmp_path, 5)
    (tmp_path / "ledger.head").write_bytes(canonical_json({"seq": 3, "hash": written[2].hash}))

    result = await verify_on_disk(tmp_path)

    assert result.ok and result.count == 5


async def test_a_cut_off_ledger_refuses_further_appends(tmp_path: Path) -> None:
    await written_ledger(tmp_path, 5)
    rewrite(tmp_path, ledger_lines(tmp_path)[:3])
    store = TinyDBStore(tmp_path)

    with pytest.raises(LedgerIntegrityError, match="ends at record 3 but 5 were written"):
        await store.append_ledger([decision(6)], MONDAY)
    await store.close()

    assert len(ledger_lines(tmp_path)) == 3


# ---- crashes ------------------------------------------------------------------------------------


async def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path: Path) -> None:
    written = await written_ledger(tmp_path, 3)
    with (tmp_path / "ledger.jsonl").open("a", encoding="utf-8") as ledger:
        ledger.write('{"at":"2026-11-23T09:00:04.000000Z","data":{"camp')

    store = TinyDBStore(tmp_path)
    assert await store.ledger_records() == written
    (appended,) = await store.append_ledger([decision(4)], MONDAY)
    await store.close()

    assert (appended.seq, appended.prev) == (4, written[-1].hash)
    assert all(line.endswith("\n") for line in ledger_lines(tmp_path))
    assert (await verify_on_disk(tmp_path)).ok


async def test_opening_the_ledger_to_read_never_changes_it(tmp_path: Path) -> None:
    await written_ledger(tmp_path, 3)
    with (tmp_path / "ledger.jsonl").open("a", encoding="utf-8") as ledger:
        ledger.write('{"at":"2026')
    before = (tmp_path / "ledger.jsonl").read_bytes()

    assert (await verify_on_disk(tmp_path)).ok
    assert (tmp_path / "ledger.jsonl").read_bytes() == before


async def test_an_unreadable_line_in_the_middle_is_reported_with_its_line_number(tmp_path: Path) -> None:
    await written_ledger(tmp_path, 5)
    lines = ledger_lines(tmp_path)
    lines[2] = "garbage\n"
    rewrite(tmp_path, lines)
    store = TinyDBStore(tmp_path)

    with pytest.raises(LedgerUnreadable, match="line 3 ") as raised:
        await store.ledger_records()
    await store.close()
    assert raised.value.line_number == 3


# ---- pure chain and verify ----------------------------------------------------------------------


def test_chain_continues_from_the_head_and_normalises_data() -> None:
    (first,) = chain([LedgerEvent("decision", {"ids": ("a", "b")})], EMPTY_HEAD, MONDAY)
    second, third = chain([LedgerEvent("reminded", {}), LedgerEvent("reminded", {})], first.head, MONDAY)

    assert (first.seq, first.prev, first.data) == (1, GENESIS, {"ids": ["a", "b"]})
    assert (second.seq, second.prev, third.seq, third.prev) == (2, first.hash, 3, second.hash)
    assert first.at == "2026-11-23T09:00:00.000000Z"
    assert verify([first, second, third]).ok


def test_ledger_times_are_stored_in_utc() -> None:
    berlin_ten = datetime(2026, 11, 23, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    (record,) = chain([LedgerEvent("x", {})], EMPTY_HEAD, berlin_ten)
    assert record.at == "2026-11-23T09:00:00.000000Z"
    with pytest.raises(ValueError):
        chain([LedgerEvent("x", {})], EMPTY_HEAD, datetime(2026, 11, 23, 9, 0))


def test_canonical_json_refuses_nan_and_sorts_keys() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": math.nan})
    with pytest.raises(ValueError):
        chain([LedgerEvent("x", {"x": math.inf})], EMPTY_HEAD, MONDAY)


def test_an_empty_ledger_with_an_anchor_was_cut_off_entirely() -> None:
    result = verify([], LedgerHead(2, "a" * 64))
    assert (result.ok, result.first_bad_seq, result.head) == (False, 1, EMPTY_HEAD)


def test_a_duplicated_record_is_named() -> None:
    records = chain([decision(n) for n in range(1, 4)], EMPTY_HEAD, MONDAY)
    result = verify([records[0], records[1], records[1], records[2]])
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "record 2 appears again" in result.problem


# ---- exports ------------------------------------------------------------------------------------


def test_csv_export_has_one_row_per_record_with_the_audit_columns() -> None:
    records = chain(
        [
            decision(1),
            LedgerEvent("decision", {**decision(2).data, "action": "revoke", "justification": "=HYPERLINK(1)"}),
            LedgerEvent("reminded", {"campaign_id": "c1", "round": 1}),
        ],
        EMPTY_HEAD,
        MONDAY,
    )
    out = io.StringIO()

    export_csv(records, out)

    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [row["seq"] for row in rows] == ["1", "2", "3"]
    assert rows[0]["item_id"] == "item-1" and rows[0]["actor"] == "Alex Wilber" and rows[0]["action"] == "keep"
    assert rows[1]["justification"] == "'=HYPERLINK(1)"
    assert json.loads(rows[1]["data"])["justification"] == "=HYPERLINK(1)"
    assert (rows[2]["item_id"], rows[2]["actor"], rows[2]["campaign_id"]) == ("", "", "c1")
    assert [(row["hash"], row["prev"]) for row in rows] == [(r.hash, r.prev) for r in records]


def test_json_export_can_be_verified_by_an_auditor() -> None:
    records = chain([decision(n) for n in range(1, 4)], EMPTY_HEAD, MONDAY)
    out = io.StringIO()

    export_json(records, out)

    exported = json.loads(out.getvalue())
    assert [entry["seq"] for entry in exported] == [1, 2, 3]
    assert exported[0]["data"] == records[0].data
    rebuilt = [LedgerRecord(**entry) for entry in exported]
    assert rebuilt == records and verify(rebuilt).ok


def test_json_export_of_nothing_is_an_empty_array() -> None:
    out = io.StringIO()
    export_json([], out)
    assert json.loads(out.getvalue()) == []
