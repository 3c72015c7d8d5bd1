"""The review domain: subjects, items, campaigns, decisions and the records they leave.

Everything here is plain data. The engine functions in this package take these values and a time
and return new values, so the whole workflow can be tested with a fake clock and no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Mapping


class SubjectKind(StrEnum):
    """What is being reviewed; each kind traces back to a sentence in the seed guidance."""

    ROLE_ASSIGNMENT = "role_assignment"  # "Regularly review administrative role access"
    PARTNER = "partner_relationship"  # "thorough review and audit of partner relationships"
    RECOVERY_CONTACT = "recovery_contact"  # "review and verify password recovery email addresses and phone numbers"
    # "thoroughly review all tenant admin users, including users associated with Administer On Behalf Of (AOBO)
    # in Azure subscriptions": a privileged Azure role on a subscription, keyed azure:{subscription}:...
    AZURE_ROLE = "azure_role_assignment"
    # "check audit logs regularly to verify that high-privilege user access isn't granted or delegated": an app
    # granted a high-privilege permission, asked about the moment the audit log shows it (checks/access_changes.py)
    APP_PERMISSION = "app_permission"


class AssignmentType(StrEnum):
    ACTIVE = "active"
    ELIGIBLE = "eligible"


class Action(StrEnum):
    """What a reviewer can answer. DONT_KNOW hands the item on; it is never a Keep. UNFAMILIAR_METHOD
    says the reviewer does not recognise one of the admin's MFA devices: the security leads are alerted
    and the item is theirs to answer (a method nobody registered means someone else can sign in)."""

    KEEP = "keep"
    REVOKE = "revoke"
    DONT_KNOW = "dont_know"
    REASSIGN = "reassign"
    UNFAMILIAR_METHOD = "unfamiliar_method"


# The evidence row that lists an admin's devices registered for MFA: an item showing it may be answered
# with UNFAMILIAR_METHOD (the checks write it, the engine and the dialogs look for it).
MFA_DEVICES_EVIDENCE = "MFA devices"


class ItemState(StrEnum):
    OPEN = "open"
    DECIDED = "decided"
    EXPIRED = "expired"


class Stage(StrEnum):
    """Who an open item is currently with, in escalation order."""

    OWNER = "owner"
    MANAGER = "manager"  # the reviewers' managers in Entra ID (users/{id}/manager)
    FALLBACK = "fallback"
    SECURITY_LEADS = "security_leads"


STAGE_ORDER = (Stage.OWNER, Stage.MANAGER, Stage.FALLBACK, Stage.SECURITY_LEADS)

MIN_JUSTIFICATION = 5  # characters a Revoke's justification needs at least
MAX_JUSTIFICATION = 2000  # characters a justification may have unless the policy says otherwise


def stage_rank(stage: Stage) -> int:
    return STAGE_ORDER.index(stage)


@dataclass(frozen=True)
class Finding:
    """A check's verdict on one subject, shown on the card as a recommendation."""

    check_id: str
    title: str
    severity: str
    recommendation: str = ""
    scuba: str | None = None  # the CISA ScubaGear baseline id, where one exists


@dataclass(frozen=True)
class Subject:
    """One thing a reviewer must confirm, as collected from the tenant.

    ``key`` is stable across snapshots of the same tenant, so the same access gets the same item id
    in every campaign of a period and its history can be followed.
    ``holder_ids`` are the Entra object ids whose access this is: a reviewer listed there may never
    decide the item (no self-review).
    """

    key: str
    kind: SubjectKind
    title: str
    holder_name: str
    holder_ids: tuple[str, ...] = ()
    role_id: str | None = None
    role_name: str | None = None
    partner_id: str | None = None
    partner_name: str | None = None
    assignment_type: AssignmentType | None = None
    permanent: bool = False
    break_glass: bool = False
    evidence: Mapping[str, str] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()


def azure_subscription_of(subject: Subject) -> str | None:
    """The subscription id of an Azure role subject (its key is ``azure:{subscription id}:...``)."""
    if subject.kind is not SubjectKind.AZURE_ROLE:
        return None
    return subject.key.split(":")[1] if subject.key.count(":") >= 2 else None


@dataclass(frozen=True)
class PolicyExceptionGrant:
    """An accepted risk: the item is shown as excepted until ``expires``, then asked again."""

    subject: str
    rationale: str
    approved_by: str
    expires: date


@dataclass(frozen=True)
class Decision:
    """One answer by one person on one item, as it goes into the ledger."""

    item_id: str
    action: Action
    actor_id: str
    actor_name: str
    at: datetime
    justification: str = ""
    reassign_to: str | None = None
    on_behalf_of: str | None = None  # set when a delegate answered for a reviewer
    system: bool = False  # True when the deadline, not a person, decided
    # The reviewer's name as the directory gave it when the delegate answered: the ledger then says on whose
    # behalf without needing the directory of that day. Empty for answers recorded before it was kept.
    on_behalf_of_name: str = ""

    def summary(self) -> str:
        verb = {
            Action.KEEP: "Kept",
            Action.REVOKE: "Revoked",
            Action.DONT_KNOW: "Passed on (don't know)",
            Action.REASSIGN: "Reassigned",
            Action.UNFAMILIAR_METHOD: "Unfamiliar MFA method reported",
        }[self.action]
        who = "policy (no answer by the deadline)" if self.system else self.actor_name
        if self.on_behalf_of:
            who += f" as {self.on_behalf_of_name}'s delegate" if self.on_behalf_of_name else " as a delegate"
        return f"{verb} by {who} at {self.at:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class ReviewItem:
    """One subject in one campaign, with who must answer it and by when."""

    id: str
    campaign_id: str
    subject: Subject
    reviewers: tuple[str, ...]
    due: datetime
    opened_at: datetime
    state: ItemState = ItemState.OPEN
    stage: Stage = Stage.OWNER
    decision: Decision | None = None
    exception: PolicyExceptionGrant | None = None
    overdue: bool = False
    history: tuple[Decision, ...] = ()  # non-final answers (don't know, reassign) in order

    @property
    def is_open(self) -> bool:
        return self.state is ItemState.OPEN


@dataclass(frozen=True)
class Campaign:
    """One review period for one tenant. Its id is derived from tenant and period, never random."""

    id: str
    tenant_id: str
    tenant_name: str
    period: str
    opened_at: datetime
    due: datetime
    item_count: int
    snapshot_complete: bool = True
    snapshot_missing: tuple[str, ...] = ()
    items_digest: str = ""


class NoticeKind(StrEnum):
    REVIEW_REQUEST = "review_request"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    EXPIRED = "expired"
    REVOKE_ALERT = "revoke_alert"
    METHOD_ALERT = "method_alert"  # a reviewer does not recognise an admin's MFA method
    WITNESS = "witness"  # the ledger's latest signed checkpoint, kept by the security leads (docs/ledger.md)


SECURITY_LEADS = "@security_leads"


@dataclass(frozen=True)
class Notice:
    """A message the engine wants sent. ``key`` is deterministic so the outbox can refuse twins."""

    key: str
    kind: NoticeKind
    to: str  # an Entra object id, or SECURITY_LEADS
    item_ids: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class LedgerEvent:
    """A fact for the attestation ledger. ``data`` must be JSON-serialisable."""

    type: str
    data: Mapping[str, Any]
