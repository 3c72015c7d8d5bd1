"""PIM for Groups: a role held through a group whose membership PIM governs, reviewed the way it is held.

ScubaGear's instructions for MS.AAD.7.4v1 allow "a group that is enrolled in PIM ... to have a perpetual active
assignment to a role because activation is handled by PIM for Groups": its eligible members are eligible admins,
not permanent ones, and they are reviewed; a permanent member of the group is still a permanent admin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.engine.model import AssignmentType
from checks.graph.collector import privileged_principals
from checks.pim_groups import Membership, pim_group
from checks.snapshot import load_snapshot, snapshot_from_dict, snapshot_to_dict
from checks.subjects import subjects_from_snapshot
from tests.unit.test_checks_rules import EXA, GA, HDA, NOW, UA, Tenant, named, of, role_key, run

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "checks" / "demo_tenant.json"
GROUP = "5a1d3c7e-9b2f-4d6a-8c0e-1f3a5b7d9e2c"
NESTED = "6b2e4d8f-0c3a-4e7b-9d1f-2a4c6e8a0b3d"
_GROUP_TYPE = "#microsoft.graph.group"


def enrolled_group(t: Tenant, role: str = GA, name: str = "PIM-Tier0-Admins") -> str:
    """A role-assignable group holding ``role`` permanently active (no end date, outside any schedule), enrolled in
    PIM for Groups with nobody in it yet: PIM lists an owner, so the group is enrolled whoever its members are."""
    t.add("groups", {"id": GROUP, "displayName": name, "isAssignableToRole": True})
    t.grant(GROUP, role, "permanent")
    t.data.setdefault("groupMembers", {})[GROUP] = []
    t.data.setdefault("pimGroupEligibilityScheduleInstances", {})[GROUP] = [
        instance(t.alex, "owner", start="2026-01-01T00:00:00Z", end=None)]
    t.data.setdefault("pimGroupAssignmentScheduleInstances", {})[GROUP] = []
    return GROUP


def instance(principal: str, access: str = "member", *, start: str | None = "2026-09-01T09:00:00Z",
             end: str | None = "2027-08-31T09:00:00Z", assignment: str | None = None,
             principal_type: str = "#microsoft.graph.user") -> dict[str, Any]:
    """A privilegedAccessGroupEligibilityScheduleInstance (``assignment`` None) or ...AssignmentScheduleInstance
    (``assignment`` Assigned or Activated), as Graph lists them with ``$expand=principal``."""
    item: dict[str, Any] = {
        "id": f"{GROUP}_{access}_{principal}", "startDateTime": start, "endDateTime": end, "accessId": access,
        "principalId": principal, "groupId": GROUP, "memberType": "Direct",
        "principal": {"@odata.type": principal_type, "id": principal},
    }
    if assignment is None:
        item["eligibilityScheduleId"] = item["id"]
    else:
        item.update(assignmentType=assignment, assignmentScheduleId=item["id"])
    return item


def eligible(t: Tenant, uid: str, **when: Any) -> None:
    t.data["pimGroupEligibilityScheduleInstances"][GROUP].append(instance(uid, **when))


def in_group(t: Tenant, uid: str, assignment: str, **when: Any) -> None:
    """A member now: ``transitiveMembers`` lists them, PIM says whether by activation or by assignment."""
    t.data["groupMembers"][GROUP].append({"@odata.type": "#microsoft.graph.user", "id": uid})
    t.data["pimGroupAssignmentScheduleInstances"][GROUP].append(instance(uid, assignment=assignment, **when))


def without_pim_for_groups(t: Tenant) -> Tenant:
    """The same tenant as a collector that does not read PIM for Groups saw it."""
    t.data.pop("pimGroupEligibilityScheduleInstances", None)
    t.data.pop("pimGroupAssignmentScheduleInstances", None)
    return t


# ---- MS.AAD.7.4v1 ----------------------------------------------------------------------------------


def test_a_member_eligible_through_a_pim_group_holding_global_admin_permanently_is_no_ms_aad_7_4v1_breach() -> None:
    tenant = Tenant.clean()
    enrolled_group(tenant)
    megan = tenant.person("Megan Bowen")
    eligible(tenant, megan)
    results = run(tenant)
    assert of(results, "privileged_role_permanent") == []
    assert role_key(GA, megan, "eligible") in {s.key for s in subjects_from_snapshot(tenant.snapshot(), NOW)}


def test_an_activated_member_of_a_pim_group_is_an_activation_not_a_permanent_admin() -> None:
    """transitiveMembers lists an activated member like any other: without PIM for Groups she looked permanent."""
    tenant = Tenant.clean()
    enrolled_group(tenant)
    megan = tenant.person("Megan Bowen")
    eligible(tenant, megan)
    in_group(tenant, megan, "Activated", start="2026-11-23T07:30:00Z", end="2026-11-23T11:30:00Z")
    assert of(run(tenant), "privileged_role_permanent") == []
    subjects = {s.key: s for s in subjects_from_snapshot(tenant.snapshot(), NOW)}
    assert role_key(GA, megan, "active") not in subjects
    assert subjects[role_key(GA, megan, "eligible")].evidence["Assignment"] == (
        "Eligible through PIM group PIM-Tier0-Admins (until 2027-08-31); activated now until 2026-11-23 11:30 UTC")

    assert named(run(without_pim_for_groups(tenant)), "privileged_role_permanent") == {role_key(GA, megan, "active")}


def test_a_permanent_member_of_a_pim_group_is_still_a_permanent_admin_under_ms_aad_7_4v1() -> None:
    """The exception is for the group's own assignment "because activation is handled by PIM for Groups": for a
    permanent member no activation is handled, so they hold the role permanently active."""
    tenant = Tenant.clean()
    enrolled_group(tenant)
    megan = tenant.person("Megan Bowen")
    in_group(tenant, megan, "Assigned", start="2026-02-01T00:00:00Z", end=None)
    [finding] = of(run(tenant), "privileged_role_permanent")
    assert finding.subject_key == role_key(GA, megan, "active")
    subject = {s.key: s for s in subjects_from_snapshot(tenant.snapshot(), NOW)}[finding.subject_key]
    assert subject.permanent
    assert subject.evidence["Assignment"] == "Active, permanent since 2026-02-01, via PIM group PIM-Tier0-Admins"


def test_a_time_bound_member_of_a_pim_group_holds_the_role_until_the_membership_ends() -> None:
    tenant = Tenant.clean()
    enrolled_group(tenant)
    megan = tenant.person("Megan Bowen")
    in_group(tenant, megan, "Assigned", start="2026-11-01T00:00:00Z", end="2026-12-15T00:00:00Z")
    assert of(run(tenant), "privileged_role_permanent") == []
    subject = {s.key: s for s in subjects_from_snapshot(tenant.snapshot(), NOW)}[role_key(GA, megan, "active")]
    assert not subject.permanent
    assert subject.evidence["Assignment"] == "Active, time-bound until 2026-12-15, via PIM group PIM-Tier0-Admins"


def test_a_member_of_a_plain_group_holding_global_admin_permanently_is_reported_as_before() -> None:
    """A group PIM for Groups lists nothing for is no PIM group: its members are members the ordinary way."""
    tenant = Tenant.clean()
    enrolled_group(tenant)
    tenant.data["pimGroupEligibilityScheduleInstances"][GROUP] = []
    megan = tenant.person("Megan Bowen")
    tenant.data["groupMembers"][GROUP].append({"@odata.type": "#microsoft.graph.user", "id": megan})
    assert named(run(tenant), "privileged_role_permanent") == {role_key(GA, megan, "active")}
    subject = {s.key: s for s in subjects_from_snapshot(tenant.snapshot(), NOW)}[role_key(GA, megan, "active")]
    assert subject.evidence["Assignment"] == "Active, permanent, via group PIM-Tier0-Admins"


def test_a_pim_group_reviewed_as_a_whole_because_its_members_were_not_collected_is_the_exception_itself() -> None:
    tenant = Tenant.clean()
    enrolled_group(tenant)
    del tenant.data["groupMembers"][GROUP]
    tenant.data.update(complete=False, missing=["groupMembers: 1 of 1 groups failed (503)"])
    subjects = {s.key: s for s in subjects_from_snapshot(tenant.snapshot(), NOW)}
    assert subjects[role_key(GA, GROUP, "active")].permanent  # the group, reviewed in its members' place
    assert of(run(tenant), "privileged_role_permanent") == []
    assert named(run(without_pim_for_groups(tenant)), "privileged_role_permanent") == {role_key(GA, GROUP, "active")}


def test_the_sibling_check_for_other_roles_applies_the_same_exception() -> None:
    tenant = Tenant.clean()
    enrolled_group(tenant, HDA, "PIM-Helpdesk")
    agent, standing = tenant.person("Helpdesk Agent"), tenant.person("Standing Agent")
    eligible(tenant, agent)
    in_group(tenant, standing, "Assigned", end=None)
    results = run(tenant)
    assert named(results, "other_privileged_role_permanent") == {role_key(HDA, standing, "active")}
    assert of(results, "privileged_role_permanent") == []


# ---- who is reviewed -------------------------------------------------------------------------------


def test_eligible_members_are_reviewed_with_the_group_and_end_date_on_the_evidence_line() -> None:
    """transitiveMembers never lists an eligible member who has not activated: without PIM for Groups she was
    not reviewed at all."""
    tenant = Tenant.clean()
    enrolled_group(tenant, name="PIM-Exchange-Admins", role=EXA)
    megan = tenant.person("Megan Bowen")
    eligible(tenant, megan)
    subjects = {s.key: s for s in subjects_from_snapshot(tenant.snapshot(), NOW)}
    item = subjects[role_key(EXA, megan, "eligible")]
    assert item.assignment_type is AssignmentType.ELIGIBLE and not item.permanent
    assert item.evidence["Assignment"] == "Eligible through PIM group PIM-Exchange-Admins (until 2027-08-31)"
    assert f"recovery:{megan}" in subjects  # an eligible admin's recovery contacts are reviewed too

    before = {s.key for s in subjects_from_snapshot(without_pim_for_groups(tenant).snapshot(), NOW)}
    assert role_key(EXA, megan, "eligible") not in before and f"recovery:{megan}" not in before


def test_an_eligibility_without_end_date_says_so_and_owners_hold_no_role() -> None:
    tenant = Tenant.clean()
    enrolled_group(tenant)
    megan = tenant.person("Megan Bowen")
    eligible(tenant, megan, end=None)
    subjects = {s.key: s for s in subjects_from_snapshot(tenant.snapshot(), NOW)}
    assert subjects[role_key(GA, megan, "eligible")].evidence["Assignment"] == (
        "Eligible through PIM group PIM-Tier0-Admins (no end date)")
    # Alex is the group's eligible owner: owning a group is not being in it
    assert {k for k in subjects if tenant.alex in k and k.startswith("role:")} == {role_key(GA, tenant.alex)}


def test_membership_ends_before_the_groups_role_ends_bounds_the_eligibility() -> None:
    tenant = Tenant.clean()
    enrolled_group(tenant)
    tenant.drop_roles(GROUP)
    tenant.add("roleAssignmentScheduleInstances", {
        "id": "group-ga", "roleDefinitionId": GA, "principalId": GROUP, "directoryScopeId": "/", "memberType": "Direct",
        "assignmentType": "Assigned", "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-31T00:00:00Z"})
    megan = tenant.person("Megan Bowen")
    eligible(tenant, megan, end="2027-08-31T09:00:00Z")
    subject = {s.key: s for s in subjects_from_snapshot(tenant.snapshot(), NOW)}[role_key(GA, megan, "eligible")]
    assert subject.evidence["Assignment"] == "Eligible through PIM group PIM-Tier0-Admins (until 2027-01-31)"


def test_a_nested_group_eligible_as_a_whole_makes_its_members_eligible() -> None:
    tenant = Tenant.clean()
    enrolled_group(tenant)
    megan = tenant.person("Megan Bowen")
    tenant.add("groups", {"id": NESTED, "displayName": "Tier0 Engineers"})
    tenant.data["groupMembers"][NESTED] = [{"@odata.type": "#microsoft.graph.user", "id": megan}]
    eligible(tenant, NESTED, principal_type=_GROUP_TYPE)
    subjects = {s.key: s for s in subjects_from_snapshot(tenant.snapshot(), NOW)}
    assert subjects[role_key(GA, megan, "eligible")].evidence["Assignment"] == (
        "Eligible through PIM group PIM-Tier0-Admins (until 2027-08-31)")
    assert of(run(tenant), "privileged_role_permanent") == []


def test_eligible_members_of_a_global_admin_pim_group_count_towards_ms_aad_7_1v1() -> None:
    """ScubaGear: "If any of the groups assigned to Global Administrator are enrolled in PIM for Groups, also count
    the number of group members from the PIM for Groups portal Eligible assignments." """
    tenant = Tenant()
    tenant.admin("Only Admin")
    tenant.alex = tenant.person("Alex Wilber")
    enrolled_group(tenant)
    assert named(run(tenant), "global_admins_too_few") == {None}
    eligible(tenant, tenant.person("Second Admin"))
    assert of(run(tenant), "global_admins_too_few") == []


