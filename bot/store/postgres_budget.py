"""The channels' sending limits kept in PostgreSQL, so every instance on one database spends one budget.

Each window of each limit, for each key (a conversation, a tenant), is a GCRA cell: a row holding its
theoretical arrival time. Admitting a request locks the request's cells (``INSERT … ON CONFLICT DO UPDATE …
RETURNING``, in key order so two instances never deadlock), and either moves every cell forward at once or
moves none and names the wait. ``bot.ratelimit.pacing`` turns a window into a cell that grants at most
``limit - 1`` requests in any interval of its length, since a shared budget counts a request when it is
granted and cannot see when another instance's request completes. Times are epoch seconds from the store's
clock: the instances' clocks must agree (NTP) to well within a Teams window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Mapping, Sequence

from bot.ratelimit import TEAMS_LIMITS, Charge, Window, gcra_grant, pacing

if TYPE_CHECKING:
    from bot.store.postgres_store import PostgresStore

PRUNE_EVERY = timedelta(minutes=10)
"""How often cells at rest (their arrival time passed: a missing row means the same) are deleted."""


class PostgresBudget:
    def __init__(self, store: PostgresStore, limits: Mapping[str, Sequence[Window]] = TEAMS_LIMITS) -> None:
        self.store = store
        self.limits = dict(limits)
        self._pruned_at: datetime | None = None

    def _cells(self, charges: Sequence[Charge]) -> dict[str, tuple[float, float]]:
        cells: dict[str, tuple[float, float]] = {}
        for name, key in charges:
            windows = self.limits.get(name)
            if windows is None:
                raise KeyError(f"no sending limit named {name!r}")
            for window in windows:
                cells[f"{name}|{window.limit}/{window.seconds:g}s|{key}"] = pacing(window)
        return dict(sorted(cells.items()))

    async def admit(self, charges: Sequence[Charge]) -> float:
        cells = self._cells(charges)
        moment = self.store.clock.now()
        now = moment.timestamp()
        async with self.store._connection(write=True) as conn:
            rows = await (await conn.execute(
                "INSERT INTO send_budget (cell, tat) SELECT unnest(%s::text[]), 0 ON CONFLICT (cell) "
                "DO UPDATE SET tat = send_budget.tat RETURNING cell, tat", (list(cells),))).fetchall()
            arrival = {cell: float(tat) for cell, tat in rows}
            wait, moved = gcra_grant([(arrival[cell], *cells[cell]) for cell in cells], now)
            if not wait:
                await conn.execute(
                    "UPDATE send_budget SET tat = v.tat FROM unnest(%s::text[], %s::float8[]) AS v (cell, tat) "
                    "WHERE send_budget.cell = v.cell", (list(cells), moved))
        if self._pruned_at is None or moment - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = moment
            async with self.store._connection(write=True) as conn:  # its own transaction, waiting for no one:
                await conn.execute(  # a row another admission holds is skipped, not waited for (no deadlock)
                    "DELETE FROM send_budget WHERE cell IN "
                    "(SELECT cell FROM send_budget WHERE tat < %s FOR UPDATE SKIP LOCKED)", (now,))
        return wait

    async def finished(self, charges: Sequence[Charge]) -> None:
        """Nothing to do: a cell counts the grant, and ``pacing`` leaves room for the request's delay."""
