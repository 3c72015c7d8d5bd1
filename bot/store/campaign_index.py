"""Where each campaign's records sit in ``ledger.jsonl``, so one campaign's records are read without the rest.

An export, an evidence pack or the on-demand load of a past campaign needs a few thousand records out of a
ledger that grows by a campaign a week; reading and decoding the whole file for each would cost O(history)
on every request and hold all of it in memory. The index keeps, per campaign id, the (seq, offset, length)
of its lines. It is built on first use by one pass over the file and then only catches up with the lines
appended since, always in a worker thread: the event loop never reads the ledger.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from bot.ledger import LedgerRecord, record_from_line
from bot.store.base import campaign_of

_Span = tuple[int, int, int]  # seq, byte offset, length without the newline


class CampaignIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._spans: dict[str, list[_Span]] = {}
        self._seq = 0  # lines indexed so far
        self._offset = 0  # where the next line to index starts
        self._lock = asyncio.Lock()  # one catch-up at a time; readers copy spans under it

    def reset(self) -> None:
        """The file was cut back (records set aside): index it again from the start on next use."""
        self._spans, self._seq, self._offset = {}, 0, 0

    async def records_of(self, campaign_id: str, up_to: int | None) -> list[LedgerRecord]:
        """The campaign's records among the first ``up_to`` lines (every complete line when None), in order."""
        async with self._lock:
            await asyncio.to_thread(self._catch_up, up_to)
            spans = [span for span in self._spans.get(campaign_id, ()) if up_to is None or span[0] <= up_to]
        return await asyncio.to_thread(self._read, spans)

    def _catch_up(self, up_to: int | None) -> None:
        """Index the complete lines appended since the last catch-up (never a torn last line)."""
        if up_to is not None and self._seq >= up_to:
            return
        try:
            with self.path.open("rb") as ledger:
                ledger.seek(self._offset)
                tail = ledger.read()
        except FileNotFoundError:
            return
        start = 0
        while (end := tail.find(b"\n", start)) >= 0 and (up_to is None or self._seq < up_to):
            seq = self._seq + 1
            campaign_id = campaign_of(record_from_line(tail[start:end], seq))
            if campaign_id is not None:
                self._spans.setdefault(campaign_id, []).append((seq, self._offset + start, end - start))
            self._seq, start = seq, end + 1
        self._offset += start

    def _read(self, spans: list[_Span]) -> list[LedgerRecord]:
        if not spans:
            return []
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return [record_from_line(os.pread(fd, length, offset), seq) for seq, offset, length in spans]
        finally:
            os.close(fd)
