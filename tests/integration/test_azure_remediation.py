"""Revoking an Azure subscription role removes its role assignment through Azure Resource Manager under the
same rules as a directory role: recorded, run by the worker after the click, dry-run only planned, throttling
retried by the SDK, and a job without ARM access fails saying so. Against the local fake ARM."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest

from bot.app import Runtime, build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.policy import RemediationMode
from bot.remediation.arm_executor import ArmAndGraphExecutor
from bot.remediation.workflow import Status
from checks.azure import arm_reader
from checks.graph.client import AccessTokenCredential, close_client, graph_client
from tests.fakes.fake_arm import ArmTenant, FakeArm
from tests.integration.test_remediation import only_remediation, revoke, until_settled

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
AOBO = "Fabrikam MSP (foreign group) — Owner of Contoso Production"
DEMO = json.loads(DEMO_SNAPSHOT.read_text(encoding="utf-8"))


@pytest.fixture
async def arm() -> AsyncIterator[FakeArm]:
    tenant = ArmTenant()
    for subscription in DEMO["azureSubscriptions"]:
        sid = subscription["subscriptionId"]
        tenant.subscription(subscription, roleAssignments=[
            a for a in DEMO["azureRoleAssignments"] if a["properties"]["scope"].startswith(f"/subscriptions/{sid}")])
    async with FakeArm(tenant) as server:
        yield server


async def runtime_with(tmp_path: Path, mode: RemediationMode, arm: FakeArm | None) -> Runtime:
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    reader = (arm_reader(AccessTokenCredential("local-test-token"), arm.url, retry_total=3, retry_backoff_factor=0.01)
              if arm else None)
    executor = ArmAndGraphExecutor(graph_client(AccessTokenCredential("local-test-token"), "http://127.0.0.1:9/v1.0"),
                                   reader)
    runtime = await build_runtime(data_dir=tmp_path, policy=replace(policy, remediation=mode), snapshot=snapshot,
                                  clock=ManualClock(MONDAY), credentials=BotCredentials(), graph_executor=executor)
    await runtime.service.open_current_campaign()
    return runtime


async def stop(runtime: Runtime) -> None:
    executor = runtime.service.executor
    assert isinstance(executor, ArmAndGraphExecutor)
    if executor.arm is not None:
        await executor.arm.close()
    await close_client(executor.client)
    await runtime.store.close()


def assignment_path() -> str:
    return next(a["id"] for a in DEMO["azureRoleAssignments"] if a["properties"]["principalType"] == "ForeignGroup")


async def test_apply_deletes_the_aobo_role_assignment_in_arm_after_the_click(tmp_path: Path, arm: FakeArm) -> None:
    arm.fail("roleAssignments/", 429, times=1, retry_after="1")  # throttled once: the SDK waits and retries
    runtime = await runtime_with(tmp_path, RemediationMode.APPLY, arm)
    try:
        await revoke(runtime, AOBO)
        assert arm.deleted == []  # nothing inside the click
        await runtime.service.run_remediations()
        done = await until_settled(runtime)
        assert done.status is Status.DONE and done.results[0]["status"] == 200
        assert arm.deleted == [assignment_path()] and arm.sent[429] == 1 and arm.requests[assignment_path()] == 2
        assert not [a for items in arm.tenant.lists.values() for a in items if a.get("id") == assignment_path()]
        records = [r for r in await runtime.store.ledger_records() if r.type == "remediation_result"]
        assert records[-1].data["results"][0]["call"].startswith("DELETE ARM /subscriptions/")
    finally:
        await stop(runtime)


async def test_dry_run_only_plans_the_arm_delete(tmp_path: Path, arm: FakeArm) -> None:
    runtime = await runtime_with(tmp_path, RemediationMode.DRY_RUN, arm)
    try:
        await revoke(runtime, AOBO)
        await runtime.service.run_remediations()
        done = only_remediation(runtime)
        assert done.results[0]["dry_run"] and arm.deleted == []
    finally:
        await stop(runtime)


async def test_without_azure_resource_manager_configured_the_job_fails_saying_so(tmp_path: Path) -> None:
    runtime = await runtime_with(tmp_path, RemediationMode.APPLY, None)
    try:
        await revoke(runtime, AOBO)
        await runtime.service.run_remediations()
        failed = await until_settled(runtime)
        assert failed.status is Status.FAILED
        assert failed.results[0]["error"] == "no Azure Resource Manager access is configured (ACCESSBOT_ARM_BASE_URL)"
    finally:
        await stop(runtime)
