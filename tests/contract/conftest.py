"""Every store backend runs the same contract. Adding a backend is one entry in BACKENDS and one branch
in ``open_store``; each test gets a fresh, empty location it can reopen as often as it likes, and a clock standing at the
samples' Monday (sent keys expire relative to it)."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

from bot.clock import ManualClock
from bot.store.base import Store
from bot.store.postgres_store import PostgresStore
from bot.store.tinydb_store import TinyDBStore
from tests.contract.samples import MONDAY

BACKENDS = ["tinydb", "postgres"]

OpenStore = Callable[[], Store]


@pytest.fixture(params=BACKENDS)
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """A function opening a new store object on this test's location (call it again to 'restart')."""
    opened: list[Store] = []
    if request.param == "tinydb":
        location = str(tmp_path / "data")
    else:
        location = request.getfixturevalue("postgres_url")

    def open_store() -> Store:
        store: Store
        if request.param == "tinydb":
            store = TinyDBStore(Path(location), clock=ManualClock(MONDAY))
        else:
            store = PostgresStore(location, clock=ManualClock(MONDAY))
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture
def store(open_store: OpenStore) -> Store:
    return open_store()
