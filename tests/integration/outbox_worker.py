"""One notifier process on a shared PostgreSQL outbox, as an instance of the server runs it: the real runtime
(store, Teams channel, notifier) with its own worker name and a short lease. Used by
tests/integration/test_outbox_workers.py, which starts several and kills one with SIGKILL.

    python -m tests.integration.outbox_worker DATABASE_URL WORKER LEASE_SECONDS [SCALE]

With SCALE (``bench/fanout.py``), Teams' own windows each SCALE times as long; without it, the test's wide
tenant window. Prints ``ready`` once it can drain, then drains until nothing is left in the outbox (messages another worker
held come back when that worker's lease runs out), and exits.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import SystemClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.notifier import Notifier
from bot.ratelimit import TEAMS_CONVERSATION, TEAMS_PER_CONVERSATION, TEAMS_PER_TENANT, TEAMS_TENANT, Window
from bot.store.postgres_store import PostgresStore

LIMITS = {TEAMS_CONVERSATION: TEAMS_PER_CONVERSATION, TEAMS_TENANT: (Window(3000, 1.0),)}
"""Teams' per-conversation windows; a tenant window wide enough for a test of a few thousand messages."""
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=timezone.utc)


async def main(url: str, worker: str, lease_seconds: float, scale: float | None) -> None:
    limits = LIMITS if scale is None else {
        TEAMS_CONVERSATION: tuple(Window(w.limit, w.seconds * scale) for w in TEAMS_PER_CONVERSATION),
        TEAMS_TENANT: tuple(Window(w.limit, w.seconds * scale) for w in TEAMS_PER_TENANT),
    }
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    with tempfile.TemporaryDirectory() as data_dir:
        runtime = await build_runtime(data_dir=Path(data_dir), policy=policy, snapshot=snapshot, clock=SystemClock(),
                                      credentials=BotCredentials(), database_url=url)
        assert isinstance(runtime.store, PostgresStore)
        notifier = Notifier(runtime.writes, runtime.teams, runtime.service.clock,
                            limiter=runtime.store.send_budget(limits), worker=worker,
                            lease=timedelta(seconds=lease_seconds), concurrency=8 if scale is None else 16,
                            batch=100 if scale is None else 500)
        print("ready", flush=True)
        while await runtime.store.due_messages(FAR_FUTURE, 1):
            drained = await notifier.drain()
            print("drained", drained.sent, flush=True)
            await asyncio.sleep(0.1)
        await runtime.store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else None))
