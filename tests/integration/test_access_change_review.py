"""A review the moment access changes: the directory audit log, read from a local Graph every few minutes, opens
a single-item review for the owner, escalated in hours, once per audit event — across a duplicate entry in the
log and a restart of the server. Driven through the running app's /api/messages on a manual clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from bot.app import Runtime, build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.ledger import verify
from checks.graph import GraphCredentials, RetrySettings, close_client, graph_client
from checks.graph.batching import GraphReader
from checks.graph.directory_audits import read_directory_audits
from tests.fakes import audit_events as audit
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.tenant_generator import GeneratedTenant
from tests.integration.fake_connector import FakeConnector, card_text
from tests.integration.test_teams_messages import ALEX, MONDAY, TENANT, Bot, serve_demo

PATTI = {"id": "29:1patti", "name": "Patti Fernandez", "aadObjectId": "f66eb8b7-79c8-407b-8b95-85a879f2381e"}
LYNNE = "0352574e-9ccb-4a60-b927-66c30c6c9a04"
ADELE = "ba898b2a-9794-415b-a3df-cf7b824da266"
PRADEEP = "1c4a4351-e6dd-4862-ac6d-3132cb0fe48e"
TUESDAY_10 = MONDAY.replace(day=24, hour=10, minute=0)
FAST = RetrySettings(max_retries=3, delay=0.0, backoff_factor=0.01, backoff_max=0.05, max_retry_after=5)
QUESTION = "Global Administrator granted to adelev@contoso.com by christiec@contoso.com at 2026-11-24 10:00 UTC — expected?"


class Served:
    """The fake Graph holding the demo tenant's audit log, the fake Bot Connector, and the bot on top."""

    def __init__(self, tmp_path: Path, graph: FakeGraph, tenant: GeneratedTenant, connector: FakeConnector) -> None:
        self.tmp_path = tmp_path
        self.graph = graph
        self.tenant = tenant
        self.connector = connector
        self.clock = ManualClock(MONDAY)
        self.bot: Bot | None = None
        self._runner: web.AppRunner | None = None

    async def read(self, since: datetime) -> list[dict[str, Any]]:
        """The server's audit reader, pointed at the fake Graph (what bot.collection builds from settings)."""
        client = graph_client(GraphCredentials("access_token", TENANT, access_token="fake-token"),
                              self.graph.base_url(TENANT), retry=FAST, timeout=10)
        try:
            return await read_directory_audits(GraphReader(client, retry=FAST), since)
        finally:
            await close_client(client)

    async def start(self) -> Bot:
        runtime, self._runner, url = await serve_demo(self.tmp_path, clock=self.clock, audit_reader=self.read,
                                                      change_poll_every=timedelta(minutes=5))
        self.bot = Bot(runtime, url, self.connector)
        return self.bot

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def round_at(self, moment: datetime) -> None:
        self.clock._now = moment  # ManualClock moves only forward in these tests
        assert self.bot is not None
        await self.bot.runtime.scheduler.run_once()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    tenant = GeneratedTenant(tenant_id=TENANT, name="Contoso", domain="contoso.com")
    connector = FakeConnector()
    await connector.start()
    async with FakeGraph(tenant, page_size=2) as graph:
        world = Served(tmp_path, graph, tenant, connector)
        await world.start()
        yield world
        await world.stop()
    await connector.stop()


def change_reviews(runtime: Runtime) -> list[Any]:
    return [s for s in runtime.service.campaigns() if s.campaign.period.startswith("change:")]


async def outbox(runtime: Runtime) -> list[Any]:
    return await runtime.store.due_messages(runtime.service.clock.now() + timedelta(days=30), 1000)


