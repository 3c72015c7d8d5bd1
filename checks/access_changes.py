"""Which directory audit events are access changes a person must confirm at once, and what to ask.

The weekly campaign asks about access as it stands; an admin made on Tuesday would otherwise go unasked until
the next Monday. The guidance asks to "check audit logs regularly to verify that high-privilege user access
isn't granted or delegated to admin users who don't require those privileges to do their jobs", so each
``auditLogs/directoryAudits`` entry goes through the small pure classifiers below (Prowler style: one
function per kind of change, each with the sentence of guidance it carries out). An entry one of them
recognises becomes an ``AccessChange``, and that becomes a single-item review (``change_subject``); every
other entry is ignored. Only successful operations count: a refused grant changed nothing.

The entries keep Graph's own JSON shape (``activityDateTime``, ``activityDisplayName``, ``category``,
``initiatedBy.user``/``app``, ``targetResources[].modifiedProperties``, ``result``, ``id``); a
``modifiedProperties`` value is itself JSON text (``"\\"Global Administrator\\""``), as Graph sends it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.engine.changes import CHANGE_KEY
from bot.engine.model import Subject, SubjectKind
from checks.evidence import parse_time, shorten
from checks.rules.holders import HIGHLY_PRIVILEGED_ROLES, is_highly_privileged
from checks.subjects import HIGH_PRIVILEGE_PERMISSIONS

SEED = "customer-security-best-practices"
AUDIT_QUOTE = (
    "check audit logs regularly to verify that high-privilege user access isn't granted or delegated to admin "
    "users who don't require those privileges to do their jobs"
)
MFA_QUOTE = "review of devices registered for use with MFA"

_ROLE_NAMES = {name.lower(): role_id for role_id, name in HIGHLY_PRIVILEGED_ROLES.items()}
ROLE_GRANTED = frozenset({
    "Add member to role", "Add member to role in PIM completed (permanent)",
    "Add member to role in PIM completed (timebound)",
})
ROLE_MADE_ELIGIBLE = frozenset({
    "Add eligible member to role in PIM completed (permanent)",
    "Add eligible member to role in PIM completed (timebound)",
})
PIM_ACTIVATED = frozenset({"Add member to role completed (PIM activation)"})
# DAP is "Add partner to company"; Entra names GDAP's customer-side approval differently across its services,
# so any successful approval, acceptance or activation of a delegated admin relationship counts.
PARTNER_ADDED = frozenset({"Add partner to company"})
_GDAP_VERBS = ("approve", "accept", "activate")
APP_GRANTS = frozenset({
    "Add app role assignment to service principal", "Add delegated permission grant", "Consent to application",
})
SECURITY_INFO = frozenset({
    "User registered security info", "User changed default security info", "User deleted security info",
    "Admin registered security info", "Admin updated security info", "Admin deleted security info",
    "User registered all required security info",
})
# "Update user" touches MFA or recovery when one of these properties changed (the rest is name, job title...).
_SECURITY_PROPERTIES = frozenset({
    "StrongAuthenticationMethod", "StrongAuthenticationUserDetails", "StrongAuthenticationPhoneAppDetail",
    "StrongAuthenticationRequirement", "OtherMail", "Mobile", "TelephoneNumber", "AlternativeSecurityId",
})


class ChangeKind(StrEnum):
    ROLE_GRANTED = "role_granted"
    ROLE_ELIGIBLE = "role_eligible"
    PIM_ACTIVATION = "pim_activation"
    PARTNER_APPROVED = "partner_approved"
    APP_PERMISSION = "app_permission"
    ADMIN_SECURITY_INFO = "admin_security_info"


@dataclass(frozen=True)
class AccessChange:
    """One recognised audit event: what changed, for whom, by whom, when, and the guidance it answers."""

    event_id: str
    kind: ChangeKind
    at: datetime
    activity: str
    what: str  # "Global Administrator", "Fabrikam MSP", "RoleManagement.ReadWrite.Directory"
    target_id: str
    target_name: str
    actor: str
    seed: str  # "<seed file stem>: <quoted sentence>", like a check's
    role_id: str | None = None
    partner_id: str | None = None

    @property
    def question(self) -> str:
        """'Global Administrator granted to X by Y at T — expected?': the item's title."""
        verb = {
            ChangeKind.ROLE_GRANTED: f"{self.what} granted to {self.target_name}",
            ChangeKind.ROLE_ELIGIBLE: f"{self.target_name} made eligible for {self.what}",
            ChangeKind.PIM_ACTIVATION: f"{self.target_name} activated {self.what} (PIM)",
            ChangeKind.PARTNER_APPROVED: f"Partner relationship with {self.what} approved",
            ChangeKind.APP_PERMISSION: f"{self.target_name} granted {self.what}",
            ChangeKind.ADMIN_SECURITY_INFO: f"MFA or recovery details of admin {self.target_name} changed",
        }[self.kind]
        by = "" if self.actor == self.target_name else f" by {self.actor}"  # a PIM activation is its holder's own
        return f"{verb}{by} at {self.at:%Y-%m-%d %H:%M} UTC — expected?"


