"""partnerActivity carried from collection to collection: what lets a 30-day sign-in log say "90 days"."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from checks.graph.partner_activity import carried_activity
from checks.snapshot import TenantSnapshot

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
NORTHWIND = "0fab7dff-6991-444e-8240-81c09ed225d2"
FABRIKAM = "8dae8645-ab06-4efb-b333-9afcbeef4e85"


def snapshot_at(moment: datetime, *activity: dict) -> TenantSnapshot:
    return TenantSnapshot(tenant_id="contoso", tenant_name="Contoso", collected_at=moment, partner_activity=activity)


def sign_in(tenant: str, when: str) -> dict:
    return {"id": f"{tenant}-{when}", "homeTenantId": tenant, "createdDateTime": when,
            "crossTenantAccessType": "serviceProvider"}


def test_the_first_collection_watches_from_the_start_of_the_logs_window() -> None:
    activity = carried_activity(None, [sign_in(NORTHWIND, "2026-11-20T10:00:00Z")], [FABRIKAM], NOW)
    assert activity == [
        {"tenantId": NORTHWIND, "lastSignInDateTime": "2026-11-20T10:00:00Z", "watchedSince": "2026-10-24T08:00:00Z"},
        {"tenantId": FABRIKAM, "lastSignInDateTime": None, "watchedSince": "2026-10-24T08:00:00Z"},
    ]


def test_an_unbroken_watch_keeps_its_start_and_the_last_sign_in_outlives_the_log() -> None:
    previous = snapshot_at(NOW - timedelta(days=7), {"tenantId": FABRIKAM, "lastSignInDateTime": "2026-07-02T11:48:09Z",
                                                     "watchedSince": "2026-05-04T08:00:00Z"})
    assert carried_activity(previous, [], [FABRIKAM], NOW) == [
        {"tenantId": FABRIKAM, "lastSignInDateTime": "2026-07-02T11:48:09Z", "watchedSince": "2026-05-04T08:00:00Z"}]


def test_a_gap_longer_than_the_log_starts_the_watch_again() -> None:
    previous = snapshot_at(NOW - timedelta(days=45), {"tenantId": FABRIKAM, "lastSignInDateTime": None,
                                                      "watchedSince": "2026-05-04T08:00:00Z"})
    [entry] = carried_activity(previous, [], [FABRIKAM], NOW)
    assert entry["watchedSince"] == "2026-10-24T08:00:00Z"  # the 15 days before the window were never seen


def test_a_log_that_could_not_be_read_advances_nothing() -> None:
    kept = {"tenantId": FABRIKAM, "lastSignInDateTime": None, "watchedSince": "2026-05-04T08:00:00Z"}
    previous = snapshot_at(NOW - timedelta(days=7), kept)
    assert carried_activity(previous, None, [FABRIKAM, NORTHWIND], NOW) == [kept]
    assert carried_activity(dataclasses.replace(previous, partner_activity=()), None, [FABRIKAM], NOW) == []
