"""Which directory audit entries are access changes to ask about at once: each classifier with a case and a
near miss, the question a reviewer reads, and the guidance each one quotes, word for word."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.engine.model import SubjectKind
from checks.access_changes import AUDIT_QUOTE, ChangeKind, change_subject, changes_in, classify
from tests.fakes import audit_events as audit

ROOT = Path(__file__).resolve().parents[2]
SEEDS = Path(os.environ.get("ACCESSBOT_SEEDS", ROOT / "docs" / "guidance"))
AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
ADELE = "ba898b2a-9794-415b-a3df-cf7b824da266"
PRADEEP = "1c4a4351-e6dd-4862-ac6d-3132cb0fe48e"
ADMINS = frozenset({PRADEEP})
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"


def test_a_global_administrator_granted_asks_who_by_whom_and_when() -> None:
    change = classify(audit.role_granted("e1", AT, ADELE, "adelev@contoso.com"), ADMINS)
    assert change is not None and change.kind is ChangeKind.ROLE_GRANTED
    assert change.question == ("Global Administrator granted to adelev@contoso.com by christiec@contoso.com at "
                               "2026-11-24 10:00 UTC — expected?")
    subject = change_subject(change)
    assert subject.kind is SubjectKind.ROLE_ASSIGNMENT and subject.role_id == audit.GLOBAL_ADMINISTRATOR
    assert subject.holder_ids == (ADELE,) and subject.key == "change:e1"


def test_a_role_that_is_not_highly_privileged_or_a_failed_grant_is_not_asked() -> None:
    reader = audit.role_granted("e2", AT, ADELE, "adelev@contoso.com", role="Reports Reader",
                                template="4a5d8f65-41da-4de4-8968-e035b65339cf")
    failed = audit.role_granted("e3", AT, ADELE, "adelev@contoso.com", result="failure")
    assert classify(reader, ADMINS) is None and classify(failed, ADMINS) is None


def test_made_eligible_in_pim_is_asked_like_a_grant() -> None:
    entry = {**audit.role_granted("e4", AT, ADELE, "adelev@contoso.com"),
             "activityDisplayName": "Add eligible member to role in PIM completed (timebound)"}
    change = classify(entry, ADMINS)
    assert change is not None and change.kind is ChangeKind.ROLE_ELIGIBLE
    assert change.question.startswith("adelev@contoso.com made eligible for Global Administrator by")


def test_a_pim_activation_of_a_highly_privileged_role_is_asked_and_of_another_role_is_not() -> None:
    activation = audit.pim_activation("e5", AT, PRADEEP, "pradeepg@contoso.com", "Exchange Administrator", EXCHANGE_ADMIN)
    change = classify(activation, ADMINS)
    assert change is not None and change.kind is ChangeKind.PIM_ACTIVATION and change.role_id == EXCHANGE_ADMIN
    assert change.question == ("pradeepg@contoso.com activated Exchange Administrator (PIM) at 2026-11-24 10:00 UTC"
                               " — expected?")
    other = audit.pim_activation("e6", AT, PRADEEP, "pradeepg@contoso.com", "Message Center Reader",
                                 "790c1fb9-7f7d-4f88-86a1-ef1f95c05c1b")
    assert classify(other, ADMINS) is None


def test_a_partner_added_is_asked_of_the_partners_owner_and_a_group_change_is_not() -> None:
    change = classify(audit.partner_added("e7", AT, "Fabrikam MSP", "7a1e0c4b-1111-4222-8333-944455556666"), ADMINS)
    assert change is not None and change.kind is ChangeKind.PARTNER_APPROVED
    subject = change_subject(change)
    assert subject.kind is SubjectKind.PARTNER and subject.partner_name == "Fabrikam MSP"
    assert subject.partner_id == "7a1e0c4b-1111-4222-8333-944455556666"
    assert classify(audit.noise("e8", AT), ADMINS) is None


def test_an_app_granted_a_high_privilege_permission_is_asked_and_a_harmless_one_is_not() -> None:
    change = classify(audit.app_role_granted("e9", AT, "Contoso Sync", "RoleManagement.ReadWrite.Directory"), ADMINS)
    assert change is not None and change.kind is ChangeKind.APP_PERMISSION
    assert change.question.startswith("Contoso Sync granted RoleManagement.ReadWrite.Directory by")
    assert change_subject(change).kind is SubjectKind.APP_PERMISSION
    assert classify(audit.app_role_granted("e10", AT, "Contoso Sync", "User.Read.All"), ADMINS) is None


def test_an_admins_mfa_method_changed_is_asked_and_a_non_admins_is_not() -> None:
    change = classify(audit.security_info("e11", AT, PRADEEP, "pradeepg@contoso.com"), ADMINS)
    assert change is not None and change.kind is ChangeKind.ADMIN_SECURITY_INFO
    assert "review of devices registered for use with MFA" in change.seed
    assert change_subject(change).kind is SubjectKind.RECOVERY_CONTACT
    assert classify(audit.security_info("e12", AT, ADELE, "adelev@contoso.com"), ADMINS) is None


def test_an_update_user_counts_only_when_it_changed_an_admins_mfa_or_recovery_details() -> None:
    phone = audit.entry("e13", AT, "Update user", "UserManagement", [audit.user_target(
        PRADEEP, "pradeepg@contoso.com", audit.prop("StrongAuthenticationPhoneAppDetail", "[new]", "[old]"))])
    title = audit.entry("e14", AT, "Update user", "UserManagement", [audit.user_target(
        PRADEEP, "pradeepg@contoso.com", audit.prop("JobTitle", "Lead", "Engineer"))])
    assert classify(phone, ADMINS) is not None and classify(title, ADMINS) is None


def test_an_app_that_made_the_change_is_named_as_its_initiator() -> None:
    entry = {**audit.role_granted("e15", AT, ADELE, "adelev@contoso.com"),
             "initiatedBy": {"user": None, "app": {"displayName": "MS-PIM", "servicePrincipalId": "x"}}}
    change = classify(entry, ADMINS)
    assert change is not None and change.actor == "MS-PIM"


def test_the_same_event_read_twice_is_one_change_and_changes_come_oldest_first() -> None:
    later = audit.role_granted("late", AT + timedelta(minutes=5), ADELE, "adelev@contoso.com")
    first = audit.role_granted("first", AT, ADELE, "adelev@contoso.com")
    assert [c.event_id for c in changes_in([later, first, dict(later)], ADMINS)] == ["first", "late"]


@pytest.mark.parametrize("entry", [{"id": "x"}, {"id": "x", "result": "success", "activityDateTime": "not a time"},
                                   {"result": "success", "activityDateTime": "2026-11-24T10:00:00Z"}])
def test_a_malformed_entry_is_ignored_rather_than_failing_the_read(entry: dict) -> None:
    assert classify(entry, ADMINS) is None


@pytest.mark.parametrize("quote", [AUDIT_QUOTE, "review of devices registered for use with MFA"])
def test_each_quote_is_found_word_for_word_in_the_guidance(quote: str) -> None:
    text = " ".join((SEEDS / "customer-security-best-practices.txt").read_text().split())
    assert quote in text
