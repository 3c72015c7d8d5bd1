"""The operator's CLI, run as an operator would: open, status, ledger verify/export, doctor, serve's refusal."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from bot.cli import app
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.ledger import canonical_json
from bot.ledger_signing import LedgerSigner
from tests.integration.test_ledger_witness import ALEX, signed_runtime

runner = CliRunner()
DEMO = ["--policy", str(DEMO_POLICY), "--snapshot", str(DEMO_SNAPSHOT)]
LEDGER_KEY = base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()  # as from a secret store


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env={"ACCESSBOT_LEDGER_KEY": LEDGER_KEY, **(env or {})}, catch_exceptions=False)


def test_campaign_open_is_idempotent_and_status_reads_it(tmp_path: Path) -> None:
    first = run("campaign", "open", *DEMO, "--data-dir", str(tmp_path))
    assert first.exit_code == 0 and "31 items, opened" in first.output
    again = run("campaign", "open", *DEMO, "--data-dir", str(tmp_path))
    assert "already open" in again.output
    status = run("campaign", "status", "--snapshot", str(DEMO_SNAPSHOT), "--data-dir", str(tmp_path))
    assert status.exit_code == 0
    assert "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c" in status.output and "Alex Wilber" in status.output


def test_ledger_verify_passes_then_names_the_edited_record(tmp_path: Path) -> None:
    run("campaign", "open", *DEMO, "--data-dir", str(tmp_path))
    ok = run("ledger", "verify", "--data-dir", str(tmp_path))
    assert ok.exit_code == 0 and "ledger OK: 1 records" in ok.output
    ledger = tmp_path / "ledger.jsonl"
    record = json.loads(ledger.read_text().splitlines()[0])
    record["data"]["item_count"] = 3  # someone shrinks the campaign after the fact
    ledger.write_bytes(canonical_json(record) + b"\n")  # edited, kept in the form the bot writes
    broken = run("ledger", "verify", "--data-dir", str(tmp_path))
    assert broken.exit_code == 1 and "BROKEN at record 1" in broken.output


def test_ledger_verify_reports_an_unreadable_line_instead_of_a_traceback(tmp_path: Path) -> None:
    run("campaign", "open", *DEMO, "--data-dir", str(tmp_path))
    with (tmp_path / "ledger.jsonl").open("a") as ledger:
        ledger.write("this is not a record\n")
    broken = run("ledger", "verify", "--data-dir", str(tmp_path))
    assert broken.exit_code == 1 and "BROKEN at line 2" in broken.output


def test_ledger_export_writes_csv_and_json_for_auditors(tmp_path: Path) -> None:
    run("campaign", "open", *DEMO, "--data-dir", str(tmp_path))
    as_csv = run("ledger", "export", "--format", "csv", "--data-dir", str(tmp_path))
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [row["type"] for row in rows] == ["campaign_opened"] and rows[0]["seq"] == "1"
    out = tmp_path / "ledger.json"
    run("ledger", "export", "--format", "json", "--output", str(out), "--data-dir", str(tmp_path))
    assert json.loads(out.read_text())[0]["type"] == "campaign_opened"
    bad = run("ledger", "export", "--format", "xml", "--data-dir", str(tmp_path))
    assert bad.exit_code == 2 and "csv or json" in bad.output


def test_campaign_export_writes_only_that_campaigns_attestations(tmp_path: Path) -> None:
    run("campaign", "open", *DEMO, "--data-dir", str(tmp_path))
    exported = run("campaign", "export", "--format", "json", "--data-dir", str(tmp_path))
    records = json.loads(exported.output)
    assert records and all(r["data"]["campaign_id"].startswith("2f4a9b6c") for r in records)


def test_doctor_passes_on_the_demo_and_names_the_line_of_a_broken_policy(tmp_path: Path) -> None:
    healthy = run("doctor", *DEMO, "--data-dir", str(tmp_path))
    assert healthy.exit_code == 0, healthy.output
    assert "OK   people" in healthy.output and "MICROSOFT_APP_ID is not set" in healthy.output
    broken_policy = tmp_path / "broken.toml"
    broken_policy.write_text(DEMO_POLICY.read_text().replace('deadline = "5d"', 'deadline = "five days"'))
    broken = run("doctor", "--policy", str(broken_policy), "--snapshot", str(DEMO_SNAPSHOT), "--data-dir", str(tmp_path))
    line = next(n for n, text in enumerate(broken_policy.read_text().splitlines(), 1) if "five days" in text)
    assert broken.exit_code == 1 and f"line {line}" in broken.output and "deadline" in broken.output


def test_doctor_names_people_the_directory_does_not_know(tmp_path: Path) -> None:
    policy = tmp_path / "unknown.toml"
    policy.write_text(DEMO_POLICY.read_text().replace('fallback = ["leeg@contoso.com"]', 'fallback = ["nobody@contoso.com"]'))
    result = run("doctor", "--policy", str(policy), "--snapshot", str(DEMO_SNAPSHOT), "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "nobody@contoso.com" in result.output


def test_serve_refuses_to_run_unauthenticated_unless_told(tmp_path: Path) -> None:
    result = run("serve", *DEMO, "--data-dir", str(tmp_path))
    assert result.exit_code == 2 and "--no-auth" in result.output


def test_manifest_build_writes_a_package_with_the_bot_id(tmp_path: Path) -> None:
    import zipfile

    env = {"MICROSOFT_APP_ID": "5b7d9f1a-2c4e-4a6b-8d0f-1e3a5c7e9b02"}
    result = run("manifest", "build", "--domain", "accessbot.contoso.com", "--out", str(tmp_path), env=env)
    assert result.exit_code == 0, result.output
    (package,) = tmp_path.glob("*.zip")
    manifest = json.loads(zipfile.ZipFile(package).read("manifest.json"))
    assert manifest["bots"][0]["botId"] == env["MICROSOFT_APP_ID"] and manifest["validDomains"] == ["accessbot.contoso.com"]
    refused = run("manifest", "build", "--domain", "accessbot.contoso.com", "--out", str(tmp_path), env={"MICROSOFT_APP_ID": "nope"})
    assert refused.exit_code == 2 and "MICROSOFT_APP_ID" in refused.output


def test_scan_prints_the_findings_of_a_snapshot_as_table_json_and_sarif(tmp_path: Path) -> None:
    table = run("scan", "--snapshot", str(DEMO_SNAPSHOT), "--policy", str(DEMO_POLICY))
    assert table.exit_code == 0 and "44 finding(s) in 1 tenant(s)" in table.output
    as_json = run("scan", "--snapshot", str(DEMO_SNAPSHOT), "--policy", str(DEMO_POLICY), "--format", "json")
    findings = json.loads(as_json.stdout)
    assert any(f["check"] == "admin_mfa_missing" and f["resource"] == "Megan Bowen" for f in findings)
    sarif_file = tmp_path / "accessbot.sarif"
    run("scan", "--snapshot", str(DEMO_SNAPSHOT), "--format", "sarif", "--output", str(sarif_file))
    sarif = json.loads(sarif_file.read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    bad = run("scan", "--snapshot", str(DEMO_SNAPSHOT), "--format", "xml")
    assert bad.exit_code == 2


def _token(roles: list[str]) -> str:
    import base64

    def part(data: dict) -> str:  # type: ignore[type-arg]
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'roles': roles, 'exp': 4102444800})}.c2lnbmF0dXJl"


def test_doctor_names_the_graph_permissions_the_app_was_not_granted(tmp_path: Path) -> None:
    from checks.graph.permissions import READ

    granted = [name for name, _ in READ if name not in ("IdentityRiskyUser.Read.All", "Policy.Read.All")]
    env = {"ACCESSBOT_GRAPH_CREDENTIAL": "access_token", "ACCESSBOT_GRAPH_TENANT_ID": "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c",
           "ACCESSBOT_GRAPH_ACCESS_TOKEN": _token(granted + ["User.ReadWrite.All"])}
    result = run("doctor", *DEMO, "--data-dir", str(tmp_path), env=env)
    assert result.exit_code == 1
    assert "missing read permissions: Policy.Read.All, IdentityRiskyUser.Read.All" in result.output
    assert "write permissions granted while remediation is not 'apply'" in result.output and "User.ReadWrite.All" in result.output
    env["ACCESSBOT_GRAPH_ACCESS_TOKEN"] = _token([name for name, _ in READ])
    assert "every read permission is granted" in run("doctor", *DEMO, "--data-dir", str(tmp_path), env=env).output


def test_doctor_reports_every_policy_problem_by_name_with_a_did_you_mean(tmp_path: Path) -> None:
    policy = tmp_path / "typos.toml"
    policy.write_text(
        DEMO_POLICY.read_text().replace('mode = "off"', 'mode = "aply"').replace(
            'role = "Exchange Administrator"', 'role = "Exchange Admin"')
        + '\n[remediaton]\ndual_custody_global_admin = true\n'
    )
    lines = policy.read_text().splitlines()
    at = {word: next(n for n, text in enumerate(lines, 1) if word in text) for word in ("aply", "[remediaton]")}
    at["role"] = lines.index('role = "Exchange Admin"') + 1
    result = run("doctor", "--policy", str(policy), "--snapshot", str(DEMO_SNAPSHOT), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 1
    failures = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert f"FAIL policy: {policy}, line {at['aply']}: [remediation] mode = \"aply\": expected one of \"off\", " \
           "\"dry-run\", \"apply\"; did you mean 'apply'?" in failures
    assert f"FAIL policy: {policy}, line {at['[remediaton]']}: [remediaton]: unknown table; did you mean 'remediation'?" in failures
    assert f"FAIL role names: {policy}, line {at['role']}: [[roles]] #4 role = \"Exchange Admin\": not an Entra " \
           "built-in role nor a role of this tenant; did you mean 'Exchange Administrator'?" in failures
    assert "RemediationMode" not in result.output


def test_doctor_knows_the_tenants_custom_roles_and_built_in_ones_without_a_snapshot(tmp_path: Path) -> None:
    snapshot = json.loads(DEMO_SNAPSHOT.read_text())
    snapshot["roleDefinitions"].append({"id": "6a1c0f3e-2b4d-4e8f-9a7c-5d3b1e9f7a20", "displayName": "Contoso Mail Auditor",
                                        "isBuiltIn": False, "templateId": "6a1c0f3e-2b4d-4e8f-9a7c-5d3b1e9f7a20"})
    custom_snapshot = tmp_path / "snapshot.json"
    custom_snapshot.write_text(json.dumps(snapshot))
    policy = tmp_path / "custom.toml"
    policy.write_text(DEMO_POLICY.read_text() + '\n[[roles]]\nrole = "Contoso Mail Auditor"\nowners = ["pattif@contoso.com"]\n'
                      '\n[[roles]]\nrole = "Teams Administrator"\nowners = ["pattif@contoso.com"]\n')
    known = run("doctor", "--policy", str(policy), "--snapshot", str(custom_snapshot), "--data-dir", str(tmp_path / "d"))
    assert "OK   role names: every role the policy names exists in Entra ID" in known.output
    unknown = run("doctor", "--policy", str(policy), "--snapshot", str(DEMO_SNAPSHOT), "--data-dir", str(tmp_path / "d"))
    assert 'role = "Contoso Mail Auditor": not an Entra built-in role nor a role of this tenant' in unknown.output
    assert "Teams Administrator" not in unknown.output  # a built-in role nobody holds is still a real role


def test_doctor_runs_the_ledger_check_and_fails_on_a_tampered_ledger(tmp_path: Path) -> None:
    run("campaign", "open", *DEMO, "--data-dir", str(tmp_path))
    assert "OK   ledger: 1 records verify" in run("doctor", *DEMO, "--data-dir", str(tmp_path)).output
    ledger = tmp_path / "ledger.jsonl"
    record = json.loads(ledger.read_text().splitlines()[0])
    record["data"]["item_count"] = 3
    ledger.write_bytes(canonical_json(record) + b"\n")  # edited, kept in the form the bot writes
    tampered = run("doctor", *DEMO, "--data-dir", str(tmp_path))
    assert tampered.exit_code == 1 and "FAIL ledger: BROKEN at record 1" in tampered.output
    verdict = run("ledger", "verify", "--data-dir", str(tmp_path))  # the same verdict as ledger verify
    assert verdict.exit_code == 1 and "BROKEN at record 1" in verdict.output


def test_doctor_without_a_ledger_key_still_fails_a_ledger_whose_hash_chain_is_broken(tmp_path: Path) -> None:
    """With no key configured (a fresh shell beside the demo) doctor only warned, and passed an edited ledger."""
    run("campaign", "open", *DEMO, "--data-dir", str(tmp_path))
    no_key = {"ACCESSBOT_LEDGER_KEY": ""}
    intact = run("doctor", *DEMO, "--data-dir", str(tmp_path), env=no_key)
    assert "WARN ledger: 1 records chain, but no ledger key is configured" in intact.output
    ledger = tmp_path / "ledger.jsonl"
    record = json.loads(ledger.read_text().splitlines()[0])
    record["data"]["item_count"] = 3
    ledger.write_bytes(canonical_json(record) + b"\n")  # written as the bot writes, so only the hash gives it away
    tampered = run("doctor", *DEMO, "--data-dir", str(tmp_path), env=no_key)
    assert tampered.exit_code == 1 and "FAIL ledger: BROKEN at record 1: record 1 was edited" in tampered.output


def test_doctor_warns_that_export_links_need_a_public_url_and_a_lasting_secret(tmp_path: Path) -> None:
    bare = run("doctor", *DEMO, "--data-dir", str(tmp_path))
    assert bare.exit_code == 0
    assert "WARN export links: ACCESSBOT_PUBLIC_URL is not set: export links will point at http://127.0.0.1:3978" in bare.output
    assert "WARN export links: ACCESSBOT_EXPORT_SECRET is not set" in bare.output and "dies at each restart" in bare.output
    configured = run("doctor", *DEMO, "--data-dir", str(tmp_path),
                     env={"ACCESSBOT_PUBLIC_URL": "https://accessbot.contoso.com", "ACCESSBOT_EXPORT_SECRET": "s" * 40})
    assert "export links" not in configured.output


def test_scan_of_an_incomplete_snapshot_file_exits_3_and_says_what_is_missing(tmp_path: Path) -> None:
    snapshot = json.loads(DEMO_SNAPSHOT.read_text())
    snapshot.update(complete=False, missing=["phoneMethods: 3 of 12 users failed (503)"])
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(snapshot))
    result = run("scan", "--snapshot", str(partial), "--format", "json")
    assert result.exit_code == 3 and json.loads(result.stdout)
    assert "accessbot: could not read Contoso (2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c): phoneMethods: 3 of 12 users failed (503)" \
        in result.stderr


def test_names_a_tenant_chose_reach_the_terminal_as_written_never_as_markup_or_escape_codes(tmp_path: Path) -> None:
    snapshot = json.loads(DEMO_SNAPSHOT.read_text())
    snapshot.update(tenantName="[bold]Evil[/bold]\x1b[2J\x07Corp", complete=False, missing=["roleAssignments: [red]x[/red]"])
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps(snapshot))
    result = run("scan", "--snapshot", str(hostile), env={"COLUMNS": "250"})
    assert result.exit_code == 3
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "[bold]Evil[/bold]\\x1b[2J\\x07Corp" in result.output  # shown as written, escapes visible
    assert "roleAssignments: [red]x[/red]" in result.stderr


def test_manifest_build_out_names_a_folder_unless_it_names_a_zip_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    env = {"MICROSOFT_APP_ID": "5b7d9f1a-2c4e-4a6b-8d0f-1e3a5c7e9b02"}
    build = ("manifest", "build", "--domain", "accessbot.contoso.com")
    assert run(*build, "--out", f"{tmp_path}/dist/", env=env).exit_code == 0
    assert (tmp_path / "dist" / "accessbot-1.0.0.zip").is_file()  # the folder did not exist: it is created
    assert run(*build, "--out", str(tmp_path / "release"), "--version", "1.2.0", env=env).exit_code == 0
    assert (tmp_path / "release" / "accessbot-1.2.0.zip").is_file()
    assert run(*build, "--out", str(tmp_path / "teams.zip"), env=env).exit_code == 0
    assert (tmp_path / "teams.zip").is_file()
    monkeypatch.chdir(tmp_path / "release")
    assert run(*build, env=env).exit_code == 0  # the default, --out dist, as the docs promise
    assert (tmp_path / "release" / "dist" / "accessbot-1.0.0.zip").is_file()


def test_campaign_status_after_sign_off_says_signed_off_and_counts_nothing_as_open(tmp_path: Path) -> None:
    """It used to print "21 open" under a review that was closed: a reader took it for work still to do."""
    async def open_and_sign_off() -> None:
        runtime = await signed_runtime(tmp_path, ManualClock(datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)),
                                       LedgerSigner.from_text(LEDGER_KEY))  # the key run() configures
        await runtime.service.open_current_campaign()
        assert (await runtime.service.sign_off(ALEX, "Alex Wilber", confirmed=True)).ok
        await runtime.store.close()

    asyncio.run(open_and_sign_off())
    status = run("campaign", "status", "--snapshot", str(DEMO_SNAPSHOT), "--data-dir", str(tmp_path))
    assert status.exit_code == 0
    assert "29 unanswered at sign-off" in status.output and "signed off by Alex Wilber at 2026-11-23 09:30" in status.output
    header = next(line for line in status.output.splitlines() if "reviewer" in line)
    assert " open" not in status.output and header.split() == ["reviewer", "unanswered", "answered"]


def test_scan_on_an_80_column_terminal_cuts_no_check_or_scubagear_id_short() -> None:
    """It printed "admin_mfa_m…" and "MS.AAD.3.2…": ids nobody could look up."""
    table = run("scan", "--snapshot", str(DEMO_SNAPSHOT), env={"COLUMNS": "80"})
    assert table.exit_code == 0 and "…" not in table.output
    assert "MS.AAD.3.2v2" in table.output and "MS.AAD.7.4v1" in table.output