Classifier = Callable[[Mapping[str, Any], frozenset[str]], "AccessChange | None"]


def classify(entry: Mapping[str, Any], admins: frozenset[str]) -> AccessChange | None:
    """The access change an audit entry records, or None. ``admins`` are the lower-case object ids of the
    tenant's role holders (whose MFA and recovery details matter)."""
    if str(entry.get("result") or "").lower() != "success" or not entry.get("id"):
        return None
    if parse_time(entry.get("activityDateTime")) is None:
        return None
    for classifier in CLASSIFIERS:
        change = classifier(entry, admins)
        if change is not None:
            return change
    return None


def changes_in(entries: Iterable[Mapping[str, Any]], admins: frozenset[str]) -> list[AccessChange]:
    """The access changes among audit entries, oldest first, each event once (pages may overlap)."""
    found: dict[str, AccessChange] = {}
    for entry in entries:
        change = classify(entry, admins)
        if change is not None:
            found.setdefault(change.event_id, change)
    return sorted(found.values(), key=lambda change: (change.at, change.event_id))


# ---- the classifiers ---------------------------------------------------------------------------------------


def role_granted(entry: Mapping[str, Any], _: frozenset[str]) -> AccessChange | None:
    """A highly privileged directory role assigned (directly or active through PIM) or made eligible.
    Guidance: "check audit logs regularly to verify that high-privilege user access isn't granted ...". """
    activity = entry.get("activityDisplayName") or ""
    if activity in ROLE_GRANTED:
        kind = ChangeKind.ROLE_GRANTED
    elif activity in ROLE_MADE_ELIGIBLE:
        kind = ChangeKind.ROLE_ELIGIBLE
    else:
        return None
    return _role_change(entry, kind)


def pim_activation(entry: Mapping[str, Any], _: frozenset[str]) -> AccessChange | None:
    """A PIM activation of a highly privileged role: standing access avoided, but each use worth a look.
    Guidance: "check audit logs regularly to verify that high-privilege user access isn't granted ...". """
    if (entry.get("activityDisplayName") or "") not in PIM_ACTIVATED:
        return None
    return _role_change(entry, ChangeKind.PIM_ACTIVATION)


def partner_approved(entry: Mapping[str, Any], _: frozenset[str]) -> AccessChange | None:
    """A partner given delegated admin rights (DAP added, a GDAP relationship approved).
    Guidance: "... high-privilege user access isn't granted or delegated ..."."""
    activity = entry.get("activityDisplayName") or ""
    lowered = activity.lower()
    if activity not in PARTNER_ADDED and not ("delegated admin" in lowered and any(v in lowered for v in _GDAP_VERBS)):
        return None
    partner = _target(entry, ("Company", "Other", "Partner", "DelegatedAdminRelationship")) or _target(entry, None)
    name = _property(entry, ("Partner.DisplayName", "PartnerTenantName", "partnerName")) or (partner or {}).get(
        "displayName") or "a partner"
    partner_id = _property(entry, ("PartnerTenantId", "Partner.TenantId", "partnerTenantId")) or None
    return _change(entry, ChangeKind.PARTNER_APPROVED, name, partner or {}, partner_id=partner_id)


def app_permission(entry: Mapping[str, Any], _: frozenset[str]) -> AccessChange | None:
    """An app granted a high-privilege Graph permission (application role or delegated consent).
    Guidance: "... high-privilege user access isn't granted or delegated ..."."""
    if (entry.get("activityDisplayName") or "") not in APP_GRANTS:
        return None
    granted: set[str] = set()
    for value in _properties(entry, ("AppRole.Value", "DelegatedPermissionGrant.Scope", "ConsentAction.Permissions")):
        granted.update(word.strip(" ,;[]'\"") for word in value.replace(",", " ").split())
    powerful = sorted(HIGH_PRIVILEGE_PERMISSIONS & granted)
    if not powerful:
        return None
    app = _target(entry, ("ServicePrincipal", "Application")) or _target(entry, None) or {}
    name = _property(entry, ("ServicePrincipal.DisplayName",)) or app.get("displayName") or "an app"
    return _change(entry, ChangeKind.APP_PERMISSION, ", ".join(powerful), {**app, "displayName": name})


def admin_security_info(entry: Mapping[str, Any], admins: frozenset[str]) -> AccessChange | None:
    """An admin's MFA method or recovery contact registered, changed or removed: how an account is taken over
    without a role change. Guidance: "review of devices registered for use with MFA"."""
    activity = entry.get("activityDisplayName") or ""
    touched = activity in SECURITY_INFO or (
        activity == "Update user" and any(_changed(entry, name) for name in _SECURITY_PROPERTIES))
    if not touched:
        return None
    user = _target(entry, ("User",))
    if user is None or str(user.get("id") or "").lower() not in admins:
        return None
    return _change(entry, ChangeKind.ADMIN_SECURITY_INFO, activity, user, seed=f"{SEED}: {MFA_QUOTE}")


