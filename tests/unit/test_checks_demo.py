"""The shipped demo tenant (Contoso) through the whole catalogue: every planted problem is found, on the
right review subject, and the well-run admins come out clean."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.policy import load_policy
from checks.registry import CheckSettings, FindingResult, run_checks
from checks.snapshot import load_snapshot
from checks.subjects import subjects_from_snapshot

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

GA = "62e90394-69f5-4237-9190-012177145e10"
PRA = "e8611ab8-c189-46e8-94e1-60213ab1f814"
SEC = "194ae4cb-b126-40b2-bd5b-6091b380977d"
EXA = "29232cdf-9323-42fd-ade2-1d097af3e4de"
UA = "fe930be7-5e62-47db-91af-98c3a49a38b1"
APPA = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
HDA = "729827e3-9c14-49f7-bb1b-9608f156bbb8"

LYNNE = "0352574e-9ccb-4a60-b927-66c30c6c9a04"
MEGAN = "36e5377f-c245-4eca-a6eb-0f97e46e9dcc"
ISAIAH = "57d15fde-ce85-4c0d-8a93-7167ffbb463a"
BREAKGLASS = "6b2f80d8-b0a8-45d5-9396-83f0db8cc73e"
CHRISTIE = "4f55bc7b-99d5-4a2c-b388-89f2a2b41a49"
PRADEEP = "1c4a4351-e6dd-4862-ac6d-3132cb0fe48e"
RAVI = "70f9fbea-0592-4d65-ade9-a9215451f63a"
NESTOR = "db9b9f81-2ecd-46f6-bcbf-32fc2ce96e5b"
NORTHWIND_GROUP = "4789a890-7094-4eac-a8ba-e834be527b14"
FABRIKAM_APP = "d6ef75f2-ccc1-4595-9883-a662181b0b84"
CONTRACT = "3a54e886-6013-4503-99b7-f1abaf9e44e5"
GDAP = "d031d2bd-7560-4db7-ac4c-0cbb174b906e-997c7d9c-2bd5-40dd-9a5a-3aef9c2eb739"


PROD = "6b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
DEV = "9d8e7f6a-5b4c-4d3e-8f2a-1b0c9d8e7f6a"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
AOBO_GROUP = "c0ffee00-5a1e-4c5e-9a0b-0d1e2f3a4b5c"


def azure(subscription: str, role_id: str, holder: str, kind: str = "active") -> str:
    return f"azure:{subscription}:{role_id}:{holder}:{kind}"


def role(role_id: str, holder: str, kind: str = "active") -> str:
    return f"role:{role_id}:{holder}:{kind}"


@pytest.fixture(scope="module")
def results() -> list[FindingResult]:
    snapshot = load_snapshot(ROOT / "checks" / "demo_tenant.json")
    break_glass = [account.principal for account in load_policy(ROOT / "policy" / "demo.toml").break_glass]
    return run_checks(snapshot, subjects_from_snapshot(snapshot, NOW, break_glass), CheckSettings(), NOW)


def found(results: list[FindingResult]) -> set[tuple[str, str | None]]:
    return {(r.check.id, r.subject_key) for r in results}


def test_every_planted_problem_is_found_on_its_subject(results: list[FindingResult]) -> None:
    assert {
        ("admin_mfa_missing", role(GA, MEGAN)),  # Megan registered only an email
        ("admin_stale", role(GA, CHRISTIE)),  # 95 days without a sign-in
        ("admin_synced", role(GA, CHRISTIE)),
        ("admin_guest_or_external", f"partner:guest:{RAVI}"),
        ("admin_mailbox_in_use", role(EXA, PRADEEP)),
        ("admin_risky", role(EXA, PRADEEP)),
        ("admin_sign_ins_many_countries", role(EXA, PRADEEP)),  # five countries in a week
        ("privileged_role_permanent", role(GA, MEGAN)),
        ("privileged_role_permanent", role(GA, BREAKGLASS)),
        ("recovery_contact_missing", f"recovery:{RAVI}"),
        ("recovery_contact_shared", f"recovery:{CHRISTIE}"),
        ("recovery_contact_shared", f"recovery:{NESTOR}"),
        ("recovery_contact_free_mail", f"recovery:{MEGAN}"),
        ("recovery_contact_free_mail", f"recovery:{PRADEEP}"),
        ("partner_dap_present", f"partner:dap:{CONTRACT}"),
        ("partner_gdap_global_admin", f"partner:gdap:{GDAP}"),
        ("partner_gdap_auto_extend", f"partner:gdap:{GDAP}"),
        ("partner_app_high_privilege", f"partner:app:{FABRIKAM_APP}"),
    } <= found(results)


def test_demo_findings_are_exactly_the_expected_set(results: list[FindingResult]) -> None:
    assert found(results) == {
        ("admin_mfa_missing", role(GA, MEGAN)),
        ("admin_mfa_missing", role(HDA, RAVI)),
        ("admin_mfa_missing", role(UA, RAVI, "eligible")),
        ("admin_risky", role(EXA, PRADEEP)),
        ("admin_guest_or_external", f"partner:foreign:{NORTHWIND_GROUP}"),
        ("admin_guest_or_external", f"partner:guest:{RAVI}"),
        ("admin_mfa_not_phishing_resistant", role(EXA, PRADEEP)),
        ("admin_mfa_not_phishing_resistant", role(GA, CHRISTIE)),
        ("admin_mfa_not_phishing_resistant", role(APPA, NESTOR)),
        ("admin_sign_ins_many_countries", role(EXA, PRADEEP)),
        ("partner_app_high_privilege", f"partner:app:{FABRIKAM_APP}"),
        ("partner_dap_present", f"partner:dap:{CONTRACT}"),
        ("partner_gdap_global_admin", f"partner:gdap:{GDAP}"),
        ("privileged_role_permanent", role(EXA, PRADEEP)),
        ("privileged_role_permanent", role(GA, MEGAN)),
        ("privileged_role_permanent", role(GA, CHRISTIE)),
        ("privileged_role_permanent", role(GA, BREAKGLASS)),
        ("other_privileged_role_permanent", role(HDA, RAVI)),  # Helpdesk: not one of ScubaGear's roles (MS.AAD.7.4v1)
        ("recovery_contact_shared", f"recovery:{CHRISTIE}"),
        ("recovery_contact_shared", f"recovery:{NESTOR}"),
        ("admin_mailbox_in_use", role(SEC, LYNNE, "eligible")),
        ("admin_mailbox_in_use", role(EXA, PRADEEP)),
        ("admin_mailbox_in_use", role(PRA, LYNNE, "eligible")),
        ("admin_stale", role(GA, CHRISTIE)),
        ("admin_stale", role(GA, BREAKGLASS)),
        ("admin_synced", role(GA, CHRISTIE)),
        ("partner_gdap_auto_extend", f"partner:gdap:{GDAP}"),
        ("recovery_contact_free_mail", f"recovery:{PRADEEP}"),
        ("recovery_contact_free_mail", f"recovery:{MEGAN}"),
        ("recovery_contact_missing", f"recovery:{BREAKGLASS}"),
        ("recovery_contact_missing", f"recovery:{RAVI}"),
        ("admin_mailbox_licensed", role(GA, CHRISTIE)),
        ("partner_receives_notifications", None),  # noc@northwindit.com gets the technical notifications
        ("admin_mfa_method_new", role(EXA, PRADEEP)),  # a second Authenticator two days ago
        ("admin_mfa_phone_shared", role(GA, CHRISTIE)),  # the office switchboard signs in both
        ("admin_mfa_phone_shared", role(APPA, NESTOR)),
        ("admin_mfa_phone_only", role(APPA, NESTOR)),  # the office phone is Nestor's only device
        ("partner_unused", f"partner:dap:{CONTRACT}"),  # Fabrikam's agents last signed in on 2 July
        ("entra_logs_not_exported", None),  # audit logs go to storage, sign-in logs nowhere
        ("azure_aobo_present", azure(PROD, OWNER, AOBO_GROUP)),  # Fabrikam's Admin Agents since the CSP sale
        ("azure_owner_guest_or_foreign", azure(PROD, OWNER, AOBO_GROUP)),
        ("azure_owner_guest_or_foreign", azure(DEV, OWNER, RAVI)),  # the MSP's guest owns Dev/Test
        ("azure_owner_standing", azure(PROD, OWNER, LYNNE)),  # P2 tenant, Owner outside PIM
        ("azure_owner_standing", azure(DEV, OWNER, RAVI)),
    }


def test_isaiah_with_fido2_and_eligible_roles_has_no_mfa_permanent_or_stale_findings(
    results: list[FindingResult],
) -> None:
    """Isaiah holds Global Administrator eligible (activated right now) and Privileged Role Administrator
    through a PIM group, signs in with a FIDO2 key, and signed in today."""
    isaiah = [r for r in results if ISAIAH in (r.subject_key or "")]
    assert isaiah == []


def test_stale_global_admin_is_recommended_for_revocation(results: list[FindingResult]) -> None:
    [stale] = [r for r in results if (r.check.id, r.subject_key) == ("admin_stale", role(GA, CHRISTIE))]
    assert (stale.resource, stale.message) == ("Christie Cline", "no sign-in for 95 days")
    assert stale.recommendation == "recommended: revoke — no sign-in for 95 days"


def test_break_glass_account_is_kept_and_spared_mfa_findings(results: list[FindingResult]) -> None:
    glass = [r for r in results if BREAKGLASS in (r.subject_key or "")]
    assert glass and not any(r.check.id.startswith("admin_mfa") for r in glass)
    assert all(r.recommendation.startswith("recommended: keep — registered break-glass account;") for r in glass)


def test_the_demo_has_a_sensible_number_of_global_admins(results: list[FindingResult]) -> None:
    """Megan, Christie, Isaiah and the break-glass account: four, between two and eight."""
    assert not [r for r in results if r.check.id.startswith("global_admins")]


def test_gdap_finding_is_named_after_the_partner(results: list[FindingResult]) -> None:
    [gdap] = [r for r in results if r.check.id == "partner_gdap_global_admin"]
    assert gdap.resource == "Northwind IT Services GDAP"
    assert gdap.message == "Northwind-Contoso-Managed-Services grants Global Administrator"


def test_mfa_device_findings_name_the_device_and_its_day(results: list[FindingResult]) -> None:
    by_check = {(r.check.id, r.subject_key): r for r in results}
    new = by_check[("admin_mfa_method_new", role(EXA, PRADEEP))]
    assert new.message == "Authenticator “SM-A546B” registered 2026-11-21 (2 days ago)"
    assert new.recommendation == (
        "recommended: review — confirm the admin registered it; answer 'unfamiliar method' if not")
    shared = by_check[("admin_mfa_phone_shared", role(GA, CHRISTIE))]
    assert shared.message == "phone (office) +1 ••••••0100 is also an MFA method of Nestor Wilke"
    assert by_check[("admin_mfa_phone_only", role(APPA, NESTOR))].message == "MFA by phone (office) +1 ••••••0100 only"


def test_the_unused_partner_finding_says_when_the_partner_last_signed_in(results: list[FindingResult]) -> None:
    [unused] = [r for r in results if r.check.id == "partner_unused"]
    assert unused.message == "no sign-in by Fabrikam MSP for 90 days (last 2026-07-02)"
    assert unused.recommendation.startswith("recommended: revoke — no sign-in by Fabrikam MSP for 90 days")


def test_the_log_retention_finding_says_how_long_the_tenant_keeps_its_sign_ins(results: list[FindingResult]) -> None:
    [logs] = [r for r in results if r.check.id == "entra_logs_not_exported"]
    assert logs.message == ("sign-in logs exported nowhere: the tenant keeps them 30 days (Microsoft Entra ID P1 or P2); "
                            "audit logs go to audit-to-storage")
