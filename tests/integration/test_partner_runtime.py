"""A CSP partner's customer campaigns at run time: a reviewer's click on a customer's item reaches that customer's
campaign (Teams with authentication on, signed Slack actions) and redraws its cards; the leader's rounds remind,
escalate and apply the deadline in customers' campaigns; one customer whose clock fails does not stop the others;
a restart rebuilds the customers' campaigns from the ledger read once; on PostgreSQL one follow shows another
instance's answer; ``mine`` lists the customers waiting for a staffer and ``mine <customer>`` opens one.

The far side is faked as elsewhere: the customers are collected from the fake Graph by the collection jobs
(tests/integration/test_partner_chat.py: ``partner_runtime``), Teams is the fake Bot Connector, Slack the fake
Slack, and activities and Slack payloads go through the running app."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import aiohttp
import pytest

from bench.local_auth import OpenIdServer, credentials
from bot.app import Runtime
from bot.channels.slack import SlackSettings
from bot.engine.model import Action, LedgerEvent
from bot.ledger_history import LedgerHistory
from bot.metrics import CUSTOMER_TICK_FAILURES
from bot.service import ReviewService
from bot.store.base import Appended, StoreUnavailable
from bot.store.postgres_store import PostgresStore
from bot.store.tinydb_store import TinyDBStore
from bot.store.write_guard import WriteGuard
from tests.fakes.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.fakes.tenant_generator import GeneratedTenant
from tests.integration.fake_connector import FakeConnector, card_text
from tests.integration.test_partner_chat import PartnerDeployment, instance, partner_runtime, serve
from tests.integration.test_teams_messages import Bot

WAIT = aiohttp.ClientTimeout(total=10)  # only reached when the app never answers; never a measure of speed
REVIEWER = "agent1@northwindit.com"  # the partner's fallback reviewer: every customer item starts with them
LEAD = "agent0@northwindit.com"  # the partner's security lead


def customer_service(runtime: Runtime, customer: GeneratedTenant) -> ReviewService:
    assert runtime.partner is not None
    return runtime.partner.services[customer.tenant_id]


def unflagged_item(runtime: Runtime, customer: GeneratedTenant) -> str:
    """An open item of the customer's campaign that no check flagged (what 'Keep all not flagged' keeps)."""
    (state,) = customer_service(runtime, customer).campaigns()
    return next(item.id for item in sorted(state.items.values(), key=lambda i: i.id)
                if not item.subject.findings and item.exception is None)


async def decisions(runtime: Runtime) -> list[Any]:
    return [r for r in await runtime.store.ledger_records() if r.type == "decision"]


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[PartnerDeployment]:
    runtime, partner, customers = await partner_runtime(tmp_path)
    connector = FakeConnector()
    await connector.start()
    runner, base = await serve(runtime)
    yield PartnerDeployment(Bot(runtime, f"{base}/api/messages", connector), partner, customers, customers[0])
    await runner.cleanup()
    await connector.stop()


# ---- a click on a customer's item ---------------------------------------------------------------------------------

async def test_a_reviewers_keep_on_a_customer_item_in_teams_with_authentication_is_recorded_in_that_customers_campaign(
    tmp_path: Path,
) -> None:
    with OpenIdServer() as channel:
        runtime, partner, customers = await partner_runtime(tmp_path, credentials=credentials(channel.metadata_url))
        runner, base = await serve(runtime)
        try:
            customer = customers[1]
            item_id = unflagged_item(runtime, customer)
            reviewer = runtime.service.resolve_person(REVIEWER)
            activity = _invoke(reviewer or "", "Agent 1", partner.tenant_id, {"item": item_id, "action": "keep"})
            async with aiohttp.ClientSession(timeout=WAIT) as session:
                async with session.post(f"{base}/api/messages", json=activity,
                                        headers={"Authorization": f"Bearer {channel.token()}"}) as response:
                    assert response.status == 200
                    answer = await response.json()
            # the replacement card is the item as it now stands, in the customer's campaign
            shown = card_text(answer["value"])
            assert "Kept by Agent 1" in shown and customer.name in shown
            item, campaign = customer_service(runtime, customer).item(item_id)
            assert item.decision is not None and item.decision.action is Action.KEEP
            assert campaign.tenant_id == customer.tenant_id and not runtime.service.holds_item(item_id)
            (recorded,) = await decisions(runtime)
            assert recorded.data["campaign_id"] == campaign.id and recorded.data["actor_id"] == reviewer
            # and the card of that customer's item is among those the channels redraw after the round
            assert item_id in runtime.channels.directory.take_answered()
        finally:
            await runner.cleanup()


