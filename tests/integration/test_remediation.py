"""Revoke → remediation through Microsoft Graph (msgraph-sdk against a local Graph), dry-run and apply,
dual custody for Global Administrator, and every step in the ledger. The Graph calls are a job the worker
runs after the click: retried when Graph is throttled or down, resumed after a crash, never run twice."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest
from aiohttp import web

from bot.app import Runtime, build_runtime, create_app, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.decisions import DecisionRequest
from bot.engine.model import Action
from bot.ledger import verify
from bot.policy import RemediationMode
from bot.remediation.graph_executor import GraphExecutor
from bot.remediation.workflow import Remediation, Status
from checks.graph.client import AccessTokenCredential, RetrySettings, close_client, graph_client
from dialogs.security_lead import remediations
from tests.fakes.fake_graph_writes import FakeGraphWrites
from tests.integration.fake_connector import FakeConnector
from tests.integration.test_teams_messages import Bot

ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
LYNNE = "0352574e-9ccb-4a60-b927-66c30c6c9a04"
PATTI = "f66eb8b7-79c8-407b-8b95-85a879f2381e"
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
PRADEEP = "Pradeep Gupta — Exchange Administrator"
MEGAN = "Megan Bowen — Global Administrator"
HANG_GUARD = 60.0  # seconds before a test that would otherwise wait forever fails; never a speed limit


@pytest.fixture
async def graph() -> AsyncIterator[tuple[FakeGraphWrites, str]]:
    fake = await FakeGraphWrites().start()
    yield fake, fake.url
    await fake.stop()


async def service_with(
    tmp_path: Path, mode: RemediationMode, base_url: str, retry: RetrySettings | None = None, open_campaign: bool = True
) -> Runtime:
    """The demo tenant's runtime on Monday morning, remediating through the local Graph. ``retry`` replaces
    the SDK's own retry settings (a test that wants to see the job's retries spends them at once)."""
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    client = graph_client(AccessTokenCredential("local-test-token"), base_url, **({"retry": retry} if retry else {}))
    runtime = await build_runtime(
        data_dir=tmp_path, policy=replace(policy, remediation=mode), snapshot=snapshot, clock=ManualClock(MONDAY),
        credentials=BotCredentials(), graph_executor=GraphExecutor(client),
    )
    if open_campaign:
        await runtime.service.open_current_campaign()
    return runtime


async def stop(runtime: Runtime) -> None:
    assert runtime.service.executor is not None
    await close_client(runtime.service.executor.client)
    await runtime.store.close()


def item_titled(runtime: Runtime, title: str) -> str:
    (state,) = runtime.service.campaigns()
    return next(i.id for i in state.items.values() if i.subject.title == title)


def assignment_path(runtime: Runtime, title: str) -> str:
    """The Graph path of the role assignment that revoking ``title`` deletes, as the snapshot has it."""
    (state,) = runtime.service.campaigns()
    holders = state.items[item_titled(runtime, title)].subject.holder_ids
    role = title.split(" — ")[1]
    assignment = next(e["id"] for e in runtime.service.snapshot.role_assignments
                      if e["principalId"] in holders and runtime.service.snapshot.role_name(e["roleDefinitionId"]) == role)
    return f"/roleManagement/directory/roleAssignments/{assignment}"


async def revoke(runtime: Runtime, title: str, actor: str = ALEX, name: str = "Alex Wilber") -> str:
    item = item_titled(runtime, title)
    await runtime.service.decide(DecisionRequest(item, Action.REVOKE, actor, name, "No longer needed"))
    return item


def only_remediation(runtime: Runtime) -> Remediation:
    (remediation,) = runtime.service.remediations()
    return remediation


async def steps(runtime: Runtime, item: str) -> list[str]:
    return [r.type for r in await runtime.store.ledger_records() if r.data.get("item_id") == item]


async def until_settled(runtime: Runtime) -> Remediation:
    """Wait (the worker runs in the background) until the one remediation is done or failed."""
    async def settled() -> Remediation:
        while only_remediation(runtime).status not in (Status.DONE, Status.FAILED):
            await asyncio.sleep(0.01)
        return only_remediation(runtime)
    return await asyncio.wait_for(settled(), HANG_GUARD)


async def test_the_click_answers_before_any_graph_call_is_made(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    runtime = await service_with(tmp_path, RemediationMode.APPLY, base_url)
    held = fake.hold(assignment_path(runtime, PRADEEP))  # Graph takes the DELETE but answers only when released
    connector = FakeConnector()
    await connector.start()
    runner = web.AppRunner(create_app(runtime, background=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    bot = Bot(runtime, f"http://127.0.0.1:{port}/api/messages", connector)
    worker = asyncio.create_task(runtime.scheduler.remediation_worker())
    patti = {"id": "29:1patti", "name": "Patti Fernandez", "aadObjectId": PATTI}
    try:
        # Were the DELETE inside the click, this answer could never come: Graph holds it until released.
        status, body = await asyncio.wait_for(
            bot.execute("decide", {"item": bot.item_id(PRADEEP), "action": "revoke", "justification": "No longer needed"},
                        person=patti),
            HANG_GUARD,
        )
        assert status == 200 and "Revoked" in str(body)
        assert only_remediation(runtime).status in (Status.READY, Status.RUNNING)
        await asyncio.wait_for(held.arrived.wait(), HANG_GUARD)  # then the worker makes the call
        held.release()
        done = await until_settled(runtime)
        assert done.status is Status.DONE and done.attempts == 1 and done.results[0]["status"] == 204
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await runner.cleanup()
        await connector.stop()
        await stop(runtime)


async def test_global_admin_removal_waits_for_a_second_security_lead_then_the_worker_calls_graph(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    runtime = await service_with(tmp_path, RemediationMode.APPLY, base_url)
    item = await revoke(runtime, MEGAN)
    remediation = only_remediation(runtime)
    assert remediation.status is Status.AWAITING_APPROVAL
    await runtime.scheduler.remediate()  # the worker leaves it alone until a second lead approves
    assert not fake.calls and only_remediation(runtime).status is Status.AWAITING_APPROVAL
    refused = await runtime.service.approve_remediation(remediation.ref, ALEX, "Alex Wilber")
    assert "different security lead" in refused and not fake.calls
    approved = await runtime.service.approve_remediation(remediation.ref, LYNNE, "Lynne Robbins")
    assert approved.startswith("Approved by Lynne Robbins") and not fake.calls  # the approval answers at once
    await runtime.scheduler.remediate()
    assert [(m, p) for m, p, _, _ in fake.calls] == [
        ("DELETE", "/roleManagement/directory/roleAssignments/lAPpYvVpN0KRkAEhdxReEAfzflNkXCyk6m6w-X5G6dzA-1")
    ]
    done = only_remediation(runtime)
    assert done.status is Status.DONE and done.results[0]["status"] == 204
    assert await steps(runtime, item) == [
        "decision", "remediation_proposed", "remediation_approved", "remediation_attempt", "remediation_result"]
    assert verify(await runtime.store.ledger_records(), await runtime.store.ledger_anchor()).ok
    await stop(runtime)


async def test_dry_run_shows_the_calls_and_changes_nothing(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    runtime = await service_with(tmp_path, RemediationMode.DRY_RUN, base_url)
    await revoke(runtime, PRADEEP, PATTI, "Patti Fernandez")
    await runtime.scheduler.remediate()
    remediation = only_remediation(runtime)
    assert remediation.status is Status.DONE and not fake.calls
    assert remediation.results[0]["dry_run"] and remediation.results[0]["call"].startswith("DELETE /v1.0/roleManagement")
    due = await runtime.store.due_messages(MONDAY, 100)
    assert any("Dry-run, would call: DELETE /v1.0/roleManagement/directory/roleAssignments/" in m.payload["text"] for m in due)
    assert any("Dry-run for Pradeep Gupta" in m.payload["text"] for m in due)
    await stop(runtime)


async def test_a_503_is_retried_after_graphs_retry_after_and_recorded_done_after_two_attempts(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    # The SDK's own retries are spent at once here, so what is seen is the job's retry, a round later.
    runtime = await service_with(tmp_path, RemediationMode.APPLY, base_url, retry=RetrySettings(max_retries=0))
    path = assignment_path(runtime, PRADEEP)
    fake.answer(path, 503, retry_after="300")
    item = await revoke(runtime, PRADEEP, PATTI, "Patti Fernandez")
    await runtime.scheduler.remediate()
    waiting = only_remediation(runtime)
    assert waiting.status is Status.READY and waiting.attempts == 1 and waiting.results[0]["status"] == 503
    assert waiting.retry_at == MONDAY + timedelta(seconds=300)  # Graph's Retry-After beats the 60 s backoff
    (row,) = remediations(runtime.service).rows  # type: ignore[attr-defined]
    assert "ready (apply); 1 attempt(s); next attempt 2026-11-23 09:35 UTC" in row.value
    await runtime.scheduler.remediate()  # too early: nothing is sent
    assert fake.calls_to(path) == ["DELETE"]
    runtime.service.clock.advance(timedelta(seconds=300))  # type: ignore[attr-defined]
    await runtime.scheduler.remediate()
    done = only_remediation(runtime)
    assert done.status is Status.DONE and done.attempts == 2 and done.results[0]["status"] == 204
    assert fake.calls_to(path) == ["DELETE", "DELETE"]
    assert await steps(runtime, item) == ["decision", "remediation_proposed", "remediation_attempt", "remediation_retry",
                                          "remediation_attempt", "remediation_result"]
    due = await runtime.store.due_messages(MONDAY + timedelta(hours=1), 100)
    assert any(m.payload["text"].startswith("Removed: Pradeep Gupta") for m in due)
    assert not any("FAILED" in m.payload["text"] for m in due)
    await stop(runtime)


async def test_the_sdks_own_retry_handler_absorbs_a_single_503_before_the_job_sees_it(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    runtime = await service_with(tmp_path, RemediationMode.APPLY, base_url, retry=RetrySettings(max_retries=1, backoff_factor=0))
    path = assignment_path(runtime, PRADEEP)
    fake.answer(path, 503)
    await revoke(runtime, PRADEEP, PATTI, "Patti Fernandez")
    await runtime.scheduler.remediate()
    done = only_remediation(runtime)
    assert done.status is Status.DONE and done.attempts == 1 and fake.calls_to(path) == ["DELETE", "DELETE"]
    await stop(runtime)


async def test_a_refused_graph_call_is_failed_at_once_with_graphs_error_and_the_leads_are_told(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    runtime = await service_with(tmp_path, RemediationMode.APPLY, base_url)
    path = assignment_path(runtime, PRADEEP)
    fake.refuse[path] = (403, "Authorization_RequestDenied")
    await revoke(runtime, PRADEEP, PATTI, "Patti Fernandez")
    await runtime.scheduler.remediate()
    runtime.service.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    await runtime.scheduler.remediate()  # a refusal is final: no retry, however long one waits
    remediation = only_remediation(runtime)
    assert remediation.status is Status.FAILED and remediation.attempts == 1 and fake.calls_to(path) == ["DELETE"]
    assert remediation.results[0]["status"] == 403 and "Authorization_RequestDenied" in remediation.results[0]["error"]
    due = await runtime.store.due_messages(MONDAY + timedelta(days=1), 100)
    told = {m.recipient for m in due if "FAILED on 1 call(s)" in m.payload["text"] and "403" in m.payload["text"]}
    assert told == set(runtime.service.routing.security_leads)
    await stop(runtime)


async def test_a_crash_between_proposal_and_graph_call_resumes_at_start_and_runs_the_job_once(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    first = await service_with(tmp_path, RemediationMode.APPLY, base_url)
    path = assignment_path(first, PRADEEP)
    item = await revoke(first, PRADEEP, PATTI, "Patti Fernandez")
    assert only_remediation(first).status is Status.READY
    await stop(first)  # the process dies before its worker ran the job
    assert not fake.calls

    second = await service_with(tmp_path, RemediationMode.APPLY, base_url, open_campaign=False)
    worker = asyncio.create_task(second.scheduler.remediation_worker())
    try:
        done = await until_settled(second)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    assert done.status is Status.DONE and done.attempts == 1
    await stop(second)

    third = await service_with(tmp_path, RemediationMode.APPLY, base_url, open_campaign=False)
    await third.scheduler.remediate()
    assert fake.calls_to(path) == ["DELETE"]  # exactly once, across three processes
    assert await steps(third, item) == ["decision", "remediation_proposed", "remediation_attempt", "remediation_result"]
    await stop(third)


async def test_a_job_cut_short_after_graph_removed_the_access_counts_the_404_on_resume_as_done(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    first = await service_with(tmp_path, RemediationMode.APPLY, base_url)
    path = assignment_path(first, PRADEEP)
    held = fake.hold(path)  # Graph removes the assignment, but its answer never gets back
    worker = asyncio.create_task(first.scheduler.remediation_worker())
    item = await revoke(first, PRADEEP, PATTI, "Patti Fernandez")
    await asyncio.wait_for(held.arrived.wait(), HANG_GUARD)
    assert only_remediation(first).status is Status.RUNNING  # the attempt is in the ledger, its outcome is not
    worker.cancel()  # the process dies mid-call
    await asyncio.gather(worker, return_exceptions=True)
    await stop(first)

    second = await service_with(tmp_path, RemediationMode.APPLY, base_url, open_campaign=False)
    assert only_remediation(second).status is Status.RUNNING
    await second.scheduler.remediate()
    done = only_remediation(second)
    assert done.status is Status.DONE and done.attempts == 2
    assert done.results[0]["status"] == 404 and done.results[0]["already_removed"]
    assert fake.calls_to(path) == ["DELETE", "DELETE"]
    assert await steps(second, item) == ["decision", "remediation_proposed", "remediation_attempt",
                                         "remediation_attempt", "remediation_result"]
    due = await second.store.due_messages(MONDAY, 100)
    assert not any("FAILED" in m.payload["text"] for m in due)
    await stop(second)


async def test_remediation_off_never_touches_graph(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    runtime = await service_with(tmp_path, RemediationMode.OFF, base_url)
    await revoke(runtime, PRADEEP, PATTI, "Patti Fernandez")
    await runtime.scheduler.remediate()
    assert runtime.service.remediations() == [] and not fake.calls
    await stop(runtime)
