"""PIM for Groups: how each member of a role-holding group holds that membership.

A role given to a group is held by the group's members. When the group's membership is governed by PIM for
Groups, a member can be *eligible* (not a member until they activate, for a few hours, with MFA and a reason),
*activated* (a member now, until the activation ends), or *assigned* (a member outright, permanently or until
an end date). Graph's ``groups/{id}/transitiveMembers`` lists only who is a member at this moment: eligible
members are missing from it and activated ones look like permanent members. PIM for Groups' own schedule
instances (``identityGovernance/privilegedAccess/group/eligibilityScheduleInstances`` and
``assignmentScheduleInstances``) say which is which; this module reads them from the snapshot.

Only ``accessId`` ``member`` instances give a group's roles: an owner manages the group but is not in it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from checks import evidence
from checks.snapshot import GraphObject, TenantSnapshot

_GROUP = "#microsoft.graph.group"


class Membership(Enum):
    ELIGIBLE = "eligible"  # may activate the membership (an eligibility schedule instance)
    ACTIVATED = "activated"  # a member now through an activation (assignmentType Activated)
    ASSIGNED = "assigned"  # a member outright (assignmentType Assigned), permanently or until ``end``


@dataclass(frozen=True)
class GroupMembership:
    """One PIM for Groups instance of a member: how and until when they are (or may become) a member."""

    principal_id: str
    how: Membership
    start: datetime | None
    end: datetime | None  # None: no end date
    principal: GraphObject | None = None  # Graph's expanded principal, when the listing carried it

    @property
    def is_group(self) -> bool:
        """A nested group eligible as a whole (its own members become eligible); Graph names the type only
        when the principal was expanded, and a principal it did not name is taken for a user."""
        return (self.principal or {}).get("@odata.type") == _GROUP


@dataclass(frozen=True)
class PimGroup:
    """What PIM for Groups says of one group's members. ``enrolled`` is False for a group PIM knows nothing of:
    its transitive members are then members the ordinary way."""

    group_id: str
    enrolled: bool
    by_principal: dict[str, tuple[GroupMembership, ...]]  # lower-case principal id -> its member instances

    def of(self, principal_id: str) -> tuple[GroupMembership, ...]:
        """The member instances of one principal; empty when PIM lists none for them."""
        return self.by_principal.get(principal_id.lower(), ())

    def eligible(self) -> list[GroupMembership]:
        """Every eligible member instance, users and nested groups alike, in the order Graph listed them."""
        return [m for ms in self.by_principal.values() for m in ms if m.how is Membership.ELIGIBLE]


def pim_group(snapshot: TenantSnapshot, group_id: str) -> PimGroup | None:
    """PIM for Groups' view of ``group_id``; None when its instances were not collected (an older snapshot, or a
    read that failed: the snapshot's ``missing`` then says so)."""
    found = snapshot.pim_group_instances(group_id)
    if found is None:
        return None
    eligible, active = found
    by_principal: dict[str, list[GroupMembership]] = defaultdict(list)
    for instance in eligible:
        if _is_member(instance):
            by_principal[instance["principalId"].lower()].append(_membership(instance, Membership.ELIGIBLE))
    for instance in active:
        if _is_member(instance):
            how = Membership.ACTIVATED if instance.get("assignmentType") == "Activated" else Membership.ASSIGNED
            by_principal[instance["principalId"].lower()].append(_membership(instance, how))
    return PimGroup(group_id, bool(eligible or active), {k: tuple(v) for k, v in by_principal.items()})


def _is_member(instance: GraphObject) -> bool:
    return (instance.get("accessId") or "").lower() == "member" and isinstance(instance.get("principalId"), str)


def _membership(instance: GraphObject, how: Membership) -> GroupMembership:
    return GroupMembership(
        instance["principalId"], how, evidence.parse_time(instance.get("startDateTime")),
        evidence.parse_time(instance.get("endDateTime")), instance.get("principal"),
    )


def earlier_end(first: datetime | None, second: datetime | None) -> datetime | None:
    """When access held through two links (the group's role, the membership) ends: at the first of them to end;
    None (no end date) only when neither ends."""
    ends = [e for e in (first, second) if e is not None]
    return min(ends) if ends else None


__all__ = ["GroupMembership", "Membership", "PimGroup", "earlier_end", "pim_group"]
