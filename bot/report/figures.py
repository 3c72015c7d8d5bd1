"""What the evidence report says, computed from a campaign's state and its own ledger records: no I/O.

Every number an auditor reads in the report comes from here, and every one of them can be recounted from
the attestations the report lists (and from ``accessbot ledger export``): the decisions are read off the
ledger records, not off anything the bot remembers on the side.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from bot.engine.model import Action, ItemState, ReviewItem, SubjectKind
from bot.engine.state import CampaignState
from bot.engine.status import CampaignSummary, summarize
from bot.ledger import LedgerHead, LedgerRecord
from bot.ledger_signing import Checkpoint
from checks.registry import CheckMetadata, all_checks

SEVERITIES = ("critical", "high", "medium", "low")
VERDICT_LABELS = {
    Action.KEEP.value: "Kept",
    Action.REVOKE.value: "Revoked",
    Action.DONT_KNOW.value: "Passed on (don't know)",
    Action.REASSIGN.value: "Reassigned",
}
_KIND_GROUP = {SubjectKind.PARTNER: "Partner relationships", SubjectKind.RECOVERY_CONTACT: "Recovery contacts"}


@dataclass(frozen=True)
class Tally:
    """Final outcomes of a group of items: kept, revoked, still open (or unanswered at sign-off), excepted."""

    label: str
    kept: int = 0
    revoked: int = 0
    open: int = 0
    excepted: int = 0

    @property
    def total(self) -> int:
        return self.kept + self.revoked + self.open + self.excepted


@dataclass(frozen=True)
class FindingRow:
    check_id: str
    title: str
    severity: str
    scuba: str | None
    items: int
    kept: int
    revoked: int
    open: int
    guidance_source: str  # the guidance document the check carries out
    guidance: str  # the sentence it quotes, word for word


@dataclass(frozen=True)
class ExceptionRow:
    subject: str
    rationale: str
    approved_by: str
    expires: str
    state: str


@dataclass(frozen=True)
class RemediationRow:
    subject: str
    mode: str
    status: str
    approved_by: str
    attempts: int
    steps: tuple[str, ...]  # the Graph calls and the steps by hand, as planned
    results: tuple[str, ...]  # each call's outcome, when it ran


@dataclass(frozen=True)
class Attestation:
    seq: int
    at: str
    subject: str
    verdict: str
    actor: str
    justification: str
    hash: str


@dataclass(frozen=True)
class TenantReport:
    """One customer tenant's campaign: one section (one page onwards) of the report."""

    campaign_id: str
    tenant_id: str
    tenant_name: str
    period: str
    opened_at: datetime
    due: datetime
    signed_off: str  # "by X at Y", or ""
    reviewers: tuple[str, ...]
    summary: CampaignSummary
    completion: tuple[tuple[datetime, int], ...]  # answered items so far, at each final answer
    verdicts: tuple[tuple[str, int], ...]  # every attestation by verdict, in the ledger's words
    by_role: tuple[Tally, ...]
    findings_by_severity: tuple[tuple[str, int], ...]
    findings: tuple[FindingRow, ...]
    exceptions: tuple[ExceptionRow, ...]
    remediations: tuple[RemediationRow, ...]
    attestations: tuple[Attestation, ...]

    @property
    def outcome(self) -> Tally:
        s = self.summary
        return Tally(self.tenant_name, s.kept, s.revoked, s.open, s.excepted)


@dataclass(frozen=True)
class EvidenceReport:
    tenants: tuple[TenantReport, ...]
    generated_at: datetime
    ledger_head: LedgerHead
    checkpoint: Checkpoint | None
    public_key_pem: str  # "" when the ledger is not signed
    key_fingerprint: str

    @property
    def verify_command(self) -> str:
        return ("accessbot ledger verify --public-key ledger-public-key.pem --witness ledger-checkpoint.json"
                if self.checkpoint is not None else "accessbot ledger verify --public-key <the ledger's public key>")


def tenant_report(state: CampaignState, records: Sequence[LedgerRecord], now: datetime,
                  name_of: Callable[[str], str]) -> TenantReport:
    """``records`` are the campaign's own ledger records (``store.ledger_records_of``)."""
    campaign = state.campaign
    decisions = [r for r in records if r.type == "decision" and r.data.get("campaign_id") == campaign.id]
    titles = {item.id: item.subject.title for item in state.items.values()}
    return TenantReport(
        campaign_id=campaign.id,
        tenant_id=campaign.tenant_id,
        tenant_name=campaign.tenant_name,
        period=campaign.period,
        opened_at=campaign.opened_at,
        due=campaign.due,
        signed_off=(f"by {state.signed_off_by} at {state.signed_off_at:%Y-%m-%d %H:%M} UTC"
                    if state.signed_off_by and state.signed_off_at else ""),
        reviewers=tuple(sorted({name_of(r) for item in state.items.values() for r in item.reviewers})),
        summary=summarize(state, now),
        completion=_completion(decisions),
        verdicts=_verdicts(decisions),
        by_role=_by_role(state.items.values()),
        findings_by_severity=_findings_by_severity(state.items.values()),
        findings=_findings(state.items.values()),
        exceptions=tuple(
            ExceptionRow(item.subject.title, item.exception.rationale, item.exception.approved_by,
                         item.exception.expires.isoformat(), "in force" if item.is_open else "expired, asked again")
            for item in sorted(state.items.values(), key=lambda i: i.subject.title) if item.exception is not None
        ),
        remediations=tuple(
            RemediationRow(
                subject=r.plan.title, mode=r.mode.value.replace("-", " "), status=r.status.value.replace("_", " "),
                approved_by=name_of(r.approved_by) if r.approved_by else "",
                attempts=r.attempts,
                steps=tuple(f"{c.method} {c.path} ({c.description})" for c in r.plan.calls)
                + tuple(f"By hand: {step}" for step in r.plan.manual)
                + ((f"Blocked: {r.plan.blocked}",) if r.plan.blocked else ()),
                results=tuple(_result_line(result) for result in r.results),
            )
            for r in sorted(state.remediations.values(), key=lambda r: r.plan.title)
        ),
        attestations=tuple(
            Attestation(
                seq=r.seq, at=r.at, subject=titles.get(str(r.data.get("item_id")), str(r.data.get("item_id"))),
                verdict=VERDICT_LABELS.get(str(r.data.get("action")), str(r.data.get("action"))),
                actor=_actor(r.data, name_of), justification=str(r.data.get("justification") or ""), hash=r.hash,
            )
            for r in decisions
        ),
    )


