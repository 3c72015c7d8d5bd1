"""A CSP partner's deployment in chat: the partner's security lead says ``status`` in Teams and gets the roll-up
across customers (worst first, the failed collection leading), ``status <customer>`` for one customer's campaign,
and that campaign's chart link serves its PNG; a customer's reviewer asking ``status`` is not shown the roll-up.

Everything goes through the running app: Bot Framework activities posted to /api/messages, replies at the fake
Connector; the customers are collected from the fake Graph by the collection jobs, as in production."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.app import Runtime, build_runtime, create_app
from bot.cli import _runtime as cli_runtime
from bot.config import Settings
from bot.channels.slack import SlackSettings
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.collection_jobs import CollectionJobs, LocalCollectionJobs, PostgresCollectionJobs
from bot.collection_worker import schedule_customers, work_run
from bot.partner_campaigns import load_partner_policy
from bot.policy import load_policy, policy_people
from bot.store.postgres_store import PostgresStore
from checks.graph import collect_tenant
from checks.graph.client import AccessTokenCredential, close_client, graph_client
from checks.snapshot import TenantSnapshot, snapshot_to_dict
from dialogs.conversation import respond
from dialogs.render.slack import SlackMessage
from dialogs.status import campaign_status
from dialogs.views import Actor, RollupView
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.fakes.tenant_generator import NOW, GeneratedTenant, generate_csp
from tests.integration.fake_connector import FakeConnector, card_text
from tests.integration.test_collection_jobs import access_to, partner_view
from tests.integration.test_partner_campaigns import PARTNER_POLICY, SETTINGS, SMALL
from tests.integration.test_teams_messages import Bot
from tests.unit.test_render_slack import assert_valid

RUN = "week-1"
WAIT = aiohttp.ClientTimeout(total=10)  # only reached when the app never answers; never a measure of speed


class PartnerDeployment:
    def __init__(self, bot: Bot, partner: GeneratedTenant, customers: list[GeneratedTenant], broken: GeneratedTenant) -> None:
        self.bot, self.partner, self.customers, self.broken = bot, partner, customers, broken
        self.base = bot.url.removesuffix("/api/messages")

    def person(self, user: dict[str, Any]) -> dict[str, Any]:
        return {"id": f"29:{user['id']}", "name": user["displayName"], "aadObjectId": user["id"]}

    def staff(self, upn: str) -> dict[str, Any]:
        return self.person(next(u for u in self.partner.users.values() if u["userPrincipalName"].lower() == upn))

    async def say(self, person: dict[str, Any], text: str, tenant: str | None = None) -> str:
        """What the bot answered, as text: the cards (and plain messages) it sent back to this message."""
        tenant = tenant or self.partner.tenant_id
        before = len(self.bot.connector.received)
        status = await self.bot.say(text, person=person, conversation={
            "conversationType": "personal", "tenantId": tenant, "id": f"a:personal-{person['id']}"},
            channelData={"tenant": {"id": tenant}})
        assert status in (200, 201), status
        answers = self.bot.connector.received[before:]
        return " | ".join([card_text(card) for r in answers for card in r.cards] + [r.body.get("text") or "" for r in answers])


async def partner_runtime(tmp_path: Path, database_url: str = "",
                          **options: Any) -> tuple[Runtime, GeneratedTenant, list[GeneratedTenant]]:
    """A partner with three customers, the first one's collection failed; the server built for run ``RUN`` as
    ``accessbot serve`` builds it with ACCESSBOT_PARTNER_RUN set (``options`` go to ``build_runtime``). The
    collection's jobs are where the server finds them: in ``database_url``, else in the data directory."""
    partner, customers = generate_csp(3, SMALL)
    policy_file = tmp_path / "policy" / "partner.toml"
    policy_file.parent.mkdir()
    policy_file.write_text(PARTNER_POLICY.format(partner=partner.tenant_id))
    data_dir = tmp_path / "data"
    jobs: CollectionJobs = PostgresCollectionJobs(PostgresStore(database_url)) if database_url else LocalCollectionJobs(data_dir)
    async with FakeGraph(partner, *customers) as fake:
        fake.fail(r".", 503, tenant=customers[0].tenant_id)
        await schedule_customers(jobs, await partner_view(fake, partner.tenant_id), RUN, ManualClock(NOW))
        await work_run(jobs, access_to(fake), RUN, worker="one", settings=SETTINGS)
        client = graph_client(AccessTokenCredential("fake-graph-token"), fake.base_url(partner.tenant_id))
        try:
            # the partner's own tenant, with the staff its policy names (as `accessbot collect` reads them)
            own = await collect_tenant(client, partner.tenant_id, now=NOW, reviewers=policy_people(load_policy(policy_file)))
        finally:
            await close_client(client)
    await jobs.close()
    runtime = await instance(data_dir, policy_file, own, database_url, **options)
    return runtime, partner, customers