async def test_a_new_global_administrator_is_asked_at_once_escalated_in_hours_and_never_asked_twice(served: Served) -> None:
    granted = audit.role_granted("Directory_GA_adele", TUESDAY_10, ADELE, "adelev@contoso.com")
    served.tenant.directory_audits += [
        audit.noise("Directory_noise_1", TUESDAY_10 - timedelta(minutes=3)),
        audit.role_granted("Directory_reports_reader", TUESDAY_10 - timedelta(minutes=2), ADELE, "adelev@contoso.com",
                           role="Reports Reader", template="4a5d8f65-41da-4de4-8968-e035b65339cf"),
        audit.role_granted("Directory_failed", TUESDAY_10 - timedelta(minutes=1), ADELE, "adelev@contoso.com",
                           result="failure"),
        granted,
        audit.noise("Directory_noise_2", TUESDAY_10 + timedelta(minutes=1)),
    ]
    served.graph.throttle(r"^/auditLogs/directoryAudits$", times=1, retry_after="1")
    assert served.bot is not None
    bot = served.bot

    await served.round_at(TUESDAY_10 + timedelta(minutes=4))

    [review] = change_reviews(bot.runtime)
    [item] = review.items.values()
    assert item.subject.title == QUESTION
    assert item.reviewers == (ALEX,)  # the owner of Global Administrator in the policy
    assert served.graph.sent[("top", 429)] == 1  # throttled once, answered after its Retry-After
    assert served.graph.requests["GET /auditLogs/directoryAudits"] >= 4  # pages of two, followed to the end
    requests = [m for m in await outbox(bot.runtime) if m.kind == "review_request" and item.id in m.payload["item_ids"]]
    assert [m.recipient for m in requests] == [ALEX]
    assert QUESTION in requests[0].payload["text"]

    await bot.say("my reviews")
    assert any(QUESTION in card_text(card) for card in bot.connector.cards())

    # The same event served again (the next read overlaps the last, and here the log even repeats the entry).
    served.tenant.directory_audits.append(dict(granted))
    await served.round_at(TUESDAY_10 + timedelta(minutes=10))
    assert len(change_reviews(bot.runtime)) == 1
    records = await bot.runtime.store.ledger_records()
    assert [r.data["audit_event_id"] for r in records if r.type == "access_change"] == ["Directory_GA_adele"]

    # A restart in the middle: a new process on the same data, while a second change arrives.
    await served.stop()
    served.tenant.directory_audits.append(
        audit.security_info("Directory_mfa_pradeep", TUESDAY_10 + timedelta(minutes=20), PRADEEP, "pradeepg@contoso.com"))
    bot = await served.start()
    await served.round_at(TUESDAY_10 + timedelta(minutes=25))
    reviews = change_reviews(bot.runtime)
    assert sorted(r.campaign.period for r in reviews) == ["change:Directory_GA_adele", "change:Directory_mfa_pradeep"]
    mfa = next(i for r in reviews for i in r.items.values() if "pradeepg" in i.subject.title)
    assert mfa.reviewers == (PATTI["aadObjectId"],)  # the owner of Pradeep's Exchange Administrator role
    records = await bot.runtime.store.ledger_records()
    assert sorted(r.data["audit_event_id"] for r in records if r.type == "access_change") == [
        "Directory_GA_adele", "Directory_mfa_pradeep"]

    # Unanswered for the policy's change_escalate (4 hours by default): the security leads have it, the weekly
    # campaign's items (escalated after days) do not move.
    await served.round_at(TUESDAY_10 + timedelta(hours=4, minutes=5))
    ga_item = bot.runtime.service.item(item.id)[0]
    assert ga_item.stage.value == "security_leads" and set(ga_item.reviewers) == {ALEX, LYNNE}
    weekly = next(s for s in bot.runtime.service.campaigns() if not s.campaign.period.startswith("change:"))
    assert all(i.stage.value == "owner" for i in weekly.items.values())
    records = await bot.runtime.store.ledger_records()
    [escalated] = [r for r in records if r.type == "escalated" and item.id in r.data["item_ids"]]
    assert escalated.data["stage"] == "security_leads"
    told = [n for r in records for n in r.data.get("notices", ()) if item.id in n["item_ids"] and n["kind"] == "escalation"]
    assert [n["to"] for n in told] == ["@security_leads"]  # queued once for each lead

    # Lynne (security lead) answers it from the card; 'status' shows what is still waiting and that the log is read.
    status, answer = await bot.execute("decide", {"item": item.id, "action": "keep", "justification": ""},
                                       person={"id": "29:1lynne", "name": "Lynne Robbins", "aadObjectId": LYNNE})
    assert status == 200 and "Recorded in the attestation ledger." in card_text(answer["value"])
    await bot.say("status")
    shown = card_text(bot.connector.cards()[-1])
    assert "Access changes awaiting an answer" in shown and "Access changes watched" in shown
    assert verify(await bot.runtime.store.ledger_records()).ok


