"""Which instance runs the scheduled rounds (opening the campaign, reminders and escalations, the witness, the
remediation worker, the outbox drain): exactly one at a time, and another soon after it dies.

TinyDB has one writer per data directory (``StoreLocked``), so that instance always leads (``SoleLeader``).
On PostgreSQL, the leader is whoever holds a session advisory lock on a connection of its own
(``PostgresLeadership``). The lock belongs to the session: when the leader's process dies its socket closes
and PostgreSQL ends the session and frees the lock at once; when its machine or network is lost, the server
notices through TCP keepalives. A standby tries to take the lock every ``retry_seconds``. So another instance
leads within ``retry_seconds`` of the leader's process dying, and within ``failover_bound(retry_seconds)``
(6 × ``retry_seconds``: keepalive idle 2×, then 3 probes 1× apart, then the next try) of its machine
vanishing. A leader whose lock's connection fails, or stays silent that long, steps down.

Leadership only decides who *tries*: every scheduled step is also refused by the store when already recorded
(its event key) or decided on a stale view (``bot/store/concurrency.py``), so an overlap during a network
partition records nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

import psycopg

log = logging.getLogger(__name__)

_TRY_LOCK = ("SELECT pg_try_advisory_lock(hashtextextended('accessbot-leader:' || current_database() || ':' "
             "|| current_schema(), 0))")
"""The key names the database and the schema, so deployments (and parallel test schemas) sharing a server never
take each other's lock; the ledger's own lock (``pg_advisory_xact_lock``) hashes a different text."""


def failover_bound(retry_seconds: float) -> float:
    """The longest a lost leader's machine keeps the lock before a standby takes it (seconds)."""
    return 6 * retry_seconds


class Leadership(Protocol):
    @property
    def leading(self) -> bool: ...

    async def acquire(self) -> None:
        """Return once this instance leads."""
        ...

    async def lost(self) -> None:
        """Return when this instance no longer leads (it must stop its rounds)."""
        ...

    async def close(self) -> None: ...


class SoleLeader:
    """The only instance there can be (TinyDB: one writer per data directory)."""

    leading = True

    async def acquire(self) -> None:
        return None

    async def lost(self) -> None:
        await asyncio.Event().wait()  # never

    async def close(self) -> None:
        return None


class PostgresLeadership:
    def __init__(self, url: str, retry_seconds: float = 5.0) -> None:
        self.url = url
        self.retry_seconds = retry_seconds
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.leading = False

    async def acquire(self) -> None:
        while not await self.try_acquire():
            await asyncio.sleep(self.retry_seconds)

    async def try_acquire(self) -> bool:
        """Take the lock if nobody holds it (True also when this instance already does)."""
        if self.leading:
            return True
        try:
            conn = await self._connection()
            row = await (await conn.execute(_TRY_LOCK)).fetchone()
        except (psycopg.Error, OSError, TimeoutError) as failed:
            log.warning("cannot try for the scheduler's leadership: %s", " ".join(str(failed).split()))
            await self._drop()
            return False
        self.leading = bool(row is not None and row[0])
        return self.leading

    async def lost(self) -> None:
        """Check the lock's connection every ``retry_seconds``; a check that fails, or does not answer within the
        time the server itself would take to give up on this session (``failover_bound``), means the session
        and its lock may be gone: step down. A merely slow answer (a busy machine) is no reason to: stepping down
        cancels the rounds mid-send, and a message Teams accepted but this instance had not yet marked sent
        would be sent again by the next leader."""
        while True:
            await asyncio.sleep(self.retry_seconds)
            try:
                assert self._conn is not None
                await asyncio.wait_for(self._conn.execute("SELECT 1"), failover_bound(self.retry_seconds))
            except (psycopg.Error, OSError, TimeoutError, AssertionError) as failed:
                log.error("lost the connection holding the scheduler's leadership (%s): stepping down",
                          " ".join(str(failed).split()) or type(failed).__name__)
                self.leading = False
                await self._drop()
                return

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            idle, interval = max(1, round(2 * self.retry_seconds)), max(1, round(self.retry_seconds))
            conn = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=max(2, round(self.retry_seconds)),
                keepalives=1, keepalives_idle=idle, keepalives_interval=interval, keepalives_count=3)
            # The server's side of the same keepalives: it frees the lock of a leader whose machine vanished.
            for setting, value in (("tcp_keepalives_idle", idle), ("tcp_keepalives_interval", interval),
                                   ("tcp_keepalives_count", 3)):
                await conn.execute(f"SET {setting} = {int(value)}")
            self._conn = conn
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self.retry_seconds)

    async def close(self) -> None:
        """Closing the session frees the lock at once: a clean stop hands leadership over without waiting."""
        self.leading = False
        await self._drop()
