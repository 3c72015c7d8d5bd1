"""Two real `accessbot serve` processes on one PostgreSQL schema, behind an imaginary load balancer.

- Conflicting answers on the same items sent through both at once: the store decides, so each item ends with
  exactly one attestation, and the answer that lost is told who answered.
- The leader killed with -9 in the middle of a reminder fan-out: the other instance takes the scheduler's
  leadership (its advisory lock was freed when the dead process's session ended), repeats no scheduled step,
  and delivers every reminder exactly once.

Proactive messages go to a fake Bot Connector in this process. No assertion here measures time: the waits are
hang guards only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.app import load_inputs
from bot.clock import ManualClock, SystemClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.model import Action
from bot.ledger_check import check_ledger
from bot.ledger_signing import LedgerSigner, write_key_pair
from bot.playground import free_port
from bot.service import ReviewService, rebuild_campaign
from bot.store.postgres_store import PostgresStore
from tests.integration.fake_connector import FakeConnector, card_text
from tests.reliability.test_kill9_under_decision_load import Click, keep_activity

ACCESSBOT = Path(sys.executable).parent / "accessbot"
HANG_GUARD = 90.0  # seconds: only ever reached when something hangs, never a measure of speed
JUSTIFICATION = "Left the team in October; no longer needs it."

POLICY, SNAPSHOT = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)


@dataclass
class Instance:
    name: str
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def health(self) -> dict[str, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HANG_GUARD)) as session:
            async with session.get(f"{self.url}/healthz") as response:
                return dict(await response.json())

    def kill9(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), HANG_GUARD)


class Deployment:
    """`accessbot serve` processes sharing one database schema, signing key, export secret and public URL."""

    def __init__(self, root: Path, database_url: str, connector: FakeConnector, policy: Path = DEMO_POLICY) -> None:
        self.root = root
        self.database_url = database_url
        self.connector = connector
        self.policy = policy
        self.key_file = root / "keys" / "ledger.key"
        self.key_file.parent.mkdir(exist_ok=True)
        self.signer = LedgerSigner.generate()
        write_key_pair(self.signer, self.key_file)
        self.instances: list[Instance] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCESSBOT_", "MICROSOFT_APP", "MicrosoftApp"))}
        env.update(
            ACCESSBOT_DATABASE_URL=self.database_url,
            ACCESSBOT_LEDGER_KEY_FILE=str(self.key_file),
            ACCESSBOT_EXPORT_SECRET="one secret for every instance",
            ACCESSBOT_PUBLIC_URL="https://accessbot.contoso.test",
            ACCESSBOT_TEAMS_SERVICE_URL=self.connector.url,
            ACCESSBOT_TICK_SECONDS="0.3",
            ACCESSBOT_LEADER_RETRY_SECONDS="0.5",
            ACCESSBOT_FOLLOW_SECONDS="0.2",
            ACCESSBOT_OUTBOX_LEASE_SECONDS="4",  # what the killed leader had claimed goes out 4 s later
        )
        return env

    async def start(self, name: str) -> Instance:
        """Start an instance and wait until it answers /healthz holding the campaign."""
        port = free_port()
        log = self.root / f"serve-{name}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                str(ACCESSBOT), "serve", "--no-auth", "--policy", str(self.policy), "--snapshot", str(DEMO_SNAPSHOT),
                "--data-dir", str(self.root / f"data-{name}"), "--port", str(port),
                cwd=self.root, env=self.env(), stdout=out, stderr=asyncio.subprocess.STDOUT,
            )
        instance = Instance(name, process, port, log)
        self.instances.append(instance)
        await self.until(instance, lambda health: health.get("campaigns", 0) >= 1, "holds the campaign")
        return instance

    async def until(self, instance: Instance, ready: Any, what: str) -> dict[str, Any]:
        async def poll() -> dict[str, Any]:
            while True:
                assert instance.process.returncode is None, f"{instance.name} exited:\n{instance.log.read_text()[-4000:]}"
                try:
                    health = await instance.health()
                    if ready(health):
                        return health
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        try:
            return await asyncio.wait_for(poll(), HANG_GUARD)
        except asyncio.TimeoutError:
            pytest.fail(f"{instance.name} never {what}:\n{instance.log.read_text()[-4000:]}")

    async def stop(self) -> None:
        for instance in self.instances:
            await instance.stop()


async def ledger(database_url: str) -> tuple[list[Any], list[Click]]:
    """As an auditor reads it: every record, and a click for each open item one of its reviewers may answer
    (never a break-glass account's, which is never revoked)."""
    store = PostgresStore(database_url, read_only=True)
    try:
        records = await store.ledger_records()
        service = ReviewService(store, POLICY, SNAPSHOT, SystemClock())
        clicks = []
        for campaign in await store.list_campaigns():
            state, _ = await rebuild_campaign(store, campaign, records)
            for item in state.open_items():
                reviewer = next((r for r in item.reviewers if service.may_answer(r, item)), None)
                if reviewer is not None and not item.subject.break_glass:
                    clicks.append(Click(item.id, reviewer, SNAPSHOT.display_name(reviewer)))
    finally:
        await store.close()
    return records, clicks


def answer(click: Click, action: Action, service_url: str, n: int) -> dict[str, Any]:
    activity = keep_activity(click, service_url, n)
    activity["value"]["action"]["data"].update(action=action.value, justification=JUSTIFICATION)
    return activity


@pytest.fixture
async def connector() -> AsyncIterator[FakeConnector]:
    fake = FakeConnector()
    await fake.start()
    yield fake
    await fake.stop()


async def test_conflicting_answers_sent_through_two_instances_at_once_leave_one_attestation_per_item(
    postgres_url: str, tmp_path: Path, connector: FakeConnector
) -> None:
    deployment = Deployment(tmp_path, postgres_url, connector)
    try:
        one = await deployment.start("one")  # leads: it opens the campaign
        two = await deployment.start("two")  # a standby: it holds the campaign by following the ledger
        _, clicks = await ledger(postgres_url)
        assert len(clicks) >= 4

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HANG_GUARD)) as session:
            async def send(instance: Instance, activity: dict[str, Any]) -> tuple[int, str]:
                async with session.post(f"{instance.url}/api/messages", json=activity) as response:
                    body = await response.json(content_type=None)
                return response.status, card_text(body.get("value") or {})

            answers = await asyncio.gather(*(
                send(instance, answer(click, action, connector.url, n))
                for n, click in enumerate(clicks)
                for instance, action in ((one, Action.KEEP), (two, Action.REVOKE))
            ))

        for n, click in enumerate(clicks):
            (kept_status, kept_card), (revoked_status, revoked_card) = answers[2 * n], answers[2 * n + 1]
            assert kept_status == revoked_status == 200
            won = [card for card, verb in ((kept_card, "Kept"), (revoked_card, "Revoked"))
                   if "already answered" not in card and f"{verb} by {click.name}" in card]
            lost = [card for card in (kept_card, revoked_card) if "already answered" in card]
            assert len(won) == len(lost) == 1, (click, kept_card, revoked_card)
            assert click.name in lost[0]  # the loser is told who answered

        records, _ = await ledger(postgres_url)
        answered = Counter(r.data["item_id"] for r in records if r.type == "decision" and not r.data.get("system"))
        assert answered == Counter(click.item_id for click in clicks)  # exactly one attestation per item
        assert len([r for r in records if r.type == "campaign_opened"]) == 1
        checked = await check_ledger(postgres_url, Path(), deployment.signer.public_key)
        assert checked.ok, checked.problems
        roles = sorted([(await one.health())["scheduler"], (await two.health())["scheduler"]])
        assert roles == ["leader", "standby"]
    finally:
        await deployment.stop()