async def test_status_says_the_audit_log_is_hidden_when_the_licence_does_not_expose_it(served: Served) -> None:
    served.tenant.premium = False
    served.tenant.directory_audits.append(audit.role_granted("Directory_GA", TUESDAY_10, ADELE, "adelev@contoso.com"))
    assert served.bot is not None
    await served.round_at(TUESDAY_10 + timedelta(minutes=5))
    assert change_reviews(served.bot.runtime) == []
    await served.bot.say("status")
    shown = card_text(served.bot.connector.cards()[-1])
    assert "Access changes are not watched" in shown and "403 Authorization_RequestDenied" in shown
    assert "AuditLog.Read.All" in shown


async def test_a_failing_audit_log_is_said_in_status_and_read_again_from_the_same_cursor(served: Served) -> None:
    served.tenant.directory_audits.append(audit.role_granted("Directory_GA", TUESDAY_10, ADELE, "adelev@contoso.com"))
    outage = served.graph.fail(r"^/auditLogs/directoryAudits$", 503)
    assert served.bot is not None
    await served.round_at(TUESDAY_10 + timedelta(minutes=5))
    await served.bot.say("status")
    assert "reading the directory audit log failed" in card_text(served.bot.connector.cards()[-1])
    assert change_reviews(served.bot.runtime) == []

    served.graph.faults.remove(outage)
    await served.round_at(TUESDAY_10 + timedelta(minutes=11))  # the next read covers what the failed one missed
    assert [r.campaign.period for r in change_reviews(served.bot.runtime)] == ["change:Directory_GA"]


async def test_two_servers_on_one_database_reading_the_same_log_ask_about_an_event_once(
    tmp_path: Path, postgres_url: str
) -> None:
    tenant = GeneratedTenant(tenant_id=TENANT, name="Contoso", domain="contoso.com")
    tenant.directory_audits.append(audit.role_granted("Directory_GA", TUESDAY_10, ADELE, "adelev@contoso.com"))
    async with FakeGraph(tenant) as graph:
        worlds = [Served(tmp_path / name, graph, tenant, FakeConnector()) for name in ("one", "two")]
        policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
        runtimes = []
        for world in worlds:
            world.clock = ManualClock(TUESDAY_10 + timedelta(minutes=5))
            runtimes.append(await build_runtime(
                data_dir=world.tmp_path, policy=policy, snapshot=snapshot, clock=world.clock,
                credentials=BotCredentials(), database_url=postgres_url, audit_reader=world.read,
            ))
        try:
            await asyncio.wait_for(asyncio.gather(*(r.scheduler.watch_changes() for r in runtimes)), 60)
            records = await runtimes[0].store.ledger_records()
            assert [r.data["audit_event_id"] for r in records if r.type == "access_change"] == ["Directory_GA"]
            assert [r.type for r in records].count("campaign_opened") == 1
            # The one that lost the race holds the review too, at the latest on its next read (if the winner had
            # not yet recorded the opening, finishing it was the winner's business). Either may have lost it.
            for world in worlds:
                world.clock.advance(timedelta(minutes=5))
            await asyncio.wait_for(asyncio.gather(*(r.scheduler.watch_changes() for r in runtimes)), 60)
            assert [[s.campaign.period for s in change_reviews(r)] for r in runtimes] == [["change:Directory_GA"]] * 2
            assert [r.type for r in await runtimes[1].store.ledger_records()].count("campaign_opened") == 1
        finally:
            for runtime in runtimes:
                await runtime.store.close()


async def test_keep_all_not_flagged_in_the_digest_leaves_an_access_change_to_its_own_answer(served: Served) -> None:
    served.tenant.directory_audits.append(audit.role_granted("Directory_GA", TUESDAY_10, ADELE, "adelev@contoso.com"))
    assert served.bot is not None
    bot = served.bot
    await served.round_at(TUESDAY_10 + timedelta(minutes=5))
    [review] = change_reviews(bot.runtime)
    [change_item] = review.items

    status, body = await bot.execute("digest", {"keep_unflagged": True})
    assert status == 200
    kept = {r.data["item_id"] for r in await bot.runtime.store.ledger_records() if r.type == "decision"}
    assert kept and change_item not in kept
    assert bot.runtime.service.item(change_item)[0].is_open
    assert QUESTION in card_text(body["value"])  # still listed, first, waiting for its answer
