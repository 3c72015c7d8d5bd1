"""How long each partner has gone without signing in, remembered across collections.

Entra keeps sign-ins for 30 days (P1/P2), so one collection can never show that a partner has not signed
in for 90. Each collection therefore carries the previous one's ``partnerActivity`` forward: the last
service-provider sign-in seen per partner tenant, and since when the log has been watched without a gap.
Only an unbroken watch counts: if the previous collection is older than the log's window, the sign-ins in
between were never seen, and the watch starts again (the last sign-in seen is kept).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from checks.evidence import parse_time
from checks.registry import PARTNER_SIGN_IN_WINDOW_DAYS
from checks.snapshot import GraphObject, TenantSnapshot


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def carried_activity(
    previous: TenantSnapshot | None,
    sign_ins: list[GraphObject] | None,
    partner_tenants: Iterable[str],
    now: datetime,
) -> list[dict[str, Any]]:
    """The ``partnerActivity`` of a collection at ``now``. ``sign_ins`` are the service-provider sign-ins
    it read (the log's whole window), or None when the log could not be read: then nothing was watched,
    and the previous entries are kept unchanged rather than advanced."""
    earlier = {a["tenantId"].lower(): dict(a) for a in (previous.partner_activity if previous else ())}
    if sign_ins is None:
        return sorted(earlier.values(), key=lambda a: a["tenantId"].lower())
    window_start = now - timedelta(days=PARTNER_SIGN_IN_WINDOW_DAYS)
    unbroken = previous is not None and previous.collected_at >= window_start
    latest: dict[str, datetime] = {}
    for entry in sign_ins:
        tenant = (entry.get("homeTenantId") or "").lower()
        moment = parse_time(entry.get("createdDateTime"))
        if tenant and moment is not None and moment > latest.get(tenant, datetime.min.replace(tzinfo=UTC)):
            latest[tenant] = moment
    tenants = {t.lower() for t in partner_tenants if t} | set(latest) | set(earlier)
    activity = []
    for tenant in sorted(tenants):
        before = earlier.get(tenant, {})
        seen = [m for m in (parse_time(before.get("lastSignInDateTime")), latest.get(tenant)) if m is not None]
        watched = parse_time(before.get("watchedSince")) if unbroken else None
        activity.append({
            "tenantId": before.get("tenantId") or tenant,
            "lastSignInDateTime": _iso(max(seen)) if seen else None,
            "watchedSince": _iso(watched if watched is not None else window_start),
        })
    return activity


__all__ = ["carried_activity"]
