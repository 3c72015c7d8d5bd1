"""The attestation ledger: an append-only list of records, each holding the SHA-256 of the one before.

An auditor must be able to tell whether anyone edited, deleted, reordered or cut off a record after it
was written. Each record's hash covers its own content and the previous record's hash, so changing one
record breaks every link after it; the *anchor* — the last head the writer acknowledged, kept beside
the ledger — catches the one change the chain alone cannot see: records cut off the end.

Everything here is pure (no files): the store appends and reads, these functions chain and check.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence, TextIO

from bot.engine.model import LedgerEvent

GENESIS = "0" * 64
"""The ``prev`` of the first record: there is nothing before it."""

CSV_COLUMNS = (
    "seq",
    "at",
    "type",
    "campaign_id",
    "item_id",
    "subject",
    "action",
    "actor",
    "justification",
    "hash",
    "prev",
    "data",
)
_CSV_DATA_COLUMNS = ("campaign_id", "item_id", "subject", "action", "actor", "justification")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class LedgerUnreadable(ValueError):
    """A line of the ledger file is not a record at all (not JSON, or missing fields).

    Raised instead of guessing: a line nobody can parse cannot be verified, so the reader must stop
    and say where it is.
    """

    def __init__(self, reason: str, line_number: int | None = None) -> None:
        where = "a line" if line_number is None else f"line {line_number}"
        super().__init__(f"{where} of the ledger is not a ledger record: {reason}")
        self.line_number = line_number


@dataclass(frozen=True)
class LedgerHead:
    """Where the chain ends: the last record's number and hash (``seq`` 0 and GENESIS when empty)."""

    seq: int
    hash: str


EMPTY_HEAD = LedgerHead(0, GENESIS)


@dataclass(frozen=True)
class LedgerRecord:
    seq: int
    at: str
    type: str
    data: dict[str, Any]
    prev: str
    hash: str

    @property
    def head(self) -> LedgerHead:
        return LedgerHead(self.seq, self.hash)


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on a ledger.

    ``head`` is the last record that verified, so records ``1..head.seq`` can be trusted;
    ``first_bad_seq`` is the first record that cannot (``head.seq + 1`` whenever the ledger is broken).
    ``count`` is how many records were read.
    """

    ok: bool
    count: int
    head: LedgerHead
    first_bad_seq: int | None = None
    problem: str = ""


def canonical_json(obj: Any) -> bytes:
    """The one byte form that is hashed: sorted keys, no spaces, UTF-8, no NaN or Infinity."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def utc_stamp(at: datetime) -> str:
    """ISO-8601 in UTC with a 'Z', microseconds always written so every stamp has the same shape."""
    if at.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(seq: int, at: str, type_: str, data: Mapping[str, Any], prev: str) -> str:
    body = {"seq": seq, "at": at, "type": type_, "data": data, "prev": prev}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def chain(events: Sequence[LedgerEvent], head: LedgerHead, at: datetime) -> list[LedgerRecord]:
    """Turn events into records that continue the chain after ``head``, all stamped ``at``.

    ``data`` is normalised through canonical JSON, so the records returned here are equal to the
    records read back from the file later (tuples become lists, and so on).
    """
    stamp = utc_stamp(at)
    records = []
    seq, prev = head.seq, head.hash
    for event in events:
        data = _json_object(event.data)
        seq += 1
        digest = record_hash(seq, stamp, event.type, data, prev)
        records.append(LedgerRecord(seq, stamp, event.type, data, prev, digest))
        prev = digest
    return records


def _json_object(data: Mapping[str, Any]) -> dict[str, Any]:
    normalised = json.loads(canonical_json(dict(data)))
    assert isinstance(normalised, dict)
    return normalised


def record_to_line(record: LedgerRecord) -> bytes:
    """One record as one line of the ledger file (canonical JSON, newline-terminated)."""
    return canonical_json(_record_dict(record)) + b"\n"


