"""Conversation references in the embedded store: a new person costs one appended line, never a rewrite of
everyone else's reference, and the log is folded back to one line per key at start."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.store.base import StoreUnavailable
from bot.store.tinydb_store import CONVERSATIONS_COMPACT_AFTER, TinyDBStore
from tests.integration.test_teams_messages import PATTI, Bot, bot  # noqa: F401 (the fixture)


def reference(person: int, conversation: str = "") -> dict[str, Any]:
    return {
        "bot": {"id": "28:accessbot", "name": "accessbot"},
        "user": {"id": f"29:{person}", "aadObjectId": f"person-{person}"},
        "conversation": {"id": conversation or f"a:personal-{person}", "conversationType": "personal"},
        "channelId": "msteams",
        "serviceUrl": "https://smba.trafficmanager.net/emea/",
    }


def bytes_written() -> int:
    """What this process has written so far, as the kernel counts it (every write(2), to any file)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


async def test_a_thousand_new_people_cost_appends_not_rewrites(tmp_path: Path) -> None:
    store = TinyDBStore(tmp_path)
    await store.save_conversation("person-0", reference(0))
    files_before = {p.name: p.stat().st_ino for p in tmp_path.iterdir()}
    before = bytes_written()
    for person in range(1, 1001):
        assert await store.save_conversation(f"person-{person}", reference(person)) is True
    written = bytes_written() - before
    await store.close()

    log = tmp_path / "conversations.jsonl"
    # Rewriting every reference per new person wrote ~1,000 x 500 x 250 bytes = 125 MB here; appending
    # writes each line once (plus the test's own output).
    assert written < 2 * log.stat().st_size
    assert len(log.read_bytes().splitlines()) == 1001
    # No file of the data directory was replaced (an atomic rewrite gives the name a new inode).
    assert {p.name: p.stat().st_ino for p in tmp_path.iterdir() if p.name in files_before} == files_before


async def test_concurrent_first_contacts_share_one_write(tmp_path: Path) -> None:
    store = TinyDBStore(tmp_path)
    await asyncio.gather(*(store.save_conversation(f"person-{n}", reference(n)) for n in range(200)))
    assert store._conversation_log.writes < 200  # the burst was group-committed
    await store.close()
    reopened = TinyDBStore(tmp_path)
    assert await reopened.get_conversation("person-199") == reference(199)
    await reopened.close()


async def test_the_last_reference_of_a_key_wins_and_start_up_folds_the_log(tmp_path: Path) -> None:
    store = TinyDBStore(tmp_path)
    changes = CONVERSATIONS_COMPACT_AFTER + 10
    for n in range(changes):
        await store.save_conversation("person-1", reference(1, f"a:moved-{n}"))
    await store.save_conversation("person-2", reference(2))
    await store.close()
    log = tmp_path / "conversations.jsonl"
    assert len(log.read_bytes().splitlines()) == changes + 1

    reopened = TinyDBStore(tmp_path)
    assert await reopened.get_conversation("person-1") == reference(1, f"a:moved-{changes - 1}")
    assert await reopened.get_conversation("person-2") == reference(2)
    assert [json.loads(line)[0] for line in log.read_bytes().splitlines()] == ["person-1", "person-2"]
    await reopened.close()


async def test_a_few_superseded_lines_are_left_for_later(tmp_path: Path) -> None:
    store = TinyDBStore(tmp_path)
    for n in range(3):
        await store.save_conversation("person-1", reference(1, f"a:moved-{n}"))
    await store.close()
    reopened = TinyDBStore(tmp_path)
    assert len((tmp_path / "conversations.jsonl").read_bytes().splitlines()) == 3  # not worth a rewrite yet
    await reopened.close()


async def test_references_from_the_conversations_file_of_earlier_versions_are_kept(tmp_path: Path) -> None:
    legacy = {"conversations": {"1": {"key": "person-1", "reference": reference(1)},
                                "2": {"key": "person-2", "reference": reference(2)}}}
    (tmp_path / "conversations.json").write_text(json.dumps(legacy))
    store = TinyDBStore(tmp_path)
    assert await store.get_conversation("person-1") == reference(1)
    assert await store.save_conversation("person-2", reference(2)) is False
    await store.close()
    assert not (tmp_path / "conversations.json").exists()
    reopened = TinyDBStore(tmp_path)
    assert await reopened.get_conversation("person-2") == reference(2)
    await reopened.close()


async def test_every_message_from_the_same_person_leaves_their_reference_untouched(bot: Bot) -> None:  # noqa: F811
    """Teams gives each activity a new id; the stored reference leaves it out, so only the first costs a write."""
    for text in ("help", "my reviews", "status"):
        assert await bot.say(text, person=PATTI) in (200, 201)
    lines = (bot.runtime.store.data_dir / "conversations.jsonl").read_bytes().splitlines()
    assert [json.loads(line)[0] for line in lines] == [PATTI["aadObjectId"]]
    assert "activityId" not in json.loads(lines[0])[1]


async def test_a_reference_that_cannot_be_written_says_the_store_is_unavailable_and_is_not_remembered(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    store = TinyDBStore(data_dir)
    shutil.rmtree(data_dir)  # the data directory is gone (an unmounted volume, say)
    with pytest.raises(StoreUnavailable):
        await store.save_conversation("person-1", reference(1))
    assert await store.get_conversation("person-1") is None
    await store.close()
