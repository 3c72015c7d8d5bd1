"""Where each record sits in ``ledger.jsonl``, so the TinyDB store reads a campaign's records, or the records after
a seq, without the rest, and checks a conditional append without reading the file.

An export, an evidence pack or the on-demand load of a past campaign needs a few thousand records out of a
ledger that grows by a campaign a week; reading and decoding the whole file for each would cost O(history)
on every request and hold all of it in memory. The index keeps the byte offset of every line, the
(seq, offset, length) of each campaign's lines, and the ledger's versions and event keys
(``bot/store/concurrency.py``). It is built on first use by one pass over the file and then only catches up
with the lines appended since (or is told of them by the writer), always in a worker thread: the event loop
never reads the ledger.
"""

from __future__ import annotations

import asyncio
import os
from array import array
from pathlib import Path
from typing import Sequence

from bot.ledger import LedgerRecord, record_from_line
from bot.store.base import campaign_of
from bot.store.concurrency import Versions

_Span = tuple[int, int, int]  # seq, byte offset, length without the newline


class LedgerIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._spans: dict[str, list[_Span]] = {}
        self._offsets = array("q")  # where line seq starts, at index seq - 1
        self._offset = 0  # where the next line to index starts
        self.versions = Versions()
        self.lock = asyncio.Lock()  # one catch-up at a time; readers copy spans under it

    @property
    def seq(self) -> int:
        """How many lines are indexed."""
        return len(self._offsets)

    def reset(self) -> None:
        """The file was cut back (records set aside, or a failed write): index it again from the start on next use."""
        self._spans, self._offsets, self._offset, self.versions = {}, array("q"), 0, Versions()

    async def caught_up(self, up_to: int | None) -> None:
        """Index the complete lines among the first ``up_to`` (all when None) not indexed yet. Takes the lock."""
        if up_to is not None and self.seq >= up_to:  # the writer's usual case: no thread hop per commit
            return
        async with self.lock:
            await asyncio.to_thread(self._catch_up, up_to)

    async def records_of(self, campaign_id: str, up_to: int | None) -> list[LedgerRecord]:
        """The campaign's records among the first ``up_to`` lines (every complete line when None), in order."""
        async with self.lock:
            await asyncio.to_thread(self._catch_up, up_to)
            spans = [span for span in self._spans.get(campaign_id, ()) if up_to is None or span[0] <= up_to]
        return await asyncio.to_thread(self._read, spans)

    async def records_after(self, seq: int, limit: int, up_to: int | None) -> list[LedgerRecord]:
        """At most ``limit`` records after ``seq``, among the first ``up_to`` lines, in order."""
        async with self.lock:
            await asyncio.to_thread(self._catch_up, up_to)
            last = min(self.seq, up_to if up_to is not None else self.seq, max(seq, 0) + max(limit, 0))
            spans = [(n, self._offsets[n - 1], self._length(n)) for n in range(max(seq, 0) + 1, last + 1)]
        return await asyncio.to_thread(self._read, spans)

    async def records_at(self, seqs: Sequence[int]) -> list[LedgerRecord]:
        """The indexed records with these seqs, in order."""
        async with self.lock:
            spans = [(n, self._offsets[n - 1], self._length(n)) for n in sorted(set(seqs)) if 0 < n <= self.seq]
        return await asyncio.to_thread(self._read, spans)

    def appended(self, records: Sequence[LedgerRecord], lines: Sequence[bytes], start: int) -> None:
        """The writer appended these records as these lines (with their newlines) at byte ``start``: index them
        without reading them back, if the index had reached that point (else the next catch-up reads them).
        Call it holding the lock."""
        if start != self._offset or not records or records[0].seq != self.seq + 1:
            return
        offset = start
        for record, line in zip(records, lines):
            self._index(record, offset, len(line) - 1)
            offset += len(line)
        self._offset = offset

    def _length(self, seq: int) -> int:
        end = self._offsets[seq] if seq < self.seq else self._offset
        return end - self._offsets[seq - 1] - 1

    def _index(self, record: LedgerRecord, offset: int, length: int) -> None:
        self._offsets.append(offset)
        campaign_id = campaign_of(record)
        if campaign_id is not None:
            self._spans.setdefault(campaign_id, []).append((record.seq, offset, length))
        self.versions.fold_record(record)

    def _catch_up(self, up_to: int | None) -> None:
        """Index the complete lines appended since the last catch-up (never a torn last line)."""
        if up_to is not None and self.seq >= up_to:
            return
        try:
            with self.path.open("rb") as ledger:
                ledger.seek(self._offset)
                tail = ledger.read()
        except FileNotFoundError:
            return
        start = 0
        while (end := tail.find(b"\n", start)) >= 0 and (up_to is None or self.seq < up_to):
            self._index(record_from_line(tail[start:end], self.seq + 1), self._offset + start, end - start)
            start = end + 1
        self._offset += start

    def _read(self, spans: list[_Span]) -> list[LedgerRecord]:
        if not spans:
            return []
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return [record_from_line(os.pread(fd, length, offset), seq) for seq, offset, length in spans]
        finally:
            os.close(fd)
