"""kill -9 a writer process at random moments: whatever it acknowledged is still there afterwards.

The child prints a line for each call only after the call returned, so a printed line is exactly an
acknowledged write. After each kill the parent reopens the directory as the restarted bot would.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.engine.model import LedgerEvent
from bot.ledger import verify
from bot.store.tinydb_store import TinyDBStore
from tests.contract.samples import campaign, items, message

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 10
HANG_GUARD = 60.0  # seconds: reached only if the writer hangs, never a measure of speed

WRITER = """
import asyncio, sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.engine.model import LedgerEvent
from bot.store.base import PostedCard
from bot.store.tinydb_store import TinyDBStore
from tests.contract.samples import campaign, items, message


def ack(kind, key):
    print(kind, key, flush=True)


async def main(data_dir, round_no):
    store = TinyDBStore(Path(data_dir))
    ack("ready", round_no)
    n = 0
    while True:
        n += 1
        key = f"{round_no}-{n}"
        now = datetime.now(timezone.utc)
        await store.append_ledger([LedgerEvent("decision", {"key": key}), LedgerEvent("noted", {"key": key})], now)
        ack("ledger", key)
        await store.save_conversation(key, {"conversation": {"id": key}, "serviceUrl": "https://smba/"})
        ack("conversation", key)
        await store.enqueue([message(key, created_at=now)])
        ack("queued", key)
        await store.save_card(key, PostedCard("teams", f"activity-{key}", {"conversation": {"id": key}}))
        ack("card", key)
        assert key in {m.key for m in await store.claim_due("writer", now, 100, timedelta(minutes=5))}
        if n % 2 == 0:
            assert await store.mark_sent(key, now, worker="writer")
            ack("sent", key)
        else:
            assert await store.mark_retry(key, "503", now + timedelta(hours=1), worker="writer")
            ack("retried", key)
        if n % 25 == 0:
            opened = campaign(key)
            await store.save_campaign(opened, items(opened))
            ack("campaign", key)


asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def run_until_killed(data_dir: Path, round_no: int, rng: random.Random) -> dict[str, set[str]]:
    """One writer process, killed with SIGKILL at a random point: after a random number of acknowledged
    ledger appends (so every round writes, however busy the machine) and a random few milliseconds more
    (so the kill lands anywhere in the next write). Returns what it acknowledged."""
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir), str(round_no)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        bufsize=0,  # unbuffered: readline() reads no further than the line, communicate() gets the rest
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert child.stdout is not None
    hang_guard = threading.Timer(HANG_GUARD, child.kill)  # a stuck writer ends the read with EOF
    hang_guard.start()
    try:
        ready = child.stdout.readline()
        assert ready.startswith(b"ready"), ready
        seen, appended, wanted = b"", 0, rng.randrange(1, 60)
        while appended < wanted:
            line = child.stdout.readline()
            assert line.endswith(b"\n"), f"the writer stopped: {seen[-200:]!r}"
            seen += line
            appended += line.startswith(b"ledger ")
        time.sleep(rng.uniform(0.0, 0.01))
        child.send_signal(signal.SIGKILL)
        output, _ = child.communicate(timeout=HANG_GUARD)
    finally:
        hang_guard.cancel()
    assert child.returncode == -signal.SIGKILL
    acknowledged: dict[str, set[str]] = defaultdict(set)
    for line in (seen + output).decode().split("\n")[:-1]:  # a last line without its newline was never finished
        kind, key = line.split(" ")
        acknowledged[kind].add(key)
    return acknowledged


async def check_everything_acknowledged_is_there(data_dir: Path, acknowledged: dict[str, set[str]]) -> None:
    for path in data_dir.glob("*.json"):
        json.loads(path.read_bytes())  # every TinyDB file is whole, never half-written
    assert not (data_dir / "outbox.json").exists() and not (data_dir / "cards.json").exists()  # logs only

    store = TinyDBStore(data_dir)
    try:
        records = await store.ledger_records()
        result = verify(records, await store.ledger_anchor())
        assert result.ok, result.problem
        assert acknowledged["ledger"] <= {r.data["key"] for r in records if r.type == "decision"}
        if acknowledged["ledger"]:
            assert await store.ledger_anchor() is not None
        (restarted,) = await store.append_ledger([LedgerEvent("restarted", {})], datetime.now(timezone.utc))
        assert restarted.seq == len(records) + 1

        for key in acknowledged["conversation"]:
            assert await store.get_conversation(key) is not None, key
        for key in acknowledged["card"]:
            assert [card.message_id for card in await store.cards(key)] == [f"activity-{key}"], key

        far_future = datetime.now(timezone.utc) + timedelta(days=1)
        pending = {m.key: m for m in await store.due_messages(far_future, 10**6)}
        for key in acknowledged["retried"]:
            assert pending[key].attempts == 1 and pending[key].last_error == "503", key
        assert await store.enqueue([message(key) for key in acknowledged["queued"]]) == 0
        for key in acknowledged["queued"]:
            if key in acknowledged["sent"]:
                assert key not in pending, key
            elif not _the_writer_sends(key):
                assert key in pending, key

        for key in acknowledged["campaign"]:
            opened = campaign(key)
            assert await store.get_campaign(opened.id) == opened
            assert await store.campaign_items(opened.id) == items(opened)
    finally:
        await store.close()


def _the_writer_sends(key: str) -> bool:
    """The writer marks every second message sent; it may die before saying so."""
    return int(key.split("-")[1]) % 2 == 0


async def test_kill_9_mid_write_loses_nothing_acknowledged(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    print(f"random seed {seed}")  # shown by pytest when the test fails
    acknowledged: dict[str, set[str]] = defaultdict(set)

    for round_no in range(ROUNDS):
        for kind, keys in run_until_killed(tmp_path, round_no, rng).items():
            acknowledged[kind] |= keys
        await check_everything_acknowledged_is_there(tmp_path, acknowledged)

    assert acknowledged["ledger"], f"the writer acknowledged nothing (seed {seed})"
