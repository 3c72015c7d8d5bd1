"""What an attempt's Graph answers mean for a remediation job: done, retried later, or failed for good."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from bot.policy import RemediationMode
from bot.remediation.plan import GraphCall, RemediationPlan
from bot.remediation.workflow import MAX_ATTEMPTS, Remediation, Status, outcome_event, settle

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
CALL = GraphCall("DELETE", "/roleManagement/directory/roleAssignments/a-1", "delete the active assignment")
JOB = Remediation("item-1", "t:2026-W48", RemediationPlan("role:x", "Pradeep — Exchange Administrator", (CALL,)),
                  RemediationMode.APPLY, "revoker", Status.RUNNING)


def answered(status: int, **extra: Any) -> dict[str, Any]:
    return {"call": CALL.show(), "status": status, "error": "" if status < 300 else "Some_Error", **extra}


def test_a_404_on_the_first_attempt_is_a_failure_but_on_a_repeated_attempt_the_delete_was_already_done() -> None:
    first, _ = outcome_event(JOB, [settle(answered(404), "DELETE", resumed=False)], 1, NOW)
    assert first.type == "remediation_result" and not first.data["ok"]
    again, notice = outcome_event(JOB, [settle(answered(404), "DELETE", resumed=True)], 2, NOW)
    assert again.type == "remediation_result" and again.data["ok"] and notice is not None
    assert notice.text.startswith("Removed:")


def test_a_repeated_post_that_answers_404_is_not_taken_for_done() -> None:
    event, _ = outcome_event(JOB, [settle(answered(404), "POST", resumed=True)], 2, NOW)
    assert not event.data["ok"]


def test_transient_failures_back_off_doubling_and_honour_a_longer_retry_after() -> None:
    waits = []
    for attempt in range(1, MAX_ATTEMPTS):
        event, notice = outcome_event(JOB, [answered(503, retryable=True, retry_after=0.0)], attempt, NOW)
        assert event.type == "remediation_retry" and notice is None
        waits.append(datetime.fromisoformat(event.data["retry_at"]) - NOW)
    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    event, _ = outcome_event(JOB, [answered(429, retryable=True, retry_after=900.0)], 1, NOW)
    assert datetime.fromisoformat(event.data["retry_at"]) == NOW + timedelta(seconds=900)


def test_after_the_last_attempt_a_transient_failure_is_failed_and_the_leads_hear_how_often_it_was_tried() -> None:
    event, notice = outcome_event(JOB, [answered(0, retryable=True, error="ReadTimeout")], MAX_ATTEMPTS, NOW)
    assert event.type == "remediation_result" and not event.data["ok"] and event.data["attempts"] == MAX_ATTEMPTS
    assert notice is not None and f"FAILED after {MAX_ATTEMPTS} attempts" in notice.text


def test_one_refused_call_fails_the_attempt_even_beside_a_transient_one() -> None:
    event, notice = outcome_event(JOB, [answered(503, retryable=True), answered(403)], 1, NOW)
    assert event.type == "remediation_result" and not event.data["ok"]
    assert notice is not None and "FAILED on 2 call(s)" in notice.text and "after" not in notice.text
