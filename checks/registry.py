"""The checks catalogue: each check is a small function plus the metadata that says why it exists.

Prowler-style: a check module declares ``@check(CheckMetadata(...))`` on a function taking
``(snapshot, subjects, settings, now)`` and yielding ``FindingResult``s. Every check names the sentence
of Microsoft's guidance it enforces (``seed``) and, where one exists, the CISA ScubaGear Entra ID
baseline policy (``scuba``), so an auditor can trace each finding to a published recommendation.

Findings are advice on review subjects, not actions: a break-glass account is never recommended for
revocation, whatever a check thinks of it (``subject_finding`` enforces that in one place).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from bot.engine.model import Subject
from checks.snapshot import TenantSnapshot


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for the most severe, so sorting by rank puts what matters most first."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}

SUBJECT_AREAS = frozenset({"roles", "partners", "recovery", "tenant"})
SEED_FILES = ("customer-security-best-practices", "csp-partner-security-best-practices")


@dataclass(frozen=True)
class CheckMetadata:
    id: str
    title: str
    severity: Severity
    subject_area: str  # "roles" | "partners" | "recovery" | "tenant"
    rationale: str
    remediation: str
    seed: str  # "<seed file stem>: <sentence quoted from it>"
    scuba: str | None = None  # CISA ScubaGear AAD baseline policy id, only where one matches

    def __post_init__(self) -> None:
        if self.subject_area not in SUBJECT_AREAS:
            raise ValueError(f"check {self.id}: unknown subject area {self.subject_area!r}")
        source, _, quote = self.seed.partition(": ")
        if source not in SEED_FILES or not quote.strip():
            raise ValueError(f"check {self.id}: seed must read '<one of {SEED_FILES}>: <quoted sentence>'")

    @property
    def seed_source(self) -> str:
        return self.seed.partition(": ")[0]

    @property
    def seed_quote(self) -> str:
        return self.seed.partition(": ")[2]


@dataclass(frozen=True)
class FindingResult:
    check: CheckMetadata
    subject_key: str | None  # the review subject it belongs to; None for a tenant-wide finding
    resource: str  # what a person recognises: "Megan Bowen", "Northwind IT Services — GDAP relationship"
    message: str  # the fact: "no sign-in for 95 days"
    recommendation: str  # what the card proposes: "recommended: revoke — no sign-in for 95 days"

    @property
    def severity(self) -> Severity:
        return self.check.severity


@dataclass(frozen=True)
class CheckSettings:
    """Thresholds an operator may tune; the defaults follow Microsoft's published numbers. Thresholds a
    ScubaGear policy fixes (two to eight Global Administrators) are not tunable: a check citing a policy
    id applies that policy's definition."""

    stale_after_days: int = 90
    max_gdap_duration_days: int = 730  # the longest GDAP relationship Partner Center allows
    shared_account_min_countries: int = 3  # distinct countries of successful sign-ins within SIGN_IN_WINDOW_DAYS
    shared_account_min_roles: int = 4  # distinct directory roles held by one account
    new_mfa_method_days: int = 7  # an admin's MFA method registered this recently is asked about
    partner_unused_after_days: int = 90  # partner access with no partner sign-in for this long is proposed for removal

    def __post_init__(self) -> None:
        for name in (
            "stale_after_days", "max_gdap_duration_days",
            "shared_account_min_countries", "shared_account_min_roles",
            "new_mfa_method_days", "partner_unused_after_days",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


SIGN_IN_WINDOW_DAYS = 7
# Partner (service-provider) sign-ins are read over the 30 days an Entra ID P1/P2 tenant keeps its sign-in log.
PARTNER_SIGN_IN_WINDOW_DAYS = 30

_Fact = TypeVar("_Fact")


class AssessedSubjects(tuple[Subject, ...]):
    """The subjects of one assessment, as every check of it receives them, with a memo of facts derived
    from them and their snapshot (who the admins are, say): fifteen checks asking the same question of
    100,000 subjects would otherwise each recompute the answer. The subjects are an immutable tuple and
    the memo is bound to one snapshot, so a remembered fact cannot go stale within the assessment."""

    snapshot: TenantSnapshot
    _memo: dict[Hashable, Any]

    def __new__(cls, snapshot: TenantSnapshot, subjects: Iterable[Subject]) -> AssessedSubjects:
        assessed = super().__new__(cls, subjects)
        assessed.snapshot = snapshot
        assessed._memo = {}
        return assessed

    def remembered(self, key: Hashable, compute: Callable[[], _Fact]) -> _Fact:
        """``compute()`` the first time ``key`` is asked for in this assessment, the same value after."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def remembered(snapshot: TenantSnapshot, subjects: Sequence[Subject], key: Hashable,
               compute: Callable[[], _Fact]) -> _Fact:
    """A fact about (snapshot, subjects), computed once per assessment when ``run_checks`` runs the
    checks, and afresh when a check is called on its own with plain subjects."""
    if isinstance(subjects, AssessedSubjects) and subjects.snapshot is snapshot:
        return subjects.remembered(key, compute)
    return compute()


CheckFunction = Callable[[TenantSnapshot, Sequence[Subject], CheckSettings, datetime], Iterable[FindingResult]]

_CHECKS: dict[str, tuple[CheckMetadata, CheckFunction]] = {}
_RULE_PACKAGE = "checks.rules"


def check(metadata: CheckMetadata) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under its metadata; a second check with the same id is refused."""

    def register(function: CheckFunction) -> CheckFunction:
        if metadata.id in _CHECKS and _CHECKS[metadata.id][1] is not function:
            raise ValueError(f"check id {metadata.id!r} is registered twice")
        _CHECKS[metadata.id] = (metadata, function)
        return function

    return register


def _registered() -> list[tuple[CheckMetadata, CheckFunction]]:
    importlib.import_module(_RULE_PACKAGE)  # its modules register their checks on import
    return [_CHECKS[check_id] for check_id in sorted(_CHECKS)]


def all_checks() -> list[CheckMetadata]:
    """The catalogue, sorted by id."""
    return [metadata for metadata, _ in _registered()]


def catalogue() -> list[tuple[CheckMetadata, CheckFunction]]:
    """(metadata, function) for every check, sorted by id: what ``run_checks`` runs by default."""
    return _registered()


def run_checks(
    snapshot: TenantSnapshot,
    subjects: Sequence[Subject],
    settings: CheckSettings | None = None,
    now: datetime | None = None,
    checks: Sequence[tuple[CheckMetadata, CheckFunction]] | None = None,
) -> list[FindingResult]:
    """Every check (or just ``checks``) over one snapshot and the subjects built from it, most severe first.

    The order is fully determined by the findings themselves (severity, check, subject, resource,
    message), so two runs over the same snapshot give the same list. A check that names a subject
    that is not in ``subjects`` raises ``ValueError`` (its finding would vanish from every card), and
    so does one reporting a subject twice (a card states each check once, with all it found).
    """
    settings = settings or CheckSettings()
    now = now or snapshot.collected_at
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    subjects = AssessedSubjects(snapshot, subjects)
    keys = {subject.key for subject in subjects}
    results: list[FindingResult] = []
    for metadata, function in _registered() if checks is None else checks:
        seen: set[str] = set()
        for result in function(snapshot, subjects, settings, now):
            if result.subject_key is not None:
                if result.subject_key not in keys:
                    raise ValueError(f"check {metadata.id} reported unknown subject {result.subject_key!r}")
                if result.subject_key in seen:
                    raise ValueError(f"check {metadata.id} reported subject {result.subject_key!r} twice")
                seen.add(result.subject_key)
            results.append(result)
    return sorted(results, key=finding_order)


def finding_order(result: FindingResult) -> tuple[int, str, str, str, str]:
    return (result.severity.rank, result.check.id, result.subject_key or "", result.resource, result.message)


# ---- recommendations ----------------------------------------------------------------------------


class Advice(StrEnum):
    """What a card proposes to the reviewer; ``review`` means "decide with this in mind"."""

    KEEP = "keep"
    REVIEW = "review"
    REVOKE = "revoke"


BREAK_GLASS_NOTE = "verify the hardware key"


def recommend(advice: Advice, reason: str) -> str:
    return f"recommended: {advice.value} — {reason}"


def subject_finding(
    metadata: CheckMetadata,
    subject: Subject,
    message: str,
    advice: Advice,
    reason: str | None = None,
    *,
    resource: str | None = None,
    break_glass_note: str = BREAK_GLASS_NOTE,
) -> FindingResult:
    """A finding on one review subject. On a registered break-glass account the advice is always
    ``keep``: emergency access is deliberate, the exception register records why, and the useful
    question for its reviewer is whether it still works, not whether to remove it. ``resource``
    defaults to the holder's name."""
    if subject.break_glass:
        recommendation = recommend(Advice.KEEP, f"registered break-glass account; {break_glass_note}")
    else:
        recommendation = recommend(advice, reason or message)
    return FindingResult(metadata, subject.key, resource or subject.holder_name, message, recommendation)


__all__ = [
    "PARTNER_SIGN_IN_WINDOW_DAYS",
    "SIGN_IN_WINDOW_DAYS",
    "Advice",
    "AssessedSubjects",
    "CheckFunction",
    "CheckMetadata",
    "CheckSettings",
    "FindingResult",
    "Severity",
    "all_checks",
    "catalogue",
    "check",
    "finding_order",
    "recommend",
    "remembered",
    "run_checks",
    "subject_finding",
]
