"""The operator's live commands against a local Microsoft Graph: scan, collect, and a CSP partner's customers.

Only the Graph endpoint and the credential change (ACCESSBOT_GRAPH_BASE_URL, an access token); the rest
is what runs against a real tenant.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Iterator

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.fakes.fake_graph import FakeGraph
from tests.fakes.tenant_generator import GeneratedTenant, TenantShape, generate_csp, generate_tenant
from tests.integration.test_cli import LEDGER_KEY

runner = CliRunner()
SHAPE = TenantShape(users=40, privileged_users=12, crowded_role_holders=5)


class ThreadedGraph:
    """The fake Graph on its own event loop: the CLI under test runs asyncio.run itself."""

    def __init__(self, *tenants: GeneratedTenant) -> None:
        self.fake = FakeGraph(*tenants)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.fake.start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(10)

    def env(self) -> dict[str, str]:
        return {
            "ACCESSBOT_GRAPH_CREDENTIAL": "access_token",
            "ACCESSBOT_GRAPH_ACCESS_TOKEN": "local-graph-token",
            "ACCESSBOT_GRAPH_BASE_URL": f"{self.fake.url}/{{tenant}}/v1.0",
            "ACCESSBOT_LEDGER_KEY": LEDGER_KEY,
        }

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def tenant() -> Iterator[tuple[GeneratedTenant, ThreadedGraph]]:
    generated = generate_tenant(SHAPE)
    graph = ThreadedGraph(generated)
    yield generated, graph
    graph.stop()


def test_scan_collects_a_live_tenant_and_prints_its_findings(tenant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    generated, graph = tenant
    result = runner.invoke(app, ["scan", "--tenant", generated.tenant_id, "--format", "json", "--data-dir", str(tmp_path)],
                           env=graph.env(), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)
    assert findings and {f["tenant"] for f in findings} == {generated.tenant_id}
    assert graph.fake.requests  # it really went over the wire
    assert (tmp_path / "snapshots" / f"{generated.tenant_id}.complete.json").exists()


def test_collect_keeps_the_snapshot_for_the_next_run(tenant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    generated, graph = tenant
    result = runner.invoke(app, ["collect", "--tenant", generated.tenant_id, "--data-dir", str(tmp_path)],
                           env=graph.env(), catch_exceptions=False)
    assert result.exit_code == 0 and "complete" in result.output
    kept = json.loads((tmp_path / "snapshots" / f"{generated.tenant_id}.json").read_text())
    assert kept["tenantId"] == generated.tenant_id and kept["roleAssignments"]


def test_a_graph_outage_is_reported_as_incomplete_never_as_no_admins(tenant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    generated, graph = tenant
    graph.fake.fail(r"roleManagement/directory/roleAssignments$", 503)
    result = runner.invoke(app, ["collect", "--tenant", generated.tenant_id, "--data-dir", str(tmp_path)],
                           env=graph.env(), catch_exceptions=False)
    assert result.exit_code == 3, result.output  # incomplete, as documented
    assert "INCOMPLETE: missing" in result.stdout and "roleAssignments" in result.stdout
    assert f"accessbot: could not read Contoso ({generated.tenant_id}): roleAssignments: could not be read (503)" in result.stderr
    assert "collection INCOMPLETE" in result.stderr
    assert not (tmp_path / "snapshots" / f"{generated.tenant_id}.complete.json").exists()


def test_scan_of_a_tenant_read_only_in_part_prints_its_findings_and_exits_incomplete(tenant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    generated, graph = tenant
    graph.fake.fail(r"servicePrincipals", 500)
    result = runner.invoke(app, ["scan", "--tenant", generated.tenant_id, "--format", "json", "--data-dir", str(tmp_path)],
                           env=graph.env(), catch_exceptions=False)
    assert result.exit_code == 3
    assert json.loads(result.stdout)  # the admins that were read still have their findings
    assert "servicePrincipals: could not be read (500)" in result.stderr


def test_a_total_outage_fails_collect_and_scan_and_prints_no_empty_findings(tenant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    generated, graph = tenant
    graph.fake.fail(r".*", 500)  # 500: not retried, so the test does not wait out the backoff
    collected = runner.invoke(app, ["collect", "--tenant", generated.tenant_id, "--data-dir", str(tmp_path)],
                              env=graph.env(), catch_exceptions=False)
    assert collected.exit_code == 1
    assert "roleAssignments: could not be read (500)" in collected.stderr and "collection FAILED" in collected.stderr
    scanned = runner.invoke(app, ["scan", "--tenant", generated.tenant_id, "--format", "json", "--data-dir", str(tmp_path)],
                            env=graph.env(), catch_exceptions=False)
    assert scanned.exit_code == 1 and scanned.stdout == ""  # never "[]", which reads as "no findings"
    assert "collection FAILED" in scanned.stderr


def test_a_partner_whose_gdap_listings_answer_404_is_told_so_and_the_run_fails(tmp_path: Path) -> None:
    partner, customers = generate_csp(2, SHAPE)
    graph = ThreadedGraph(partner, *customers)
    graph.fake.fail(r"tenantRelationships/delegatedAdmin", 404, code="Request_ResourceNotFound")
    try:
        collected = runner.invoke(app, ["collect", "--tenant", partner.tenant_id, "--all-customers", "--data-dir", str(tmp_path)],
                                  env=graph.env(), catch_exceptions=False)
        scanned = runner.invoke(
            app, ["scan", "--tenant", partner.tenant_id, "--all-customers", "--format", "json", "--data-dir", str(tmp_path)],
            env=graph.env(), catch_exceptions=False,
        )
    finally:
        graph.stop()
    for result in (collected, scanned):
        assert result.exit_code == 1
        assert "partner " in result.stderr and "delegatedAdminRelationships: could not be read (404)" in result.stderr
        assert "collection FAILED" in result.stderr
    assert "0 tenant(s)" in collected.stdout and scanned.stdout == ""


def test_a_csp_partner_scans_every_customer_reached_through_gdap(tmp_path: Path) -> None:
    partner, customers = generate_csp(2, SHAPE)
    graph = ThreadedGraph(partner, *customers)
    try:
        result = runner.invoke(
            app, ["scan", "--tenant", partner.tenant_id, "--all-customers", "--format", "json", "--data-dir", str(tmp_path)],
            env=graph.env(), catch_exceptions=False,
        )
    finally:
        graph.stop()
    assert result.exit_code == 0, result.output
    assert {f["tenant"] for f in json.loads(result.stdout)} == {c.tenant_id for c in customers}


def test_scan_without_graph_credentials_says_what_to_set(tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan", "--tenant", "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c", "--data-dir", str(tmp_path)], env={})
    assert result.exit_code == 2 and "ACCESSBOT_GRAPH_CREDENTIAL" in result.output


def reviewers_policy(path: Path, generated: GeneratedTenant, *names: str) -> Path:
    """A policy whose owner, fallback and security lead are the ``names``: people without admin roles."""
    owner, fallback, lead = names
    path.write_text(f"""
