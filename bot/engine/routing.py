"""Who reviews what: the policy's owner lists, resolved to Entra object ids.

The policy names people by UPN or object id; the engine works only with object ids, so the resolution
happens once, here, and a name that resolves to nobody is reported instead of silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

from bot.engine.model import PolicyExceptionGrant, Subject, SubjectKind, azure_subscription_of
from bot.policy import SUBJECT_KEY_PREFIXES, Policy


class UnresolvedPeople(ValueError):
    """Raised when the policy names people the tenant directory does not know."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        super().__init__("the policy names people the tenant does not know: " + ", ".join(self.names))


@dataclass(frozen=True)
class Routing:
    """Owner lists keyed like the policy, with every person as an object id."""

    role_owners: Mapping[str, tuple[str, ...]]
    partner_owners: Mapping[str, tuple[str, ...]]
    fallback: tuple[str, ...]
    security_leads: tuple[str, ...]
    delegates: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    recovery_include_admin: bool = False
    revoke_wins: bool = True
    managers: Mapping[str, str] = field(default_factory=dict)  # reviewer -> their manager, for the "manager" step
    subscription_owners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # [[subscriptions]]

    def owners_of_role(self, role_id: str | None, role_name: str | None) -> tuple[str, ...]:
        for key in (role_id, role_name):
            if key and key.lower() in self.role_owners:
                return self.role_owners[key.lower()]
        return ()

    def owners_of_partner(self, partner_id: str | None, partner_name: str | None) -> tuple[str, ...]:
        for key in (partner_id, partner_name, "*"):
            if key and key.lower() in self.partner_owners:
                return self.partner_owners[key.lower()]
        return ()

    def owners_of_subscription(self, subscription_id: str | None, name: str | None) -> tuple[str, ...]:
        """The policy's ``[[subscriptions]]`` owner of an Azure subscription, by id or name, else ``"*"``."""
        for key in (subscription_id, name, "*"):
            if key and key.lower() in self.subscription_owners:
                return self.subscription_owners[key.lower()]
        return ()

    def owners_of(self, subject: Subject, roles_of_holder: Mapping[str, list[Subject]]) -> tuple[str, ...]:
        """The first-line reviewers of a subject, before self-review is taken out."""
        if subject.kind is SubjectKind.AZURE_ROLE:
            return self.owners_of_subscription(azure_subscription_of(subject), subject.evidence.get("Subscription"))
        if subject.kind is SubjectKind.ROLE_ASSIGNMENT:
            return self.owners_of_role(subject.role_id, subject.role_name)
        if subject.kind is SubjectKind.PARTNER:
            return self.owners_of_partner(subject.partner_id, subject.partner_name)
        owners: list[str] = []
        for holder in subject.holder_ids:
            for role_subject in roles_of_holder.get(holder, []):
                owners.extend(self.owners_of_role(role_subject.role_id, role_subject.role_name))
            if self.recovery_include_admin:
                owners.append(holder)
        return _unique(owners)

    def may_act_for(self, actor_id: str, reviewers: Iterable[str]) -> str | None:
        """The reviewer ``actor_id`` may answer for (themself first, then as a delegate), or None."""
        reviewers = tuple(reviewers)
        if actor_id in reviewers:
            return actor_id
        for reviewer in reviewers:
            if actor_id in self.delegates.get(reviewer, ()):
                return reviewer
        return None


def routing_from_policy(
    policy: Policy, resolve: Callable[[str], str | None], manager_of: Callable[[str], str | None] = lambda _: None
) -> Routing:
    """Resolve every person the policy names; raise UnresolvedPeople listing all unknown names at once.
    ``manager_of`` gives a person's manager (Entra ID), for escalation steps that go to managers."""
    unknown: list[str] = []

    def ids(names: Iterable[str]) -> tuple[str, ...]:
        found = []
        for name in names:
            object_id = resolve(name)
            if object_id is None:
                unknown.append(name)
            else:
                found.append(object_id)
        return _unique(found)

    delegates: dict[str, tuple[str, ...]] = {}
    for reviewer, names in policy.delegates.items():
        for reviewer_id in ids([reviewer]):
            delegates[reviewer_id] = ids(names)
    role_owners = {key: ids(names) for key, names in policy.role_owners.items()}
    partner_owners = {key: ids(names) for key, names in policy.partner_owners.items()}
    subscription_owners = {key: ids(names) for key, names in policy.subscription_owners.items()}
    owners = {
        person for people in (*role_owners.values(), *partner_owners.values(), *subscription_owners.values())
        for person in people
    }
    routing = Routing(
        role_owners=role_owners,
        partner_owners=partner_owners,
        subscription_owners=subscription_owners,
        fallback=ids(policy.fallback_reviewers),
        security_leads=ids(policy.security_leads),
        delegates=delegates,
        recovery_include_admin=policy.recovery_owners_include_admin,
        revoke_wins=policy.revoke_wins,
        managers={owner: manager for owner in sorted(owners) if (manager := manager_of(owner)) is not None},
    )
    if unknown:
        raise UnresolvedPeople(sorted(set(unknown)))
    return routing


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def exceptions_from_policy(policy: Policy, resolve: Callable[[str], str | None]) -> dict[str, PolicyExceptionGrant]:
    """Key each accepted-risk grant by subject key, or by the holder's object id when it names a person.

    A grant naming someone no longer in the tenant matches nothing: it cannot hide anyone else's access.
    """
    grants: dict[str, PolicyExceptionGrant] = {}
    for grant in policy.exceptions:
        if grant.subject.lower().startswith(SUBJECT_KEY_PREFIXES):
            grants[grant.subject.lower()] = grant
        elif (object_id := resolve(grant.subject)) is not None:
            grants[object_id] = grant
    return grants
