"""What admins' sign-ins say: accounts nobody uses any more, and accounts used from too many places."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.engine.model import Subject
from checks import evidence
from checks.registry import (
    SIGN_IN_WINDOW_DAYS,
    Advice,
    CheckMetadata,
    CheckSettings,
    FindingResult,
    Severity,
    check,
    subject_finding,
)
from checks.rules.holders import admins
from checks.snapshot import TenantSnapshot

ADMIN_STALE = CheckMetadata(
    id="admin_stale",
    title="Admin account not used",
    severity=Severity.MEDIUM,
    subject_area="roles",
    rationale=(
        "An admin role on an account nobody signs in to is access nobody needs: often a leaver or a role "
        "change that was never cleaned up, and an account whose compromise nobody would notice. Never "
        "having signed in counts, once the account is older than the threshold."
    ),
    remediation="Remove the role (and disable the account if its owner has left); assign it again when needed.",
    seed="customer-security-best-practices: Continue to reinspect all active tenant admin users accounts, and check "
    "audit logs regularly to verify that high-privilege user access isn't granted or delegated to admin users who "
    "don't require those privileges to do their jobs.",
    scuba=None,
)

ADMIN_SIGN_INS_MANY_COUNTRIES = CheckMetadata(
    id="admin_sign_ins_many_countries",
    title="Admin signing in from many countries",
    severity=Severity.HIGH,
    subject_area="roles",
    rationale=(
        "Successful sign-ins to one admin account from several countries within a week mean either that "
        "several people share it, which Microsoft advises against because nobody is accountable for what "
        "it does, or that someone else has its credentials. Failed sign-ins are left out: they are attacks "
        "on the account, not use of it."
    ),
    remediation=(
        "Ask the owner which sign-ins were theirs; give every person their own admin account, revoke the "
        "account's sessions and reset its credentials if any sign-in is unexplained."
    ),
    seed='customer-security-best-practices: Microsoft recommends against the use of "shared" administrator accounts.',
    scuba=None,
)


def _days_between(earlier: datetime, now: datetime) -> int:
    """Calendar days, counted the way the card's "95 days ago" counts them."""
    return (now.date() - earlier.astimezone(now.tzinfo).date()).days


@check(ADMIN_STALE)
def admin_stale(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    """No sign-in for more than ``stale_after_days``. When signInActivity was not collected (no P1/P2
    licence, or no AuditLog.Read.All) the card already reads "not collected" and nothing is claimed."""
    for admin in admins(snapshot, subjects):
        if "signInActivity" not in admin.user:
            continue
        last = evidence.latest_sign_in(admin.user)
        if last is not None:
            days = _days_between(last, now)
            if days <= settings.stale_after_days:
                continue
            message = f"no sign-in for {days} days"
        else:
            created = evidence.parse_time(admin.user.get("createdDateTime"))
            if created is not None and _days_between(created, now) <= settings.stale_after_days:
                continue  # a new account that has not been used yet is not stale
            message = "never signed in" + (f" (created {evidence.day(created)})" if created else "")
        for subject in admin.roles:
            yield subject_finding(
                ADMIN_STALE, subject, message, Advice.REVOKE,
                break_glass_note=f"{message}: test that it still signs in, and verify the hardware key",
            )


def sign_in_countries(sign_ins: Sequence[Mapping[str, Any]], now: datetime) -> list[str]:
    """Distinct countries of successful sign-ins in the last SIGN_IN_WINDOW_DAYS, sorted."""
    since = now - timedelta(days=SIGN_IN_WINDOW_DAYS)
    countries = set()
    for sign_in in sign_ins:
        moment = evidence.parse_time(sign_in.get("createdDateTime"))
        if moment is None or not since <= moment <= now:
            continue
        if (sign_in.get("status") or {}).get("errorCode", 0) != 0:
            continue
        country = ((sign_in.get("location") or {}).get("countryOrRegion") or "").strip().upper()
        if country:
            countries.add(country)
    return sorted(countries)


@check(ADMIN_SIGN_INS_MANY_COUNTRIES)
def admin_sign_ins_many_countries(
    snapshot: TenantSnapshot, subjects: Sequence[Subject], settings: CheckSettings, now: datetime
) -> Iterator[FindingResult]:
    for admin in admins(snapshot, subjects):
        sign_ins = snapshot.recent_sign_ins(admin.id)
        if sign_ins is None:
            continue
        countries = sign_in_countries(sign_ins, now)
        if len(countries) < settings.shared_account_min_countries:
            continue
        message = (
            f"successful sign-ins from {len(countries)} countries in {SIGN_IN_WINDOW_DAYS} days "
            f"({', '.join(countries)})"
        )
        for subject in admin.roles:
            yield subject_finding(
                ADMIN_SIGN_INS_MANY_COUNTRIES, subject, message, Advice.REVIEW,
                f"{message}; confirm one person uses this account",
                break_glass_note=f"{message}: confirm every use of the emergency account",
            )
