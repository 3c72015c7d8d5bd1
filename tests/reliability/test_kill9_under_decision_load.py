"""kill -9 of a real `accessbot serve` under decision load: nothing acknowledged is lost, the ledger
verifies, and the server starts again.

Each round drives Keep clicks (Teams ``invoke`` activities, ``adaptiveCard/action``, from each item's
real reviewer) at a running server, several at once, and SIGKILLs it at a random point: after a random
number of acknowledgements plus a random few milliseconds, so the kill lands anywhere in the decision
path (parsing, the group commit's write or fsync, the anchor replacement, the answer) whatever the
machine's speed. Then:

- every click answered HTTP 200 with its item shown as kept has its decision in the ledger;
- `accessbot ledger verify` passes on what the killed process left;
- the server starts again on the same data directory, answers /healthz, and knows every acknowledged
  answer (the same click again shows the item as kept and records nothing new).

The restarted server carries the next round's load; when its campaign runs short of open items a fresh
data directory (a new campaign) takes over. ``ACCESSBOT_KILL9_ROUNDS`` sets the number of rounds (20 by
default, 200+ in `make soak`), ``ACCESSBOT_KILL9_SEED`` replays a failing run.

A SIGKILL leaves the kernel's page cache alone, so this proves the order (durable before acknowledged)
and the recovery, not the fsyncs against a power cut; tests/unit/test_tinydb_crash.py and the store's
temp-file-and-rename writes cover those.

Proactive delivery (review requests, card refreshes) runs in the server's background meanwhile; its Bot
Connector is a fake one in this process, so those sends succeed and mix their writes with the clicks'.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from bot.app import load_inputs
from bot.clock import SystemClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.model import Action
from bot.ledger_signing import LedgerSigner, write_key_pair
from bot.playground import free_port
from bot.service import ReviewService, rebuild_campaign
from bot.store.tinydb_store import TinyDBStore
from dialogs.actions import DECIDE
from tests.integration.fake_connector import FakeConnector, card_text

ROUNDS = int(os.environ.get("ACCESSBOT_KILL9_ROUNDS", "20"))
ACCESSBOT = Path(sys.executable).parent / "accessbot"
CLICKERS = 6  # clicks in flight at once: enough for the group commit to batch them
FEWEST_OPEN = 4  # below this many answerable items a round starts on a fresh data directory
HANG_GUARD = 60.0  # seconds: only ever reached when something hangs, never a measure of speed

POLICY, SNAPSHOT = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)


@dataclass(frozen=True)
class LedgerKeys:
    """What `serve` and `ledger verify` need to sign and check the ledger, as extra arguments and
    environment. The one place that knows: signed checkpoints add a key here."""

    serve_args: tuple[str, ...] = ()
    verify_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def ledger_keys(tmp_path: Path) -> LedgerKeys:
    """A signing key outside every data directory, as in production: serve signs with it, verify checks
    with its public half only."""
    key_file = tmp_path / "keys" / "ledger.key"
    key_file.parent.mkdir()
    public = write_key_pair(LedgerSigner.generate(), key_file)
    return LedgerKeys(verify_args=("--public-key", str(public)), env={"ACCESSBOT_LEDGER_KEY_FILE": str(key_file)})


@dataclass(frozen=True)
class Click:
    item_id: str
    reviewer: str
    name: str


@dataclass
class Server:
    """One `accessbot serve` process on a free port."""

    process: asyncio.subprocess.Process
    port: int
    data_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill9(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), HANG_GUARD)


class Deployment:
    """Starts servers with the demo policy and tenant, and runs the read-only CLI next to them."""

    def __init__(self, root: Path, connector: FakeConnector, keys: LedgerKeys) -> None:
        self.root = root
        self.connector = connector
        self.keys = keys
        self.starts = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCESSBOT_", "MICROSOFT_APP", "MicrosoftApp"))}
        env.update(
            ACCESSBOT_TEAMS_SERVICE_URL=self.connector.url,  # proactive delivery goes to the fake connector
            ACCESSBOT_TICK_SECONDS="0.5",  # background rounds run between the clicks, not every 30 s
            **self.keys.env,
        )
        return env

    async def start(self, data_dir: Path) -> Server:
        """Start `accessbot serve` and wait until /healthz answers with the campaign open."""
        self.starts += 1
        port = free_port()
        log = self.root / f"serve-{self.starts}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                str(ACCESSBOT), "serve", "--no-auth", "--policy", str(DEMO_POLICY), "--snapshot", str(DEMO_SNAPSHOT),
                "--data-dir", str(data_dir), "--port", str(port), *self.keys.serve_args,
                cwd=self.root, env=self.env(), stdout=out, stderr=asyncio.subprocess.STDOUT,
            )
        server = Server(process, port, data_dir, log)
        try:
            await asyncio.wait_for(self._healthy(server), HANG_GUARD)
        except (asyncio.TimeoutError, AssertionError):
            server.kill9()
            await server.process.wait()
            pytest.fail(f"accessbot serve did not come up on {data_dir}:\n{log.read_text()[-4000:]}")
        return server

    async def _healthy(self, server: Server) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                assert server.process.returncode is None, "the server exited"
                try:
                    async with session.get(f"{server.url}/healthz") as response:
                        if response.status == 200 and (await response.json())["campaigns"] >= 1:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)

    async def verify(self, data_dir: Path) -> tuple[int, str]:
        """`accessbot ledger verify` on a data directory: its exit status and what it printed."""
        process = await asyncio.create_subprocess_exec(
            str(ACCESSBOT), "ledger", "verify", "--data-dir", str(data_dir), *self.keys.verify_args,
            cwd=self.root, env=self.env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), HANG_GUARD)
        assert process.returncode is not None
        return process.returncode, output.decode(errors="replace")


def keep_activity(click: Click, service_url: str, n: int) -> dict[str, Any]:
    """What Teams posts when a reviewer presses Keep on an item's card in their personal chat."""
    person = {"id": f"29:{click.reviewer}", "name": click.name, "aadObjectId": click.reviewer}
    return {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "id": f"f:{n}",
        "timestamp": "2026-11-23T09:30:00.000Z",
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": person,
        "conversation": {"conversationType": "personal", "tenantId": POLICY.tenant_id, "id": f"a:personal-{click.reviewer}"},
        "recipient": {"id": "28:accessbot", "name": "accessbot"},
        "locale": "en-GB",
        "channelData": {"tenant": {"id": POLICY.tenant_id}},
        "replyToId": f"card-{click.item_id}",
        "value": {
            "action": {"type": "Action.Execute", "verb": DECIDE, "data": {"item": click.item_id, "action": Action.KEEP.value, "justification": ""}},
            "trigger": "manual",
        },
    }


