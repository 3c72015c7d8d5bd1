"""Where check results go: onto review subjects (the cards), into the tenant summary, and out as JSON or
SARIF 2.1.0 for tools that already read scanner output (GitHub code scanning, Defender for Cloud, ...).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.engine.model import Finding, Subject
from checks.registry import (
    CheckMetadata,
    CheckSettings,
    FindingResult,
    Severity,
    all_checks,
    finding_order,
    run_checks,
)
from checks.snapshot import TenantSnapshot
from checks.subjects import subjects_from_snapshot

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "accessbot"
TENANT_LOCATION = "tenant"  # the logical location of findings that belong to no subject

_SARIF_LEVELS = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}
# GitHub code scanning reads "security-severity" (0.0-10.0) to rank security alerts.
_SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0"}


def attach_findings(subjects: Sequence[Subject], results: Iterable[FindingResult]) -> list[Subject]:
    """Copies of ``subjects`` (same order) whose ``findings`` are the results naming them, most severe
    first. Findings are replaced, not appended, so attaching twice gives the same subjects. A result
    naming a subject that is not in ``subjects`` raises ``ValueError``: it would otherwise be lost."""
    per_subject: dict[str, list[FindingResult]] = defaultdict(list)
    keys = {subject.key for subject in subjects}
    for result in results:
        if result.subject_key is None:
            continue
        if result.subject_key not in keys:
            raise ValueError(f"finding {result.check.id} names unknown subject {result.subject_key!r}")
        per_subject[result.subject_key].append(result)
    return [
        replace(
            subject,
            findings=tuple(
                Finding(r.check.id, r.check.title, r.severity.value, r.recommendation, r.check.scuba)
                for r in sorted(per_subject.get(subject.key, ()), key=finding_order)
            ),
        )
        for subject in subjects
    ]


def assess(
    snapshot: TenantSnapshot,
    now: datetime,
    break_glass: Collection[str] = (),
    settings: CheckSettings | None = None,
) -> tuple[list[Subject], list[FindingResult]]:
    """Everything to review in a snapshot, with the checks' findings attached to each subject, and the
    tenant-wide findings that belong to no single subject (e.g. too many Global Administrators)."""
    subjects = subjects_from_snapshot(snapshot, now, break_glass)
    results = run_checks(snapshot, subjects, settings, now)
    return attach_findings(subjects, results), tenant_findings(results)


def tenant_findings(results: Iterable[FindingResult]) -> list[FindingResult]:
    """The results that concern the tenant as a whole (no review subject), most severe first."""
    return sorted((r for r in results if r.subject_key is None), key=finding_order)


def to_json(results: Iterable[FindingResult]) -> list[dict[str, Any]]:
    """One flat, JSON-serialisable record per finding, in the run's order."""
    return [
        {
            "check": r.check.id,
            "title": r.check.title,
            "severity": r.severity.value,
            "subjectArea": r.check.subject_area,
            "subjectKey": r.subject_key,
            "resource": r.resource,
            "message": r.message,
            "recommendation": r.recommendation,
            "seed": r.check.seed,
            "scuba": r.check.scuba,
        }
        for r in sorted(results, key=finding_order)
    ]


def to_sarif(results: Iterable[FindingResult], tool_version: str) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: a rule for every check in the catalogue (and any other check a
    result carries), and one result per finding located at its subject key."""
    results = sorted(results, key=finding_order)
    catalogue = {metadata.id: metadata for metadata in all_checks()}
    for result in results:
        catalogue.setdefault(result.check.id, result.check)
    rules = [catalogue[check_id] for check_id in sorted(catalogue)]
    index = {metadata.id: position for position, metadata in enumerate(rules)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": tool_version,
                        "rules": [_rule(metadata) for metadata in rules],
                    }
                },
                "results": [_result(result, index[result.check.id]) for result in results],
            }
        ],
    }


def _rule(metadata: CheckMetadata) -> dict[str, Any]:
    help_text = f"{metadata.remediation}\n\nGuidance: {metadata.seed_quote}"
    if metadata.scuba:
        help_text += f"\nCISA ScubaGear: {metadata.scuba}"
    return {
        "id": metadata.id,
        "name": "".join(part.capitalize() for part in metadata.id.split("_")),
        "shortDescription": {"text": metadata.title},
        "fullDescription": {"text": metadata.rationale},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": _SARIF_LEVELS[metadata.severity]},
        "properties": {
            "severity": metadata.severity.value,
            "security-severity": _SECURITY_SEVERITY[metadata.severity],
            "subjectArea": metadata.subject_area,
            "seed": metadata.seed,
            "scuba": metadata.scuba,
            "tags": ["security", metadata.subject_area],
        },
    }


def _result(result: FindingResult, rule_index: int) -> dict[str, Any]:
    location = result.subject_key or TENANT_LOCATION
    fingerprint = hashlib.sha256(f"{result.check.id}\n{location}\n{result.resource}".encode()).hexdigest()
    return {
        "ruleId": result.check.id,
        "ruleIndex": rule_index,
        "level": _SARIF_LEVELS[result.severity],
        "message": {"text": f"{result.resource}: {result.message}. {result.recommendation}"},
        "locations": [
            {
                "logicalLocations": [{"name": location, "kind": "resource"}]
            }
        ],
        "partialFingerprints": {"accessbotFinding/v1": fingerprint},
        "properties": {
            "subjectKey": result.subject_key,
            "resource": result.resource,
            "recommendation": result.recommendation,
            "severity": result.severity.value,
        },
    }


__all__ = ["attach_findings", "tenant_findings", "to_json", "to_sarif"]
