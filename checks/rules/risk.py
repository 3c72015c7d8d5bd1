"""Admins that Microsoft Entra ID Protection currently rates as risky.

ScubaGear's MS.AAD.2.1v1 is about users detected as *high* risk; only those findings cite it. Medium risk
is reported by a sibling check without the id.
"""

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

ADMIN_RISKY = CheckMetadata(
    id="admin_risky",
    title="Admin account at high risk",
    severity=Severity.CRITICAL,
    subject_area="roles",
    rationale=(
        "Identity Protection rates the account high risk (leaked credentials, anomalous sign-ins) and "
        "nobody has remediated or dismissed it: an admin account that may be in someone else's hands "
        "keeps its roles until this is resolved. Remediated or dismissed risk is left out."
    ),
    remediation=(
        "Investigate the risk detections; revoke the account's sessions and reset its password and MFA "
        "methods, then confirm or dismiss the risk in Identity Protection before the role is kept."
    ),
    seed="csp-partner-security-best-practices: Partners should review the risky users report within their "
    "environment and address the accounts that are detected to present risk according to published guidance.",
    scuba="MS.AAD.2.1v1",
)

ADMIN_RISKY_MEDIUM = CheckMetadata(
    id="admin_risky_medium",
    title="Admin account at medium risk",
    severity=Severity.HIGH,
    subject_area="roles",
    rationale=(
        "Identity Protection rates the account medium risk and nobody has remediated or dismissed it. "
        "ScubaGear's MS.AAD.2.1v1 blocks only high-risk users, so this is reported without its id; an admin "
        "account is still worth investigating before its roles are kept. Low risk is left out."
    ),
    remediation=(
        "Investigate the risk detections; if any is unexplained, revoke the account's sessions and reset its "
        "credentials, then confirm or dismiss the risk in Identity Protection."
    ),
    seed="csp-partner-security-best-practices: Partners should review the risky users report within their "
    "environment and address the accounts that are detected to present risk according to published guidance.",
    scuba=None,
)


def _at_risk(snapshot: TenantSnapshot, subjects: Sequence[Subject], level: str) -> Iterator[FindingResult]:
    metadata = ADMIN_RISKY if level == "high" else ADMIN_RISKY_MEDIUM
    for admin in admins(snapshot, subjects):
        risky = snapshot.risk(admin.id)
        standing = evidence.risk(risky)  # None unless the risk is still atRisk / confirmedCompromised
        if risky is None or standing is None or (risky.get("riskLevel") or "").lower() != level:
            continue
        message = f"Identity Protection: {standing}"
        for subject in admin.roles:
            yield subject_finding(
                metadata, subject, message, Advice.REVOKE,
                f"{message}; remove the role until the risk is investigated",
                break_glass_note=f"{message}: investigate now and rotate its credentials",
            )


@check(ADMIN_RISKY)
def admin_risky(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    return _at_risk(snapshot, subjects, "high")


@check(ADMIN_RISKY_MEDIUM)
def admin_risky_medium(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    return _at_risk(snapshot, subjects, "medium")