CLASSIFIERS: Sequence[Classifier] = (role_granted, pim_activation, partner_approved, app_permission, admin_security_info)


# ---- the item ----------------------------------------------------------------------------------------------


def change_subject(change: AccessChange) -> Subject:
    """The single item asking about one change. Its kind routes it like the weekly item it resembles: a role to
    the role's owners, a partner to the partners' owners, an admin's security details to the owners of that
    admin's roles; an app to the fallback reviewers. Its key names the audit event, so an event has one item."""
    kind = {
        ChangeKind.PARTNER_APPROVED: SubjectKind.PARTNER,
        ChangeKind.ADMIN_SECURITY_INFO: SubjectKind.RECOVERY_CONTACT,
        ChangeKind.APP_PERMISSION: SubjectKind.APP_PERMISSION,
    }.get(change.kind, SubjectKind.ROLE_ASSIGNMENT)
    evidence = {
        "Change": shorten(change.activity),
        "By": shorten(change.actor),
        "When": f"{change.at:%Y-%m-%d %H:%M} UTC",
        "Audit event": shorten(change.event_id),
        "Why asked now": "A privileged change between weekly reviews; the guidance asks to check audit logs regularly.",
    }
    return Subject(
        key=CHANGE_KEY + change.event_id,
        kind=kind,
        title=change.question,
        holder_name=change.target_name,
        holder_ids=(change.target_id,) if change.target_id else (),
        role_id=change.role_id,
        role_name=change.what if change.role_id else None,
        partner_id=change.partner_id,
        partner_name=change.what if kind is SubjectKind.PARTNER else None,
        evidence=evidence,
    )


# ---- reading an entry --------------------------------------------------------------------------------------


def _role_change(entry: Mapping[str, Any], kind: ChangeKind) -> AccessChange | None:
    role = _target(entry, ("Role",)) or {}
    name = _property(entry, ("Role.DisplayName", "RoleDefinitionOriginId.DisplayName")) or role.get("displayName") or ""
    role_id = (_property(entry, ("Role.TemplateId", "RoleDefinitionOriginId", "TemplateId")) or "").lower()
    if not role_id or role_id not in HIGHLY_PRIVILEGED_ROLES:
        role_id = _ROLE_NAMES.get(name.lower(), role_id)
    if not is_highly_privileged(role_id):
        return None
    holder = _target(entry, ("User", "ServicePrincipal", "Group")) or {}
    return _change(entry, kind, name or HIGHLY_PRIVILEGED_ROLES[role_id], holder, role_id=role_id)


def _change(entry: Mapping[str, Any], kind: ChangeKind, what: str, target: Mapping[str, Any], *,
            role_id: str | None = None, partner_id: str | None = None, seed: str | None = None) -> AccessChange:
    at = parse_time(entry.get("activityDateTime"))
    assert at is not None  # classify() checked it
    return AccessChange(
        event_id=str(entry["id"]),
        kind=kind,
        at=at,
        activity=str(entry.get("activityDisplayName") or ""),
        what=what,
        target_id=str(target.get("id") or "").lower(),
        target_name=str(target.get("userPrincipalName") or target.get("displayName") or target.get("id") or "someone"),
        actor=initiator(entry),
        seed=seed or f"{SEED}: {AUDIT_QUOTE}",
        role_id=role_id,
        partner_id=partner_id,
    )


def initiator(entry: Mapping[str, Any]) -> str:
    """Who did it, as the audit entry names them: a person's UPN, an app's name, or 'an unnamed actor'."""
    by = entry.get("initiatedBy") or {}
    user = by.get("user") or {}
    app = by.get("app") or {}
    return str(user.get("userPrincipalName") or user.get("displayName") or app.get("displayName")
               or app.get("servicePrincipalName") or "an unnamed actor")


def _target(entry: Mapping[str, Any], types: Sequence[str] | None) -> dict[str, Any] | None:
    for target in entry.get("targetResources") or ():
        if isinstance(target, dict) and (types is None or target.get("type") in types):
            return target
    return None


def _modified(entry: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for target in entry.get("targetResources") or ():
        for prop in (target or {}).get("modifiedProperties") or ():
            if isinstance(prop, dict):
                yield prop


def _decoded(value: Any) -> str:
    """A modifiedProperties value: JSON text of a string or a list, shown as plain text."""
    if value in (None, ""):
        return ""
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)
    if isinstance(parsed, list):
        return " ".join(str(v) for v in parsed)
    return str(parsed)


def _properties(entry: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    return [_decoded(prop.get("newValue")) for prop in _modified(entry) if prop.get("displayName") in names]


def _property(entry: Mapping[str, Any], names: Sequence[str]) -> str:
    return next((value for value in _properties(entry, names) if value), "")


def _changed(entry: Mapping[str, Any], name: str) -> bool:
    return any(prop.get("displayName") == name and _decoded(prop.get("newValue")) != _decoded(prop.get("oldValue"))
               for prop in _modified(entry))
