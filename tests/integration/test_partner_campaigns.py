"""A CSP partner's customers each get their own campaign and owners, opened only from this run's collection;
the partner's security leads see the roll-up across customers, worst first, paged within chat limits."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from bot.clock import ManualClock
from bot.collection_jobs import Backoff, LocalCollectionJobs, TenantCollection
from bot.collection_worker import WorkerSettings, schedule_customers, work_run
from bot.engine.status import CampaignSummary
from bot.partner_campaigns import PartnerCampaigns, load_partner_policy
from bot.partner_status import CustomerStanding
from bot.store.tinydb_store import TinyDBStore
from dialogs.partner_status import BLOCK_KIT_BLOCKS, PAGE_SIZE, partner_status, rollup_view
from dialogs.render import slack
from dialogs.render.teams import CARD_BUDGET_BYTES, rollup_card
from dialogs.views import Actor, RollupView, StatusView, TextView
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.tenant_generator import NOW, TenantShape, generate_csp
from tests.integration.test_collection_jobs import access_to, partner_view
from tests.unit.test_render_slack import assert_valid

SMALL = TenantShape(users=30, privileged_users=10, crowded_role_holders=5)
SETTINGS = WorkerSettings(tenants_at_once=2, concurrency=4, backoff=Backoff(max_attempts=1))

PARTNER_POLICY = """
[tenant]
id = "{partner}"
name = "Northwind IT Services"

[reviewers]
fallback = ["agent1@northwindit.com"]
security_leads = ["agent0@northwindit.com"]
"""

OVERRIDE = """
[reviewers]
fallback = ["{owner}"]
security_leads = ["agent0@northwindit.com"]
"""


async def test_each_customer_gets_its_own_campaign_and_a_failed_one_leads_the_partner_roll_up(tmp_path: Path) -> None:
    partner, customers = generate_csp(3, SMALL)
    broken, overridden, plain = customers
    people = {u["userPrincipalName"].lower(): uid for uid, u in partner.users.items()}
    policy_dir = tmp_path / "policy"
    (policy_dir / "customers").mkdir(parents=True)
    (policy_dir / "partner.toml").write_text(PARTNER_POLICY.format(partner=partner.tenant_id))
    customer_owner = next(u for u in overridden.users.values() if u["userType"] == "Member")
    (policy_dir / "customers" / f"{overridden.tenant_id}.toml").write_text(
        OVERRIDE.format(owner=customer_owner["userPrincipalName"]))
    clock = ManualClock(NOW)
    store = TinyDBStore(tmp_path / "data", clock=clock)
    jobs = LocalCollectionJobs(tmp_path / "data")
    try:
        async with FakeGraph(partner, *customers) as fake:
            view = await partner_view(fake, partner.tenant_id)
            await schedule_customers(jobs, view, "week-1", clock)
            await work_run(jobs, access_to(fake), "week-1", worker="one", settings=SETTINGS)
            fake.fail(r".", 503, tenant=broken.tenant_id)
            await schedule_customers(jobs, view, "week-2", clock)
            await work_run(jobs, access_to(fake), "week-2", worker="one", settings=SETTINGS)

        campaigns = PartnerCampaigns(store, jobs, load_partner_policy(policy_dir / "partner.toml"), clock,
                                     people=lambda name: people.get(name.lower()))
        report = await campaigns.open_run("week-2")
        again = await PartnerCampaigns(store, jobs, load_partner_policy(policy_dir / "partner.toml"), clock,
                                       people=lambda name: people.get(name.lower())).open_run("week-2")

        lead = Actor(people["agent0@northwindit.com"], "Agent 0")
        rollup = partner_status(campaigns, lead, "")
        one = partner_status(campaigns, lead, overridden.name)
        failed = partner_status(campaigns, lead, broken.tenant_id)
        stranger = partner_status(campaigns, Actor(customer_owner["id"], "Customer owner"), "")
    finally:
        await jobs.close()
        await store.close()

    assert sorted(report.opened) == sorted([overridden.tenant_id, plain.tenant_id])
    assert "failed" in report.not_opened[broken.tenant_id]
    assert sorted(again.already_open) == sorted(report.opened) and not again.opened  # never a second campaign
    # Each customer its own campaign, with its own owners: the override's fallback reviewer in one customer,
    # the partner's in the other.
    own = campaigns.services[overridden.tenant_id]
    shared = campaigns.services[plain.tenant_id]
    assert own.campaigns()[0].campaign.id != shared.campaigns()[0].campaign.id
    assert own.routing.fallback == (customer_owner["id"],)
    assert shared.routing.fallback == (people["agent1@northwindit.com"],)

    assert isinstance(rollup, RollupView)
    assert rollup.rows[0].key == broken.tenant_id and "collection FAILED" in rollup.rows[0].line
    assert "last complete snapshot" in rollup.rows[0].line and "kept" in rollup.rows[0].line
    assert {row.key for row in rollup.rows} == {c.tenant_id for c in customers}
    assert ("collections failed", "1") in {(row.label, row.value) for row in rollup.totals}
    assert isinstance(one, StatusView) and overridden.name in one.title
    assert isinstance(failed, StatusView) and "no review open" in failed.title
    assert isinstance(stranger, TextView)


def _summary(n: int, overdue: int) -> CampaignSummary:
    return CampaignSummary(
        campaign_id=f"tenant-{n}:2026-11-23T09:00", tenant_name=f"Customer {n}", period="2026-11-23T09:00",
        due=NOW + timedelta(days=5), total=400, kept=200, revoked=17, open=183, overdue=overdue, excepted=0,
        expired=0, snapshot_complete=n % 7 != 0, snapshot_missing=(), by_owner=())


def thousand_customers() -> list[CustomerStanding]:
    """1,000 customers with long names, every 97th one's collection failed with a long error: the worst case
    for a roll-up page's size (also rendered by the official Adaptive Cards renderer in tests/e2e)."""
    long_name = "Contoso Pharmaceuticals International Holdings (Europe, Middle East and Africa) Limited"
    standings = []
    for n in range(1000):
        tenant_id = f"{n:08d}-0000-4000-8000-000000000000"
        failed = n % 97 == 0
        collection = TenantCollection(tenant_id, f"{long_name} {n:04d}", "failed" if failed else "done", 5,
                                      "503: " + "the service is unavailable " * 20 if failed else "", NOW)
        standings.append(CustomerStanding(tenant_id, collection.tenant_name, None if failed else _summary(n, n % 13),
                                          collection))
    return standings