def evidence_report(tenants: Sequence[TenantReport], head: LedgerHead, now: datetime,
                    checkpoint: Checkpoint | None, public_key: bytes | None, key_fingerprint: str) -> EvidenceReport:
    ordered = tuple(sorted(tenants, key=lambda t: (t.tenant_name.lower(), t.tenant_id)))
    return EvidenceReport(ordered, now, head, checkpoint, (public_key or b"").decode(), key_fingerprint)


def _actor(data: dict, name_of: Callable[[str], str]) -> str:  # type: ignore[type-arg]
    """Who answered; for a delegate, on whose behalf: by the name the ledger recorded, else (an answer recorded
    before the ledger kept that name) by the reviewer's object id the record holds, named by the directory."""
    if data.get("system"):
        return "policy (no answer by the deadline)"
    actor = str(data.get("actor") or data.get("actor_id") or "")
    reviewer = data.get("on_behalf_of")
    if not reviewer:
        return actor
    return f"{actor} as {data.get('on_behalf_of_name') or name_of(str(reviewer))}'s delegate"


def _completion(decisions: Sequence[LedgerRecord]) -> tuple[tuple[datetime, int], ...]:
    """Items answered so far after each final answer (keep or revoke; one per item: a later twin is a
    duplicate the engine never records, so counting items, not records, is the safe reading)."""
    answered: set[str] = set()
    points: list[tuple[datetime, int]] = []
    for record in sorted(decisions, key=lambda r: r.seq):
        if record.data.get("action") not in (Action.KEEP.value, Action.REVOKE.value):
            continue
        answered.add(str(record.data.get("item_id")))
        points.append((datetime.fromisoformat(str(record.data.get("at") or record.at)), len(answered)))
    return tuple(points)


def _verdicts(decisions: Sequence[LedgerRecord]) -> tuple[tuple[str, int], ...]:
    counts = Counter(
        "Revoked by the deadline" if d.data.get("system") and d.data.get("action") == Action.REVOKE.value
        else "Kept by the deadline" if d.data.get("system")
        else VERDICT_LABELS.get(str(d.data.get("action")), str(d.data.get("action")))
        for d in decisions
    )
    order = [*VERDICT_LABELS.values(), "Kept by the deadline", "Revoked by the deadline"]
    return tuple((label, counts[label]) for label in order if counts[label])


def _tally(label: str, items: Sequence[ReviewItem]) -> Tally:
    counts: Counter[str] = Counter()
    for item in items:
        if item.state is ItemState.OPEN:
            counts["open" if item.exception is None else "excepted"] += 1
        elif item.decision is not None:
            counts["kept" if item.decision.action is Action.KEEP else "revoked"] += 1
    return Tally(label, counts["kept"], counts["revoked"], counts["open"], counts["excepted"])


def _by_role(items) -> tuple[Tally, ...]:  # type: ignore[no-untyped-def]
    groups: dict[str, list[ReviewItem]] = {}
    for item in items:
        label = item.subject.role_name or _KIND_GROUP.get(item.subject.kind, item.subject.kind.value)
        groups.setdefault(label, []).append(item)
    return tuple(sorted((_tally(label, group) for label, group in groups.items()), key=lambda t: (-t.total, t.label)))


def _findings_by_severity(items) -> tuple[tuple[str, int], ...]:  # type: ignore[no-untyped-def]
    counts = Counter(finding.severity.lower() for item in items for finding in item.subject.findings)
    return tuple((severity, counts[severity]) for severity in SEVERITIES if counts[severity])


def _findings(items) -> tuple[FindingRow, ...]:  # type: ignore[no-untyped-def]
    catalogue: dict[str, CheckMetadata] = {check.id: check for check in all_checks()}
    flagged: dict[str, list[ReviewItem]] = {}
    first = {}
    for item in items:
        for finding in item.subject.findings:
            flagged.setdefault(finding.check_id, []).append(item)
            first.setdefault(finding.check_id, finding)
    rows = []
    for check_id, group in flagged.items():
        tally, finding, check = _tally(check_id, group), first[check_id], catalogue.get(check_id)
        rows.append(FindingRow(
            check_id=check_id, title=finding.title, severity=finding.severity.lower(), scuba=finding.scuba,
            items=len(group), kept=tally.kept, revoked=tally.revoked, open=tally.open + tally.excepted,
            guidance_source=check.seed_source if check else "", guidance=check.seed_quote if check else "",
        ))
    rank = {severity: n for n, severity in enumerate(SEVERITIES)}
    return tuple(sorted(rows, key=lambda r: (rank.get(r.severity, len(SEVERITIES)), r.check_id)))


def _result_line(result) -> str:  # type: ignore[no-untyped-def]
    outcome = "dry run" if result.get("dry_run") else str(result.get("status", ""))
    error = f" {result['error']}" if result.get("error") else ""
    return f"{result.get('call', '')} → {outcome}{error}".strip()