@dataclass
class HoldingConnector(FakeConnector):
    """Holds every reminder it is sent until ``opened``; the ones held then are refused, never accepted, as
    Teams never accepted what a dead sender had not finished sending."""

    held: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def _receive(self, request: web.Request, method: str, status: int) -> web.Response:
        if method == "POST" and not self.opened.is_set():
            body = await request.json()  # aiohttp keeps the body: the connector reads it again
            if str(body.get("text", "")).startswith("Reminder:"):
                self.held.append(request.match_info["conversation"])
                self.arrived.set()
                await self.opened.wait()
                return self._refuse(503, "ServiceUnavailable", "the sender went away before this was accepted")
        return await super()._receive(request, method, status)


HOURLY_REMINDERS = """
[schedule]
cron = "0 0 1 1 *"
timezone = "UTC"
deadline = "300d"
reminder_every = "1h"

[[escalation]]
to = "fallback"
after = "200d"
"""


def hourly_policy(tmp_path: Path) -> Path:
    """The demo policy with a yearly campaign, reminders every hour, and no escalation for months."""
    text = DEMO_POLICY.read_text(encoding="utf-8")
    start, end = text.index("[schedule]"), text.index("[outcome]")
    path = tmp_path / "hourly.toml"
    path.write_text(text[:start] + HOURLY_REMINDERS.strip() + "\n\n" + text[end:], encoding="utf-8")
    return path


