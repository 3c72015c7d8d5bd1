"""Which campaigns start-up may leave in the store: signed off, not this period's, no remediation job pending."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.engine.model import LedgerEvent
from bot.ledger import EMPTY_HEAD, chain
from bot.remediation.plan import RemediationPlan
from bot.service import closed_campaigns
from tests.contract.samples import MONDAY, campaign

LAST_WEEK = campaign("2026-11-16T09:00", opened_at=MONDAY - timedelta(days=7))
THIS_WEEK = campaign()
PLAN = RemediationPlan("role:ga:x", "X — Global Administrator").to_data()


def signed_off(cid: str) -> LedgerEvent:
    return LedgerEvent("campaign_signed_off", {"campaign_id": cid, "by": "lead", "at": MONDAY.isoformat()})


def proposed(cid: str, status: str) -> LedgerEvent:
    data: dict[str, Any] = {"campaign_id": cid, "item_id": "i1", "title": "X", "mode": "dry-run", "status": status,
                            "revoked_by": "alex", "plan": PLAN, "at": MONDAY.isoformat()}
    return LedgerEvent("remediation_proposed", data)


def closed(*events: LedgerEvent) -> set[str]:
    records = chain(events, EMPTY_HEAD, MONDAY)
    return closed_campaigns([THIS_WEEK, LAST_WEEK], records, THIS_WEEK.id)


def test_a_signed_off_past_week_is_closed_and_this_weeks_campaign_never_is() -> None:
    assert closed(signed_off(LAST_WEEK.id), signed_off(THIS_WEEK.id)) == {LAST_WEEK.id}


def test_a_past_week_not_signed_off_is_not_closed() -> None:
    assert closed() == set()


def test_a_remediation_waiting_for_approval_or_a_run_keeps_a_signed_off_week_open() -> None:
    assert closed(proposed(LAST_WEEK.id, "awaiting_approval"), signed_off(LAST_WEEK.id)) == set()
    assert closed(proposed(LAST_WEEK.id, "ready"), signed_off(LAST_WEEK.id)) == set()


def test_a_settled_remediation_does_not_keep_a_signed_off_week_open() -> None:
    result = LedgerEvent("remediation_result", {"campaign_id": LAST_WEEK.id, "item_id": "i1", "ok": True, "results": []})
    assert closed(proposed(LAST_WEEK.id, "ready"), result, signed_off(LAST_WEEK.id)) == {LAST_WEEK.id}
    assert closed(proposed(LAST_WEEK.id, "blocked"), signed_off(LAST_WEEK.id)) == {LAST_WEEK.id}


CHANGE = campaign("change:Directory_1", opened_at=MONDAY + timedelta(days=1), items=1)


def answer(cid: str, action: str) -> LedgerEvent:
    return LedgerEvent("decision", {"campaign_id": cid, "item_id": "i1", "action": action, "actor_id": "alex"})


def test_a_change_review_answered_for_good_is_closed_and_one_still_waiting_or_passed_on_is_not() -> None:
    def closed_with_change(*events: LedgerEvent) -> set[str]:
        return closed_campaigns([THIS_WEEK, CHANGE], chain(events, EMPTY_HEAD, MONDAY), THIS_WEEK.id)

    assert closed_with_change(answer(CHANGE.id, "keep")) == {CHANGE.id}
    assert closed_with_change() == set()
    assert closed_with_change(answer(CHANGE.id, "dont_know")) == set()
    assert closed_with_change(answer(CHANGE.id, "revoke"), proposed(CHANGE.id, "awaiting_approval")) == set()
    assert closed(answer(LAST_WEEK.id, "keep")) == set()  # a weekly campaign closes only when signed off