def shows_kept(click: Click, body: Any) -> bool:
    """Whether an invoke answer is the item's card showing it kept by this reviewer."""
    card = body.get("value") if isinstance(body, dict) else None
    return isinstance(card, dict) and f"Kept by {click.name}" in card_text(card)


async def ledger_state(data_dir: Path) -> tuple[set[str], list[Click]]:
    """Read-only, as an auditor would: the items with a Keep in the ledger, and a click for every item
    still open that one of its reviewers may answer (the service's own rule: no self-review)."""
    store = TinyDBStore(data_dir, read_only=True)
    try:
        records = await store.ledger_records()
        service = ReviewService(store, POLICY, SNAPSHOT, SystemClock())
        clicks = []
        for campaign in await store.list_campaigns():
            state, _ = await rebuild_campaign(store, campaign, records)
            for item in state.items.values():
                reviewer = next((r for r in item.reviewers if service.may_answer(r, item)), None)
                if reviewer is not None:
                    clicks.append(Click(item.id, reviewer, SNAPSHOT.display_name(reviewer)))
    finally:
        await store.close()
    kept = {r.data["item_id"] for r in records if r.type == "decision" and r.data["action"] == Action.KEEP.value}
    return kept, clicks


@dataclass
class Load:
    """The clicks of one round, sent ``CLICKERS`` at a time until the server dies under them."""

    server: Server
    clicks: list[Click]
    kill_after: int  # acknowledgements before the kill is armed
    kill_delay: float  # then this many seconds more
    acknowledged: list[Click] = field(default_factory=list)
    killed: bool = False

    async def run(self, service_url: str) -> None:
        queue: asyncio.Queue[Click] = asyncio.Queue()
        for click in self.clicks:
            queue.put_nowait(click)
        armed = asyncio.Event()
        if self.kill_after == 0:
            armed.set()
        timeout = aiohttp.ClientTimeout(total=HANG_GUARD)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            clickers = [asyncio.create_task(self._clicker(session, queue, armed, service_url)) for _ in range(CLICKERS)]
            await armed.wait()
            await asyncio.sleep(self.kill_delay)
            self.killed = True
            self.server.kill9()
            await asyncio.gather(*clickers)
        assert await asyncio.wait_for(self.server.process.wait(), HANG_GUARD) == -signal.SIGKILL, (
            "the server died before it was killed:\n" + self.server.log.read_text()[-4000:]
        )

    async def _clicker(
        self, session: aiohttp.ClientSession, queue: asyncio.Queue[Click], armed: asyncio.Event, service_url: str
    ) -> None:
        try:
            while not self.killed and not queue.empty():
                click = queue.get_nowait()
                activity = keep_activity(click, service_url, len(self.clicks) - queue.qsize())
                try:
                    async with session.post(f"{self.server.url}/api/messages", json=activity) as response:
                        status, body = response.status, await response.json(content_type=None)
                except (aiohttp.ClientError, asyncio.TimeoutError, json.JSONDecodeError):
                    assert self.killed, f"a click on {click.item_id} failed with the server still running"
                    return
                assert status == 200 and shows_kept(click, body), (status, body)
                self.acknowledged.append(click)
                if len(self.acknowledged) >= self.kill_after:
                    armed.set()
        finally:
            armed.set()  # out of clicks (or failed) before the kill was armed: kill now