def test_pim_for_groups_that_could_not_be_read_makes_the_global_admin_count_a_lower_bound() -> None:
    tenant = Tenant()
    tenant.admin("Only Admin")
    tenant.data.update(complete=False, missing=[
        "pimGroupEligibilityScheduleInstances: 1 of 1 groups failed (403 Authorization_RequestDenied; "
        "needs PrivilegedEligibilitySchedule.Read.AzureADGroup)"])
    assert of(run(tenant), "global_admins_too_few") == []


def test_the_pim_group_view_reads_members_and_ignores_owners() -> None:
    tenant = Tenant.clean()
    enrolled_group(tenant)
    megan, lee = tenant.person("Megan Bowen"), tenant.person("Lee Gu")
    eligible(tenant, megan)
    in_group(tenant, lee, "Assigned", end=None)
    view = pim_group(tenant.snapshot(), GROUP.upper())
    assert view is not None and view.enrolled
    assert [m.how for m in view.of(megan)] == [Membership.ELIGIBLE]
    assert [m.how for m in view.of(lee)] == [Membership.ASSIGNED] and view.of(lee)[0].end is None
    assert view.of(tenant.alex) == ()  # an owner
    assert privileged_principals(tenant.snapshot()) >= {megan.lower(), lee.lower()}


# ---- snapshots -------------------------------------------------------------------------------------


