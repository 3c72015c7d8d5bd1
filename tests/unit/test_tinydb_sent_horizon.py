"""Keys of sent messages refuse their twin for a horizon (35 days by default), not forever: the start-up read
and the file stay as large as a few weeks of messages, and an expired key is dropped from the file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.app import Runtime, build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.store.base import OUTBOX_LEASE, SENT_HORIZON
from bot.ledger import canonical_json
from bot.store.tinydb_store import TinyDBStore, read_sent_keys
from tests.contract.samples import MONDAY, message


async def runtime_at(data_dir: Path, clock: ManualClock) -> Runtime:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    return await build_runtime(data_dir=data_dir, policy=policy, snapshot=snapshot, clock=clock,
                               credentials=BotCredentials())


async def send(store: TinyDBStore, key: str, at_offset: timedelta) -> None:
    assert await store.enqueue([message(key)]) == 1
    assert [m.key for m in await store.claim_due("notifier", MONDAY, 1, OUTBOX_LEASE)] == [key]
    await store.mark_sent(key, MONDAY + at_offset, worker="notifier")


async def test_a_key_older_than_the_horizon_is_dropped_and_a_younger_one_still_refuses_its_twin(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    store = TinyDBStore(tmp_path, clock=clock)
    await send(store, "request:contoso:2026-W48:alex", timedelta(0))
    await send(store, "request:contoso:2026-W49:alex", timedelta(days=7))
    await store.close()

    clock.advance(SENT_HORIZON + timedelta(days=1))  # the first key is 36 days old, the second 29
    restarted = TinyDBStore(tmp_path, clock=clock)
    assert await restarted.enqueue([message("request:contoso:2026-W49:alex")]) == 0
    lines = (tmp_path / "outbox-sent.jsonl").read_text().splitlines()
    assert len(lines) == 1 and "2026-W49" in lines[0]
    assert await restarted.enqueue([message("request:contoso:2026-W48:alex")]) == 1
    await restarted.close()


async def test_a_key_on_the_last_day_of_its_horizon_still_refuses_its_twin(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    store = TinyDBStore(tmp_path, clock=clock)
    await send(store, "a", timedelta(0))
    await store.close()
    clock.advance(SENT_HORIZON - timedelta(seconds=1))
    restarted = TinyDBStore(tmp_path, clock=clock)
    assert await restarted.enqueue([message("a")]) == 0
    await restarted.close()


async def test_the_horizon_is_configurable(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    store = TinyDBStore(tmp_path, clock=clock, sent_horizon=timedelta(days=400))
    await send(store, "a", timedelta(0))
    await store.close()
    clock.advance(timedelta(days=100))
    restarted = TinyDBStore(tmp_path, clock=clock, sent_horizon=timedelta(days=400))
    assert await restarted.enqueue([message("a")]) == 0
    await restarted.close()


async def test_a_sent_row_still_in_the_queue_file_never_comes_back_when_its_key_expires(tmp_path: Path) -> None:
    """A sent message's line stays in outbox.jsonl until a compaction: still there when its key expires, it must
    not look pending."""
    clock = ManualClock(MONDAY)
    store = TinyDBStore(tmp_path, clock=clock)
    assert await store.enqueue([message("sent-long-ago"), message("waiting")]) == 2
    await store.claim_due("notifier", MONDAY, 1, OUTBOX_LEASE)
    await store.mark_sent("sent-long-ago", MONDAY, worker="notifier")
    await store.close()

    clock.advance(SENT_HORIZON + timedelta(days=1))
    restarted = TinyDBStore(tmp_path, clock=clock)
    due = await restarted.due_messages(clock.now(), 10)
    assert [m.key for m in due] == ["waiting"]
    await restarted.close()
    again = TinyDBStore(tmp_path, clock=clock)
    assert [m.key for m in await again.due_messages(clock.now(), 10)] == ["waiting"]
    await again.close()


async def test_a_reader_drops_nothing(tmp_path: Path) -> None:
    clock = ManualClock(MONDAY)
    store = TinyDBStore(tmp_path, clock=clock)
    await send(store, "a", timedelta(0))
    await store.close()
    clock.advance(SENT_HORIZON * 2)
    before = (tmp_path / "outbox-sent.jsonl").read_bytes()
    reader = TinyDBStore(tmp_path, clock=clock, read_only=True)
    await reader.close()
    assert (tmp_path / "outbox-sent.jsonl").read_bytes() == before


async def test_a_restart_after_the_horizon_sends_no_notice_of_an_old_campaign_again(tmp_path: Path) -> None:
    """At start the service queues again the notices the ledger recorded (a crash may have come before the
    outbox); once their keys expired, only those recorded within the horizon may come back."""
    clock = ManualClock(MONDAY)
    runtime = await runtime_at(tmp_path, clock)
    await runtime.service.open_current_campaign()
    assert await runtime.store.due_messages(clock.now(), 1000)  # the review requests of the opening
    while requests := await runtime.store.claim_due("notifier", clock.now(), 1000, OUTBOX_LEASE):
        for sent in requests:
            await runtime.store.mark_sent(sent.key, clock.now(), worker="notifier")
    await runtime.store.close()

    clock.advance(timedelta(days=7))
    restarted = await runtime_at(tmp_path, clock)
    assert await restarted.store.due_messages(clock.now(), 1000) == []  # keys still held: twins refused
    await restarted.store.close()

    clock.advance(SENT_HORIZON)
    restarted = await runtime_at(tmp_path, clock)
    assert await restarted.store.due_messages(clock.now(), 1000) == []  # keys expired, notices too old to queue
    await restarted.store.close()


def sent_line(key: str, at: datetime, error: str | None = None) -> bytes:
    return canonical_json([key, at.isoformat(), *([error] if error is not None else [])]) + b"\n"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.text(min_size=1, max_size=12), st.integers(0, 10**6), st.booleans(),
                       st.one_of(st.none(), st.text(max_size=8))), max_size=12),
    st.integers(0, 10**6),
)
def test_the_fast_read_of_sent_keys_keeps_exactly_what_parsing_each_line_keeps(
    entries: list[tuple[str, int, bool, str | None]], cut: int
) -> None:
    """Start-up reads a million sent keys with one regular expression when the lines are plain; whatever the
    keys (quotes, backslashes, non-ASCII), times (with and without microseconds, another offset) and errors,
    it keeps and drops exactly the keys that decoding each line as JSON would."""
    oldest = MONDAY + timedelta(microseconds=cut)
    lines = []
    for key, offset, other_zone, error in entries:
        at = MONDAY + timedelta(microseconds=offset)
        lines.append(sent_line(key, at.astimezone(timezone(timedelta(hours=2))) if other_zone else at, error))
    sent, expired, kept = read_sent_keys(b"".join(lines), oldest)
    within = [datetime.fromisoformat(json.loads(line)[1]) >= oldest for line in lines]
    assert sent == {json.loads(line)[0] for line, w in zip(lines, within) if w}
    assert expired == {json.loads(line)[0] for line, w in zip(lines, within) if not w}
    assert kept == ([line.rstrip(b"\n") for line, w in zip(lines, within) if w] if not all(within) else None)


def test_plain_utc_lines_on_either_side_of_the_horizon_are_told_apart_to_the_microsecond() -> None:
    oldest = MONDAY + timedelta(seconds=5, microseconds=500_000)
    content = b"".join([sent_line("before", MONDAY + timedelta(seconds=5)),  # "…:05+00:00" sorts before "…:05.5…"
                        sent_line("at", oldest), sent_line("after", MONDAY + timedelta(seconds=6)),
                        sent_line("refused", MONDAY + timedelta(seconds=7), "HTTP 403 the app was blocked")])
    sent, expired, kept = read_sent_keys(content, oldest)
    assert sent == {"at", "after", "refused"} and expired == {"before"}
    assert kept is not None and len(kept) == 3
