"""Admins that Microsoft Entra ID Protection currently rates as risky."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from bot.engine.model import Subject
from checks import evidence
from checks.registry import (
    Advice,
    CheckMetadata,
    CheckSettings,
    FindingResult,
    Severity,
    check,
    subject_finding,
)
from checks.rules.holders import admins
from checks.snapshot import TenantSnapshot

_REPORTED_LEVELS = frozenset({"medium", "high"})

ADMIN_RISKY = CheckMetadata(
    id="admin_risky",
    title="Admin account at risk",
    severity=Severity.CRITICAL,
    subject_area="roles",
    rationale=(
        "Identity Protection rates the account medium or high risk (leaked credentials, anomalous "
        "sign-ins) and nobody has remediated or dismissed it: an admin account that may be in someone "
        "else's hands keeps its roles until this is resolved. Low risk and remediated or dismissed risk "
        "are left out."
    ),
    remediation=(
        "Investigate the risk detections; revoke the account's sessions and reset its password and MFA "
        "methods, then confirm or dismiss the risk in Identity Protection before the role is kept."
    ),
    seed="csp-partner-security-best-practices: Partners should review the risky users report within their "
    "environment and address the accounts that are detected to present risk according to published guidance.",
    scuba="MS.AAD.2.1v1",
)


@check(ADMIN_RISKY)
def admin_risky(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for admin in admins(snapshot, subjects):
        risky = snapshot.risk(admin.id)
        standing = evidence.risk(risky)  # None unless the risk is still atRisk / confirmedCompromised
        if risky is None or standing is None or (risky.get("riskLevel") or "").lower() not in _REPORTED_LEVELS:
            continue
        message = f"Identity Protection: {standing}"
        for subject in admin.roles:
            yield subject_finding(
                ADMIN_RISKY, subject, message, Advice.REVOKE,
                f"{message}; remove the role until the risk is investigated",
                break_glass_note=f"{message}: investigate now and rotate its credentials",
            )
