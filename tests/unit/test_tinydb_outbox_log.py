"""The embedded outbox and cards as append-only logs: a change appends a line (group-committed), never rewrites
the queue; the TinyDB tables they replaced are folded in at start; a mostly stale log is compacted at start."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tinydb import TinyDB

from bot.clock import ManualClock
from bot.store.atomic_storage import AtomicJSONStorage
from bot.store.base import OUTBOX_LEASE, PostedCard
from bot.store.codec import outbox_to_dict
from bot.store.tinydb_store import OUTBOX_COMPACT_AFTER, TinyDBStore
from tests.contract.samples import MONDAY, message

LATER = MONDAY + timedelta(days=1)


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


async def test_queueing_retrying_and_releasing_append_one_line_each_and_never_rewrite_the_queue(tmp_path: Path) -> None:
    store = TinyDBStore(tmp_path, clock=ManualClock(MONDAY))
    await store.enqueue([message(f"m{n:04}", created_at=MONDAY + timedelta(seconds=n)) for n in range(1000)])
    log = tmp_path / "outbox.jsonl"
    inode, size = log.stat().st_ino, log.stat().st_size

    await store.enqueue([message("one-more", created_at=LATER)])
    (first,) = await store.claim_due("notifier", LATER, 1, OUTBOX_LEASE)
    await store.mark_retry(first.key, "503", LATER + timedelta(hours=1), worker="notifier")
    await store.release_recipient(first.recipient, LATER)
    await store.save_card("i1", PostedCard("teams", "activity-1", {"conversation": {"id": "a:1"}}))

    assert log.stat().st_ino == inode  # appended to, not replaced
    added = lines(log)[1000:]
    assert len(lines(log)) == 1003 and log.stat().st_size == size + sum(len(line) + 1 for line in added)
    assert b'"one-more"' in added[0] and b'"503"' in added[1]
    assert len(lines(tmp_path / "cards.jsonl")) == 1
    await store.close()


async def test_the_tables_the_logs_replaced_are_folded_in_at_start_and_removed(tmp_path: Path) -> None:
    outbox = TinyDB(tmp_path / "outbox.json", storage=AtomicJSONStorage)
    outbox.table("pending").insert_multiple(outbox_to_dict(message(key)) for key in ("sent-before", "waiting"))
    outbox.close()
    (tmp_path / "outbox-sent.jsonl").write_text(f'["sent-before","{MONDAY.isoformat()}"]\n')
    cards = TinyDB(tmp_path / "cards.json", storage=AtomicJSONStorage)
    cards.table("cards").insert({"item_id": "i1", "reference": {"conversation": {"id": "a:1"}}, "activity_id": "act-1"})
    cards.close()

    store = TinyDBStore(tmp_path, clock=ManualClock(MONDAY))
    assert [m.key for m in await store.due_messages(LATER, 10)] == ["waiting"]
    assert await store.cards("i1") == [PostedCard("teams", "act-1", {"conversation": {"id": "a:1"}})]
    await store.close()

    assert not (tmp_path / "outbox.json").exists() and not (tmp_path / "cards.json").exists()
    reopened = TinyDBStore(tmp_path, clock=ManualClock(MONDAY))
    assert [m.key for m in await reopened.due_messages(LATER, 10)] == ["waiting"]
    assert await reopened.enqueue([message("sent-before")]) == 0
    assert [card.message_id for card in await reopened.cards("i1")] == ["act-1"]
    await reopened.close()


async def test_a_log_of_mostly_sent_messages_is_compacted_at_start_to_the_pending_ones(tmp_path: Path) -> None:
    store = TinyDBStore(tmp_path, clock=ManualClock(MONDAY))
    keys = [f"m{n:04}" for n in range(OUTBOX_COMPACT_AFTER + 50)]
    await store.enqueue([message(key, created_at=MONDAY + timedelta(seconds=n)) for n, key in enumerate(keys)])
    for claimed in await store.claim_due("notifier", LATER, len(keys), OUTBOX_LEASE):
        if claimed.key not in keys[-3:]:
            await store.mark_sent(claimed.key, LATER, worker="notifier")
    await store.close()

    reopened = TinyDBStore(tmp_path, clock=ManualClock(MONDAY))
    assert len(lines(tmp_path / "outbox.jsonl")) == 3
    assert [m.key for m in await reopened.due_messages(LATER, 1000)] == keys[-3:]
    assert await reopened.enqueue([message(key) for key in keys]) == 0
    await reopened.close()


async def test_a_log_with_few_stale_lines_is_left_as_it_is_and_a_reader_never_compacts(tmp_path: Path) -> None:
    store = TinyDBStore(tmp_path, clock=ManualClock(MONDAY))
    await store.enqueue([message(f"m{n}") for n in range(10)])
    for claimed in await store.claim_due("notifier", LATER, 5, OUTBOX_LEASE):
        await store.mark_sent(claimed.key, LATER, worker="notifier")
    await store.close()
    before = (tmp_path / "outbox.jsonl").read_bytes()

    for read_only in (False, True):
        again = TinyDBStore(tmp_path, clock=ManualClock(MONDAY), read_only=read_only)
        assert len(await again.due_messages(LATER, 100)) == 5
        await again.close()
    assert (tmp_path / "outbox.jsonl").read_bytes() == before
