"""Findings on the cards, the tenant summary, and the JSON and SARIF exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.engine.model import Finding, Subject
from checks.findings import attach_findings, tenant_findings, to_json, to_sarif
from checks.registry import (
    CheckSettings,
    FindingResult,
    Severity,
    all_checks,
    run_checks,
)
from checks.snapshot import load_snapshot
from checks.subjects import subjects_from_snapshot
from tests.unit.test_checks_rules import Tenant, one_global_admin_left, run

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
PRADEEP_EXCHANGE = "role:29232cdf-9323-42fd-ade2-1d097af3e4de:1c4a4351-e6dd-4862-ac6d-3132cb0fe48e:active"
SARIF_LEVELS = {"none", "note", "warning", "error"}


@pytest.fixture(scope="module")
def demo() -> tuple[list[Subject], list[FindingResult]]:
    snapshot = load_snapshot(ROOT / "checks" / "demo_tenant.json")
    subjects = subjects_from_snapshot(snapshot, NOW, ["breakglass01@contoso.onmicrosoft.com"])
    return subjects, run_checks(snapshot, subjects, CheckSettings(), NOW)


def one_global_admin() -> tuple[list[Subject], list[FindingResult]]:
    """A tenant-wide finding, which belongs to no subject."""
    tenant = Tenant.clean()
    one_global_admin_left(tenant)
    snapshot = tenant.snapshot()
    return subjects_from_snapshot(snapshot, NOW), run(tenant)


def test_findings_land_on_their_subjects_most_severe_first(demo: tuple[list[Subject], list[FindingResult]]) -> None:
    subjects, results = demo
    attached = attach_findings(subjects, results)
    assert [s.key for s in attached] == [s.key for s in subjects]
    pradeep = next(s for s in attached if s.key == PRADEEP_EXCHANGE)
    assert [f.check_id for f in pradeep.findings] == [
        "admin_risky", "admin_mfa_method_new", "admin_mfa_not_phishing_resistant", "admin_sign_ins_many_countries",
        "privileged_role_permanent", "admin_mailbox_in_use",
    ]
    assert pradeep.findings[0] == Finding(
        "admin_risky", "Admin account at high risk", "critical",
        "recommended: revoke — Identity Protection: high (at risk); remove the role until the risk is investigated",
        "MS.AAD.2.1v1",
    )
    for subject in attached:
        ranks = [Severity(f.severity).rank for f in subject.findings]
        assert ranks == sorted(ranks)


def test_attaching_twice_replaces_rather_than_duplicates(demo: tuple[list[Subject], list[FindingResult]]) -> None:
    subjects, results = demo
    once = attach_findings(subjects, results)
    assert attach_findings(once, results) == once
    assert all(s.findings == () for s in attach_findings(once, []))


def test_a_finding_for_a_subject_that_is_not_there_is_not_dropped_silently(
    demo: tuple[list[Subject], list[FindingResult]],
) -> None:
    subjects, results = demo
    with pytest.raises(ValueError, match=PRADEEP_EXCHANGE):
        attach_findings([s for s in subjects if s.key != PRADEEP_EXCHANGE], results)


def test_tenant_wide_findings_are_kept_apart_from_subjects() -> None:
    subjects, results = one_global_admin()
    [tenant_wide] = tenant_findings(results)
    assert tenant_wide.check.id == "global_admins_too_few"
    assert all(f.check_id != "global_admins_too_few" for s in attach_findings(subjects, results) for f in s.findings)
    assert tenant_findings([r for r in results if r.subject_key]) == []


def test_json_export_is_flat_serialisable_and_traceable(demo: tuple[list[Subject], list[FindingResult]]) -> None:
    _, results = demo
    records = to_json(results)
    assert len(records) == len(results)
    json.dumps(records, ensure_ascii=False)
    stale = next(r for r in records if r["check"] == "admin_stale" and r["resource"] == "Christie Cline")
    assert stale == {
        "check": "admin_stale", "title": "Admin account not used", "severity": "medium", "subjectArea": "roles",
        "subjectKey": "role:62e90394-69f5-4237-9190-012177145e10:4f55bc7b-99d5-4a2c-b388-89f2a2b41a49:active",
        "resource": "Christie Cline", "message": "no sign-in for 95 days",
        "recommendation": "recommended: revoke — no sign-in for 95 days",
        "seed": stale["seed"], "scuba": None,
    }
    assert stale["seed"].startswith("customer-security-best-practices: ")


def test_sarif_log_is_structurally_valid(demo: tuple[list[Subject], list[FindingResult]]) -> None:
    _, results = demo
    log = json.loads(json.dumps(to_sarif(results, "0.1.0")))
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("accessbot", "0.1.0")
    rules = driver["rules"]
    assert [r["id"] for r in rules] == [m.id for m in all_checks()]  # one rule per check, sorted, unique
    for rule in rules:
        assert {"id", "name", "shortDescription", "fullDescription", "help", "defaultConfiguration",
                "properties"} <= rule.keys()
        assert rule["shortDescription"]["text"] and rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in SARIF_LEVELS
        assert {"seed", "scuba", "severity"} <= rule["properties"].keys()
    assert len(run["results"]) == len(results)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in SARIF_LEVELS and result["message"]["text"]
        [location] = result["locations"]
        [logical] = location["logicalLocations"]
        assert logical["name"] == (result["properties"]["subjectKey"] or "tenant")
    fingerprints = [r["partialFingerprints"]["accessbotFinding/v1"] for r in run["results"]]
    assert len(set(fingerprints)) == len(fingerprints)


def test_sarif_rule_carries_the_guidance_and_the_scubagear_policy(
    demo: tuple[list[Subject], list[FindingResult]],
) -> None:
    _, results = demo
    rules = {r["id"]: r for r in to_sarif(results, "0.1.0")["runs"][0]["tool"]["driver"]["rules"]}
    permanent = rules["privileged_role_permanent"]
    assert permanent["properties"]["scuba"] == "MS.AAD.7.4v1"
    assert permanent["properties"]["severity"] == "high"
    assert "Privileged Identity Management" in permanent["help"]["text"]
    assert "CISA ScubaGear: MS.AAD.7.4v1" in permanent["help"]["text"]


def test_sarif_places_tenant_wide_findings_on_the_tenant() -> None:
    _, results = one_global_admin()
    [result] = to_sarif(results, "0.1.0")["runs"][0]["results"]
    assert result["ruleId"] == "global_admins_too_few"
    assert result["locations"][0]["logicalLocations"][0]["name"] == "tenant"
