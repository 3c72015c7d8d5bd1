"""Whether Entra's audit and sign-in logs outlive the tenant's own retention.

Entra keeps audit and sign-in logs for 7 days without a premium licence and 30 days with Microsoft Entra
ID P1 or P2; an investigation usually starts later than that. A diagnostic setting of ``microsoft.aadiam``
(read through Azure Resource Manager) that sends both categories to a Log Analytics workspace, a storage
account, an event hub or a partner solution keeps them as long as that destination does. Nothing is said
when ARM was not read: no answer is not "no export".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.engine.model import Subject
from checks import evidence
from checks.registry import Advice, CheckMetadata, CheckSettings, FindingResult, Severity, check, recommend
from checks.snapshot import TenantSnapshot

# The log categories an investigation of admin activity needs: who changed what, and who signed in.
REQUIRED_CATEGORIES = {"AuditLogs": "audit logs", "SignInLogs": "sign-in logs"}
_DESTINATIONS = ("workspaceId", "storageAccountId", "eventHubAuthorizationRuleId", "serviceBusRuleId",
                 "marketplacePartnerId")
_PREMIUM_PLANS = frozenset({"AAD_PREMIUM", "AAD_PREMIUM_P2"})
FREE_RETENTION_DAYS, PREMIUM_RETENTION_DAYS = 7, 30

ENTRA_LOGS_NOT_EXPORTED = CheckMetadata(
    id="entra_logs_not_exported",
    title="Entra audit or sign-in logs kept only as long as the tenant keeps them",
    severity=Severity.MEDIUM,
    subject_area="tenant",
    rationale=(
        "Entra keeps audit and sign-in logs for 7 days (30 with Microsoft Entra ID P1 or P2). A partner's "
        "compromise or an admin's misuse is usually found later than that, and then the record of who granted "
        "what, and who signed in, is gone."
    ),
    remediation=(
        "Entra admin centre > Monitoring & health > Diagnostic settings: send AuditLogs and SignInLogs to a Log "
        "Analytics workspace or a storage account with the retention your incident response needs."
    ),
    seed="customer-security-best-practices: Investigating activities conducted by malicious actors places a large "
    "emphasis on having adequate log-retention procedures for cloud-based resources, including Microsoft 365.",
)


def retention_days(snapshot: TenantSnapshot) -> int:
    """How long the tenant itself keeps audit and sign-in logs, by its licence."""
    plans = {
        plan.get("servicePlanName") for sku in snapshot.subscribed_skus for plan in sku.get("servicePlans") or []
    }
    return PREMIUM_RETENTION_DAYS if plans & _PREMIUM_PLANS else FREE_RETENTION_DAYS


def exported_categories(settings: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Category -> names of the settings that export it (enabled, with a destination)."""
    exported: dict[str, list[str]] = {}
    for setting in settings:
        properties = setting.get("properties") or {}
        if not any(properties.get(key) for key in _DESTINATIONS):
            continue
        for log in properties.get("logs") or []:
            if log.get("enabled") and log.get("category"):
                exported.setdefault(log["category"], []).append(setting.get("name") or setting.get("id") or "?")
    return exported


@check(ENTRA_LOGS_NOT_EXPORTED)
def entra_logs_not_exported(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    diagnostic = snapshot.entra_diagnostic_settings()
    if diagnostic is None:
        return
    exported = exported_categories(diagnostic)
    unexported = [label for category, label in REQUIRED_CATEGORIES.items() if category not in exported]
    if not unexported:
        return
    days = retention_days(snapshot)
    licence = "Microsoft Entra ID P1 or P2" if days == PREMIUM_RETENTION_DAYS else "no Entra ID premium licence"
    what = " and ".join(unexported)
    message = f"{what} exported nowhere: the tenant keeps them {days} days ({licence})"
    if len(unexported) < len(REQUIRED_CATEGORIES):
        others = [f"{REQUIRED_CATEGORIES[c]} go to {evidence.listing(exported[c], 60)}"
                  for c in REQUIRED_CATEGORIES if c in exported]
        message += "; " + "; ".join(others)
    yield FindingResult(
        ENTRA_LOGS_NOT_EXPORTED, None, f"{snapshot.tenant_name} — Entra diagnostic settings", message,
        recommend(Advice.REVIEW, f"export {what} with a diagnostic setting before they age out"),
    )
