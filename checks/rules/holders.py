"""Who the admins are: role subjects grouped by the person behind them, and which roles are highly privileged.

Checks about a person (MFA, sign-ins, licences, risk) report on every role subject that person holds,
because each of those is a separate review item whose reviewer should see the same warning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from bot.engine.model import Subject, SubjectKind
from checks.registry import remembered
from checks.snapshot import GraphObject, TenantSnapshot

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"

# CISA ScubaGear's highly privileged roles, by template id (the same in every tenant): the list in the
# "Highly Privileged Roles" section of its Entra ID baseline (baselines/aad.md) and its default
# configuration (ScubaConfigDefaults.json, privilegedRoles). A check that cites an MS.AAD policy about
# highly privileged roles or privileged users uses exactly this list, so its findings mean what ScubaGear means.
SCUBAGEAR_PRIVILEGED_ROLES: Mapping[str, str] = {
    GLOBAL_ADMINISTRATOR: "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
}

# Roles accessbot treats as privileged beyond ScubaGear's list: they reset admins' credentials, change
# security policy or pay the bills. Checks about them carry no ScubaGear id.
OTHER_PRIVILEGED_ROLES: Mapping[str, str] = {
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
}

# Every role whose holder can take over the tenant or its users: what the recovery-contact checks guard.
HIGHLY_PRIVILEGED_ROLES: Mapping[str, str] = {**SCUBAGEAR_PRIVILEGED_ROLES, **OTHER_PRIVILEGED_ROLES}


def is_highly_privileged(role_id: str | None) -> bool:
    return (role_id or "").lower() in HIGHLY_PRIVILEGED_ROLES


def is_scubagear_privileged(role_id: str | None) -> bool:
    """One of ScubaGear's highly privileged roles (and so in scope of its MS.AAD.3.6 and 7.x policies)."""
    return (role_id or "").lower() in SCUBAGEAR_PRIVILEGED_ROLES


@dataclass(frozen=True)
class Admin:
    """A user of this tenant holding at least one directory role, with the role subjects they hold."""

    user: GraphObject
    roles: tuple[Subject, ...]  # role subjects, sorted by key

    @property
    def id(self) -> str:
        return self.user["id"]

    @property
    def name(self) -> str:
        return self.roles[0].holder_name

    @property
    def break_glass(self) -> bool:
        return any(subject.break_glass for subject in self.roles)

    @property
    def role_ids(self) -> frozenset[str]:
        return frozenset((subject.role_id or "").lower() for subject in self.roles)

    @property
    def privileged(self) -> bool:
        return any(is_highly_privileged(role) for role in self.role_ids)

    def split_by_scubagear(self) -> tuple[tuple[Subject, ...], tuple[Subject, ...]]:
        """(subjects of ScubaGear's highly privileged roles, subjects of the other roles): a check citing
        a ScubaGear policy reports the first, its sibling without an id the second."""
        inside = tuple(s for s in self.roles if is_scubagear_privileged(s.role_id))
        return inside, tuple(s for s in self.roles if not is_scubagear_privileged(s.role_id))

    def role_names(self) -> list[str]:
        """Each role once, in key order (an eligible and an active holding of one role are one role)."""
        names: dict[str, str] = {}
        for subject in self.roles:
            names.setdefault((subject.role_id or "").lower(), subject.role_name or subject.role_id or "unknown role")
        return list(names.values())


def admins(snapshot: TenantSnapshot, subjects: Sequence[Subject]) -> list[Admin]:
    """Every user behind a role subject, sorted by object id. Apps, groups whose members were not
    collected and principals of other tenants hold roles too, but they are nobody's account to
    secure with MFA or a recovery phone; the partner checks review them.

    Computed once per assessment (most person checks start here); each caller gets its own list."""
    return list(remembered(snapshot, subjects, "admins", lambda: tuple(_admins(snapshot, subjects))))


def _admins(snapshot: TenantSnapshot, subjects: Sequence[Subject]) -> list[Admin]:
    held: dict[str, list[Subject]] = defaultdict(list)
    for subject in subjects:
        if subject.kind is SubjectKind.ROLE_ASSIGNMENT and subject.holder_ids:
            held[subject.holder_ids[0].lower()].append(subject)
    found = []
    for user_id in sorted(held):
        user = snapshot.user(user_id)
        if user is not None:
            found.append(Admin(user, tuple(sorted(held[user_id], key=lambda s: s.key))))
    return found


def partner_subjects(subjects: Sequence[Subject], kind: str) -> Iterator[tuple[str, Subject]]:
    """(object id, subject) for every ``partner:{kind}:{id}`` subject, in key order."""
    prefix = f"partner:{kind}:"
    for subject in sorted(subjects, key=lambda s: s.key):
        if subject.key.startswith(prefix):
            yield subject.key[len(prefix):], subject


def recovery_subjects(subjects: Sequence[Subject]) -> dict[str, Subject]:
    """The ``recovery:{userId}`` subjects by lower-case user id."""
    return {
        subject.holder_ids[0].lower(): subject
        for subject in subjects
        if subject.kind is SubjectKind.RECOVERY_CONTACT and subject.holder_ids
    }
