"""A CSP partner's collection runs followed by ``serve`` itself: the leader starts each period's full run once (a
twin refused by the store, across instances on the real PostgreSQL and after a restart), the instances collect it
in the background, and when it settles the customers' campaigns open without a restart, in each customer's own
service; a customer whose collection failed gets none and leads the roll-up. A change check never opens campaigns.

The partner and its customers are the fake Graph's; time is a manual clock (the schedule's periods are crossed by
moving it), and every step the background would take is taken here, in order."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import Runtime, build_runtime, create_app
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.collection import GraphAccess
from bot.collection_jobs import NotAFullRun
from bot.collection_worker import schedule_customers, work_run
from bot.partner_campaigns import load_partner_policy
from bot.engine.decisions import DecisionRequest
from bot.engine.model import Action, AssignmentType, SubjectKind
from bot.partner_runs import RunSettings
from bot.policy import load_policy, policy_people
from bot.remediation.workflow import Status
from checks.graph import collect_tenant
from checks.graph.client import AccessTokenCredential, close_client, graph_client
from checks.snapshot import TenantSnapshot
from dialogs.partner_status import partner_status
from dialogs.views import Actor, RollupView
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.fake_graph_writes import FakeGraphWrites
from tests.fakes.tenant_generator import NOW, GeneratedTenant, generate_csp
from tests.integration.test_collection_jobs import access_to, partner_view
from tests.integration.test_partner_campaigns import PARTNER_POLICY, SETTINGS, SMALL

THIS_PERIOD = "2026-11-16T09:00"  # NOW is Monday 08:00 UTC: the default schedule's period began last Monday 09:00
NEXT_PERIOD = "2026-11-23T09:00"
WAIT_SECONDS = 120  # only reached when the background never gets there; never a measure of speed


class Partner:
    """The fake Graph's partner with three customers (the first one's Graph answers only errors), its policy file,
    and its own tenant's snapshot, as `accessbot serve` on a partner's deployment gets them."""

    def __init__(self, tmp_path: Path, fake: FakeGraph, partner: GeneratedTenant, customers: list[GeneratedTenant],
                 own: TenantSnapshot) -> None:
        self.tmp_path, self.fake, self.partner, self.customers, self.own = tmp_path, fake, partner, customers, own
        self.broken = customers[0]
        self.policy_file = tmp_path / "policy" / "partner.toml"

    async def instance(self, clock: ManualClock, database_url: str = "", name: str = "data", **options: Any) -> Runtime:
        return await build_runtime(
            data_dir=self.tmp_path / name, policy=load_policy(self.policy_file), snapshot=self.own, clock=clock,
            credentials=BotCredentials(), partner_policy=load_partner_policy(self.policy_file), database_url=database_url,
            **{"partner_collection": RunSettings(access=access_to(self.fake), workers=2, worker=SETTINGS), **options})

    def lead(self, runtime: Runtime) -> Actor:
        return Actor(runtime.service.resolve_person("agent0@northwindit.com"), "Agent 0")


async def partner_on_fake_graph(tmp_path: Path, fake: FakeGraph, partner: GeneratedTenant,
                                customers: list[GeneratedTenant]) -> Partner:
    policy_file = tmp_path / "policy" / "partner.toml"
    policy_file.parent.mkdir()
    policy_file.write_text(PARTNER_POLICY.format(partner=partner.tenant_id))
    client = graph_client(AccessTokenCredential("fake-graph-token"), fake.base_url(partner.tenant_id))
    try:
        own = await collect_tenant(client, partner.tenant_id, now=NOW, reviewers=policy_people(load_policy(policy_file)))
    finally:
        await close_client(client)
    fake.fail(r".", 500, tenant=customers[0].tenant_id)
    return Partner(tmp_path, fake, partner, customers, own)


async def close(*runtimes: Runtime) -> None:
    for runtime in runtimes:
        if runtime.partner is not None:
            await runtime.partner.jobs.close()
        await runtime.store.close()


async def test_a_settled_run_opens_the_customers_campaigns_without_a_restart_and_the_next_period_reuses_their_services(
    tmp_path: Path,
) -> None:
    partner, customers = generate_csp(3, SMALL)
    clock = ManualClock(NOW)
    async with FakeGraph(partner, *customers) as fake:
        deployment = await partner_on_fake_graph(tmp_path, fake, partner, customers)
        runtime = await deployment.instance(clock)
        try:
            assert runtime.partner is not None and runtime.partner_runs is not None
            assert runtime.partner.services == {}  # no run yet: nothing to take up

            await runtime.scheduler.run_once()  # the leader's round starts this period's run...
            run = await runtime.partner.jobs.run(THIS_PERIOD)
            assert run is not None and (run.kind, run.opened_at) == ("full", None)
            assert runtime.partner.services == {}  # ...and opens nothing while it is collecting
            await runtime.partner_runs.work_once()  # what every working instance does in the background
            await runtime.scheduler.run_once()  # settled: the campaigns open, no restart

            healthy = sorted(c.tenant_id for c in customers[1:])
            assert sorted(runtime.partner.services) == healthy
            assert [s.campaigns()[0].campaign.period for s in runtime.partner.services.values()] == [THIS_PERIOD] * 2
            rollup = partner_status(runtime.partner, deployment.lead(runtime))
            assert isinstance(rollup, RollupView)
            assert rollup.rows[0].key == deployment.broken.tenant_id and "collection FAILED" in rollup.rows[0].line
            services = dict(runtime.partner.services)
            opened = await runtime.partner.jobs.run(THIS_PERIOD)
            assert opened is not None and opened.opened_at == NOW

            clock.advance(timedelta(hours=2))  # Monday 10:00: the schedule began the next period
            await runtime.scheduler.run_once()
            await runtime.partner_runs.work_once()
            await runtime.scheduler.run_once()

            for tenant_id, service in runtime.partner.services.items():
                assert service is services[tenant_id]  # the customer's own service, not a second one
                assert [s.campaign.period for s in service.campaigns()] == [NEXT_PERIOD, THIS_PERIOD]  # last one held
            assert deployment.broken.tenant_id not in runtime.partner.services
            # Opening the period's run again (another instance, a restarted leader) opens no second campaign.
            again = await runtime.partner.open_run(NEXT_PERIOD)
            assert sorted(again.already_open) == healthy and again.opened == []
            campaigns = [c for c in await runtime.store.list_campaigns() if c.tenant_id != partner.tenant_id]
            assert sorted(c.id for c in campaigns) == sorted(f"{t}:{p}" for t in healthy for p in (THIS_PERIOD, NEXT_PERIOD))
        finally:
            await close(runtime)


async def test_a_restarted_server_takes_up_the_latest_settled_full_run_and_the_leader_starts_no_twin(
    tmp_path: Path,
) -> None:
    partner, customers = generate_csp(3, SMALL)
    clock = ManualClock(NOW)
    async with FakeGraph(partner, *customers) as fake:
        deployment = await partner_on_fake_graph(tmp_path, fake, partner, customers)
        first = await deployment.instance(clock)
        await first.scheduler.run_once()
        assert first.partner_runs is not None
        await first.partner_runs.work_once()
        await close(first)
        before = fake.total_requests()

        restarted = await deployment.instance(clock)  # no ACCESSBOT_PARTNER_RUN: the latest settled full run
        try:
            assert restarted.partner is not None and restarted.partner_runs is not None
            assert sorted(restarted.partner.services) == sorted(c.tenant_id for c in customers[1:])
            assert restarted.partner_runs.serving == THIS_PERIOD
            await restarted.scheduler.run_once()
            assert not await restarted.partner_runs.start_due_run()  # the period's run exists: refused as a twin
            assert [r.run_id for r in await restarted.partner.jobs.runs()] == [THIS_PERIOD]
            assert fake.total_requests() == before  # nothing read again: no GDAP listing, no customer
        finally:
            await close(restarted)


async def test_the_leader_starts_exactly_one_run_per_period_across_two_instances_on_postgresql(
    tmp_path: Path, postgres_url: str,
) -> None:
    partner, customers = generate_csp(3, SMALL)
    clock = ManualClock(NOW)
    async with FakeGraph(partner, *customers) as fake:
        deployment = await partner_on_fake_graph(tmp_path, fake, partner, customers)
        one = await deployment.instance(clock, postgres_url, "one")
        two = await deployment.instance(clock, postgres_url, "two")
        restarted = None
        try:
            assert one.partner_runs is not None and two.partner_runs is not None
            started = await asyncio.gather(one.partner_runs.start_due_run(), two.partner_runs.start_due_run())
            assert sorted(started) == [False, True]  # both tried at once; the store refused the twin
            restarted = await deployment.instance(clock, postgres_url, "three")
            assert restarted.partner_runs is not None and not await restarted.partner_runs.start_due_run()
            jobs = one.partner_runs.jobs
            assert [r.run_id for r in await jobs.runs()] == [THIS_PERIOD]
            assert sorted(j.tenant_id for j in await jobs.jobs(THIS_PERIOD)) == sorted(c.tenant_id for c in customers)

            # both instances collect; each customer once (a claim is a lease no other instance takes)
            await asyncio.gather(one.partner_runs.work_once(), two.partner_runs.work_once())
            ended = await jobs.jobs(THIS_PERIOD)
            assert [(j.state, j.attempts) for j in ended if j.tenant_id != deployment.broken.tenant_id] == [("done", 1)] * 2
            opened = await asyncio.gather(one.partner_runs.open_settled_run(), two.partner_runs.open_settled_run())
            reports = [r for r in opened if r is not None]
            assert sorted(tid for r in reports for tid in r.opened) == sorted(c.tenant_id for c in customers[1:])
            campaigns = [c for c in await one.store.list_campaigns() if c.tenant_id != partner.tenant_id]
            assert len(campaigns) == 2  # one per healthy customer, whichever instance opened it
        finally:
            await close(one, two, *([restarted] if restarted else []))


async def test_an_instance_that_does_not_lead_takes_up_the_customers_campaigns_the_leader_opened_without_a_restart(
    tmp_path: Path, postgres_url: str,
) -> None:
    partner, customers = generate_csp(3, SMALL)
    clock = ManualClock(NOW)
    async with FakeGraph(partner, *customers) as fake:
        deployment = await partner_on_fake_graph(tmp_path, fake, partner, customers)
        leader = await deployment.instance(clock, postgres_url, "leader")
        standby = await deployment.instance(clock, postgres_url, "standby")
        try:
            assert leader.partner_runs is not None and standby.partner_runs is not None
            assert standby.partner is not None and leader.partner is not None
            assert await standby.partner_runs.follow_opened() is None  # nothing opened yet
            await leader.partner_runs.start_due_run()
            await leader.partner_runs.work_once()
            assert await leader.partner_runs.open_settled_run() is not None
            assert standby.partner.services == {}  # before following, the standby holds none of them

            taken = await standby.partner_runs.follow_opened()
            assert taken is not None and taken.opened == []  # taken up, not opened a second time
            assert sorted(standby.partner.services) == sorted(c.tenant_id for c in customers[1:])
            assert await standby.partner_runs.follow_opened() is None  # once

            healthy = customers[1].tenant_id
            [state] = leader.partner.services[healthy].campaigns()
            item_id = next(iter(state.items))
            holder = standby.teams.directory.holder(item_id)
            assert holder is standby.partner.services[healthy]  # a click on the standby reaches that customer
            campaigns = [c for c in await standby.store.list_campaigns() if c.tenant_id != partner.tenant_id]
            assert len(campaigns) == 2
        finally:
            await close(leader, standby)


async def test_a_revoke_in_a_customer_whose_policy_applies_remediation_removes_the_role_in_that_customers_tenant(
    tmp_path: Path,
) -> None:
    partner, customers = generate_csp(3, SMALL)
    applying, reading = customers[1], customers[2]
    clock = ManualClock(NOW)
    writes = await FakeGraphWrites().start()
    try:
        async with FakeGraph(partner, *customers) as fake:
            deployment = await partner_on_fake_graph(tmp_path, fake, partner, customers)
            overrides = deployment.policy_file.parent / "customers"
            overrides.mkdir()
            (overrides / f"{applying.tenant_id}.toml").write_text('[remediation]\nmode = "apply"\n')
            per_tenant = GraphAccess(access_to(fake).credentials, writes.url.removesuffix("/v1.0") + "/{tenant}/v1.0")
            runtime = await deployment.instance(clock, partner_collection=RunSettings(access=per_tenant, workers=0))
            try:
                assert runtime.partner is not None and runtime.partner_runs is not None
                jobs = runtime.partner.jobs
                await schedule_customers(jobs, await partner_view(fake, partner.tenant_id), THIS_PERIOD, clock,
                                         period=THIS_PERIOD)
                await work_run(jobs, access_to(fake), THIS_PERIOD, worker="one", clock=clock, settings=SETTINGS)
                assert await runtime.partner_runs.open_settled_run() is not None
                services = runtime.partner.services
                assert services[applying.tenant_id].executor is not None
                assert services[reading.tenant_id].executor is None  # no writing client where the policy says off

                for customer in (applying, reading):
                    service = services[customer.tenant_id]
                    [state] = service.campaigns()
                    item = next(i for i in sorted(state.items.values(), key=lambda i: i.id)
                                if i.subject.kind is SubjectKind.ROLE_ASSIGNMENT and i.subject.holder_ids
                                and i.subject.assignment_type is AssignmentType.ACTIVE and not i.subject.break_glass
                                and i.subject.role_name != "Global Administrator")  # no dual custody to wait for
                    await service.decide(DecisionRequest(item.id, Action.REVOKE, item.reviewers[0], "Agent 1",
                                                         "Left the customer's project last month"))
                await runtime.scheduler.remediate()  # the leader's worker, as its rounds run it

                [applied] = services[applying.tenant_id].remediations()
                assert applied.status is Status.DONE
                assert writes.tenants == [applying.tenant_id]  # the call went to that customer's tenant, only there
                assert [method for method, *_ in writes.calls] == ["DELETE"]
                assert services[reading.tenant_id].remediations() == []  # remediation off there: nothing to run
            finally:
                await close(runtime)
    finally:
        await writes.stop()


async def test_campaigns_never_open_from_a_change_check_run(tmp_path: Path) -> None:
    partner, customers = generate_csp(2, SMALL)
    clock = ManualClock(NOW)
    async with FakeGraph(partner, *customers) as fake:
        deployment = await partner_on_fake_graph(tmp_path, fake, partner, customers)
        runtime = await deployment.instance(clock)
        try:
            assert runtime.partner is not None and runtime.partner_runs is not None
            jobs = runtime.partner.jobs
            await schedule_customers(jobs, await partner_view(fake, partner.tenant_id), "changes-11-16", clock,
                                     mode="changes", period=THIS_PERIOD)
            await work_run(jobs, access_to(fake), "changes-11-16", worker="one", clock=clock, settings=SETTINGS)

            with pytest.raises(NotAFullRun, match="'changes-11-16' is a change check .*campaigns open only from a full"):
                await runtime.partner.open_run("changes-11-16")
            assert await runtime.partner_runs.open_settled_run() is None  # the leader passes it over, too
            assert await runtime.partner_runs.take_up() is None  # and so does a start without a named run
            with pytest.raises(NotAFullRun):
                await runtime.partner_runs.take_up("changes-11-16")
            assert runtime.partner.services == {}
            assert [c for c in await runtime.store.list_campaigns() if c.tenant_id != partner.tenant_id] == []
        finally:
            await close(runtime)


async def test_the_served_app_collects_in_the_background_and_opens_the_campaigns_when_the_run_settles(
    tmp_path: Path,
) -> None:
    partner, customers = generate_csp(3, SMALL)
    async with FakeGraph(partner, *customers) as fake:
        deployment = await partner_on_fake_graph(tmp_path, fake, partner, customers)
        runtime = await deployment.instance(ManualClock(NOW), tick_seconds=0.05)
        assert runtime.partner is not None and runtime.partner_runs is not None
        runtime.partner_runs.settings = replace(runtime.partner_runs.settings, idle_seconds=0.05)
        runner = web.AppRunner(create_app(runtime))  # background on: the scheduler's rounds and the worker
        await runner.setup()
        try:
            async def opened() -> None:
                while len(runtime.partner.services) < 2:  # type: ignore[union-attr]
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(opened(), WAIT_SECONDS)
            assert sorted(runtime.partner.services) == sorted(c.tenant_id for c in customers[1:])
            run = await runtime.partner.jobs.run(THIS_PERIOD)
            assert run is not None and run.opened_at is not None
        finally:
            await runner.cleanup()  # stops the rounds and the worker, closes the store


async def test_a_run_collected_before_the_review_period_began_opens_no_campaign_of_that_period(tmp_path: Path) -> None:
    partner, customers = generate_csp(2, SMALL)
    clock = ManualClock(NOW)
    async with FakeGraph(partner, *customers) as fake:
        deployment = await partner_on_fake_graph(tmp_path, fake, partner, customers)
        first = await deployment.instance(clock)
        await first.scheduler.run_once()  # last period's run, collected but never opened: the server went down
        assert first.partner_runs is not None
        await first.partner_runs.work_once()
        await close(first)

        clock.advance(timedelta(hours=2))  # it comes back in the next period
        restarted = await deployment.instance(clock)
        try:
            assert restarted.partner is not None and restarted.partner_runs is not None
            report = await restarted.partner.open_run(THIS_PERIOD)
            assert report.opened == [] and report.already_open == []
            assert "collected before this review period began" in report.not_opened[customers[1].tenant_id]
            assert "failed" in report.not_opened[deployment.broken.tenant_id]
            assert restarted.partner.services == {}
            await restarted.scheduler.run_once()  # this period's run starts instead
            assert [r.run_id for r in await restarted.partner.jobs.runs()] == [NEXT_PERIOD, THIS_PERIOD]
        finally:
            await close(restarted)