def test_a_snapshot_written_before_pim_for_groups_was_collected_still_loads_and_reads_as_not_collected(
    tmp_path: Path,
) -> None:
    data = json.loads(DEMO.read_text(encoding="utf-8"))
    for key in ("pimGroupEligibilityScheduleInstances", "pimGroupAssignmentScheduleInstances"):
        del data[key]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data), encoding="utf-8")
    snapshot = load_snapshot(old)
    group = "7d3e9a15-2c4b-4e8f-9a6d-1b5c7e3f2a90"  # PIM-User-Admins
    assert snapshot.pim_group_instances(group) is None and pim_group(snapshot, group) is None
    keys = {s.key for s in subjects_from_snapshot(snapshot, NOW)}
    assert role_key(UA, "57d15fde-ce85-4c0d-8a93-7167ffbb463a", "eligible") not in keys  # as before: unseen
    assert snapshot_from_dict(snapshot_to_dict(snapshot)) == snapshot


def test_the_demo_snapshot_round_trips_its_pim_for_groups_instances() -> None:
    snapshot = load_snapshot(DEMO)
    again = snapshot_from_dict(snapshot_to_dict(snapshot))
    assert again.pim_group_eligibility_instances == snapshot.pim_group_eligibility_instances
    found = again.pim_group_instances("7d3e9a15-2c4b-4e8f-9a6d-1b5c7e3f2a90")
    assert found is not None and [i["principalId"] for i in found[0]] == ["57d15fde-ce85-4c0d-8a93-7167ffbb463a"]
