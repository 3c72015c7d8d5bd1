"""Every check of the catalogue, one hand-made tenant at a time.

Each case starts from a clean tenant (two PIM-eligible Global Administrators with FIDO2 keys, signed in
yesterday, cloud-only, no mailbox, recovery contacts of their own) on which no check fires, changes
one thing, and says which subjects the check must name. Every check also has a near miss: a change
that looks like the problem but is not, on which it must stay quiet.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from checks.registry import CheckSettings, FindingResult, all_checks, run_checks
from checks.snapshot import TenantSnapshot, snapshot_from_dict
from checks.subjects import subjects_from_snapshot

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CONTOSO = "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"
NORTHWIND = "0fab7dff-6991-444e-8240-81c09ed225d2"
FABRIKAM = "8dae8645-ab06-4efb-b333-9afcbeef4e85"
MICROSOFT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

GA = "62e90394-69f5-4237-9190-012177145e10"
PRA = "e8611ab8-c189-46e8-94e1-60213ab1f814"
SEC = "194ae4cb-b126-40b2-bd5b-6091b380977d"
EXA = "29232cdf-9323-42fd-ade2-1d097af3e4de"
UA = "fe930be7-5e62-47db-91af-98c3a49a38b1"
HDA = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
ROLE_NAMES = {
    GA: "Global Administrator", PRA: "Privileged Role Administrator", SEC: "Security Administrator",
    EXA: "Exchange Administrator", UA: "User Administrator", HDA: "Helpdesk Administrator",
    DIRECTORY_READERS: "Directory Readers",
}

E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
P2 = "84a661c4-e949-4bd2-a560-ed7766fcaf2b"
EXCHANGE_PLAN = "efb87545-963c-4e0d-99df-69c6916d9eb0"
GRAPH_SP = "f02dc56f-789e-40bd-9955-2b1c897d6428"
ROLE_MANAGEMENT_RW = "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8"
USER_READ_ALL = "df021288-bdef-4463-88db-98f22de89214"


def role_key(role: str, holder: str, kind: str = "eligible") -> str:
    return f"role:{role}:{holder}:{kind}"


class Tenant:
    """A minimal Graph-shaped tenant that tests change in place before taking a snapshot of it."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {
            "tenantId": CONTOSO,
            "tenantName": "Contoso",
            "collectedAt": "2026-11-23T08:00:00Z",
            "complete": True,
            "roleDefinitions": [{"id": r, "templateId": r, "displayName": n} for r, n in ROLE_NAMES.items()],
            "subscribedSkus": [
                {"skuId": E3, "skuPartNumber": "ENTERPRISEPACK",
                 "servicePlans": [{"servicePlanId": EXCHANGE_PLAN, "servicePlanName": "EXCHANGE_S_ENTERPRISE"}]},
                {"skuId": P2, "skuPartNumber": "AAD_PREMIUM_P2",
                 "servicePlans": [{"servicePlanId": "113feb6c-3fe4-4440-bddc-54d774bf0318",
                                   "servicePlanName": "EXCHANGE_S_FOUNDATION"}]},
            ],
            "servicePrincipals": [
                {"id": GRAPH_SP, "appId": "00000003-0000-0000-c000-000000000000", "displayName": "Microsoft Graph",
                 "appOwnerOrganizationId": MICROSOFT,
                 "appRoles": [{"id": ROLE_MANAGEMENT_RW, "value": "RoleManagement.ReadWrite.Directory"},
                              {"id": USER_READ_ALL, "value": "User.Read.All"}]},
            ],
            "emailMethods": {},
            "phoneMethods": {},
            "signIns": {},
            "authenticationMethods": {},
        }
        self.people = 0

    @classmethod
    def clean(cls) -> Tenant:
        tenant = cls()
        tenant.adele = tenant.admin("Adele Vance")
        tenant.alex = tenant.admin("Alex Wilber")
        return tenant

    def add(self, collection: str, item: dict[str, Any]) -> dict[str, Any]:
        self.data.setdefault(collection, []).append(item)
        return item

    def person(self, name: str, **user: Any) -> str:
        """A cloud-only member signed in yesterday, with FIDO2 and Authenticator, a P2 licence (no
        mailbox) and a personal recovery email and mobile phone nobody else has."""
        self.people += 1
        uid = f"00000000-0000-4000-8000-{self.people:012d}"
        slug = name.split()[0].lower()
        self.add("users", {
            "id": uid, "displayName": name, "userPrincipalName": f"{slug}@contoso.com", "mail": None,
            "userType": "Member", "accountEnabled": True, "createdDateTime": "2021-01-01T00:00:00Z",
            "onPremisesSyncEnabled": None, "assignedLicenses": [{"skuId": P2, "disabledPlans": []}],
            "signInActivity": {"lastSignInDateTime": "2026-11-22T09:00:00Z",
                               "lastNonInteractiveSignInDateTime": "2026-11-22T09:00:00Z",
                               "lastSuccessfulSignInDateTime": "2026-11-22T09:00:00Z"},
            **user,
        })
        self.add("userRegistrationDetails", {
            "id": uid, "isMfaRegistered": True, "methodsRegistered": ["fido2", "microsoftAuthenticatorPush"],
        })
        self.data["emailMethods"][uid] = [{"id": f"email-{uid}", "emailAddress": f"{slug}@{slug}.family"}]
        self.data["phoneMethods"][uid] = [
            {"id": f"phone-{uid}", "phoneNumber": f"+1 42555{self.people:05d}", "phoneType": "mobile"}
        ]
        self.data["authenticationMethods"][uid] = [
            {"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490",
             "password": None, "createdDateTime": "2021-01-01T00:00:00Z"},
            {"@odata.type": "#microsoft.graph.fido2AuthenticationMethod", "id": f"fido-{uid}",
             "displayName": "YubiKey 5 NFC", "model": "YubiKey 5 Series with NFC", "createdDateTime": "2025-01-01T00:00:00Z"},
            {"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "id": f"app-{uid}",
             "displayName": f"iPhone of {slug}", "deviceTag": "SoftwareTokenActivated", "phoneAppVersion": "6.8.17",
             "createdDateTime": "2025-01-01T00:00:00Z"},
            *({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", **phone}
              for phone in self.data["phoneMethods"][uid]),
        ]
        return uid

    def devices(self, uid: str) -> list[dict[str, Any]]:
        """users/{id}/authentication/methods of the person, to change in place."""
        return self.data["authenticationMethods"][uid]

    def only_phones(self, uid: str) -> None:
        self.data["authenticationMethods"][uid] = [
            m for m in self.devices(uid) if not m["@odata.type"].endswith(("fido2AuthenticationMethod",
                                                                              "microsoftAuthenticatorAuthenticationMethod"))
        ]

    def grant(self, uid: str, role: str, kind: str = "eligible") -> None:
        """``eligible`` (PIM, with an end date), ``active`` (time-bound) or ``permanent`` (active, no end)."""
        base = {"id": f"{kind}-{role}-{uid}", "roleDefinitionId": role, "principalId": uid, "directoryScopeId": "/",
                "memberType": "Direct"}
        if kind == "eligible":
            self.add("roleEligibilityScheduleInstances",
                     {**base, "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-06-01T00:00:00Z"})
        elif kind == "active":
            self.add("roleAssignmentScheduleInstances", {**base, "assignmentType": "Assigned",
                     "startDateTime": "2026-10-01T00:00:00Z", "endDateTime": "2026-12-31T00:00:00Z"})
        else:
            self.add("roleAssignments", base)

    def admin(self, name: str, role: str = GA, kind: str = "eligible", **user: Any) -> str:
        uid = self.person(name, **user)
        self.grant(uid, role, kind)
        return uid

    def drop_roles(self, uid: str) -> None:
        for collection in ("roleAssignments", "roleEligibilityScheduleInstances", "roleAssignmentScheduleInstances"):
            self.data[collection] = [a for a in self.data.get(collection, []) if a["principalId"] != uid]

    def user(self, uid: str) -> dict[str, Any]:
        return next(u for u in self.data["users"] if u["id"] == uid)

    def registration(self, uid: str) -> dict[str, Any]:
        return next(r for r in self.data["userRegistrationDetails"] if r["id"] == uid)

    def sign_in(self, uid: str, when: str, country: str, error: int = 0) -> None:
        self.data["signIns"].setdefault(uid, []).append({
            "id": f"{uid}-{when}", "createdDateTime": when, "userId": uid,
            "location": {"countryOrRegion": country}, "status": {"errorCode": error},
        })

    def gdap(self, **relationship: Any) -> str:
        rid = f"rel-{len(self.data.get('delegatedAdminRelationships', [])) + 1}"
        self.add("delegatedAdminRelationships", {
            "id": rid, "displayName": "Northwind-Contoso", "status": "active", "duration": "P730D",
            "autoExtendDuration": "PT0S", "partner": {"tenantId": NORTHWIND, "displayName": "Northwind IT Services"},
            "customer": {"tenantId": CONTOSO, "displayName": "Contoso"},
            "accessDetails": {"unifiedRoles": [{"roleDefinitionId": HDA}]}, **relationship,
        })
        return f"partner:gdap:{rid}"

    def partner_app(self, app_roles: tuple[str, ...] = (), delegated: str = "") -> str:
        """An app published by Fabrikam, a known partner (a service provider in cross-tenant access)."""
        app = "d6ef75f2-ccc1-4595-9883-a662181b0b84"
        self.add("crossTenantPartners", {"tenantId": FABRIKAM, "isServiceProvider": True})
        self.add("tenantInformation", {"tenantId": FABRIKAM, "displayName": "Fabrikam MSP"})
        self.add("servicePrincipals", {"id": app, "appId": "3bdc1bf1-e897-4b2f-9fc0-0dddd22cb1db",
                                       "displayName": "Fabrikam Portal", "appOwnerOrganizationId": FABRIKAM})
        for role in app_roles:
            self.add("appRoleAssignments", {"id": f"{app}-{role}", "appRoleId": role, "principalId": app,
                                            "resourceId": GRAPH_SP})
        if delegated:
            self.add("oauth2PermissionGrants", {"id": f"grant-{app}", "clientId": app, "consentType": "AllPrincipals",
                                                "resourceId": GRAPH_SP, "scope": delegated})
        return f"partner:app:{app}"

    def snapshot(self) -> TenantSnapshot:
        return snapshot_from_dict(copy.deepcopy(self.data))


def run(tenant: Tenant, break_glass: tuple[str, ...] = (), settings: CheckSettings | None = None) -> list[FindingResult]:
    snapshot = tenant.snapshot()
    return run_checks(snapshot, subjects_from_snapshot(snapshot, NOW, break_glass), settings, NOW)


def named(results: list[FindingResult], check_id: str) -> set[str | None]:
    return {r.subject_key for r in results if r.check.id == check_id}


def of(results: list[FindingResult], check_id: str) -> list[FindingResult]:
    return [r for r in results if r.check.id == check_id]


# ---- the cases: (change to the clean tenant -> subjects the check must name) ---------------------

Case = Callable[[Tenant], set[str | None]]
NearMiss = Callable[[Tenant], None]


def admin_registered_only_an_email(t: Tenant) -> set[str | None]:
    megan = t.admin("Megan Bowen")
    t.registration(megan).update(isMfaRegistered=False, methodsRegistered=["email"])
    return {role_key(GA, megan)}


def admin_whose_registration_was_not_collected(t: Tenant) -> None:
    megan = t.admin("Megan Bowen")
    t.data["userRegistrationDetails"].remove(t.registration(megan))


def admin_with_authenticator_push_and_sms(t: Tenant) -> set[str | None]:
    nestor = t.admin("Nestor Wilke", EXA)
    t.registration(nestor)["methodsRegistered"] = ["microsoftAuthenticatorPush", "mobilePhone", "email"]
    return {role_key(EXA, nestor)}


def admin_with_no_mfa_at_all(t: Tenant) -> None:
    """Reported once, as admin_mfa_missing, not a second time as "not phishing-resistant"."""
    nestor = t.admin("Nestor Wilke", EXA)
    t.registration(nestor).update(isMfaRegistered=False, methodsRegistered=[])


def one_global_admin_left(t: Tenant) -> set[str | None]:
    t.drop_roles(t.alex)
    t.grant(t.alex, EXA)
    return {None}


def one_global_admin_in_an_incomplete_collection(t: Tenant) -> None:
    t.drop_roles(t.alex)
    t.data.update(complete=False, missing=["roleEligibilityScheduleInstances"])


def nine_global_admins(t: Tenant) -> set[str | None]:
    for n in range(7):
        t.admin(f"Admin{n} Extra")
    return {None}


def eight_global_admins(t: Tenant) -> None:
    for n in range(6):
        t.admin(f"Admin{n} Extra")


def permanent_exchange_admin(t: Tenant) -> set[str | None]:
    pradeep = t.admin("Pradeep Gupta", EXA, "permanent")
    return {role_key(EXA, pradeep, "active")}


def permanent_directory_reader(t: Tenant) -> None:
    t.admin("Reader Only", DIRECTORY_READERS, "permanent")


def permanent_helpdesk_admin(t: Tenant) -> set[str | None]:
    """Helpdesk Administrator is not one of ScubaGear's highly privileged roles: no MS.AAD.7.4v1 finding."""
    agent = t.admin("Helpdesk Agent", HDA, "permanent")
    return {role_key(HDA, agent, "active")}


def helpdesk_admin_with_authenticator_push(t: Tenant) -> set[str | None]:
    agent = t.admin("Helpdesk Agent", HDA)
    t.registration(agent)["methodsRegistered"] = ["microsoftAuthenticatorPush", "passKeySynced"]
    return {role_key(HDA, agent)}


def synced_helpdesk_admin(t: Tenant) -> set[str | None]:
    agent = t.admin("Helpdesk Agent", HDA, onPremisesImmutableId="m2yEAp3xqUOFbZ0gWh4kBg==")
    return {role_key(HDA, agent)}


def sixty_permanent_helpdesk_agents(t: Tenant) -> None:
    """MS.AAD.7.4v1 covers ScubaGear's highly privileged roles; Helpdesk Administrator is not one."""
    for n in range(60):
        t.admin(f"Agent{n:02d} Helpdesk", HDA, "permanent")


def exchange_admin_with_authenticator_push(t: Tenant) -> None:
    """A ScubaGear role: reported under MS.AAD.3.6v1 (admin_mfa_not_phishing_resistant), not here."""
    admin_with_authenticator_push_and_sms(t)


def synced_global_admin(t: Tenant) -> None:
    """A ScubaGear role: reported under MS.AAD.7.3v1 (admin_synced), not here."""
    admin_synced_from_active_directory(t)


def admin_at_high_risk_only(t: Tenant) -> None:
    """High risk is MS.AAD.2.1v1's (admin_risky), not this check's."""
    admin_at_high_risk(t)


def admin_at_medium_risk(t: Tenant) -> set[str | None]:
    t.add("riskyUsers", {"id": t.alex, "riskLevel": "medium", "riskState": "atRisk"})
    return {role_key(GA, t.alex)}


def admin_last_seen_95_days_ago(t: Tenant) -> set[str | None]:
    t.user(t.alex)["signInActivity"] = {"lastSignInDateTime": "2026-08-20T17:05:33Z"}
    return {role_key(GA, t.alex)}


def admin_last_seen_exactly_90_days_ago(t: Tenant) -> None:
    t.user(t.alex)["signInActivity"] = {"lastNonInteractiveSignInDateTime": "2026-08-25T23:00:00Z"}


def admin_signing_in_from_three_countries(t: Tenant) -> set[str | None]:
    for when, country in (("2026-11-23T06:00:00Z", "GB"), ("2026-11-21T06:00:00Z", "IN"),
                          ("2026-11-17T06:00:00Z", "NG")):
        t.sign_in(t.alex, when, country)
    return {role_key(GA, t.alex)}


def admin_with_two_recent_countries_one_old_and_one_failed(t: Tenant) -> None:
    t.sign_in(t.alex, "2026-11-23T06:00:00Z", "GB")
    t.sign_in(t.alex, "2026-11-22T06:00:00Z", "IE")
    t.sign_in(t.alex, "2026-11-15T06:00:00Z", "IN")  # eight days ago: outside the window
    t.sign_in(t.alex, "2026-11-22T07:00:00Z", "NG", error=50126)  # a failed attempt is no use of the account


def guest_helpdesk_admin(t: Tenant) -> set[str | None]:
    ravi = t.admin("Ravi Patel", HDA, userType="Guest", mail="ravi.patel@fabrikam-msp.com",
                   userPrincipalName="ravi.patel_fabrikam-msp.com#EXT#@contoso.onmicrosoft.com")
    return {f"partner:guest:{ravi}"}


def member_admin_with_a_mail_address_elsewhere(t: Tenant) -> None:
    t.admin("Ravi Patel", HDA, mail="ravi.patel@fabrikam-msp.com")


def admin_synced_from_active_directory(t: Tenant) -> set[str | None]:
    t.user(t.alex)["onPremisesSyncEnabled"] = True
    return {role_key(GA, t.alex)}


def admin_whose_sync_was_switched_off(t: Tenant) -> None:
    t.user(t.alex)["onPremisesSyncEnabled"] = False


def exchange_admin_reading_mail(t: Tenant) -> set[str | None]:
    pradeep = t.admin("Pradeep Gupta", EXA, assignedLicenses=[{"skuId": E3, "disabledPlans": []}])
    t.add("emailActivity", {"userPrincipalName": "pradeep@contoso.com", "sendCount": 412, "readCount": 1377,
                            "reportPeriod": "30"})
    return {role_key(EXA, pradeep)}


def licensed_mailbox_unused_for_30_days(t: Tenant) -> None:
    t.admin("Pradeep Gupta", EXA, assignedLicenses=[{"skuId": E3, "disabledPlans": []}])
    t.add("emailActivity", {"userPrincipalName": "pradeep@contoso.com", "sendCount": 0, "readCount": 0,
                            "reportPeriod": "30"})


def admin_with_an_e3_licence(t: Tenant) -> set[str | None]:
    christie = t.admin("Christie Cline", assignedLicenses=[{"skuId": E3, "disabledPlans": []}])
    return {role_key(GA, christie)}


def admin_with_e3_but_exchange_disabled(t: Tenant) -> None:
    t.admin("Christie Cline", assignedLicenses=[{"skuId": E3, "disabledPlans": [EXCHANGE_PLAN]}])


def one_account_with_four_roles(t: Tenant) -> set[str | None]:
    ops = t.admin("Ops Team", EXA)
    for role in (UA, HDA, SEC):
        t.grant(ops, role)
    return {role_key(role, ops) for role in (EXA, UA, HDA, SEC)}


def one_account_with_three_roles_one_held_twice(t: Tenant) -> None:
    ops = t.admin("Ops Team", EXA)
    t.grant(ops, EXA, "active")  # eligible and active holdings of one role are one role
    t.grant(ops, UA)
    t.grant(ops, HDA)


def admin_at_high_risk(t: Tenant) -> set[str | None]:
    t.add("riskyUsers", {"id": t.alex, "riskLevel": "high", "riskState": "atRisk"})
    return {role_key(GA, t.alex)}


def admin_whose_high_risk_was_remediated(t: Tenant) -> None:
    t.add("riskyUsers", {"id": t.alex, "riskLevel": "high", "riskState": "remediated"})


def privileged_admin_without_recovery_contacts(t: Tenant) -> set[str | None]:
    t.data["emailMethods"][t.alex] = []
    t.data["phoneMethods"][t.alex] = []
    return {f"recovery:{t.alex}"}


def directory_reader_without_recovery_contacts(t: Tenant) -> None:
    reader = t.admin("Reader Only", DIRECTORY_READERS)
    t.data["emailMethods"][reader] = []
    t.data["phoneMethods"][reader] = []


def two_admins_sharing_an_office_phone(t: Tenant) -> set[str | None]:
    t.data["phoneMethods"][t.adele].append({"id": "o1", "phoneNumber": "+1 425-555-0100", "phoneType": "office"})
    t.data["phoneMethods"][t.alex].append({"id": "o2", "phoneNumber": "+1 4255550100", "phoneType": "office"})
    return {f"recovery:{t.adele}", f"recovery:{t.alex}"}


def one_admin_with_the_same_number_as_mobile_and_office(t: Tenant) -> None:
    mobile = t.data["phoneMethods"][t.alex][0]["phoneNumber"]
    t.data["phoneMethods"][t.alex].append({"id": "o1", "phoneNumber": mobile, "phoneType": "office"})


def recovery_email_on_gmail(t: Tenant) -> set[str | None]:
    t.data["emailMethods"][t.alex] = [{"id": "e1", "emailAddress": "Alex.Wilber77@GMail.com"}]
    return {f"recovery:{t.alex}"}


def recovery_email_on_a_family_domain(t: Tenant) -> None:
    t.data["emailMethods"][t.alex] = [{"id": "e1", "emailAddress": "alex@wilber-gmail.family"}]


def reseller_contract_with_dap(t: Tenant) -> set[str | None]:
    t.add("contracts", {"id": "contract-1", "contractType": "ResellerPartner", "customerId": FABRIKAM,
                        "displayName": "Fabrikam MSP", "defaultDomainName": "fabrikam-msp.com"})
    return {"partner:dap:contract-1"}


def service_provider_without_dap(t: Tenant) -> None:
    t.add("crossTenantPartners", {"tenantId": NORTHWIND, "isServiceProvider": True})


def gdap_with_global_admin(t: Tenant) -> set[str | None]:
    return {t.gdap(accessDetails={"unifiedRoles": [{"roleDefinitionId": HDA}, {"roleDefinitionId": GA}]})}


def terminated_gdap_with_global_admin(t: Tenant) -> None:
    t.gdap(status="terminated", accessDetails={"unifiedRoles": [{"roleDefinitionId": GA}]})


def gdap_extending_every_180_days(t: Tenant) -> set[str | None]:
    return {t.gdap(autoExtendDuration="P180D")}


def gdap_with_auto_extend_off(t: Tenant) -> None:
    t.gdap(autoExtendDuration="PT0S")


def gdap_of_731_days(t: Tenant) -> set[str | None]:
    return {t.gdap(duration="P731D")}


def gdap_of_two_years(t: Tenant) -> None:
    t.gdap(duration="P730D")


def partner_app_managing_roles(t: Tenant) -> set[str | None]:
    return {t.partner_app(app_roles=(ROLE_MANAGEMENT_RW,))}


def partner_app_reading_users_only(t: Tenant) -> None:
    t.partner_app(app_roles=(USER_READ_ALL,), delegated="openid profile User.Read")


def notifications_to_a_partner_domain(t: Tenant) -> set[str | None]:
    t.add("organization", {"id": CONTOSO, "verifiedDomains": [{"name": "contoso.com"}],
                           "technicalNotificationMails": ["it@contoso.com", "noc@northwindit.com"]})
    return {None}


def notifications_to_own_domains(t: Tenant) -> None:
    t.add("organization", {"id": CONTOSO, "verifiedDomains": [{"name": "contoso.com"}, {"name": "contoso.onmicrosoft.com"}],
                           "technicalNotificationMails": ["it@contoso.com"],
                           "securityComplianceNotificationMails": ["soc@Contoso.onmicrosoft.com"]})


def admin_registered_an_authenticator_three_days_ago(t: Tenant) -> set[str | None]:
    megan = t.admin("Megan Bowen", EXA, "active")
    t.grant(megan, UA)
    t.devices(megan).append({"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
                             "id": "new-app", "displayName": "SM-A546B", "createdDateTime": "2026-11-20T02:47:13Z"})
    return {role_key(EXA, megan, "active"), role_key(UA, megan)}


def admin_registered_a_key_eight_days_ago_and_a_phone_of_unknown_date(t: Tenant) -> None:
    megan = t.admin("Megan Bowen", EXA)
    t.devices(megan).append({"@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
                             "id": "old-key", "displayName": "Key", "createdDateTime": "2026-11-15T07:59:59Z"})
    t.devices(megan).append({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod",
                             "id": "b6332ec1-7057-4abe-9331-3d72feddfe41", "phoneNumber": "+1 4255550999",
                             "phoneType": "alternateMobile"})


def two_admins_with_one_mfa_phone_written_two_ways(t: Tenant) -> set[str | None]:
    megan, nestor = t.admin("Megan Bowen", EXA), t.admin("Nestor Wilke", UA)
    for uid, number in ((megan, "+1 425-555-0100"), (nestor, "+1 4255550100")):
        t.devices(uid).append({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod",
                               "id": "e37fc753-ff3b-4958-9484-eaa9425c82bc", "phoneNumber": number, "phoneType": "office"})
    return {role_key(EXA, megan), role_key(UA, nestor)}


def admin_sharing_an_mfa_phone_with_someone_who_is_no_admin(t: Tenant) -> None:
    megan, reader = t.admin("Megan Bowen", EXA), t.person("Ravi Reader")
    for uid in (megan, reader):
        t.devices(uid).append({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod",
                               "id": "e37fc753-ff3b-4958-9484-eaa9425c82bc", "phoneNumber": "+1 4255550100",
                               "phoneType": "office"})


def admin_with_a_mobile_phone_as_only_device(t: Tenant) -> set[str | None]:
    nestor = t.admin("Nestor Wilke", EXA)
    t.only_phones(nestor)
    return {role_key(EXA, nestor)}


def admin_with_a_phone_and_an_authenticator_code_app(t: Tenant) -> None:
    nestor = t.admin("Nestor Wilke", EXA)
    t.only_phones(nestor)
    t.devices(nestor).append({"@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod",
                              "id": "b172893e-6d0a-4bd2-8b7c-5e9a0f4b4a01", "secretKey": None})


def gdap_whose_partner_last_signed_in_in_july(t: Tenant) -> set[str | None]:
    gdap = t.gdap(activatedDateTime="2025-01-14T09:37:45Z")
    t.add("partnerActivity", {"tenantId": NORTHWIND, "lastSignInDateTime": "2026-07-01T10:00:00Z",
                              "watchedSince": "2026-06-01T08:00:00Z"})
    return {gdap}


def gdap_of_a_partner_never_seen_in_a_log_watched_only_60_days(t: Tenant) -> None:
    t.gdap(activatedDateTime="2025-01-14T09:37:45Z")
    t.add("partnerActivity", {"tenantId": NORTHWIND, "lastSignInDateTime": None,
                              "watchedSince": "2026-09-24T08:00:00Z"})


def _diagnostic_setting(name: str, *categories: str, **destination: str) -> dict[str, Any]:
    return {"id": f"/providers/microsoft.aadiam/diagnosticSettings/{name}", "name": name,
            "properties": {**destination, "logs": [{"category": c, "enabled": True} for c in categories]}}


def no_diagnostic_setting_in_a_tenant_without_premium(t: Tenant) -> set[str | None]:
    t.data["aadDiagnosticSettings"] = {CONTOSO: []}
    return {None}


def both_logs_sent_to_a_workspace_and_arm_not_read_elsewhere(t: Tenant) -> None:
    t.data["aadDiagnosticSettings"] = {CONTOSO: [
        _diagnostic_setting("to-sentinel", "AuditLogs", "SignInLogs", workspaceId="/subscriptions/s/rg/ws"),
        _diagnostic_setting("no-destination", "AuditLogs"),
    ]}


SUBSCRIPTION = "6b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


def azure_role(t: Tenant, role: str, principal: str, principal_type: str = "User") -> str:
    """An active, permanent role assignment on the Production subscription; returns the subject's key."""
    if not t.data.get("azureSubscriptions"):
        t.add("azureSubscriptions", {"id": f"/subscriptions/{SUBSCRIPTION}", "subscriptionId": SUBSCRIPTION,
                                     "tenantId": CONTOSO, "displayName": "Contoso Production", "state": "Enabled"})
    t.add("azureRoleAssignments", {
        "id": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments/{role[:8]}-{principal}",
        "name": f"{role[:8]}-{principal}", "type": "Microsoft.Authorization/roleAssignments",
        "properties": {"roleDefinitionId": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/"
                                           f"roleDefinitions/{role}",
                       "principalId": principal, "principalType": principal_type,
                       "scope": f"/subscriptions/{SUBSCRIPTION}", "createdOn": "2024-05-01T10:00:00Z"}})
    return f"azure:{SUBSCRIPTION}:{role}:{principal}:active"


def with_entra_p2(t: Tenant) -> None:
    t.data["subscribedSkus"][1]["servicePlans"].append(
        {"servicePlanId": "eec0eb4f-6444-4f95-aba0-50c24d67f998", "servicePlanName": "AAD_PREMIUM_P2"})


def reseller_admin_agents_owning_a_subscription(t: Tenant) -> set[str | None]:
    t.add("contracts", {"id": "c-1", "contractType": "ResellerPartner", "customerId": FABRIKAM,
                        "displayName": "Fabrikam MSP", "defaultDomainName": "fabrikam-msp.com"})
    return {azure_role(t, OWNER, "a1b2c3d4-0000-4000-8000-00000000aobo", "ForeignGroup")}


def a_group_of_this_tenant_owning_a_subscription(t: Tenant) -> None:
    t.add("groups", {"id": "g-cloud-ops", "displayName": "Cloud Ops"})
    azure_role(t, OWNER, "g-cloud-ops", "Group")


def guest_owner_of_a_subscription(t: Tenant) -> set[str | None]:
    guest = t.person("Ravi Patel", userType="Guest", userPrincipalName="ravi_fabrikam-msp.com#EXT#@contoso.com")
    return {azure_role(t, OWNER, guest)}


def guest_contributor_of_a_subscription(t: Tenant) -> None:
    guest = t.person("Ravi Patel", userType="Guest", userPrincipalName="ravi_fabrikam-msp.com#EXT#@contoso.com")
    azure_role(t, CONTRIBUTOR, guest)


def standing_owner_with_entra_p2(t: Tenant) -> set[str | None]:
    with_entra_p2(t)
    return {azure_role(t, OWNER, t.person("Lee Gu"))}


def standing_owner_without_pim_licence(t: Tenant) -> None:
    azure_role(t, OWNER, t.person("Lee Gu"))


POSITIVE: dict[str, Case] = {
    "admin_mfa_missing": admin_registered_only_an_email,
    "admin_mfa_not_phishing_resistant": admin_with_authenticator_push_and_sms,
    "global_admins_too_few": one_global_admin_left,
    "global_admins_too_many": nine_global_admins,
    "privileged_role_permanent": permanent_exchange_admin,
    "other_privileged_role_permanent": permanent_helpdesk_admin,
    "other_admin_mfa_not_phishing_resistant": helpdesk_admin_with_authenticator_push,
    "other_admin_synced": synced_helpdesk_admin,
    "admin_risky_medium": admin_at_medium_risk,
    "admin_stale": admin_last_seen_95_days_ago,
    "admin_sign_ins_many_countries": admin_signing_in_from_three_countries,
    "admin_guest_or_external": guest_helpdesk_admin,
    "admin_synced": admin_synced_from_active_directory,
    "admin_mailbox_in_use": exchange_admin_reading_mail,
    "admin_mailbox_licensed": admin_with_an_e3_licence,
    "admin_many_roles": one_account_with_four_roles,
    "admin_risky": admin_at_high_risk,
    "recovery_contact_missing": privileged_admin_without_recovery_contacts,
    "recovery_contact_shared": two_admins_sharing_an_office_phone,
    "recovery_contact_free_mail": recovery_email_on_gmail,
    "partner_dap_present": reseller_contract_with_dap,
    "partner_gdap_global_admin": gdap_with_global_admin,
    "partner_gdap_auto_extend": gdap_extending_every_180_days,
    "partner_gdap_too_long": gdap_of_731_days,
    "partner_app_high_privilege": partner_app_managing_roles,
    "partner_receives_notifications": notifications_to_a_partner_domain,
    "admin_mfa_method_new": admin_registered_an_authenticator_three_days_ago,
    "admin_mfa_phone_shared": two_admins_with_one_mfa_phone_written_two_ways,
    "admin_mfa_phone_only": admin_with_a_mobile_phone_as_only_device,
    "partner_unused": gdap_whose_partner_last_signed_in_in_july,
    "entra_logs_not_exported": no_diagnostic_setting_in_a_tenant_without_premium,
    "azure_aobo_present": reseller_admin_agents_owning_a_subscription,
    "azure_owner_guest_or_foreign": guest_owner_of_a_subscription,
    "azure_owner_standing": standing_owner_with_entra_p2,
}

NEAR_MISS: dict[str, NearMiss] = {
    "admin_mfa_missing": admin_whose_registration_was_not_collected,
    "admin_mfa_not_phishing_resistant": admin_with_no_mfa_at_all,
    "global_admins_too_few": one_global_admin_in_an_incomplete_collection,
    "global_admins_too_many": eight_global_admins,
    "privileged_role_permanent": sixty_permanent_helpdesk_agents,
    "other_privileged_role_permanent": permanent_directory_reader,
    "other_admin_mfa_not_phishing_resistant": exchange_admin_with_authenticator_push,
    "other_admin_synced": synced_global_admin,
    "admin_risky_medium": admin_at_high_risk_only,
    "admin_stale": admin_last_seen_exactly_90_days_ago,
    "admin_sign_ins_many_countries": admin_with_two_recent_countries_one_old_and_one_failed,
    "admin_guest_or_external": member_admin_with_a_mail_address_elsewhere,
    "admin_synced": admin_whose_sync_was_switched_off,
    "admin_mailbox_in_use": licensed_mailbox_unused_for_30_days,
    "admin_mailbox_licensed": admin_with_e3_but_exchange_disabled,
    "admin_many_roles": one_account_with_three_roles_one_held_twice,
    "admin_risky": admin_whose_high_risk_was_remediated,
    "recovery_contact_missing": directory_reader_without_recovery_contacts,
    "recovery_contact_shared": one_admin_with_the_same_number_as_mobile_and_office,
    "recovery_contact_free_mail": recovery_email_on_a_family_domain,
    "partner_dap_present": service_provider_without_dap,
    "partner_gdap_global_admin": terminated_gdap_with_global_admin,
    "partner_gdap_auto_extend": gdap_with_auto_extend_off,
    "partner_gdap_too_long": gdap_of_two_years,
    "partner_app_high_privilege": partner_app_reading_users_only,
    "partner_receives_notifications": notifications_to_own_domains,
    "admin_mfa_method_new": admin_registered_a_key_eight_days_ago_and_a_phone_of_unknown_date,
    "admin_mfa_phone_shared": admin_sharing_an_mfa_phone_with_someone_who_is_no_admin,
    "admin_mfa_phone_only": admin_with_a_phone_and_an_authenticator_code_app,
    "partner_unused": gdap_of_a_partner_never_seen_in_a_log_watched_only_60_days,
    "entra_logs_not_exported": both_logs_sent_to_a_workspace_and_arm_not_read_elsewhere,
    "azure_aobo_present": a_group_of_this_tenant_owning_a_subscription,
    "azure_owner_guest_or_foreign": guest_contributor_of_a_subscription,
    "azure_owner_standing": standing_owner_without_pim_licence,
}


def test_every_check_in_the_catalogue_has_a_case_and_a_near_miss() -> None:
    ids = {metadata.id for metadata in all_checks()}
    assert set(POSITIVE) == ids
    assert set(NEAR_MISS) == ids


def test_a_clean_tenant_has_no_findings() -> None:
    assert run(Tenant.clean()) == []


@pytest.mark.parametrize("check_id", sorted(POSITIVE))
def test_check_names_exactly_the_subjects_of_its_case(check_id: str) -> None:
    tenant = Tenant.clean()
    expected = POSITIVE[check_id](tenant)
    assert named(run(tenant), check_id) == expected


@pytest.mark.parametrize("check_id", sorted(NEAR_MISS))
def test_check_stays_quiet_on_its_near_miss(check_id: str) -> None:
    tenant = Tenant.clean()
    NEAR_MISS[check_id](tenant)
    assert of(run(tenant), check_id) == []


# ---- behaviour beyond firing or not -------------------------------------------------------------


def test_break_glass_account_gets_no_mfa_findings_and_is_never_recommended_for_revocation() -> None:
    tenant = Tenant.clean()
    glass = tenant.admin("Break Glass", GA, "permanent", userPrincipalName="breakglass01@contoso.onmicrosoft.com",
                         createdDateTime="2023-01-15T10:00:00Z", signInActivity={"lastSignInDateTime": None})
    tenant.registration(glass).update(isMfaRegistered=False, methodsRegistered=[])
    tenant.data["emailMethods"][glass] = []
    tenant.data["phoneMethods"][glass] = []
    tenant.add("riskyUsers", {"id": glass, "riskLevel": "high", "riskState": "atRisk"})

    results = [r for r in run(tenant, ("breakglass01@contoso.onmicrosoft.com",)) if glass in (r.subject_key or "")]

    assert {r.check.id for r in results} == {
        "privileged_role_permanent", "admin_stale", "recovery_contact_missing", "admin_risky",
    }
    assert all(r.recommendation.startswith("recommended: keep — registered break-glass account;") for r in results)
    assert not any("revoke" in r.recommendation for r in results)
    permanent = of(results, "privileged_role_permanent")[0]
    assert permanent.recommendation == "recommended: keep — registered break-glass account; verify the hardware key"


def test_the_same_account_without_its_break_glass_registration_is_recommended_for_revocation() -> None:
    tenant = Tenant.clean()
    glass = tenant.admin("Break Glass", GA, "permanent", userPrincipalName="breakglass01@contoso.onmicrosoft.com")
    tenant.registration(glass).update(isMfaRegistered=False, methodsRegistered=[])
    [finding] = of(run(tenant), "admin_mfa_missing")
    assert finding.recommendation.startswith("recommended: revoke — no MFA method registered")


def test_stale_admin_is_recommended_for_revocation_with_the_days_counted() -> None:
    tenant = Tenant.clean()
    admin_last_seen_95_days_ago(tenant)
    [finding] = of(run(tenant), "admin_stale")
    assert finding.resource == "Alex Wilber"
    assert finding.message == "no sign-in for 95 days"
    assert finding.recommendation == "recommended: revoke — no sign-in for 95 days"


def test_an_admin_who_never_signed_in_is_stale_once_the_account_is_older_than_the_threshold() -> None:
    tenant = Tenant.clean()
    old = tenant.admin("Old Account", createdDateTime="2024-01-01T00:00:00Z", signInActivity={})
    tenant.admin("New Account", createdDateTime="2026-11-01T00:00:00Z", signInActivity={})
    [finding] = of(run(tenant), "admin_stale")
    assert finding.subject_key == role_key(GA, old)
    assert finding.message == "never signed in (created 2024-01-01)"


def test_sign_in_activity_that_was_not_collected_is_no_finding() -> None:
    tenant = Tenant.clean()
    unknown = tenant.admin("No Premium", createdDateTime="2020-01-01T00:00:00Z")
    del tenant.user(unknown)["signInActivity"]
    assert of(run(tenant), "admin_stale") == []


def test_stale_threshold_comes_from_the_settings() -> None:
    tenant = Tenant.clean()
    tenant.user(tenant.alex)["signInActivity"] = {"lastSignInDateTime": "2026-10-14T00:00:00Z"}
    assert of(run(tenant), "admin_stale") == []
    assert named(run(tenant, settings=CheckSettings(stale_after_days=30)), "admin_stale") == {role_key(GA, tenant.alex)}


def test_time_bound_active_assignment_of_a_privileged_role_is_not_permanent() -> None:
    tenant = Tenant.clean()
    tenant.admin("Nestor Wilke", EXA, "active")
    assert of(run(tenant), "privileged_role_permanent") == []


def test_sixty_permanent_helpdesk_agents_are_no_breach_of_scubagear_ms_aad_7_4v1() -> None:
    tenant = Tenant.clean()
    agents = [tenant.admin(f"Agent{n:02d} Helpdesk", HDA, "permanent") for n in range(60)]
    results = run(tenant)
    assert [r for r in results if r.check.scuba == "MS.AAD.7.4v1"] == []
    assert named(results, "other_privileged_role_permanent") == {role_key(HDA, a, "active") for a in agents}


def test_an_admin_of_scubagear_and_other_roles_is_reported_under_each_definition_on_its_own_subjects() -> None:
    tenant = Tenant.clean()
    ops = tenant.admin("Ops Admin", EXA, onPremisesSyncEnabled=True)
    tenant.grant(ops, HDA)
    tenant.registration(ops)["methodsRegistered"] = ["microsoftAuthenticatorPush"]
    results = run(tenant)
    assert named(results, "admin_synced") == named(results, "admin_mfa_not_phishing_resistant") == {role_key(EXA, ops)}
    assert named(results, "other_admin_synced") == {role_key(HDA, ops)}
    assert named(results, "other_admin_mfa_not_phishing_resistant") == {role_key(HDA, ops)}


def test_an_on_premises_immutable_id_is_not_cloud_only_even_with_sync_off() -> None:
    """ScubaGear's MS.AAD.7.3v1 test: OnPremisesImmutableId set (a synced or federated account)."""
    tenant = Tenant.clean()
    tenant.user(tenant.alex).update(onPremisesSyncEnabled=None, onPremisesImmutableId="m2yEAp3xqUOFbZ0gWh4kBg==")
    assert named(run(tenant), "admin_synced") == {role_key(GA, tenant.alex)}


def test_a_synced_passkey_is_mfa_but_not_device_bound_phishing_resistant_mfa() -> None:
    tenant = Tenant.clean()
    tenant.registration(tenant.alex)["methodsRegistered"] = ["passKeySynced"]
    results = run(tenant)
    assert of(results, "admin_mfa_missing") == []
    assert named(results, "admin_mfa_not_phishing_resistant") == {role_key(GA, tenant.alex)}


def test_mfa_without_a_phishing_resistant_method_names_the_methods() -> None:
    tenant = Tenant.clean()
    admin_with_authenticator_push_and_sms(tenant)
    [finding] = of(run(tenant), "admin_mfa_not_phishing_resistant")
    assert finding.message == "MFA by Microsoft Authenticator, mobile phone only, none phishing-resistant"


def test_break_glass_and_guest_global_admins_count_towards_the_minimum() -> None:
    tenant = Tenant()
    tenant.admin("Only Admin")
    assert named(run(tenant), "global_admins_too_few") == {None}
    tenant.admin("Break Glass", GA, "permanent", userPrincipalName="breakglass01@contoso.onmicrosoft.com")
    assert of(run(tenant, ("breakglass01@contoso.onmicrosoft.com",)), "global_admins_too_few") == []


def test_too_few_global_admins_names_them_on_the_tenant() -> None:
    tenant = Tenant.clean()
    one_global_admin_left(tenant)
    [finding] = of(run(tenant), "global_admins_too_few")
    assert (finding.resource, finding.message) == ("Contoso", "1 Global Administrator: Adele Vance")


def test_a_global_admin_group_whose_members_were_not_collected_makes_the_count_a_lower_bound() -> None:
    tenant = Tenant()
    only = tenant.admin("Only Admin")
    group = "ac41334b-fd91-4b9d-b9a9-aed5c1d589e4"
    tenant.add("groups", {"id": group, "displayName": "Tier0 Admins", "isAssignableToRole": True})
    tenant.grant(group, GA)
    assert of(run(tenant), "global_admins_too_few") == []
    tenant.data["groupMembers"] = {group: [{"@odata.type": "#microsoft.graph.user", "id": only}]}
    assert named(run(tenant), "global_admins_too_few") == {None}  # the group's one member is the same admin


def test_too_many_global_admins_is_reported_even_from_an_incomplete_collection() -> None:
    tenant = Tenant.clean()
    nine_global_admins(tenant)
    tenant.data.update(complete=False, missing=["groupMembers"])
    [finding] = of(run(tenant), "global_admins_too_many")
    assert finding.message.startswith("9 Global Administrators: ")


def test_mail_in_use_is_reported_instead_of_the_licence_not_as_well() -> None:
    tenant = Tenant.clean()
    exchange_admin_reading_mail(tenant)
    results = run(tenant)
    assert of(results, "admin_mailbox_licensed") == []
    assert of(results, "admin_mailbox_in_use")[0].message == "mailbox in use: 412 sent, 1,377 read in 30 days"


def test_low_risk_is_not_reported() -> None:
    tenant = Tenant.clean()
    tenant.add("riskyUsers", {"id": tenant.alex, "riskLevel": "low", "riskState": "atRisk"})
    assert of(run(tenant), "admin_risky") == of(run(tenant), "admin_risky_medium") == []


def test_shared_recovery_contacts_are_shown_masked() -> None:
    tenant = Tenant.clean()
    two_admins_sharing_an_office_phone(tenant)
    findings = of(run(tenant), "recovery_contact_shared")
    by_subject = {f.subject_key: f.message for f in findings}
    assert by_subject[f"recovery:{tenant.alex}"] == (
        "recovery contact shared: office phone +1 ••••••0100 (also Adele Vance)"
    )
    assert not any("4255550100" in f.recommendation.replace("-", "").replace(" ", "") for f in findings)


def test_recovery_contacts_that_were_not_collected_are_not_missing() -> None:
    tenant = Tenant.clean()
    del tenant.data["emailMethods"][tenant.alex]
    tenant.data["phoneMethods"][tenant.alex] = []
    assert of(run(tenant), "recovery_contact_missing") == []


def test_a_principal_of_another_tenant_is_reviewed_against_its_gdap_relationship() -> None:
    tenant = Tenant.clean()
    group = "4789a890-7094-4eac-a8ba-e834be527b14"
    tenant.add("foreignPrincipals", {"id": group, "roleDefinitionId": GA, "directoryScopeId": "/"})
    [unexplained] = of(run(tenant), "admin_guest_or_external")
    assert unexplained.subject_key == f"partner:foreign:{group}"
    assert unexplained.recommendation.startswith("recommended: revoke — principal of another tenant holds Global "
                                                 "Administrator; no partner relationship")
    relationship = tenant.gdap().removeprefix("partner:gdap:")
    tenant.data["delegatedAdminAccessAssignments"] = {relationship: [
        {"id": "a1", "status": "active", "accessContainer": {"accessContainerId": group}}
    ]}
    [explained] = of(run(tenant), "admin_guest_or_external")
    assert explained.recommendation.startswith("recommended: review — ")
    assert "through GDAP relationship Northwind-Contoso" in explained.recommendation


def test_a_partner_group_named_by_graph_is_attributed_to_its_tenant_and_reviewed_when_a_service_provider() -> None:
    tenant = Tenant.clean()
    group = "5e2a7c1d-8b3f-4e6a-9c0d-1f2e3d4c5b6a"
    tenant.add("foreignPrincipals", {"id": group, "roleDefinitionId": EXA, "directoryScopeId": "/",
                                     "tenantId": NORTHWIND, "displayName": "Northwind Helpdesk Tier2",
                                     "@odata.type": "#microsoft.graph.group"})
    tenant.add("tenantInformation", {"tenantId": NORTHWIND, "displayName": "Northwind IT Services",
                                     "defaultDomainName": "northwindit.com"})
    [unknown_tenant] = of(run(tenant), "admin_guest_or_external")
    assert unknown_tenant.recommendation == (
        "recommended: revoke — group Northwind Helpdesk Tier2 of Northwind IT Services holds Exchange Administrator; "
        "that tenant is no service provider, relationship or contract of this tenant"
    )
    tenant.add("crossTenantPartners", {"tenantId": NORTHWIND, "isServiceProvider": True})
    snapshot = tenant.snapshot()
    [subject] = [s for s in subjects_from_snapshot(snapshot, NOW) if s.key == f"partner:foreign:{group}"]
    assert (subject.partner_id, subject.partner_name) == (NORTHWIND, "Northwind IT Services")
    assert subject.title == "Northwind IT Services — group Northwind Helpdesk Tier2 holding Exchange Administrator"
    assert subject.evidence["Partner standing"] == "a service provider in the cross-tenant access settings"
    [known] = of(run(tenant), "admin_guest_or_external")
    assert known.recommendation == (
        "recommended: review — group Northwind Helpdesk Tier2 of Northwind IT Services holds Exchange Administrator; "
        "Northwind IT Services is a service provider in the cross-tenant access settings: confirm this access is "
        "part of it"
    )


def test_gdap_duration_limit_comes_from_the_settings() -> None:
    tenant = Tenant.clean()
    key = tenant.gdap(duration="P2Y")
    assert of(run(tenant), "partner_gdap_too_long") == []
    [finding] = of(run(tenant, settings=CheckSettings(max_gdap_duration_days=365)), "partner_gdap_too_long")
    assert (finding.subject_key, finding.resource) == (key, "Northwind IT Services GDAP")
    assert finding.message == "Northwind-Contoso lasts 730 days, more than 365"


def test_microsofts_own_apps_are_no_partner_apps() -> None:
    tenant = Tenant.clean()
    tenant.add("appRoleAssignments", {"id": "x", "appRoleId": ROLE_MANAGEMENT_RW, "principalId": GRAPH_SP,
                                      "resourceId": GRAPH_SP})
    assert of(run(tenant), "partner_app_high_privilege") == []


def test_partner_app_lists_application_and_delegated_permissions() -> None:
    tenant = Tenant.clean()
    tenant.partner_app(app_roles=(ROLE_MANAGEMENT_RW, USER_READ_ALL), delegated="Directory.AccessAsUser.All User.Read")
    [finding] = of(run(tenant), "partner_app_high_privilege")
    assert finding.resource == "Fabrikam Portal"
    assert finding.message == (
        "app of Fabrikam MSP holds application RoleManagement.ReadWrite.Directory; delegated Directory.AccessAsUser.All"
    )


def test_a_guest_whose_home_mfa_is_trusted_is_not_reported_without_mfa() -> None:
    tenant = Tenant.clean()
    expected = guest_helpdesk_admin(tenant)
    guest = next(iter(expected)).removeprefix("partner:guest:")
    tenant.registration(guest).update(isMfaRegistered=False, methodsRegistered=[])
    tenant.add("tenantInformation", {"tenantId": FABRIKAM, "displayName": "Fabrikam MSP",
                                     "defaultDomainName": "fabrikam-msp.com"})
    assert named(run(tenant), "admin_mfa_missing") == {role_key(HDA, guest)}
    tenant.add("crossTenantPartners", {"tenantId": FABRIKAM, "isServiceProvider": False,
                                       "inboundTrust": {"isMfaAccepted": True}})
    assert of(run(tenant), "admin_mfa_missing") == []


def test_partner_access_used_within_90_days_or_newly_granted_is_not_called_unused() -> None:
    tenant = Tenant.clean()
    recent = tenant.gdap(activatedDateTime="2025-01-14T09:37:45Z")
    tenant.add("partnerActivity", {"tenantId": NORTHWIND, "lastSignInDateTime": "2026-08-26T10:00:00Z",
                                   "watchedSince": "2026-01-01T08:00:00Z"})
    assert named(run(tenant), "partner_unused") == set()
    tenant.data["partnerActivity"][0]["lastSignInDateTime"] = None
    assert named(run(tenant), "partner_unused") == {recent}
    tenant.data["delegatedAdminRelationships"][0]["activatedDateTime"] = "2026-10-01T00:00:00Z"  # new: not yet unused
    assert named(run(tenant), "partner_unused") == set()


def test_log_retention_says_the_days_the_licence_keeps_and_is_silent_when_arm_was_not_read() -> None:
    tenant = Tenant.clean()
    assert of(run(tenant), "entra_logs_not_exported") == []  # aadDiagnosticSettings absent: ARM not read
    tenant.data["aadDiagnosticSettings"] = {CONTOSO: []}
    [free] = of(run(tenant), "entra_logs_not_exported")
    assert free.message == "audit logs and sign-in logs exported nowhere: the tenant keeps them 7 days (no Entra ID premium licence)"
    tenant.data["subscribedSkus"][1]["servicePlans"].append({"servicePlanId": "41781fb2-bc02-4b7c-bd55-b576c07bb09d",
                                                              "servicePlanName": "AAD_PREMIUM"})
    tenant.data["aadDiagnosticSettings"] = {CONTOSO: [_diagnostic_setting("audit", "AuditLogs", storageAccountId="/s/st")]}
    [premium] = of(run(tenant), "entra_logs_not_exported")
    assert premium.message == ("sign-in logs exported nowhere: the tenant keeps them 30 days (Microsoft Entra ID P1 or P2); "
                               "audit logs go to audit")


def test_aobo_is_attributed_to_the_reseller_and_reviewed_as_azure_access() -> None:
    tenant = Tenant.clean()
    key = reseller_admin_agents_owning_a_subscription(tenant).pop()
    snapshot = tenant.snapshot()
    subject = {s.key: s for s in subjects_from_snapshot(snapshot, NOW)}[key]
    assert subject.title == "Fabrikam MSP (foreign group) — Owner of Contoso Production"
    assert subject.partner_id == FABRIKAM and subject.holder_ids == ()
    assert subject.evidence["Principal"] == "Foreign group of another tenant (AOBO)"
    assert subject.evidence["Assignment"] == "Active, permanent since 2024-05-01"
    [aobo] = of(run(tenant), "azure_aobo_present")
    assert aobo.message == ("Fabrikam MSP holds Owner of Contoso Production through a group of its own tenant (AOBO)")
    [foreign] = of(run(tenant), "azure_owner_guest_or_foreign")
    assert foreign.subject_key == key and foreign.recommendation.startswith("recommended: revoke")


def test_a_pim_eligible_owner_is_not_standing() -> None:
    tenant = Tenant.clean()
    with_entra_p2(tenant)
    lee = tenant.person("Lee Gu")
    tenant.add("azureSubscriptions", {"id": f"/subscriptions/{SUBSCRIPTION}", "subscriptionId": SUBSCRIPTION,
                                      "displayName": "Contoso Production"})
    tenant.add("azureRoleEligibilityScheduleInstances", {
        "id": "e1", "name": "e1", "properties": {
            "roleDefinitionId": f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{OWNER}",
            "principalId": lee, "principalType": "User", "scope": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-app",
            "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z", "memberType": "Direct"}})
    subjects = {s.key: s for s in subjects_from_snapshot(tenant.snapshot(), NOW)}
    eligible = subjects[f"azure:{SUBSCRIPTION}:{OWNER}:{lee}:eligible"]
    assert eligible.evidence["Assignment"] == "Eligible (PIM) until 2027-01-01"
    assert eligible.evidence["Scope"] == "resource group rg-app"
    assert of(run(tenant), "azure_owner_standing") == []
