"""Two instances of the service on one PostgreSQL schema, in one process (each with its own store and its own
view of the ledger): the store, not either instance's memory, decides which answer stands, which opening and
which reminder is recorded; and only one instance leads the scheduled rounds at a time.

The same with real `accessbot serve` processes, and a leader killed with -9, is tests/reliability/test_two_instances.py."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import AsyncIterator

import pytest

from bot.app import load_inputs
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.decisions import DecisionRequest, Verdict
from bot.engine.model import Action
from bot.leadership import PostgresLeadership
from bot.ledger_signing import LedgerSigner, write_key_pair
from bot.service import ReviewService
from bot.store.postgres_store import PostgresStore
from tests.integration.test_teams_messages import MONDAY
from tests.postgres import drop_schema, new_schema, server_url

POLICY, SNAPSHOT = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)


class Instances:
    """Services on one schema, each with its own store (pool) and clock, all signing with one key."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.signer = LedgerSigner.generate()
        self.stores: list[PostgresStore] = []

    async def start(self, clock: ManualClock | None = None) -> ReviewService:
        clock = clock or ManualClock(MONDAY)
        store = PostgresStore(self.url, signer=self.signer, clock=clock)
        self.stores.append(store)
        service = ReviewService(store, POLICY, SNAPSHOT, clock)
        await service.start()
        return service

    async def records(self, kind: str) -> list[dict]:
        reader = PostgresStore(self.url, read_only=True)
        try:
            return [record.data for record in await reader.ledger_records() if record.type == kind]
        finally:
            await reader.close()

    async def close(self) -> None:
        for store in self.stores:
            await store.close()


@pytest.fixture
async def instances(postgres_url: str) -> AsyncIterator[Instances]:
    running = Instances(postgres_url)
    yield running
    await running.close()


def answerable(service: ReviewService) -> list[tuple[str, str]]:
    """(item id, a reviewer who may answer it) for every open item of the newest campaign that may be revoked
    (a break-glass account never is)."""
    state = service.campaigns()[0]
    found = []
    for item in state.open_items():
        if item.subject.break_glass:
            continue
        reviewer = next((r for r in item.reviewers if service.may_answer(r, item)), None)
        if reviewer is not None:
            found.append((item.id, reviewer))
    return found


async def test_conflicting_answers_on_two_instances_at_once_record_one_and_tell_the_other_who_answered(
    instances: Instances
) -> None:
    one = await instances.start()
    await one.open_current_campaign()
    two = await instances.start()  # holds the campaign as of its start; from then on each decides alone
    items = answerable(one)
    assert len(items) >= 4

    def request(item_id: str, reviewer: str, action: Action) -> DecisionRequest:
        return DecisionRequest(item_id, action, reviewer, SNAPSHOT.display_name(reviewer),
                               justification="Left the team in October; no longer needs it.")

    results = await asyncio.gather(*(
        service.decide(request(item_id, reviewer, action))
        for item_id, reviewer in items
        for service, action in ((one, Action.KEEP), (two, Action.REVOKE))
    ))

    for n, (item_id, reviewer) in enumerate(items):
        kept, revoked = results[2 * n], results[2 * n + 1]
        verdicts = sorted((kept.outcome.verdict.value, revoked.outcome.verdict.value))
        assert verdicts == [Verdict.CONFLICT.value, Verdict.RECORDED.value], (item_id, verdicts)
        loser = kept if kept.outcome.verdict is Verdict.CONFLICT else revoked
        assert "already answered" in loser.outcome.message
        assert SNAPSHOT.display_name(reviewer) in loser.outcome.message
        # both instances now show the answer that stands
        assert one.item(item_id)[0].decision == two.item(item_id)[0].decision
    decisions = await instances.records("decision")
    assert sorted(d["item_id"] for d in decisions) == sorted(item_id for item_id, _ in items)


async def test_an_answer_given_on_one_instance_is_seen_on_the_other_after_it_catches_up(instances: Instances) -> None:
    one = await instances.start()
    await one.open_current_campaign()
    two = await instances.start()
    item_id, reviewer = answerable(one)[0]
    await one.decide(DecisionRequest(item_id, Action.KEEP, reviewer, SNAPSHOT.display_name(reviewer)))
    assert two.item(item_id)[0].is_open  # not followed yet

    assert await two.catch_up() >= 1
    assert not two.item(item_id)[0].is_open
    assert item_id in two.decided_since  # so its channel redraws the item's cards
    assert await two.catch_up() == 0


