"""Card wording and the masking of recovery contacts: what a reviewer reads in chat."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import pytest

from checks import evidence

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+44 7700 900123", "+44 •••• ••0123"),
        ("+44 7700900123", "+44 ••••••0123"),
        ("+1 4255550100", "+1 ••••••0100"),
        ("+1 4255550100x123", "+1 ••••••0100"),
        ("0123", "••23"),
    ],
)
def test_a_phone_keeps_only_its_country_code_and_last_four_digits(number: str, masked: str) -> None:
    assert evidence.mask_phone(number) == masked


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("megan.bowen77@gmail.com", "m•••@gmail.com"),
        ("ItOps@Contoso.com", "I•••@contoso.com"),
        ("not-an-address", "•••"),
    ],
)
def test_an_email_keeps_only_its_first_letter_and_domain(address: str, masked: str) -> None:
    assert evidence.mask_email(address) == masked


def test_the_same_phone_written_two_ways_is_one_phone() -> None:
    assert evidence.normalise_phone("+1 425-555-0100") == evidence.normalise_phone("+1 4255550100")


@pytest.mark.parametrize(
    ("duration", "days"),
    [("P730D", 730), ("P180D", 180), ("PT0S", 0), ("P0D", 0), ("P2Y", 730), ("P1Y6M", 545), ("soon", None), ("P", None)],
)
def test_iso_durations_are_counted_in_days(duration: str, days: int | None) -> None:
    assert evidence.duration_days(duration) == days


def test_last_sign_in_counts_calendar_days_and_takes_the_latest_kind() -> None:
    user = {"signInActivity": {"lastSignInDateTime": "2026-08-20T17:05:33Z",
                               "lastNonInteractiveSignInDateTime": "2026-08-01T00:00:00Z"}}
    assert evidence.last_sign_in(user, NOW) == "2026-08-20 (95 days ago)"
    user["signInActivity"]["lastNonInteractiveSignInDateTime"] = "2026-11-22T23:59:59.1234567Z"
    assert evidence.last_sign_in(user, NOW) == "2026-11-22 (1 day ago)"


def test_sign_in_never_and_not_collected_are_told_apart() -> None:
    assert evidence.last_sign_in({"signInActivity": {"lastSignInDateTime": None}}, NOW) == "never"
    assert evidence.last_sign_in({"signInActivity": None}, NOW) == "never"
    assert evidence.last_sign_in({"id": "u"}, NOW) == "not collected"


def test_mfa_counts_only_second_factors() -> None:
    only_sspr = {"isMfaRegistered": False, "methodsRegistered": ["email"]}
    assert evidence.mfa_methods(only_sspr) == "none registered"
    strong = {"isMfaRegistered": True, "methodsRegistered": ["microsoftAuthenticatorPush", "email", "fido2"]}
    assert evidence.mfa_methods(strong) == "Microsoft Authenticator, FIDO2 security key"
    assert evidence.phishing_resistant(strong) == "yes"
    assert evidence.phishing_resistant({"methodsRegistered": ["microsoftAuthenticatorPasswordless"]}) == "no"
    assert evidence.mfa_methods(None) == "not collected"


def test_risk_is_shown_only_while_it_stands() -> None:
    assert evidence.risk({"riskLevel": "high", "riskState": "atRisk"}) == "high (at risk)"
    assert evidence.risk({"riskLevel": "high", "riskState": "confirmedCompromised"}) == "high (confirmed compromised)"
    assert evidence.risk({"riskLevel": "none", "riskState": "remediated"}) is None
    assert evidence.risk(None) is None


def test_a_disabled_exchange_plan_gives_no_mailbox() -> None:
    sku = {"skuId": "e3", "skuPartNumber": "ENTERPRISEPACK",
           "servicePlans": [{"servicePlanId": "exo", "servicePlanName": "EXCHANGE_S_ENTERPRISE"}]}
    with_mailbox = {"assignedLicenses": [{"skuId": "E3", "disabledPlans": []}]}
    without = {"assignedLicenses": [{"skuId": "e3", "disabledPlans": ["EXO"]}]}
    assert evidence.licences(with_mailbox, {"e3": sku}, None) == "Office 365 E3 — includes a mailbox"
    assert evidence.licences(without, {"e3": sku}, None) == "Office 365 E3"
    assert evidence.licences({"assignedLicenses": []}, {}, None) == "none"


def test_a_long_list_is_cut_to_one_card_line() -> None:
    names = [f"Administrator role number {n}" for n in range(10)]
    text = evidence.listing(names)
    assert len(text) <= evidence.MAX_VALUE and text.endswith("more")


def test_a_listing_of_100k_names_holds_only_what_fits_on_the_line() -> None:
    """Opening a campaign lists every Global Administrator: the names are counted in one pass, and what the
    listing holds while it counts is bounded by the line, not by the tenant (it used to join n prefixes)."""
    names = (f"Administrator {n:06d}" for n in range(100_000))
    tracemalloc.start()
    try:
        text = evidence.listing(names, 80)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert text == "Administrator 000000, Administrator 000001, Administrator 000002 +99997 more"
    assert peak < 64 * 1024  # one joined copy of 100,000 names alone is 2.2 MB
