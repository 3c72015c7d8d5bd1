"""Between weekly campaigns, read the directory audit log every few minutes and ask about each access change.

One read covers the log from the cursor (``ReviewService.change_cursor``: the newest change recorded in the
ledger, or the opening of the newest weekly campaign) less ``OVERLAP``: the log takes minutes to show an
event, so a read starts a little before the last one ended, and the event-id key (one campaign per audit
event) refuses what was already asked. Each recognised change (``checks/access_changes.py``) opens its
single-item review at once. A read that fails leaves the cursor where it was, so the next one covers the gap;
what went wrong is kept in ``ReviewService.audit_source`` for 'status' (hidden by licence or permission, or
failing), never only in a log file.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable

from bot.service import ReviewService
from checks.access_changes import changes_in
from checks.graph.batching import GraphError
from checks.graph.directory_audits import AuditLogHidden

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=15)  # how far before the cursor each read starts (the log's own delay)

AuditReader = Callable[[datetime], Awaitable[list[dict[str, Any]]]]


class ChangeWatch:
    """Reads the log on the scheduler's rounds, at most once every ``every``."""

    def __init__(self, service: ReviewService, read: AuditReader, every: timedelta) -> None:
        self.service = service
        self.read = read
        self.every = every
        self._next_read: datetime | None = None
        self._read_from: datetime | None = None  # when the last whole read was made: the next need not go further back

    async def poll(self) -> int:
        """One read if it is due; returns how many change reviews it opened."""
        now = self.service.clock.now()
        if self._next_read is not None and now < self._next_read:
            return 0
        self._next_read = now + self.every
        cursor = self.service.change_cursor()
        since = max(cursor, self._read_from or cursor) - OVERLAP
        try:
            entries = await self.read(since)
        except AuditLogHidden as hidden:
            self.service.audit_source = f"Access changes are not watched: {hidden}."
            return 0
        except GraphError as failed:
            self.service.audit_source = (f"Access changes are not watched right now: reading the directory audit log "
                                         f"failed at {now:%a %d %b %H:%M} UTC ({failed.describe()}); retrying every "
                                         f"{_minutes(self.every)}.")
            log.warning("reading the directory audit log failed: %s", failed)
            return 0
        opened = 0
        for change in changes_in(entries, self.service.admin_ids()):
            opened += await self.service.open_change_review(change)  # a store that cannot write stops the read here
        self._read_from = now  # in memory only: after a restart the durable cursor (the ledger) is the start
        self.service.audit_source = (f"Access changes watched: directory audit log read at {now:%a %d %b %H:%M} UTC "
                                     f"(every {_minutes(self.every)}).")
        return opened


def _minutes(every: timedelta) -> str:
    minutes = max(1, round(every.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