def test_the_roll_up_of_a_thousand_customers_pages_within_adaptive_card_and_block_kit_limits() -> None:
    standings = thousand_customers()

    views = [rollup_view(standings, page, NOW) for page in range(1, 41)]

    assert views[0].pages == 1000 // PAGE_SIZE == 40
    assert [row.key for view in views for row in view.rows] == [s.tenant_id for s in sorted(standings, key=CustomerStanding.rank)]
    assert len({row.key for view in views for row in view.rows}) == 1000  # every customer once
    assert all("collection FAILED" in row.line for row in views[0].rows[:11])  # the 11 failed lead
    for view in views:
        card = rollup_card(view)
        assert len(json.dumps(card).encode()) <= CARD_BUDGET_BYTES
        assert len(view.rows) + 3 <= BLOCK_KIT_BLOCKS  # a line per customer + title, totals, footer
        (message,) = slack.render(view)
        assert_valid(message)  # slack_sdk's models, 50 blocks, 3,000 characters a section
        shown = json.dumps(message.blocks, ensure_ascii=False)
        assert "not shown" not in shown  # nothing gave way to the message size: every customer is on its page
        assert all(f"*{slack.escape(row.name)}* · {slack.escape(row.line)}" in shown for row in view.rows)
    assert views[-1].next_hint == "" and views[0].next_hint == "status 2"
    first = json.dumps(slack.render(views[0])[0].blocks, ensure_ascii=False)
    assert "Page 1 of 40. Say 'status 2' for the next." in first and "❗ *" in first  # failed ones marked