async def test_a_campaign_opened_by_another_instance_is_adopted_not_opened_twice(instances: Instances) -> None:
    one = await instances.start()
    two = await instances.start()  # started before anything was opened
    (_, opened_one), (_, opened_two) = await asyncio.gather(one.open_current_campaign(), two.open_current_campaign())

    assert sorted((opened_one, opened_two)) == [False, True]
    assert len(await instances.records("campaign_opened")) == 1
    assert set(one.campaigns()[0].items) == set(two.campaigns()[0].items)


async def test_a_reminder_round_due_on_two_instances_is_recorded_once(instances: Instances) -> None:
    clock = ManualClock(MONDAY)
    one = await instances.start(clock)
    await one.open_current_campaign()
    two = await instances.start(clock)
    clock.advance(POLICY.reminder_every + timedelta(minutes=1))

    await asyncio.gather(one.tick(), two.tick())

    assert [r["round"] for r in await instances.records("reminded")] == [1]
    assert one.campaigns()[0].reminder_round == two.campaigns()[0].reminder_round == 1


async def test_a_sign_off_on_one_instance_locks_answers_on_the_other(instances: Instances) -> None:
    one = await instances.start()
    await one.open_current_campaign()
    two = await instances.start()
    lead = next(iter(one.routing.security_leads))
    item_id, reviewer = answerable(two)[0]

    signed = await one.sign_off(lead, SNAPSHOT.display_name(lead), confirmed=True)
    late = await two.decide(DecisionRequest(item_id, Action.KEEP, reviewer, SNAPSHOT.display_name(reviewer)))

    assert signed.ok
    assert late.outcome.verdict is Verdict.REFUSED and "signed off" in late.outcome.message
    assert not [d for d in await instances.records("decision") if not d.get("system")]


async def test_one_instance_leads_per_database_schema_until_it_lets_go() -> None:
    url = server_url()
    schemas = [new_schema(url) for _ in range(2)]
    leaders = [PostgresLeadership(scoped, retry_seconds=0.5) for _, scoped in schemas for _ in range(2)]
    try:
        first, second, other_first, other_second = leaders
        assert await first.try_acquire()
        assert not await second.try_acquire()
        assert await other_first.try_acquire()  # another schema (deployment, test) has a leader of its own
        assert not await other_second.try_acquire()

        await first.close()  # its session ends, and the server frees the lock as it finishes ending it
        await asyncio.wait_for(second.acquire(), 60)  # a hang guard, not a measure: acquire retries every 0.5 s
        assert second.leading and not first.leading
    finally:
        for leader in leaders:
            await leader.close()
        for schema, _ in schemas:
            drop_schema(url, schema)


def test_serve_on_postgresql_refuses_a_per_process_export_secret_or_address(postgres_url: str, tmp_path: Path) -> None:
    key = tmp_path / "keys" / "ledger.key"
    key.parent.mkdir()
    write_key_pair(LedgerSigner.generate(), key)
    base = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSBOT_")}
    base.update(ACCESSBOT_DATABASE_URL=postgres_url, ACCESSBOT_LEDGER_KEY_FILE=str(key))

    def serve(**settings: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "accessbot"), "serve", "--no-auth", "--policy", str(DEMO_POLICY),
             "--snapshot", str(DEMO_SNAPSHOT), "--data-dir", str(tmp_path / "data"), "--port", "1"],
            env={**base, **settings}, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    neither = serve()
    assert neither.returncode != 0
    assert "ACCESSBOT_EXPORT_SECRET and ACCESSBOT_PUBLIC_URL must be set on PostgreSQL" in neither.stdout + neither.stderr
    no_address = serve(ACCESSBOT_EXPORT_SECRET="one secret for every instance")
    assert no_address.returncode != 0
    said = no_address.stdout + no_address.stderr
    assert "ACCESSBOT_PUBLIC_URL must be set" in said and "EXPORT_SECRET" not in said
