"""Reading the directory audit log (``auditLogs/directoryAudits``) from a point in time, every page of it.

The log is read with ``activityDateTime ge {since}`` and followed by ``@odata.nextLink`` to its end; a 429 or
503 is retried by the client's own retry handler, honouring Retry-After (``checks/graph/client.py``). Graph
refuses the log with 403: ``Authorization_RequestDenied`` when the app lacks AuditLog.Read.All or the tenant
lacks the licence the log needs through the API, ``Authentication_RequestFromNonPremiumTenantOrB2CTenant`` on
some tenants without Entra ID P1/P2. Both are "hidden" rather than "failing": retrying will not help, and
``status`` must say the change watch is blind instead of staying silent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from checks.graph.batching import GraphError, GraphReader

READ_PERMISSION = "AuditLog.Read.All"
PAGE_SIZE = 100


class AuditLogHidden(Exception):
    """Graph refuses the directory audit log to this app in this tenant (licence or permission)."""

    def __init__(self, error: GraphError) -> None:
        super().__init__(error)
        self.error = error

    def __str__(self) -> str:
        detail = f": {self.error.message}" if self.error.message else ""
        return (f"the directory audit log is hidden from accessbot ({self.error.describe()}{detail}); it needs "
                f"{READ_PERMISSION} and a licence that exposes the log (Microsoft Entra ID P1 or P2)")


def directory_audits_url(since: datetime) -> str:
    moment = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "/auditLogs/directoryAudits?$filter=" + quote(f"activityDateTime ge {moment}") + f"&$top={PAGE_SIZE}"


async def read_directory_audits(reader: GraphReader, since: datetime) -> list[dict[str, Any]]:
    """Every audit entry at or after ``since``. Raises ``AuditLogHidden`` on a 403, ``GraphError`` otherwise."""
    try:
        return await reader.list_all(directory_audits_url(since))
    except GraphError as error:
        if error.status == 403:
            raise AuditLogHidden(error) from error
        raise
