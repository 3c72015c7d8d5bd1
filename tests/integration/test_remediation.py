"""Revoke → remediation through Microsoft Graph (msgraph-sdk against a local Graph), dry-run and apply,
dual custody for Global Administrator, and every step in the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest
from aiohttp import web

from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.decisions import DecisionRequest
from bot.engine.model import Action
from bot.ledger import verify
from bot.policy import RemediationMode
from bot.remediation.graph_executor import GraphExecutor
from bot.remediation.workflow import Status
from checks.graph.client import AccessTokenCredential, graph_client

ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
LYNNE = "0352574e-9ccb-4a60-b927-66c30c6c9a04"
PATTI = "f66eb8b7-79c8-407b-8b95-85a879f2381e"
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


@dataclass
class FakeGraphWrites:
    """The write side of Graph v1.0 that remediation uses; records each call, refuses chosen paths."""

    calls: list[tuple[str, str, Any, dict[str, str]]] = field(default_factory=list)
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)
    effects: list[Callable[[str, str], None]] = field(default_factory=list)  # what a call changes elsewhere

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/v1.0/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body = await request.json() if request.can_read_body else None
        self.calls.append((request.method, path, body, dict(request.headers)))
        for effect in self.effects:
            effect(request.method, path)
        if path in self.refuse:
            status, code = self.refuse[path]
            return web.json_response({"error": {"code": code, "message": "Insufficient privileges to complete the operation."}}, status=status)
        if request.method == "DELETE":
            return web.Response(status=204)
        return web.json_response({"id": "request-1", "status": "Provisioned", **(body or {})}, status=201)


@pytest.fixture
async def graph() -> AsyncIterator[tuple[FakeGraphWrites, str]]:
    fake = FakeGraphWrites()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}/v1.0"
    await runner.cleanup()


async def service_with(tmp_path: Path, mode: RemediationMode, base_url: str):  # type: ignore[no-untyped-def]
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    client = graph_client(AccessTokenCredential("local-test-token"), base_url)
    runtime = await build_runtime(
        data_dir=tmp_path, policy=replace(policy, remediation=mode), snapshot=snapshot, clock=ManualClock(MONDAY),
        credentials=BotCredentials(), graph_executor=GraphExecutor(client),
    )
    await runtime.service.open_current_campaign()
    return runtime


def item_titled(runtime, title: str) -> str:  # type: ignore[no-untyped-def]
    (state,) = runtime.service.campaigns()
    return next(i.id for i in state.items.values() if i.subject.title == title)


async def revoke(runtime, title: str, actor: str = ALEX, name: str = "Alex Wilber") -> str:  # type: ignore[no-untyped-def]
    item = item_titled(runtime, title)
    await runtime.service.decide(DecisionRequest(item, Action.REVOKE, actor, name, "No longer needed"))
    return item


async def test_global_admin_removal_waits_for_a_second_security_lead_then_calls_graph(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    runtime = await service_with(tmp_path, RemediationMode.APPLY, base_url)
    item = await revoke(runtime, "Megan Bowen — Global Administrator")
    (remediation,) = runtime.service.remediations()
    assert remediation.status is Status.AWAITING_APPROVAL and not fake.calls
    refused = await runtime.service.approve_remediation(remediation.ref, ALEX, "Alex Wilber")
    assert "different security lead" in refused and not fake.calls
    approved = await runtime.service.approve_remediation(remediation.ref, LYNNE, "Lynne Robbins")
    assert approved.startswith("Approved by Lynne Robbins")
    assert [(m, p) for m, p, _, _ in fake.calls] == [
        ("DELETE", "/roleManagement/directory/roleAssignments/lAPpYvVpN0KRkAEhdxReEAfzflNkXCyk6m6w-X5G6dzA-1")
    ]
    (done,) = runtime.service.remediations()
    assert done.status is Status.DONE and done.results[0]["status"] == 204
    records = await runtime.store.ledger_records()
    steps = [r.type for r in records if r.data.get("item_id") == item]
    assert steps == ["decision", "remediation_proposed", "remediation_approved", "remediation_result"]
    assert verify(records, await runtime.store.ledger_anchor()).ok
    await runtime.store.close()


async def test_dry_run_shows_the_calls_and_changes_nothing(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    runtime = await service_with(tmp_path, RemediationMode.DRY_RUN, base_url)
    await revoke(runtime, "Pradeep Gupta — Exchange Administrator", PATTI, "Patti Fernandez")
    (remediation,) = runtime.service.remediations()
    assert remediation.status is Status.DONE and not fake.calls
    assert remediation.results[0]["dry_run"] and remediation.results[0]["call"].startswith("DELETE /v1.0/roleManagement")
    due = await runtime.store.due_messages(MONDAY, 100)
    assert any("Dry-run, would call: DELETE /v1.0/roleManagement/directory/roleAssignments/" in m.payload["text"] for m in due)
    await runtime.store.close()


async def test_a_refused_graph_call_is_reported_as_failed_with_graphs_error(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    runtime = await service_with(tmp_path, RemediationMode.APPLY, base_url)
    (state,) = runtime.service.campaigns()
    pradeep = state.items[item_titled(runtime, "Pradeep Gupta — Exchange Administrator")]
    assignment = next(e["id"] for e in runtime.service.snapshot.role_assignments if e["principalId"] in pradeep.subject.holder_ids)
    fake.refuse[f"/roleManagement/directory/roleAssignments/{assignment}"] = (403, "Authorization_RequestDenied")
    await revoke(runtime, "Pradeep Gupta — Exchange Administrator", PATTI, "Patti Fernandez")
    (remediation,) = runtime.service.remediations()
    assert remediation.status is Status.FAILED
    assert remediation.results[0]["status"] == 403 and "Authorization_RequestDenied" in remediation.results[0]["error"]
    due = await runtime.store.due_messages(MONDAY, 100)
    assert any("FAILED" in m.payload["text"] for m in due)
    await runtime.store.close()


async def test_remediation_off_never_touches_graph(tmp_path: Path, graph) -> None:  # type: ignore[no-untyped-def]
    fake, base_url = graph
    runtime = await service_with(tmp_path, RemediationMode.OFF, base_url)
    await revoke(runtime, "Pradeep Gupta — Exchange Administrator", PATTI, "Patti Fernandez")
    assert runtime.service.remediations() == [] and not fake.calls
    await runtime.store.close()