[tenant]
id = "{generated.tenant_id}"
name = "{generated.name}"

[reviewers]
fallback = ["{fallback}"]
security_leads = ["{lead}"]

[[roles]]
role = "Global Administrator"
owners = ["{owner}"]

[[partners]]
partner = "*"
owners = ["{owner}"]

[schedule]
cron = "0 9 * * MON"
deadline = "5d"
""", encoding="utf-8")
    return path


def test_collect_reads_the_people_the_policy_names_so_a_campaign_opens_from_the_snapshot(tenant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    generated, graph = tenant
    plain = [u for uid, u in generated.users.items() if uid not in generated.privileged_user_ids][:3]
    policy = reviewers_policy(tmp_path / "policy.toml", generated, *(u["userPrincipalName"] for u in plain))
    collected = runner.invoke(app, ["collect", "--tenant", generated.tenant_id, "--policy", str(policy),
                                    "--data-dir", str(tmp_path)], env=graph.env(), catch_exceptions=False)
    assert collected.exit_code == 0, collected.output
    snapshot = tmp_path / "snapshots" / f"{generated.tenant_id}.json"

    opened = runner.invoke(app, ["campaign", "open", "--snapshot", str(snapshot), "--policy", str(policy),
                                 "--data-dir", str(tmp_path / "reviews")], env={"ACCESSBOT_LEDGER_KEY": LEDGER_KEY}, catch_exceptions=False)

    assert opened.exit_code == 0, opened.output
    assert "opened" in opened.output


def test_people_a_snapshot_does_not_hold_are_named_one_per_line_without_a_traceback(tenant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    generated, graph = tenant
    plain = [u for uid, u in generated.users.items() if uid not in generated.privileged_user_ids][:2]
    names = [plain[0]["userPrincipalName"], plain[1]["userPrincipalName"], "nobody@elsewhere.example"]
    policy = reviewers_policy(tmp_path / "policy.toml", generated, *names)
    collected = runner.invoke(app, ["collect", "--tenant", generated.tenant_id, "--data-dir", str(tmp_path)],
                              env=graph.env(), catch_exceptions=False)  # no policy: only the admins are read
    assert collected.exit_code == 0, collected.output
    snapshot = tmp_path / "snapshots" / f"{generated.tenant_id}.json"

    opened = runner.invoke(app, ["campaign", "open", "--snapshot", str(snapshot), "--policy", str(policy),
                                 "--data-dir", str(tmp_path / "reviews")], env={"ACCESSBOT_LEDGER_KEY": LEDGER_KEY})

    assert opened.exit_code == 2, opened.output  # a usage error, not a crash (which exits 1 with the exception)
    assert "Traceback" not in opened.output and "UnresolvedPeople" not in opened.output
    lines = opened.output.splitlines()
    assert "The policy names 3 people not found in Contoso's snapshot:" in lines
    for name in sorted(names):
        assert f"  {name}" in lines
