"""Group commit for an append-only log: appends that arrive while one is being written go out together.

Each append is durable when its await returns. The write and the fsync run off the event loop, and
everything queued meanwhile shares the next single write and fsync — so a burst of first contacts costs
a few fsyncs, not one each, and no fsync ever stalls the other requests on the loop.
"""

from __future__ import annotations

import asyncio

from bot.store.append_log import AppendLog


class GroupCommitLog:
    def __init__(self, log: AppendLog) -> None:
        self.log = log
        self.writes = 0  # how many write+fsync rounds ran: a burst shares them
        self._waiting: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, line: bytes) -> None:
        """Append one newline-terminated line; durable when this returns, raises what the write raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((line, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await asyncio.to_thread(self.log.append, [line for line, _ in batch])
            except BaseException as failed:  # nothing was appended: the log cuts back a failed write
                for _, done in batch:
                    if not done.done():
                        done.set_exception(failed)
                continue
            self.writes += 1
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def close(self) -> None:
        """Let the appends already queued finish, then close the file."""
        if self._flusher is not None:
            await self._flusher
        self.log.close()