def _invoke(object_id: str, name: str, tenant: str, data: dict[str, Any], verb: str = "decide") -> dict[str, Any]:
    from bench.local_auth import person_activity

    value = {"action": {"type": "Action.Execute", "verb": verb, "data": data}}
    return person_activity(object_id, name, type="invoke", name="adaptiveCard/action", value=value,
                           conversation={"conversationType": "personal", "tenantId": tenant, "id": f"a:{object_id}"},
                           channelData={"tenant": {"id": tenant}})


async def test_a_signed_slack_keep_all_on_a_customers_digest_is_recorded_there_and_redraws_the_teams_card_too(
    tmp_path: Path,
) -> None:
    slack = await FakeSlack().start()
    connector = FakeConnector()
    await connector.start()
    runtime, partner, customers = await partner_runtime(
        tmp_path, slack=SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack.api_url))
    runner, base = await serve(runtime)
    try:
        teams = PartnerDeployment(Bot(runtime, f"{base}/api/messages", connector), partner, customers, customers[0])
        customer = customers[2]
        item_id = unflagged_item(runtime, customer)
        agent = teams.staff(REVIEWER)
        # In Teams the reviewer opens one row of the customer's digest as its own card (Details posts it).
        status, _ = await teams.bot.execute("details", {"item": item_id}, **{"from": agent, "conversation": {
            "conversationType": "personal", "tenantId": partner.tenant_id, "id": f"a:personal-{agent['id']}"},
            "channelData": {"tenant": {"id": partner.tenant_id}}})
        assert status == 200
        (posted,) = [card for card in await runtime.store.cards(item_id) if card.channel == "teams"]

        # In Slack they open that customer's digest and keep everything not flagged.
        member = slack.add_user(REVIEWER)["id"]
        url = f"{base}/slack/events"
        assert (await slack.post_to_app(url, slack.slash_command(member, f"mine {customer.name}")))[0] == 200
        dm = slack.dm_of(member)
        digest = await _until(lambda: next((m for m in slack.posted(dm) if _buttons(m).get("Keep all not flagged")), None))
        assert f"Access review · {customer.name}" in json.dumps(digest.blocks, ensure_ascii=False)
        keep_all = _buttons(digest)["Keep all not flagged"]
        assert json.loads(keep_all["value"])["tenant"] == customer.tenant_id  # the digest names whose it is
        assert (await slack.post_to_app(url, slack.block_actions(member, keep_all["action_id"], channel=dm, ts=digest.ts)))[0] == 200
        await _until(lambda: slack.message(dm, digest.ts).edits)  # the digest redrawn in place

        service = customer_service(runtime, customer)
        item, campaign = service.item(item_id)
        assert item.decision is not None and item.decision.action is Action.KEEP
        kept = await decisions(runtime)
        assert kept and {r.data["campaign_id"] for r in kept} == {campaign.id}
        # the round's card upkeep redraws the Teams card of that customer's item, showing the answer
        await runtime.channels.refresh_answered_cards()
        redrawn = [r for r in connector.received if r.method == "PUT" and r.activity_id == posted.message_id]
        assert redrawn and "Kept by" in card_text(redrawn[-1].cards[0])
    finally:
        await runner.cleanup()
        await connector.stop()
        await slack.stop()


