"""The email activity usage report, which Graph v1.0 serves as CSV."""

from __future__ import annotations

from checks.graph.reports import names_concealed, parse_email_activity

HEADER = (
    "Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Last Activity Date,Send Count,"
    "Receive Count,Read Count,Meeting Created Count,Meeting Interacted Count,Assigned Products,Report Period"
)


def report(*rows: str) -> bytes:
    return ("\ufeff" + "\r\n".join((HEADER, *rows)) + "\r\n").encode()


def test_rows_are_typed_like_graphs_json_form_of_the_report() -> None:
    (row,) = parse_email_activity(report(
        "2026-11-22,alexw@contoso.com,Alex Wilber,False,,2026-11-23,530,3120,2877,0,2,"
        "MICROSOFT 365 E5+ENTERPRISE MOBILITY + SECURITY E3,30"
    ))
    assert row == {
        "reportRefreshDate": "2026-11-22", "userPrincipalName": "alexw@contoso.com", "displayName": "Alex Wilber",
        "isDeleted": False, "deletedDate": None, "lastActivityDate": "2026-11-23", "sendCount": 530,
        "receiveCount": 3120, "readCount": 2877, "meetingCreatedCount": 0, "meetingInteractedCount": 2,
        "assignedProducts": ["MICROSOFT 365 E5", "ENTERPRISE MOBILITY + SECURITY E3"], "reportPeriod": "30",
    }


def test_a_user_without_activity_has_no_dates_and_zero_counts() -> None:
    (row,) = parse_email_activity(report("2026-11-22,breakglass@contoso.com,Break Glass,False,,,,,,,,,30"))
    assert row["lastActivityDate"] is None and row["sendCount"] == 0 and row["assignedProducts"] == []


def test_an_empty_report_has_no_rows() -> None:
    assert parse_email_activity(report()) == []


def test_concealed_user_names_are_recognised() -> None:
    hidden = parse_email_activity(report("2026-11-22,8A2C1F0E93B7D4C6A5E1F2B3C4D5E6F7,8A2C1F,False,,,1,1,1,0,0,,30"))
    shown = parse_email_activity(report("2026-11-22,alexw@contoso.com,Alex,False,,,1,1,1,0,0,,30"))
    assert names_concealed(hidden) and not names_concealed(shown) and not names_concealed([])
