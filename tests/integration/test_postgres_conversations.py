"""Teams sends the same conversation reference with every activity; on PostgreSQL an instance remembers what it
wrote, so an unchanged reference costs no round trip, while a changed one, or one another instance replaced,
is still written."""

from __future__ import annotations

import psycopg
import pytest

from bot.store import postgres_store
from bot.store.postgres_store import PostgresStore

MEGAN = "admin-megan"
FIRST = {"conversation": {"id": "a:1"}, "serviceUrl": "https://smba.trafficmanager.net/emea/"}
SECOND = {"conversation": {"id": "a:1"}, "serviceUrl": "https://smba.trafficmanager.net/amer/"}


def stored_reference(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT reference FROM conversations WHERE key = %s", (MEGAN,)).fetchone()
    assert row is not None
    return str(row[0])


async def test_an_unchanged_reference_is_not_sent_to_the_database_again(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.start()
    try:
        assert await store.save_conversation(MEGAN, FIRST) is True
        with psycopg.connect(postgres_url) as conn:  # if the store asked the database, this row would be put back
            conn.execute("UPDATE conversations SET reference = 'tampered' WHERE key = %s", (MEGAN,))
        assert await store.save_conversation(MEGAN, FIRST) is False
        assert stored_reference(postgres_url) == "tampered"
        assert await store.save_conversation(MEGAN, SECOND) is True  # a change is always written
        assert await store.get_conversation(MEGAN) == SECOND
    finally:
        await store.close()


async def test_after_the_recheck_window_the_database_is_asked_again(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_store, "CONVERSATION_RECHECK", 0.0)
    one, two = PostgresStore(postgres_url), PostgresStore(postgres_url)
    await one.start()
    await two.start()
    try:
        assert await one.save_conversation(MEGAN, FIRST) is True
        assert await two.save_conversation(MEGAN, SECOND) is True  # the person came through the other instance
        assert await one.save_conversation(MEGAN, FIRST) is True  # and back: written again, nothing stale kept
        assert await two.get_conversation(MEGAN) == FIRST
    finally:
        await one.close()
        await two.close()