def _buttons(message: Any) -> dict[str, dict[str, Any]]:
    return {element["text"]["text"]: element for block in message.blocks if block["type"] == "actions"
            for element in block["elements"]}


async def _until(found: Any) -> Any:
    async with asyncio.timeout(10):  # Bolt answers after ack(); only reached if it never does
        while not (value := found()):
            await asyncio.sleep(0.01)
    return value


async def test_a_partner_security_lead_is_not_a_customers_reviewer_because_they_lead(deployment: PartnerDeployment) -> None:
    runtime = deployment.bot.runtime
    customer = deployment.customers[1]
    item_id = unflagged_item(runtime, customer)
    lead = deployment.staff(LEAD)
    status, body = await deployment.bot.execute("decide", {"item": item_id, "action": "keep"}, **{
        "from": lead, "conversation": {"conversationType": "personal", "tenantId": deployment.partner.tenant_id,
                                       "id": f"a:personal-{lead['id']}"},
        "channelData": {"tenant": {"id": deployment.partner.tenant_id}}})
    assert status == 200 and "Kept" not in card_text(body["value"])
    assert await decisions(runtime) == []
    assert customer_service(runtime, customer).item(item_id)[0].decision is None


async def test_a_customers_review_request_is_not_sent_once_the_reviewer_looked_at_that_customers_items(
    deployment: PartnerDeployment,
) -> None:
    runtime = deployment.bot.runtime
    reviewer = deployment.staff(REVIEWER)
    looked, other = deployment.customers[1], deployment.customers[2]
    await deployment.say(reviewer, "help")  # their conversation is stored: the requests can reach them
    runtime.service.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    await deployment.say(reviewer, f"mine {looked.name}")

    await runtime.scheduler.deliver()

    sent = deployment.bot.connector.texts_in(f"a:personal-{reviewer['id']}")
    assert not [text for text in sent if f"The {looked.name} access review is open" in text]  # stale: dropped
    assert [text for text in sent if f"The {other.name} access review is open" in text]  # not looked at: sent


# ---- the clock ----------------------------------------------------------------------------------------------------

def delivered(connector: FakeConnector, person: dict[str, Any], containing: str) -> list[str]:
    return [text for text in connector.texts_in(f"a:personal-{person['id']}") if containing in text]


async def at(runtime: Runtime, opened: Any, days: float) -> None:
    clock = runtime.service.clock
    clock.advance(opened + timedelta(days=days) - clock.now())  # type: ignore[attr-defined]
    await runtime.scheduler.run_once()


async def test_customer_campaigns_are_reminded_escalated_and_expire_in_the_leaders_rounds_naming_the_customer(
    deployment: PartnerDeployment,
) -> None:
    runtime = deployment.bot.runtime
    reviewer, lead = deployment.staff(REVIEWER), deployment.staff(LEAD)
    for person in (reviewer, lead):  # they have talked to the bot: their conversations are stored
        await deployment.say(person, "help")
    customer = deployment.customers[1]
    (state,) = customer_service(runtime, customer).campaigns()
    opened = state.campaign.opened_at

    await at(runtime, opened, 1.01)
    reminders = delivered(deployment.bot.connector, reviewer, "Reminder:")
    assert {name for name in (c.name for c in deployment.customers[1:]) if any(name in r for r in reminders)} == {
        c.name for c in deployment.customers[1:]}  # one reminder per customer, each naming its customer
    assert [r.type for r in await runtime.store.ledger_records_of(state.campaign.id)].count("reminded") == 1

    await at(runtime, opened, 4.01)  # the security leads' stage
    assert delivered(deployment.bot.connector, lead, f"of the {customer.name} review are still unanswered")

    await at(runtime, opened, 5.01)  # the deadline: the policy escalates, the items stay open, marked overdue
    assert delivered(deployment.bot.connector, lead, f"of the {customer.name} review are past their deadline")
    assert all(item.overdue for item in state.open_items())
    await at(runtime, opened, 5.02)  # a later round repeats nothing
    assert len(delivered(deployment.bot.connector, lead, f"of the {customer.name} review are past their deadline")) == 1