async def test_the_leader_killed_during_a_reminder_fan_out_is_replaced_and_every_reminder_goes_once(
    postgres_url: str, tmp_path: Path
) -> None:
    connector = HoldingConnector()
    await connector.start()
    policy_path = hourly_policy(tmp_path)
    deployment = Deployment(tmp_path, postgres_url, connector, policy_path)
    # This year's campaign, opened three hours ago: its third hourly reminder round is due as the leader starts.
    policy, _ = load_inputs(policy_path, DEMO_SNAPSHOT)
    opened_at = SystemClock().now() - timedelta(hours=3, minutes=1)
    store = PostgresStore(postgres_url, signer=deployment.signer, clock=ManualClock(opened_at))
    try:
        service = ReviewService(store, policy, SNAPSHOT, ManualClock(opened_at))
        await service.start()
        await service.open_current_campaign()
    finally:
        await store.close()
    try:
        leader = await deployment.start("leader")
        await deployment.until(leader, lambda health: health["scheduler"] == "leader", "led")
        standby = await deployment.start("standby")
        assert (await standby.health())["scheduler"] == "standby"

        await asyncio.wait_for(connector.arrived.wait(), HANG_GUARD)  # the leader is sending reminders
        leader.kill9()
        assert await asyncio.wait_for(leader.process.wait(), HANG_GUARD) == -signal.SIGKILL
        held = list(connector.held)
        # The gate opens only once the standby leads: whatever the dead leader had already written to its sockets
        # arrives meanwhile and is refused with the rest, as Teams never finished accepting it. (A reminder the
        # new leader sends before the gate opens is refused too, and sent again after its retry delay.)
        await deployment.until(standby, lambda health: health["scheduler"] == "leader", "took over")
        connector.opened.set()
        reminders = await until_reminders_sent(postgres_url)

        records, _ = await ledger(postgres_url)
        rounds = [r.data["round"] for r in records if r.type == "reminded"]
        assert rounds == sorted(set(rounds)) and 3 in rounds  # each round recorded once, by whichever leader
        assert len([r for r in records if r.type == "campaign_opened"]) == 1
        sent = Counter((r.conversation_id, r.body.get("text") or "") for r in connector.received
                       if r.method == "POST" and (r.body.get("text") or "").startswith("Reminder:"))
        assert held and set(held) <= {conversation for conversation, _ in sent}  # what the dead leader held went
        logs = "\n".join(f"--- {i.name}:\n{i.log.read_text()[-6000:]}" for i in deployment.instances)
        assert all(count == 1 for count in sent.values()), f"{sent}\n{logs}"  # nothing twice
        assert sum(sent.values()) == reminders  # nothing lost: one accepted message per reminder queued
        checked = await check_ledger(postgres_url, Path(), deployment.signer.public_key)
        assert checked.ok, checked.problems
    finally:
        await deployment.stop()
        await connector.stop()


async def until_reminders_sent(database_url: str) -> int:
    """Wait until no reminder is left in the outbox; how many reminders it held."""
    store = PostgresStore(database_url, read_only=True)

    async def poll() -> int:
        while True:
            async with store._connection() as conn:
                rows = await (await conn.execute("SELECT state, doc FROM outbox")).fetchall()
            reminders = [state for state, doc in rows if json.loads(doc)["kind"] == "reminder"]
            if reminders and all(state == "sent" for state in reminders):
                return len(reminders)
            await asyncio.sleep(0.1)
    try:
        return await asyncio.wait_for(poll(), HANG_GUARD)
    finally:
        await store.close()