async def instance(data_dir: Path, policy_file: Path, own: TenantSnapshot, database_url: str = "", **options: Any) -> Runtime:
    options = {"credentials": BotCredentials(), "clock": ManualClock(NOW), **options}
    return await build_runtime(
        data_dir=data_dir, policy=load_policy(policy_file), snapshot=own,
        partner_policy=load_partner_policy(policy_file), partner_run=RUN, database_url=database_url, **options,
    )


async def serve(runtime: Runtime) -> tuple[web.AppRunner, str]:
    """The app on a free local port; export links name that port. Returns the runner and the base URL."""
    runner = web.AppRunner(create_app(runtime, background=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    runtime.service.links.base_url = base
    return runner, base


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[PartnerDeployment]:
    runtime, partner, customers = await partner_runtime(tmp_path)
    connector = FakeConnector()
    await connector.start()
    runner, base = await serve(runtime)
    yield PartnerDeployment(Bot(runtime, f"{base}/api/messages", connector), partner, customers, customers[0])
    await runner.cleanup()
    await connector.stop()


async def test_a_partner_security_lead_asking_status_in_teams_gets_the_roll_up_across_customers_worst_first(
    deployment: PartnerDeployment,
) -> None:
    lead = deployment.staff("agent0@northwindit.com")

    shown = await deployment.say(lead, "status")

    assert "Reviews across 3 customers" in shown
    assert all(customer.name in shown for customer in deployment.customers)
    # the customer whose collection failed leads, and says so
    assert shown.index(deployment.broken.name) < min(shown.index(c.name) for c in deployment.customers[1:])
    assert "collection FAILED" in shown and "'status <customer>' for one" in shown
    assert "status <customer>" in await deployment.say(lead, "help")  # and help says how


async def test_status_with_a_customers_name_shows_that_customers_campaign_and_its_chart_serves_a_png(
    deployment: PartnerDeployment,
) -> None:
    lead = deployment.staff("agent0@northwindit.com")
    customer = deployment.customers[1]

    shown = await deployment.say(lead, f"status {customer.name}")

    assert f"{customer.name} review" in shown and "Answered" in shown and "Reviews across" not in shown
    # The Slack image's link, made for the card: it is this customer's campaign, drawn by the running app.
    service = deployment.bot.runtime.partner.services[customer.tenant_id]  # type: ignore[union-attr]
    link = campaign_status(service).chart_image  # type: ignore[union-attr]
    async with aiohttp.ClientSession(timeout=WAIT) as session, session.get(link) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "image/png"
        assert (await response.read())[:8] == b"\x89PNG\r\n\x1a\n"


async def test_status_for_a_failed_customer_says_no_review_is_open_and_an_unknown_one_is_named(
    deployment: PartnerDeployment,
) -> None:
    lead = deployment.staff("agent0@northwindit.com")
    failed = await deployment.say(lead, f"status {deployment.broken.tenant_id}")
    unknown = await deployment.say(lead, "status Nobody Of That Name")
    assert "no review open this period" in failed and "failed" in failed
    assert "No customer is called 'Nobody Of That Name'" in unknown


async def test_someone_who_is_not_a_partner_security_lead_gets_the_partners_own_status_not_the_roll_up(
    deployment: PartnerDeployment,
) -> None:
    colleague = deployment.staff("agent1@northwindit.com")  # a fallback reviewer, not a security lead
    shown = await deployment.say(colleague, "status")
    assert "Reviews across" not in shown and "collection FAILED" not in shown
    assert "status <customer>" not in await deployment.say(colleague, "help")


async def test_in_slack_the_partner_lead_gets_the_roll_up_as_block_kit_and_pages_with_status_n(tmp_path: Path) -> None:
    slack = await FakeSlack().start()
    runtime, partner, customers = await partner_runtime(
        tmp_path, slack=SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack.api_url))
    lead = slack.add_user("agent0@northwindit.com")["id"]
    runner, base = await serve(runtime)
    try:
        url = f"{base}/slack/events"
        status, _ = await slack.post_to_app(url, slack.slash_command(lead, "status"))
        assert status == 200
        dm = slack.dm_of(lead)
        async with asyncio.timeout(10):  # Bolt answers after ack(); only reached if it never does
            while not slack.posted(dm):
                await asyncio.sleep(0.01)
        (message,) = slack.posted(dm)
        assert_valid(SlackMessage(message.text, message.blocks))
        shown = json.dumps(message.blocks, ensure_ascii=False)
        assert message.blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Reviews across 3 customers"}}
        assert all(customer.name in shown for customer in customers) and "collection FAILED" in shown
        assert shown.index(customers[0].name) < min(shown.index(c.name) for c in customers[1:])
    finally:
        await runner.cleanup()
        await slack.stop()


async def test_on_postgresql_a_second_instance_takes_up_the_customers_campaigns_and_answers_the_same_roll_up(
    tmp_path: Path, postgres_url: str,
) -> None:
    first, partner, customers = await partner_runtime(tmp_path, postgres_url)
    second = await instance(tmp_path / "second", tmp_path / "policy" / "partner.toml", first.service.snapshot, postgres_url)
    try:
        assert first.partner is not None and second.partner is not None
        opened = {tid: s.campaigns()[0].campaign.id for tid, s in first.partner.services.items()}
        assert sorted(opened) == sorted(c.tenant_id for c in customers[1:])  # none for the failed customer
        # the second instance opened nothing anew: it took up the same campaigns from the shared database
        assert {tid: s.campaigns()[0].campaign.id for tid, s in second.partner.services.items()} == opened
        assert len([c for c in await first.store.list_campaigns() if c.id.split(":")[0] in opened]) == 2
        # and the partner's own tenant, starting on a database that holds the customers' campaigns and catching
        # up with what the other instance recorded, takes up none of them as its own
        await second.service.catch_up()
        assert [s.campaign.tenant_id for s in second.service.campaigns()] == []
        lead = Actor(first.service.resolve_person("agent0@northwindit.com"), "Agent 0")
        one = await respond(first.service, lead, "status", partner=first.partner)
        other = await respond(second.service, lead, "status", partner=second.partner)
        assert isinstance(one, RollupView) and one == other and one.rows[0].key == customers[0].tenant_id
    finally:
        for runtime in (first, second):
            assert runtime.partner is not None
            await runtime.partner.jobs.close()
            await runtime.store.close()


async def test_serve_with_accessbot_partner_run_builds_the_partners_runtime_from_its_settings(tmp_path: Path) -> None:
    built, partner, customers = await partner_runtime(tmp_path)  # collects the run, and the partner's tenant
    own = tmp_path / "partner-snapshot.json"
    own.write_text(json.dumps(snapshot_to_dict(built.service.snapshot)))
    assert built.partner is not None
    await built.partner.jobs.close()
    await built.store.close()
    policy = tmp_path / "policy" / "partner.toml"

    # what `accessbot serve` reads from ACCESSBOT_* (no .env file; what matters here given, not inherited)
    local = {"_env_file": None, "data_dir": tmp_path / "data", "policy": policy, "snapshot": own,
             "database_url": "", "graph_credential": "", "slack_bot_token": ""}
    runtime = await cli_runtime(Settings(**local, partner_run=RUN), None, None, BotCredentials())
    try:
        assert runtime.partner is not None
        assert sorted(runtime.partner.services) == sorted(c.tenant_id for c in customers[1:])
        assert runtime.partner.collections[customers[0].tenant_id].state == "failed"
    finally:
        await runtime.partner.jobs.close()  # type: ignore[union-attr]
        await runtime.store.close()

    single = await cli_runtime(Settings(**local, partner_run=""), None, None, BotCredentials())
    try:
        assert single.partner is None  # without ACCESSBOT_PARTNER_RUN: one tenant's deployment, as before
    finally:
        await single.store.close()
