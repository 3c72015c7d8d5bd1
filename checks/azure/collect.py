"""What accessbot reads from Azure Resource Manager for one tenant, and how it joins the Graph snapshot.

A refusal (401/403: the app holds no Azure role, or the token is not for ARM) is recorded in
``unavailable`` with what to grant, and the snapshot stays complete: many tenants have no Azure at all.
A fault (5xx, timeout after the SDK's retries) is ``missing``, and the snapshot is incomplete.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from checks.azure.arm import ArmError, ArmReader
from checks.snapshot import TenantSnapshot

ENTRA_DIAGNOSTIC_SETTINGS = "/providers/microsoft.aadiam/diagnosticSettings?api-version=2017-04-01-preview"
DIAGNOSTIC_SETTINGS_PERMISSION = "microsoft.aadiam/diagnosticSettings/read"


@dataclass
class AzureView:
    """ARM's answers for one tenant (None: not read) and what could not be read."""

    diagnostic_settings: list[dict[str, Any]] | None = None
    missing: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    def failed(self, key: str, error: ArmError, permission: str) -> None:
        if error.refused:
            self.unavailable.append(f"{key}: Azure Resource Manager refused ({error.describe()}; needs {permission})")
        else:
            self.missing.append(f"{key}: could not be read ({error.describe()})")


async def collect_azure(reader: ArmReader) -> AzureView:
    view = AzureView()
    try:
        view.diagnostic_settings = await reader.list_all(ENTRA_DIAGNOSTIC_SETTINGS)
    except ArmError as error:
        view.failed("aadDiagnosticSettings", error, DIAGNOSTIC_SETTINGS_PERMISSION)
    return view


def with_azure(snapshot: TenantSnapshot, view: AzureView) -> TenantSnapshot:
    """The Graph snapshot with ARM's answers added (keyed by the tenant id: absent means not read)."""
    settings = dict(snapshot.diagnostic_settings)
    if view.diagnostic_settings is not None:
        settings[snapshot.tenant_id] = tuple(view.diagnostic_settings)
    missing = (*snapshot.missing, *view.missing)
    return dataclasses.replace(
        snapshot, diagnostic_settings=settings, missing=missing, complete=snapshot.complete and not view.missing,
        unavailable=tuple(dict.fromkeys((*snapshot.unavailable, *view.unavailable))),
    )


__all__ = ["DIAGNOSTIC_SETTINGS_PERMISSION", "ENTRA_DIAGNOSTIC_SETTINGS", "AzureView", "collect_azure", "with_azure"]
