"""Microsoft 365 usage reports, which Graph v1.0 serves as CSV files rather than JSON.

``reports/getEmailActivityUserDetail(period='D30')`` answers with a 302 to a short-lived download of a
CSV (UTF-8 with a byte-order mark). The snapshot keeps its rows as JSON objects named like the beta
JSON form of the report, so a row reads the same whichever way it was fetched.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any

# CSV header -> JSON property, and how to read the cell.
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("Report Refresh Date", "reportRefreshDate", "text"),
    ("User Principal Name", "userPrincipalName", "text"),
    ("Display Name", "displayName", "text"),
    ("Is Deleted", "isDeleted", "bool"),
    ("Deleted Date", "deletedDate", "text"),
    ("Last Activity Date", "lastActivityDate", "text"),
    ("Send Count", "sendCount", "int"),
    ("Receive Count", "receiveCount", "int"),
    ("Read Count", "readCount", "int"),
    ("Meeting Created Count", "meetingCreatedCount", "int"),
    ("Meeting Interacted Count", "meetingInteractedCount", "int"),
    ("Assigned Products", "assignedProducts", "products"),
    ("Report Period", "reportPeriod", "text"),
)
# Products are joined with "+", but a product name may itself hold " + " ("ENTERPRISE MOBILITY + SECURITY E3").
_PRODUCT_SEPARATOR = re.compile(r"(?<! )\+(?! )")


def parse_email_activity(content: bytes) -> list[dict[str, Any]]:
    """The rows of the email activity user detail report, typed (counts as ints, products as a list)."""
    reader = csv.DictReader(io.StringIO(content.decode("utf-8-sig")))
    rows = []
    for raw in reader:
        row: dict[str, Any] = {}
        for header, key, kind in _COLUMNS:
            cell = (raw.get(header) or "").strip()
            if kind == "bool":
                row[key] = cell.lower() == "true"
            elif kind == "int":
                row[key] = int(cell) if cell.isdigit() else 0
            elif kind == "products":
                row[key] = [p.strip() for p in _PRODUCT_SEPARATOR.split(cell) if p.strip()]
            else:
                row[key] = cell or None
        if row["userPrincipalName"]:
            rows.append(row)
    return rows


def names_concealed(rows: list[dict[str, Any]]) -> bool:
    """True when the tenant hides user names in usage reports (Microsoft 365 admin centre > Settings >
    Org settings > Reports): every row then carries a hash instead of a user principal name."""
    return bool(rows) and not any("@" in (row.get("userPrincipalName") or "") for row in rows)


__all__ = ["names_concealed", "parse_email_activity"]
