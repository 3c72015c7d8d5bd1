"""The catalogue of Entra built-in roles that `doctor` checks a policy's role names against."""

from __future__ import annotations

import re
from pathlib import Path

from bot.policy import load_policy, role_references
from checks.entra_roles import BUILT_IN_ROLES, RoleNames
from checks.rules.holders import HIGHLY_PRIVILEGED_ROLES
from checks.snapshot import load_snapshot

ROOT = Path(__file__).resolve().parents[2]
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_every_built_in_role_has_a_lower_case_template_id_and_a_name_of_its_own() -> None:
    assert all(GUID.fullmatch(template_id) for template_id in BUILT_IN_ROLES)
    assert len(set(BUILT_IN_ROLES.values())) == len(BUILT_IN_ROLES) >= 120


def test_the_catalogue_agrees_with_the_checks_and_the_demo_tenant() -> None:
    for template_id, name in HIGHLY_PRIVILEGED_ROLES.items():
        assert BUILT_IN_ROLES[template_id] == name
    for definition in load_snapshot(ROOT / "checks" / "demo_tenant.json").role_definitions:
        assert BUILT_IN_ROLES[definition["templateId"]] == definition["displayName"]


def test_every_role_the_shipped_policies_name_exists() -> None:
    names = RoleNames()
    for policy in (ROOT / "policy").glob("*.toml"):
        load_policy(policy)
        assert all(names.knows(reference.value) for reference in role_references(policy)), policy


def test_a_misspelt_role_gets_the_closest_real_name_in_any_case() -> None:
    names = RoleNames()
    assert names.closest("Exchange Admin") == "Exchange Administrator"
    assert names.closest("global admin") == names.closest("Global Admins") == "Global Administrator"
    assert names.knows("exchange ADMINISTRATOR") and names.knows("62E90394-69F5-4237-9190-012177145E10")
    assert names.closest("Coffee Machine Operator") is None


def test_the_tenants_custom_roles_count_as_known_by_name_and_id() -> None:
    names = RoleNames([{"id": "6a1c0f3e-2b4d-4e8f-9a7c-5d3b1e9f7a20", "displayName": "Contoso Mail Auditor", "isBuiltIn": False}])
    assert names.knows("contoso mail auditor") and names.knows("6a1c0f3e-2b4d-4e8f-9a7c-5d3b1e9f7a20")
    assert names.closest("Contoso Mail Auditors") == "Contoso Mail Auditor"