class RefusingStore(WriteGuard):
    """A store that cannot write for one customer (its disk or database refusing): every append fails."""

    async def append_if_current(self, events: Sequence[LedgerEvent], expected: Any, at: Any) -> Appended:
        raise StoreUnavailable("this customer's writes fail")


async def test_one_customer_whose_clock_fails_does_not_stop_the_other_customers(deployment: PartnerDeployment) -> None:
    runtime = deployment.bot.runtime
    failing, healthy = deployment.customers[1], deployment.customers[2]
    broken = customer_service(runtime, failing)
    broken.store = RefusingStore(broken.store)
    (state,) = customer_service(runtime, healthy).campaigns()
    failures = CUSTOMER_TICK_FAILURES._value.get()

    await at(runtime, state.campaign.opened_at, 1.01)

    assert CUSTOMER_TICK_FAILURES._value.get() == failures + 1
    assert customer_service(runtime, healthy).campaigns()[0].reminder_round == 1
    assert broken.campaigns()[0].reminder_round == 0
    broken.store = broken.store.inner  # type: ignore[attr-defined]  # the store writes again: the next round catches up
    await at(runtime, state.campaign.opened_at, 1.02)
    assert broken.campaigns()[0].reminder_round == 1


# ---- restart and following ----------------------------------------------------------------------------------------