async def click_again(server: Server, clicks: list[Click], service_url: str, where: str) -> None:
    """The acknowledged clicks once more, on the restarted server: each item must show as kept."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HANG_GUARD)) as session:
        for n, click in enumerate(clicks):
            activity = keep_activity(click, service_url, n)
            async with session.post(f"{server.url}/api/messages", json=activity) as response:
                status, body = response.status, await response.json(content_type=None)
            assert status == 200 and shows_kept(click, body), f"{where}: {click.item_id} after the restart: {status} {body}"


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = FakeConnector()
    await fake.start()
    yield fake
    await fake.stop()


async def test_kill_9_under_decision_load_loses_no_acknowledged_decision_and_the_server_starts_again(
    tmp_path: Path, connector: FakeConnector, ledger_keys: LedgerKeys
) -> None:
    seed = int(os.environ.get("ACCESSBOT_KILL9_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    print(f"ACCESSBOT_KILL9_SEED={seed}")  # shown by pytest when the test fails
    deployment = Deployment(tmp_path, connector, ledger_keys)
    fresh_dirs = iter(tmp_path / f"data-{n}" for n in range(10**6))
    server = await deployment.start(next(fresh_dirs))
    acknowledged_total = recorded_unacknowledged = 0
    try:
        for round_no in range(ROUNDS):
            where = f"round {round_no} (ACCESSBOT_KILL9_SEED={seed})"
            kept_before, clicks = await ledger_state(server.data_dir)
            if len(clicks) < FEWEST_OPEN:
                await server.stop()
                server = await deployment.start(next(fresh_dirs))
                kept_before, clicks = await ledger_state(server.data_dir)
                assert len(clicks) >= FEWEST_OPEN, f"{where}: a new campaign has only {len(clicks)} answerable items"
            rng.shuffle(clicks)
            load = Load(server, clicks, kill_after=rng.randrange(len(clicks)), kill_delay=rng.uniform(0.0, 0.01))

            await load.run(connector.url)

            kept_at_kill, _ = await ledger_state(server.data_dir)
            acknowledged = {click.item_id for click in load.acknowledged}
            missing = acknowledged - kept_at_kill
            assert not missing, f"{where}: acknowledged but not in the ledger: {sorted(missing)}"

            # Verify after the restart: a writer killed between appending records and signing them leaves an
            # unsigned tail (never acknowledged), which the restarted writer sets aside as evidence.
            server = await deployment.start(server.data_dir)
            verified, said = await deployment.verify(server.data_dir)
            assert verified == 0, f"{where}: ledger verify failed after the kill and restart:\n{said}"
            kept_after, _ = await ledger_state(server.data_dir)
            assert acknowledged <= kept_after, f"{where}: lost at restart: {sorted(acknowledged - kept_after)}"
            acknowledged_total += len(acknowledged)
            recorded_unacknowledged += len(kept_after - kept_before - acknowledged)

            await click_again(server, load.acknowledged, connector.url, where)
            assert (await ledger_state(server.data_dir))[0] == kept_after, f"{where}: a repeated click was recorded again"
    finally:
        await server.stop()
    print(f"{ROUNDS} rounds, {deployment.starts} server starts: {acknowledged_total} decisions acknowledged "
          f"and found in the ledger, {recorded_unacknowledged} more recorded without their answer arriving")
    assert acknowledged_total > 0, f"no click was ever acknowledged (ACCESSBOT_KILL9_SEED={seed})"
