"""A store that cannot write, for real: a full filesystem the test makes, and a damaged ledger anchor.

Every click then gets 503 with Retry-After and a card saying the answer was NOT recorded (and nothing is
recorded), /healthz turns not-ok with the reason, /metrics counts the refused writes; once space is freed
the same click is recorded and the ledger verifies.

The small filesystem is a tmpfs mounted on a temporary folder, which needs root. Where it cannot be made
the test says why and skips, except in CI (``CI`` set), where it fails instead.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web

from bot.ledger import verify
from tests.integration.fake_connector import FakeConnector, card_text
from tests.integration.test_teams_messages import ALEX, Bot, serve_demo

SMALL_FILESYSTEM = "16m"


def _cannot(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the disk-full test must run in CI, but {reason}")
    pytest.skip(reason)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a tmpfs of its own, small enough to fill in a moment; unmounted afterwards."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        _cannot("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_FILESYSTEM},mode=0700", "tmpfs", str(mount_point)],
        capture_output=True, text=True,
    )
    if made.returncode != 0:
        _cannot(f"mount -t tmpfs failed: {made.stderr.strip() or made.returncode}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(path: Path) -> Path:
    """Write a file until the filesystem has no byte left (chunks down to one byte fill every last page)."""
    filler = path / "filler"
    with filler.open("wb", buffering=0) as handle:
        chunk = 1 << 20
        while chunk:
            try:
                handle.write(b"\0" * chunk)
            except OSError as full:
                assert full.errno == errno.ENOSPC, full
                chunk //= 2
    return filler


async def serve(data_dir: Path) -> tuple[Bot, web.AppRunner, FakeConnector]:
    connector = FakeConnector()
    await connector.start()
    runtime, runner, url = await serve_demo(data_dir)
    return Bot(runtime, url, connector), runner, connector


@pytest.fixture
async def bot_on_small_disk(small_disk: Path) -> AsyncIterator[Bot]:
    bot, runner, connector = await serve(small_disk / "data")
    yield bot
    await runner.cleanup()
    await connector.stop()


async def answer(bot: Bot, item_id: str, action: str = "keep") -> tuple[int, dict[str, str], dict[str, Any]]:
    data = {"item": item_id, "action": action, "justification": "Left the company in October"}
    value = {"action": {"type": "Action.Execute", "verb": "decide", "data": data}}
    activity = bot.activity(type="invoke", name="adaptiveCard/action", value=value)
    async with aiohttp.ClientSession() as session:
        async with session.post(bot.url, json=activity) as response:
            return response.status, dict(response.headers), await response.json()


async def health(bot: Bot) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.get(bot.url.replace("/api/messages", "/healthz")) as response:
            return response.status, await response.json()


async def refused_writes(bot: Bot) -> float:
    async with aiohttp.ClientSession() as session:
        async with session.get(bot.url.replace("/api/messages", "/metrics")) as response:
            text = await response.text()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith('accessbot_store_writes_refused_total{reason="unavailable"}'))


async def decided_items(bot: Bot) -> set[str]:
    return {r.data["item_id"] for r in await bot.runtime.store.ledger_records() if r.type == "decision"}


def alex_items(bot: Bot) -> list[str]:
    """Items Alex may answer, and revoke (a break-glass account is never revoked from a review)."""
    service = bot.runtime.service
    return [item.id for item, _ in service.items_for(ALEX) if service.may_answer(ALEX, item) and not item.subject.break_glass]


def assert_not_recorded(status: int, headers: dict[str, str], body: dict[str, Any]) -> None:
    assert status == 503 and int(headers["Retry-After"]) > 0
    assert body["type"] == "application/vnd.microsoft.card.adaptive"
    text = card_text(body["value"])
    assert "NOT recorded" in text and "try again" in text
    assert any(a["title"] == "Keep" for a in body["value"]["actions"])  # the same card, ready for the retry


async def test_a_full_disk_answers_503_not_recorded_until_space_is_freed(bot_on_small_disk: Bot) -> None:
    bot = bot_on_small_disk
    assert (await health(bot))[0] == 200
    refused_before = await refused_writes(bot)
    filler = fill(bot.runtime.store.data_dir.parent)

    # A record may still fit in the unused end of the ledger file's last page: click on until one does not.
    # Revokes, because each also queues an alert for the security leads: when its record fits but the
    # outbox cannot be written, the answer is recorded and must be answered as recorded.
    answered: list[str] = []
    refused: tuple[str, tuple[int, dict[str, str], dict[str, Any]]] | None = None
    for item in alex_items(bot)[:40]:
        status, headers, body = await answer(bot, item, "revoke")
        if status != 200:
            refused = (item, (status, headers, body))
            break
        assert "Revoked by Alex Wilber" in card_text(body["value"])
        answered.append(item)
    assert refused is not None, "forty decisions fitted on a full disk"
    item, refusal = refused
    assert_not_recorded(*refusal)
    assert await decided_items(bot) == set(answered)  # every acknowledged answer is there, the refused one is not
    status, report = await health(bot)
    assert status == 503 and report["status"] != "ok" and report["problem"]
    assert await refused_writes(bot) > refused_before

    filler.unlink()
    status, _, body = await answer(bot, item)
    assert status == 200 and "Kept by Alex Wilber" in card_text(body["value"])
    assert await decided_items(bot) == {*answered, item}
    assert (await health(bot))[0] == 200
    records = await bot.runtime.store.ledger_records()
    assert verify(records, await bot.runtime.store.ledger_anchor()).ok


async def test_a_damaged_ledger_anchor_answers_503_not_recorded_and_healthz_says_why(tmp_path: Path) -> None:
    bot, runner, connector = await serve(tmp_path)
    await runner.cleanup()  # closes the store
    await connector.stop()
    (tmp_path / "ledger.head").write_text("garbage")
    bot, runner, connector = await serve(tmp_path)
    try:
        item = alex_items(bot)[0]
        assert_not_recorded(*await answer(bot, item))
        assert item not in await decided_items(bot)
        status, report = await health(bot)
        assert status == 503 and "ledger.head" in report["problem"]
    finally:
        await runner.cleanup()
        await connector.stop()
