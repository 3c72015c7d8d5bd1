"""The items file of a campaign is streamed item by item, yet is the very file TinyDB wrote before, and a
write that stops half-way never replaces a good file."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tinydb import TinyDB

from bot.engine.model import ReviewItem
from bot.store.atomic_storage import AtomicJSONStorage, replace_file_streaming
from bot.store.codec import (
    ITEMS_TABLE,
    item_to_dict,
    items_file_chunks,
    iter_items_file,
    read_items_file,
)
from bot.store.tinydb_store import TinyDBStore
from tests.contract.samples import campaign, items
from tests.contract.test_codec import review_items


def items_from_file(content: bytes) -> list[ReviewItem]:
    """The items of an items file held in memory, read as the store reads one from disk."""
    return list(iter_items_file([content.decode()]))


def written_by_tinydb(path: Path, stored: list[ReviewItem]) -> bytes:
    """What save_campaign wrote before it streamed: TinyDB inserting every item into one table."""
    db = TinyDB(path, storage=AtomicJSONStorage)
    try:
        db.table(ITEMS_TABLE).insert_multiple(item_to_dict(item) for item in stored)
    finally:
        db.close()
    return path.read_bytes()


def many_items(count: int) -> list[ReviewItem]:
    """Enough items to span several 1 MB chunks."""
    role, partner = items(campaign())
    return [replace(role if n % 2 else partner, id=f"item-{n}") for n in range(count)]


@settings(max_examples=60, deadline=None)
@given(st.lists(review_items, max_size=5))
def test_the_streamed_items_file_is_byte_for_byte_what_tinydb_wrote(tmp_path_factory: pytest.TempPathFactory,
                                                                     stored: list[ReviewItem]) -> None:
    directory = tmp_path_factory.mktemp("items")
    streamed = b"".join(items_file_chunks(stored))
    assert streamed == written_by_tinydb(directory / "tinydb.json", stored)
    assert items_from_file(streamed) == stored


def test_an_items_file_tinydb_wrote_for_an_older_campaign_still_reads(tmp_path: Path) -> None:
    stored = items(campaign())
    assert items_from_file(written_by_tinydb(tmp_path / "old.json", stored)) == stored
    assert items_from_file(b"") == []  # TinyDB reads an empty file as an empty database


def test_a_large_campaign_streams_in_chunks_and_reads_back_equal(tmp_path: Path) -> None:
    stored = many_items(12_000)
    chunks = list(items_file_chunks(stored))
    assert len(chunks) > 2
    assert b"".join(chunks) == written_by_tinydb(tmp_path / "tinydb.json", stored)

    async def save_and_read() -> list[ReviewItem]:
        store = TinyDBStore(tmp_path / "data")
        try:
            assert await store.save_campaign(campaign(items=len(stored)), stored)
            return await store.campaign_items(campaign().id)
        finally:
            await store.close()

    assert asyncio.run(save_and_read()) == stored


def test_a_write_that_stops_half_way_never_replaces_the_good_file(tmp_path: Path) -> None:
    target = tmp_path / "items.json"
    good = many_items(4_000)
    replace_file_streaming(target, items_file_chunks(good))
    before = target.read_bytes()

    def torn() -> Iterator[bytes]:
        chunks = items_file_chunks(many_items(8_000))
        yield next(chunks)
        raise OSError("disk gone mid-write")

    with pytest.raises(OSError, match="mid-write"):
        replace_file_streaming(target, torn())
    assert target.read_bytes() == before
    assert (tmp_path / ".items.json.tmp").stat().st_size > 0  # the torn temp file is left where no reader looks


def test_an_item_that_cannot_be_encoded_leaves_no_campaign_and_a_later_save_succeeds(tmp_path: Path) -> None:
    role, partner = items(campaign())
    broken = replace(role, subject=replace(role.subject, evidence={"score": math.nan}))

    async def scenario() -> list[ReviewItem]:
        store = TinyDBStore(tmp_path)
        try:
            with pytest.raises(ValueError):
                await store.save_campaign(campaign(), [partner] * 3000 + [broken])
            assert await store.list_campaigns() == []
            assert await store.save_campaign(campaign(), [role, partner])
            return await store.campaign_items(campaign().id)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [role, partner]


@settings(max_examples=40, deadline=None)
@given(st.lists(review_items, max_size=4), st.integers(min_value=1, max_value=64))
def test_an_items_file_reads_the_same_whatever_the_size_of_the_reads(stored: list[ReviewItem], size: int) -> None:
    """Restart reads the file in pieces; a piece boundary may fall anywhere, even inside a string."""
    text = b"".join(items_file_chunks(stored)).decode()
    pieces = [text[n:n + size] for n in range(0, len(text), size)]
    assert list(iter_items_file(pieces)) == stored


def test_a_damaged_items_file_says_so_instead_of_reading_fewer_items(tmp_path: Path) -> None:
    whole = b"".join(items_file_chunks(many_items(3)))
    cut = tmp_path / "cut.json"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError):
        read_items_file(cut)
    with pytest.raises(ValueError):
        items_from_file(b'{"other": {}}')
