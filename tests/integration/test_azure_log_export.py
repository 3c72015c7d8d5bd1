"""Where Entra's logs are exported, read from a local Azure Resource Manager through the Azure SDK's own
pipeline (only the base URL changed): paging by nextLink, 429 with Retry-After, refusals and faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from checks.azure import arm_reader, collect_azure, with_azure
from checks.graph.client import AccessTokenCredential
from checks.registry import run_checks
from checks.snapshot import TenantSnapshot
from tests.fakes.fake_arm import ENTRA_DIAGNOSTIC_SETTINGS, ArmTenant, FakeArm
from tests.fakes.tenant_generator import NOW, generate_tenant
from tests.integration.test_live_collection_cli import SHAPE, ThreadedGraph

HANG_GUARD = 60.0  # seconds: reached only if something hangs, never a measure of speed
TENANT = "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"


def setting(n: int, *categories: str) -> dict:
    return {"id": f"{ENTRA_DIAGNOSTIC_SETTINGS}/export-{n}", "name": f"export-{n}", "properties": {
        "workspaceId": f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w{n}",
        "logs": [{"category": c, "enabled": True, "retentionPolicy": {"days": 0, "enabled": False}}
                 for c in categories]}}


@pytest.fixture
async def arm() -> AsyncIterator[FakeArm]:
    settings = [setting(n, "AuditLogs") for n in range(4)] + [setting(4, "SignInLogs")]
    async with FakeArm(ArmTenant({ENTRA_DIAGNOSTIC_SETTINGS.lower(): settings}), page_size=2) as server:
        yield server


async def read(arm: FakeArm) -> TenantSnapshot:
    reader = arm_reader(AccessTokenCredential("fake-arm-token"), arm.url, retry_total=3, retry_backoff_factor=0.01)
    try:
        view = await asyncio.wait_for(collect_azure(reader), HANG_GUARD)
    finally:
        await reader.close()
    return with_azure(TenantSnapshot(TENANT, "Contoso", NOW), view)


async def test_every_page_of_diagnostic_settings_is_read_and_both_logs_count_as_exported(arm: FakeArm) -> None:
    snapshot = await read(arm)
    assert [s["name"] for s in snapshot.entra_diagnostic_settings() or ()] == [f"export-{n}" for n in range(5)]
    assert arm.requests[ENTRA_DIAGNOSTIC_SETTINGS] == 3  # pages of 2
    assert snapshot.complete and not [r for r in run_checks(snapshot, [], now=NOW)
                                      if r.check.id == "entra_logs_not_exported"]


async def test_throttling_is_retried_after_its_retry_after_by_the_sdk(arm: FakeArm) -> None:
    arm.fail("diagnosticSettings", 429, times=2, retry_after="1")
    snapshot = await read(arm)
    assert arm.sent[429] == 2 and arm.requests[ENTRA_DIAGNOSTIC_SETTINGS] == 3 + 2
    assert len(snapshot.entra_diagnostic_settings() or ()) == 5 and snapshot.complete


async def test_no_azure_role_is_named_as_unavailable_and_no_finding_is_claimed(arm: FakeArm) -> None:
    arm.fail("diagnosticSettings", 403)
    snapshot = await read(arm)
    assert snapshot.complete and snapshot.entra_diagnostic_settings() is None
    assert snapshot.unavailable == ("aadDiagnosticSettings: Azure Resource Manager refused (403 AuthorizationFailed; "
                                    "needs microsoft.aadiam/diagnosticSettings/read)",)
    assert [r for r in run_checks(snapshot, [], now=NOW) if r.check.id == "entra_logs_not_exported"] == []


async def test_an_outage_that_outlasts_the_retries_leaves_the_snapshot_incomplete(arm: FakeArm) -> None:
    arm.fail("diagnosticSettings", 503)
    snapshot = await read(arm)
    assert not snapshot.complete and snapshot.missing == ("aadDiagnosticSettings: could not be read (503 ServiceUnavailable)",)
    assert arm.requests[ENTRA_DIAGNOSTIC_SETTINGS] == 1 + 3


def test_a_live_scan_with_azure_resource_manager_configured_reports_logs_exported_nowhere(tmp_path: Path) -> None:
    """The operator's `scan` with ACCESSBOT_ARM_BASE_URL set: the same app reads ARM after Graph."""
    generated = generate_tenant(SHAPE)
    graph = ThreadedGraph(generated)
    fake_arm = FakeArm(ArmTenant({ENTRA_DIAGNOSTIC_SETTINGS.lower(): []}))
    asyncio.run_coroutine_threadsafe(fake_arm.start(), graph.loop).result(10)
    try:
        env = {**graph.env(), "ACCESSBOT_ARM_BASE_URL": fake_arm.url}
        result = CliRunner().invoke(app, ["scan", "--tenant", generated.tenant_id, "--format", "json",
                                          "--data-dir", str(tmp_path)], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        [logs] = [f for f in json.loads(result.stdout) if f["check"] == "entra_logs_not_exported"]
        assert logs["message"].startswith("audit logs and sign-in logs exported nowhere: the tenant keeps them")
        assert fake_arm.requests[ENTRA_DIAGNOSTIC_SETTINGS] == 1
    finally:
        asyncio.run_coroutine_threadsafe(fake_arm.stop(), graph.loop).result(10)
        graph.stop()