def record_from_line(line: bytes | str, line_number: int | None = None) -> LedgerRecord:
    """Parse one line of the ledger file; refuses anything that is not exactly a record."""
    try:
        raw = json.loads(line, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise LedgerUnreadable(f"not JSON ({error})", line_number) from None
    if not isinstance(raw, dict) or set(raw) != {"seq", "at", "type", "data", "prev", "hash"}:
        raise LedgerUnreadable("expected exactly the fields seq, at, type, data, prev, hash", line_number)
    seq = raw["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise LedgerUnreadable("seq is not an integer", line_number)
    if not isinstance(raw["data"], dict):
        raise LedgerUnreadable("data is not an object", line_number)
    for name in ("at", "type", "prev", "hash"):
        if not isinstance(raw[name], str):
            raise LedgerUnreadable(f"{name} is not a string", line_number)
    if canonical_json(raw) != (line.encode() if isinstance(line, str) else line).rstrip(b"\n"):
        # The hash covers the parsed record, so without this a line could change its bytes (a duplicate
        # "data" key that another JSON parser reads instead, spacing, escapes) and still verify.
        raise LedgerUnreadable("not in the canonical form the bot writes (edited by hand or by another tool)",
                               line_number)
    return LedgerRecord(seq, raw["at"], raw["type"], raw["data"], raw["prev"], raw["hash"])


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed in the ledger")


def verify(records: Iterable[LedgerRecord], anchor: LedgerHead | None = None) -> VerifyResult:
    """Check the chain and name the first record that can no longer be trusted.

    Records must come in file order. The anchor is the last head the writer acknowledged: a ledger
    that ends before it was cut off; one that goes past it is fine (the writer crashed between
    appending and updating the anchor).
    """
    listed = list(records)
    trusted = EMPTY_HEAD
    before_trusted = EMPTY_HEAD

    def broken(first_bad: int, problem: str, head: LedgerHead) -> VerifyResult:
        return VerifyResult(False, len(listed), head, first_bad, problem)

    for index, record in enumerate(listed):
        expected = trusted.seq + 1
        if record.seq != expected:
            return broken(expected, _order_problem(listed, index, expected), trusted)
        actual = record_hash(record.seq, record.at, record.type, record.data, record.prev)
        if actual != record.hash:
            return broken(
                record.seq, f"record {record.seq} was edited: its content no longer matches its hash", trusted
            )
        if record.prev != trusted.hash:
            if record.seq == 1:
                return broken(1, "record 1 does not start a chain: its prev is not 64 zeros", trusted)
            return broken(
                trusted.seq,
                f"record {trusted.seq} was changed after record {record.seq} was written: record {record.seq} "
                f"chains to {record.prev[:12]}…, but record {trusted.seq} now hashes to {trusted.hash[:12]}…",
                before_trusted,
            )
        if anchor is not None and record.seq == anchor.seq and record.hash != anchor.hash:
            return broken(
                record.seq,
                f"record {record.seq} is not the record the writer acknowledged (hash {record.hash[:12]}…, "
                f"acknowledged {anchor.hash[:12]}…): the ledger was rewritten up to here",
                trusted,
            )
        before_trusted, trusted = trusted, record.head
    if anchor is not None and trusted.seq < anchor.seq:
        return broken(
            trusted.seq + 1,
            f"ledger ends at record {trusted.seq} but {anchor.seq} were written: records were cut off the end",
            trusted,
        )
    return VerifyResult(True, len(listed), trusted)


def _order_problem(listed: Sequence[LedgerRecord], index: int, expected: int) -> str:
    found = listed[index].seq
    if found < expected:
        return f"record {found} appears again where record {expected} was expected"
    if any(later.seq == expected for later in listed[index + 1 :]):
        return f"record {expected} is out of order: record {found} stands in its place"
    missing = f"record {expected} is" if found == expected + 1 else f"records {expected} to {found - 1} are"
    return f"{missing} missing (deleted): the ledger jumps from record {expected - 1} to record {found}"


def export_csv(records: Iterable[LedgerRecord], out: TextIO) -> None:
    """One row per record for auditors' spreadsheets; the ``data`` column holds the exact JSON.

    Cells that a spreadsheet would run as a formula (a justification starting with '=' …) are
    prefixed with an apostrophe; the ``data`` column still carries the untouched value.
    """
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        fields = [_csv_cell(record.data.get(name)) for name in _CSV_DATA_COLUMNS]
        writer.writerow(
            [
                record.seq,
                record.at,
                _csv_cell(record.type),
                *fields,
                record.hash,
                record.prev,
                canonical_json(record.data).decode(),
            ]
        )


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else canonical_json(value).decode()
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def export_json(records: Iterable[LedgerRecord], out: TextIO) -> None:
    """A JSON array of the records exactly as chained, one per line, streamed so size does not matter."""
    out.write("[")
    separator = "\n"
    for record in records:
        out.write(separator)
        out.write(json.dumps(_record_dict(record), ensure_ascii=False, sort_keys=True))
        separator = ",\n"
    out.write("\n]\n")


def _record_dict(record: LedgerRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "at": record.at,
        "type": record.type,
        "data": record.data,
        "prev": record.prev,
        "hash": record.hash,
    }

