"""The review policy: who owns what, when reviews run, and what silence means.

Loaded from a TOML file written by the security team. Every error names the key and the line, because
the person fixing it is reading the file, not our code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Mapping

from bot.engine.model import PolicyExceptionGrant, Stage


class NoAnswer(StrEnum):
    """What happens to an item nobody answered by its deadline."""

    ESCALATE = "escalate"  # stays open, marked overdue, with the security leads
    KEEP = "keep"
    REVOKE = "revoke"


class RemediationMode(StrEnum):
    OFF = "off"
    DRY_RUN = "dry-run"
    APPLY = "apply"


@dataclass(frozen=True)
class EscalationStep:
    """Hand an unanswered item to ``to`` once ``after`` has passed since the campaign opened."""

    to: Stage
    after: timedelta


@dataclass(frozen=True)
class BreakGlassAccount:
    """An emergency account: reviewed like any other but never proposed for revoke."""

    principal: str  # object id or user principal name
    rationale: str


@dataclass(frozen=True)
class Policy:
    """A validated policy. People are named by Entra object id or user principal name."""

    tenant_id: str
    tenant_name: str
    role_owners: Mapping[str, tuple[str, ...]]  # role template id or lower-case role name -> owners
    partner_owners: Mapping[str, tuple[str, ...]]  # partner tenant id or lower-case name, "*" = any
    recovery_owners_include_admin: bool  # also ask the admin to confirm their own contact details
    fallback_reviewers: tuple[str, ...]
    security_leads: tuple[str, ...]
    delegates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # reviewer -> delegates
    schedule_cron: str = "0 9 * * MON"
    timezone: str = "UTC"
    deadline: timedelta = timedelta(days=5)
    reminder_every: timedelta = timedelta(days=1)
    escalation: tuple[EscalationStep, ...] = (
        EscalationStep(Stage.FALLBACK, timedelta(days=3)),
        EscalationStep(Stage.SECURITY_LEADS, timedelta(days=4)),
    )
    no_answer: NoAnswer = NoAnswer.ESCALATE
    remediation: RemediationMode = RemediationMode.OFF
    dual_custody_global_admin: bool = True
    break_glass: tuple[BreakGlassAccount, ...] = ()
    exceptions: tuple[PolicyExceptionGrant, ...] = ()
