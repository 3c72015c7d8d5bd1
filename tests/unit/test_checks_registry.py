"""The catalogue itself: every check traces to Microsoft's guidance, ids are sound, runs are deterministic."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.engine.model import Subject
from checks.registry import (
    CheckFunction,
    CheckMetadata,
    CheckSettings,
    FindingResult,
    Severity,
    all_checks,
    catalogue,
    check,
    run_checks,
)
from checks.rules.holders import OTHER_PRIVILEGED_ROLES, SCUBAGEAR_PRIVILEGED_ROLES, Admin, admins
from checks.snapshot import TenantSnapshot, load_snapshot
from checks.subjects import subjects_from_snapshot

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "checks" / "demo_tenant.json"
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
# Microsoft's guidance texts, committed with the project (ACCESSBOT_SEEDS may point elsewhere).
SEEDS = Path(os.environ.get("ACCESSBOT_SEEDS", ROOT / "docs" / "guidance"))

# Every policy id of CISA ScubaGear's Entra ID baseline (PowerShell/ScubaGear/baselines/aad.md, 2026-08).
SCUBAGEAR_AAD_POLICIES = frozenset(
    {
        "MS.AAD.1.1v1", "MS.AAD.2.1v1", "MS.AAD.2.2v1", "MS.AAD.2.3v1", "MS.AAD.3.1v1", "MS.AAD.3.2v2",
        "MS.AAD.3.3v2", "MS.AAD.3.4v1", "MS.AAD.3.5v2", "MS.AAD.3.6v1", "MS.AAD.3.7v1", "MS.AAD.3.8v1",
        "MS.AAD.3.9v1", "MS.AAD.4.1v1", "MS.AAD.5.1v1", "MS.AAD.5.2v1", "MS.AAD.5.3v1", "MS.AAD.5.5v1",
        "MS.AAD.5.6v1", "MS.AAD.5.7v1", "MS.AAD.6.1v1", "MS.AAD.7.1v1", "MS.AAD.7.2v1", "MS.AAD.7.3v1",
        "MS.AAD.7.4v1", "MS.AAD.7.5v1", "MS.AAD.7.6v1", "MS.AAD.7.7v1", "MS.AAD.7.8v1", "MS.AAD.7.9v1",
        "MS.AAD.8.1v1", "MS.AAD.8.2v1", "MS.AAD.8.3v1", "MS.AAD.9.1v1",
    }
)


def normalised(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def demo() -> tuple[TenantSnapshot, list[Subject]]:
    snapshot = load_snapshot(DEMO)
    return snapshot, subjects_from_snapshot(snapshot, NOW, ["breakglass01@contoso.onmicrosoft.com"])


@pytest.mark.parametrize("metadata", all_checks(), ids=lambda m: m.id)
def test_every_check_quotes_a_sentence_found_in_its_seed_file(metadata: CheckMetadata) -> None:
    seed_file = SEEDS / f"{metadata.seed_source}.txt"
    assert seed_file.is_file(), f"the guidance text {seed_file} is missing"
    assert normalised(metadata.seed_quote) in normalised(seed_file.read_text(encoding="utf-8"))


@pytest.mark.parametrize("metadata", all_checks(), ids=lambda m: m.id)
def test_every_check_says_why_and_how_to_fix(metadata: CheckMetadata) -> None:
    assert re.fullmatch(r"[a-z]+(_[a-z]+)+", metadata.id)
    assert metadata.title and metadata.rationale and metadata.remediation
    assert metadata.scuba is None or metadata.scuba in SCUBAGEAR_AAD_POLICIES


def test_scuba_references_name_the_policies_they_enforce() -> None:
    scuba = {m.id: m.scuba for m in all_checks()}
    assert scuba["global_admins_too_few"] == scuba["global_admins_too_many"] == "MS.AAD.7.1v1"
    assert scuba["admin_mfa_missing"] == "MS.AAD.3.2v2"
    assert scuba["admin_mfa_not_phishing_resistant"] == "MS.AAD.3.6v1"
    assert scuba["privileged_role_permanent"] == "MS.AAD.7.4v1"
    assert scuba["admin_synced"] == "MS.AAD.7.3v1"
    assert scuba["admin_risky"] == "MS.AAD.2.1v1"
    # what goes beyond ScubaGear's definitions is a sibling check without an id
    for sibling in ("other_privileged_role_permanent", "other_admin_synced", "other_admin_mfa_not_phishing_resistant",
                    "admin_risky_medium"):
        assert scuba[sibling] is None
    assert scuba["partner_dap_present"] is None  # ScubaGear has no policy on partner relationships


def test_the_highly_privileged_roles_behind_scubagear_ids_are_scubagears_own_list() -> None:
    """ScubaGear's default privilegedRoles (ScubaConfigDefaults.json, 2026-08), the roles its MS.AAD.3.6v1,
    7.3v1 and 7.4v1 cover; Helpdesk Administrator is not among them."""
    assert set(SCUBAGEAR_PRIVILEGED_ROLES.values()) == {
        "Global Administrator", "Privileged Role Administrator", "User Administrator", "SharePoint Administrator",
        "Exchange Administrator", "Hybrid Identity Administrator", "Application Administrator",
        "Cloud Application Administrator",
    }
    assert not set(SCUBAGEAR_PRIVILEGED_ROLES) & set(OTHER_PRIVILEGED_ROLES)


def test_catalogue_is_sorted_and_pairs_each_metadata_with_its_function() -> None:
    pairs = catalogue()
    assert [m for m, _ in pairs] == all_checks()
    assert [m.id for m in all_checks()] == sorted(m.id for m in all_checks())
    assert all(callable(function) for _, function in pairs)


def test_registering_a_second_check_under_an_existing_id_is_refused() -> None:
    existing = all_checks()[0]

    def impostor(*_: object) -> list[FindingResult]:
        return []

    with pytest.raises(ValueError, match="registered twice"):
        check(existing)(impostor)
    assert catalogue()[0][1] is not impostor


def test_metadata_must_quote_a_known_seed_and_name_a_known_area() -> None:
    fields = {"id": "x_y", "title": "t", "severity": Severity.LOW, "rationale": "r", "remediation": "m"}
    with pytest.raises(ValueError, match="seed must read"):
        CheckMetadata(**fields, subject_area="roles", seed="some blog: a sentence")
    with pytest.raises(ValueError, match="unknown subject area"):
        CheckMetadata(**fields, subject_area="devices", seed="customer-security-best-practices: a sentence")


def test_settings_refuse_thresholds_that_make_no_sense() -> None:
    assert CheckSettings() == CheckSettings(90, 730, 3, 4)
    with pytest.raises(ValueError, match="stale_after_days"):
        CheckSettings(stale_after_days=0)


def test_run_is_deterministic_and_most_severe_first(demo: tuple[TenantSnapshot, list[Subject]]) -> None:
    snapshot, subjects = demo
    first = run_checks(snapshot, subjects, CheckSettings(), NOW)
    again = run_checks(snapshot, list(reversed(subjects)), CheckSettings(), NOW)
    assert first == again
    ranks = [r.severity.rank for r in first]
    assert ranks == sorted(ranks) and ranks[0] == Severity.CRITICAL.rank


def test_the_clock_defaults_to_the_collection_time(demo: tuple[TenantSnapshot, list[Subject]]) -> None:
    snapshot, subjects = demo
    assert run_checks(snapshot, subjects) == run_checks(snapshot, subjects, CheckSettings(), NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        run_checks(snapshot, subjects, now=datetime(2026, 11, 23, 8, 0))


def _one_off(subject_keys: Sequence[str | None]) -> tuple[CheckMetadata, CheckFunction]:
    metadata = CheckMetadata(
        id="test_only", title="t", severity=Severity.LOW, subject_area="roles", rationale="r", remediation="m",
        seed="customer-security-best-practices: a sentence",
    )

    def function(*_: object) -> Iterator[FindingResult]:
        for key in subject_keys:
            yield FindingResult(metadata, key, "someone", "something", "recommended: review — something")

    return metadata, function


def test_a_finding_on_a_subject_that_does_not_exist_is_refused(demo: tuple[TenantSnapshot, list[Subject]]) -> None:
    snapshot, subjects = demo
    with pytest.raises(ValueError, match="unknown subject 'role:nobody'"):
        run_checks(snapshot, subjects, checks=[_one_off(["role:nobody"])])


def test_a_check_reporting_one_subject_twice_is_refused(demo: tuple[TenantSnapshot, list[Subject]]) -> None:
    snapshot, subjects = demo
    key = subjects[0].key
    with pytest.raises(ValueError, match="twice"):
        run_checks(snapshot, subjects, checks=[_one_off([key, key])])
    assert len(run_checks(snapshot, subjects, checks=[_one_off([None, None])])) == 2  # tenant-wide may repeat


def test_the_checks_of_one_assessment_share_one_list_of_admins(demo: tuple[TenantSnapshot, list[Subject]]) -> None:
    """Fifteen checks start from ``admins()``: within one run it is worked out once and shared, and the
    next run (another snapshot, other subjects) works it out afresh."""
    snapshot, subjects = demo
    seen: list[list[Admin]] = []

    def looks_at_admins(snapshot: TenantSnapshot, subjects: Sequence[Subject], *_: object) -> Iterator[FindingResult]:
        seen.append(admins(snapshot, subjects))
        return iter(())

    pair = [(CheckMetadata("looks-at-admins-" + str(n), "t", Severity.LOW, "roles", "r", "m",
                           "customer-security-best-practices: x."), looks_at_admins) for n in (1, 2)]
    run_checks(snapshot, subjects, now=NOW, checks=pair)
    run_checks(snapshot, subjects, now=NOW, checks=pair[:1])
    first, second, next_run = seen
    assert first == admins(snapshot, subjects) and len(first) > 1
    assert all(a is b for a, b in zip(first, second, strict=True))  # the same Admin objects: computed once
    assert first is not second  # each caller still gets a list of its own
    assert not any(a is b for a, b in zip(first, next_run, strict=True))


def test_a_check_finds_the_same_run_alone_as_within_the_assessment(
    demo: tuple[TenantSnapshot, list[Subject]],
) -> None:
    snapshot, subjects = demo
    together = run_checks(snapshot, subjects, now=NOW)
    alone = [found for pair in catalogue() for found in run_checks(snapshot, list(subjects), now=NOW, checks=[pair])]
    assert sorted(alone, key=repr) == sorted(together, key=repr)