async def _restart_keeps_customer_decisions(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first, partner, customers = await partner_runtime(tmp_path, database_url)
    reviewer = first.service.resolve_person(REVIEWER) or ""
    answered = {}
    for customer in customers[1:]:
        item_id = unflagged_item(first, customer)
        result = await customer_service(first, customer).decide(_keep(item_id, reviewer))
        assert result.outcome.verdict.value == "recorded"
        answered[customer.tenant_id] = item_id
    assert first.partner is not None
    await first.partner.jobs.close()
    await first.store.close()

    reads: list[str] = []
    backend = PostgresStore if database_url else TinyDBStore
    whole = backend.ledger_records

    async def counted(store: Any) -> Any:
        reads.append("ledger")
        return await whole(store)

    monkeypatch.setattr(backend, "ledger_records", counted)
    pages = backend.ledger_records_after

    async def counted_pages(store: Any, seq: int, limit: int) -> Any:
        if seq == 0:
            reads.append("from the first record")  # a service replaying the ledger on its own
        return await pages(store, seq, limit)

    monkeypatch.setattr(backend, "ledger_records_after", counted_pages)
    second = await instance(tmp_path / "data", tmp_path / "policy" / "partner.toml", first.service.snapshot, database_url)
    try:
        assert reads == ["ledger"]  # once for the partner's own service and every customer's
        for customer in customers[1:]:
            item, _ = customer_service(second, customer).item(answered[customer.tenant_id])
            assert item.decision is not None and item.decision.action is Action.KEEP
    finally:
        assert second.partner is not None
        await second.partner.jobs.close()
        await second.store.close()


def _keep(item_id: str, reviewer: str) -> Any:
    from bot.engine.decisions import DecisionRequest

    return DecisionRequest(item_id, Action.KEEP, reviewer, "Agent 1", "")


async def test_a_restart_rebuilds_customer_decisions_from_the_ledger_read_once_on_tinydb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _restart_keeps_customer_decisions(tmp_path, "", monkeypatch)


async def test_a_restart_rebuilds_customer_decisions_from_the_ledger_read_once_on_postgresql(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _restart_keeps_customer_decisions(tmp_path, postgres_url, monkeypatch)


async def test_on_postgresql_an_answer_on_instance_a_shows_in_instance_bs_customer_campaign_after_one_follow(
    tmp_path: Path, postgres_url: str,
) -> None:
    first, partner, customers = await partner_runtime(tmp_path, postgres_url)
    second = await instance(tmp_path / "second", tmp_path / "policy" / "partner.toml", first.service.snapshot, postgres_url)
    try:
        assert first.partner is not None and second.partner is not None
        customer = customers[2]
        item_id = unflagged_item(first, customer)
        reviewer = first.service.resolve_person(REVIEWER) or ""
        await customer_service(first, customer).decide(_keep(item_id, reviewer))
        pages = second.partner.follower.pages_read

        await second.service.catch_up()  # what the scheduler's follow poll does

        assert second.partner.follower.pages_read == pages + 1  # one read for every service
        item, _ = customer_service(second, customer).item(item_id)
        assert item.decision is not None and item.decision.actor_id == reviewer
        assert item_id in customer_service(second, customer).decided_since  # so its cards are redrawn there too
        other = customer_service(second, customers[1])
        assert all(i.decision is None for i in other.campaigns()[0].items.values())
    finally:
        for runtime in (first, second):
            assert runtime.partner is not None
            await runtime.partner.jobs.close()
            await runtime.store.close()


# ---- mine -----------------------------------------------------------------------------------------------------------

async def test_mine_lists_the_customers_waiting_for_a_staffer_and_mine_customer_opens_that_customers_digest(
    deployment: PartnerDeployment,
) -> None:
    reviewer = deployment.staff(REVIEWER)
    waiting = [c for c in deployment.customers[1:]]

    shown = await deployment.say(reviewer, "mine")
    assert f"Your reviews in {len(waiting)} customers" in shown
    assert all(c.name in shown for c in waiting) and deployment.broken.name not in shown
    assert "mine <customer>" in shown

    one = await deployment.say(reviewer, f"mine {waiting[0].name}")
    assert f"Access review · {waiting[0].name}" in one and waiting[1].name not in one
    # its "Keep all not flagged" names the customer, and pressing it answers in that customer's campaign only
    (keep_all,) = [action for r in deployment.bot.connector.received for card in r.cards
                   for action in card.get("actions", []) if action.get("title") == "Keep all not flagged"]
    assert keep_all["data"] == {"keep_unflagged": True, "tenant": waiting[0].tenant_id}
    status, body = await deployment.bot.execute("digest", keep_all["data"], **{"from": reviewer, "conversation": {
        "conversationType": "personal", "tenantId": deployment.partner.tenant_id, "id": f"a:personal-{reviewer['id']}"},
        "channelData": {"tenant": {"id": deployment.partner.tenant_id}}})
    assert status == 200 and "Recorded" in card_text(body["value"])
    runtime = deployment.bot.runtime
    kept = {r.data["campaign_id"] for r in await decisions(runtime)}
    assert kept == {customer_service(runtime, waiting[0]).campaigns()[0].campaign.id}
    # someone with nothing in any customer's campaign gets their own answer, not a customer list
    lead = await deployment.say(deployment.staff(LEAD), "mine")
    assert "Your reviews in" not in lead
    assert "mine <customer>" in await deployment.say(reviewer, "help")


async def test_mine_orders_the_customers_worst_first(deployment: PartnerDeployment) -> None:
    runtime = deployment.bot.runtime
    nearly_done, untouched = deployment.customers[1], deployment.customers[2]
    reviewer = runtime.service.resolve_person(REVIEWER) or ""
    service = customer_service(runtime, nearly_done)
    for item, _ in service.waiting_for(reviewer)[:-1]:  # all answered but one
        await service.decide(_keep(item.id, reviewer))

    shown = await deployment.say(deployment.staff(REVIEWER), "mine")
    assert shown.index(untouched.name) < shown.index(nearly_done.name)
    assert "1 waiting" in shown

    clock = runtime.service.clock  # past the deadline every item still open is overdue, and says so
    clock.advance(service.campaigns()[0].campaign.due + timedelta(minutes=1) - clock.now())  # type: ignore[attr-defined]
    assert "1 waiting, 1 overdue" in await deployment.say(deployment.staff(REVIEWER), "mine")
