"""The wording of evidence lines on a review card, and the masking of recovery contacts.

A reviewer decides from a handful of short lines in Teams or Slack, so every fact is said once, here,
in the same words everywhere; the subjects module only chooses which facts a subject shows.
Recovery contacts are personal data that reach a chat channel: only their masked form leaves this
module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

MAX_VALUE = 120

FREE_MAIL_DOMAINS = frozenset(
    {
        "aol.com", "gmail.com", "gmx.com", "gmx.de", "gmx.net", "googlemail.com", "hotmail.co.uk", "hotmail.com",
        "hotmail.de", "hotmail.fr", "icloud.com", "live.com", "live.co.uk", "mail.com", "mail.ru", "me.com",
        "msn.com", "outlook.com", "outlook.de", "outlook.fr", "proton.me", "protonmail.com", "qq.com", "web.de",
        "yahoo.co.uk", "yahoo.com", "yahoo.de", "yahoo.fr", "yandex.com", "yandex.ru", "zoho.com",
    }
)

# userRegistrationDetails.methodsRegistered values, in the words the Entra admin centre uses.
METHOD_NAMES: Mapping[str, str] = {
    "microsoftAuthenticatorPush": "Microsoft Authenticator",
    "microsoftAuthenticatorPasswordless": "Microsoft Authenticator (passwordless)",
    "fido2": "FIDO2 security key",
    "passKeyDeviceBound": "passkey (device-bound)",
    "passKeyDeviceBoundAuthenticator": "passkey in Microsoft Authenticator",
    "passKeyDeviceBoundWindowsHello": "passkey in Windows Hello",
    "passKeySynced": "synced passkey",
    "windowsHelloForBusiness": "Windows Hello for Business",
    "macOsSecureEnclaveKey": "macOS platform credential",
    "softwareOneTimePasscode": "authenticator app code",
    "hardwareOneTimePasscode": "hardware token",
    "mobilePhone": "mobile phone",
    "alternateMobilePhone": "alternate mobile phone",
    "officePhone": "office phone",
    "email": "email",
    "securityQuestion": "security questions",
    "temporaryAccessPass": "Temporary Access Pass",
    "appPassword": "app password",
}
# Methods that reset a password or bootstrap sign-in but are no second factor.
NOT_MFA = frozenset({"email", "securityQuestion", "temporaryAccessPass", "appPassword"})
# Bound to the sign-in origin and to a device, so a phishing site cannot relay them: the methods CISA's
# baseline names (FIDO2 security keys, Windows Hello for Business and its macOS counterpart, device-bound
# passkeys; certificate-based authentication is no registered method). A synced passkey is a second
# factor but not device-bound, so it does not count here.
PHISHING_RESISTANT = frozenset(
    {
        "fido2", "passKeyDeviceBound", "passKeyDeviceBoundAuthenticator", "passKeyDeviceBoundWindowsHello",
        "windowsHelloForBusiness", "macOsSecureEnclaveKey",
    }
)

# subscribedSku.skuPartNumber -> the product name on the invoice.
SKU_NAMES: Mapping[str, str] = {
    "AAD_PREMIUM": "Microsoft Entra ID P1",
    "AAD_PREMIUM_P2": "Microsoft Entra ID P2",
    "EMS": "Enterprise Mobility + Security E3",
    "EMSPREMIUM": "Enterprise Mobility + Security E5",
    "ENTERPRISEPACK": "Office 365 E3",
    "ENTERPRISEPREMIUM": "Office 365 E5",
    "EXCHANGEENTERPRISE": "Exchange Online (Plan 2)",
    "EXCHANGESTANDARD": "Exchange Online (Plan 1)",
    "O365_BUSINESS_ESSENTIALS": "Microsoft 365 Business Basic",
    "O365_BUSINESS_PREMIUM": "Microsoft 365 Business Standard",
    "SPB": "Microsoft 365 Business Premium",
    "SPE_E3": "Microsoft 365 E3",
    "SPE_E5": "Microsoft 365 E5",
    "STANDARDPACK": "Office 365 E1",
}
# Service plans that give the user an Exchange Online mailbox (EXCHANGE_S_FOUNDATION does not).
MAILBOX_PLANS = frozenset({"EXCHANGE_S_STANDARD", "EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_DESKLESS", "EXCHANGE_S_ESSENTIALS"})

PHONE_LABELS: Mapping[str, str] = {
    "mobile": "Mobile phone",
    "alternateMobile": "Alternate mobile phone",
    "office": "Office phone",
}

# users/{id}/authentication/methods entries that are something a person holds (a key, a phone, a device
# with an app or Windows Hello), by @odata.type, in the admin centre's words. Passwords, e-mail addresses
# and a Temporary Access Pass are methods too, but no device registered for MFA.
DEVICE_METHODS: Mapping[str, str] = {
    "#microsoft.graph.fido2AuthenticationMethod": "FIDO2 key",
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": "Authenticator",
    "#microsoft.graph.phoneAuthenticationMethod": "phone",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": "Windows Hello",
    "#microsoft.graph.softwareOathAuthenticationMethod": "authenticator app (code)",
    "#microsoft.graph.platformCredentialAuthenticationMethod": "platform credential",
}
PHONE_METHOD = "#microsoft.graph.phoneAuthenticationMethod"

_MASK = "•"
_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


# ---- general ------------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """A Graph timestamp (``2026-08-20T17:05:33Z``, up to 7 fractional digits) as an aware UTC datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def days_ago(moment: datetime, now: datetime) -> str:
    """Calendar days between two instants, as a reviewer would count them."""
    days = (now.astimezone(UTC).date() - moment.astimezone(UTC).date()).days
    if days <= 0:
        return "today"
    return "1 day ago" if days == 1 else f"{days} days ago"


def shorten(text: str, limit: int = MAX_VALUE) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip(" ,;") + "…"


def listing(names: Iterable[str], limit: int = MAX_VALUE) -> str:
    """Names joined with commas, cut to "a, b +3 more" so a card line stays one line.

    One pass that keeps only the names that can still fit: a tenant's 100,000 Global Administrators
    are counted, not joined 100,000 times over (that made opening a campaign quadratic).
    """
    kept: list[str] = []
    width = -2  # the joined length of ``kept``: every name after the first brings ", "
    count = 0
    full = False
    for name in names:
        count += 1
        if full:
            continue
        if kept and width + 2 + len(name) > limit:
            full = True  # no later name can be shown once one is cut
        else:
            kept.append(name)
            width += 2 + len(name)
    if not full and kept and width <= limit:
        return ", ".join(kept)
    for shown in range(min(len(kept), count - 1), 0, -1):
        text = ", ".join(kept[:shown]) + f" +{count - shown} more"
        if len(text) <= limit:
            return text
    return shorten(kept[0], limit) if kept else ""


def duration_days(value: Any) -> int | None:
    """Whole days in an ISO 8601 duration such as P730D or P2Y (a year counted as 365 days)."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or value == "P":
        return None
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    days = (
        parts.get("years", 0) * 365 + parts.get("months", 0) * 30 + parts.get("weeks", 0) * 7 + parts.get("days", 0)
        + parts.get("hours", 0) / 24 + parts.get("minutes", 0) / 1440 + parts.get("seconds", 0) / 86400
    )
    return int(days)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# ---- people -------------------------------------------------------------------------------------


def home_domain(user: Mapping[str, Any]) -> str | None:
    """The domain a guest comes from: their mail, else the part of the #EXT# UPN before it."""
    for address in [user.get("mail"), *(user.get("otherMails") or [])]:
        if address and "@" in address:
            return address.rsplit("@", 1)[1].lower()
    upn = user.get("userPrincipalName") or ""
    if "#EXT#" in upn.upper():
        original = upn[: upn.upper().index("#EXT#")]
        if "_" in original:
            return original.rsplit("_", 1)[1].lower()
    return None


def is_guest(user: Mapping[str, Any]) -> bool:
    return (user.get("userType") or "").lower() == "guest"


def account(user: Mapping[str, Any], *, break_glass: bool) -> str:
    """Where the account comes from: a guest's home, on-premises sync, or cloud-only."""
    if is_guest(user):
        text = f"Guest from {home_domain(user) or 'an unknown domain'}"
        state = user.get("externalUserState")
        if state and state != "Accepted":
            text += f", invitation {state}"
    elif user.get("onPremisesSyncEnabled"):
        text = "Synced from on-premises"
    else:
        text = "Member, cloud-only"
    if user.get("accountEnabled") is False:
        text += ", sign-in blocked"
    if break_glass:
        text += " (break-glass)"
    return text


def latest_sign_in(user: Mapping[str, Any]) -> datetime | None:
    """The latest sign-in of any kind (interactive, non-interactive, successful); None if never: an
    unused admin account is one nobody signs in to, interactively or not."""
    activity = user.get("signInActivity") or {}
    moments = [
        parse_time(activity.get(key))
        for key in ("lastSuccessfulSignInDateTime", "lastSignInDateTime", "lastNonInteractiveSignInDateTime")
    ]
    return max((m for m in moments if m is not None), default=None)


def last_sign_in(user: Mapping[str, Any], now: datetime) -> str:
    if "signInActivity" not in user:
        return "not collected"
    latest = latest_sign_in(user)
    if latest is None:
        return "never"
    return f"{day(latest)} ({days_ago(latest, now)})"


def mfa_methods(registration: Mapping[str, Any] | None) -> str:
    if registration is None:
        return "not collected"
    methods = [m for m in registration.get("methodsRegistered") or [] if m not in NOT_MFA]
    if not registration.get("isMfaRegistered") or not methods:
        return "none registered"
    return listing(METHOD_NAMES.get(m, m) for m in methods)


def phishing_resistant(registration: Mapping[str, Any] | None) -> str:
    if registration is None:
        return "unknown"
    return "yes" if PHISHING_RESISTANT.intersection(registration.get("methodsRegistered") or []) else "no"


def device_methods(methods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The methods that are a device registered for MFA, oldest first (those without a date last)."""
    devices = [m for m in methods if m.get("@odata.type") in DEVICE_METHODS]
    return sorted(devices, key=lambda m: (parse_time(m.get("createdDateTime")) is None,
                                          parse_time(m.get("createdDateTime")) or datetime.min.replace(tzinfo=UTC)))


def device_name(method: Mapping[str, Any]) -> str:
    """``FIDO2 key “YubiKey 5 NFC”``, ``phone (mobile) +1 ••••••0100``: what the reviewer must recognise.
    A phone number is masked like a recovery contact: it reaches a chat channel."""
    kind = DEVICE_METHODS.get(method.get("@odata.type") or "", "method")
    if method.get("@odata.type") == PHONE_METHOD:
        return f"{kind} ({method.get('phoneType') or 'unknown'}) {mask_phone(method.get('phoneNumber') or '')}".strip()
    name = method.get("displayName") or method.get("model")
    return f"{kind} “{name}”" if name else kind


def mfa_devices(methods: Iterable[Mapping[str, Any]] | None) -> str:
    """Every device registered for MFA with the day it was registered (Graph gives no date for phones)."""
    if methods is None:
        return "not collected"
    devices = device_methods(methods)
    if not devices:
        return "none registered"
    parts = []
    for method in devices:
        created = parse_time(method.get("createdDateTime"))
        parts.append(device_name(method) + (f" ({day(created)})" if created else ""))
    return listing(parts)


def partner_sign_ins(
    recent: Sequence[Mapping[str, Any]], activity: Mapping[str, Any] | None, now: datetime, window_days: int
) -> str:
    """A partner's sign-ins into the tenant: how many in the log's window and the latest (who, which app),
    or, when there are none, the last one accessbot ever saw and since when it has been watching."""
    if activity is None:
        return "not collected"
    if recent:
        latest = recent[0]
        moment = parse_time(latest.get("createdDateTime"))
        who = latest.get("userPrincipalName") or latest.get("userDisplayName") or "unknown"
        app = f" ({latest['appDisplayName']})" if latest.get("appDisplayName") else ""
        when = day(moment) if moment else "unknown"
        return shorten(f"{plural(len(recent), 'sign-in')} in {window_days} days, last {when} by {who}{app}")
    last = parse_time(activity.get("lastSignInDateTime"))
    if last is not None:
        return f"none in {window_days} days; last seen {day(last)} ({days_ago(last, now)})"
    since = parse_time(activity.get("watchedSince"))
    return f"none in {window_days} days; none seen since {day(since)}" if since else f"none in {window_days} days"


def risk(risky_user: Mapping[str, Any] | None) -> str | None:
    """Identity Protection's verdict, only while it stands (remediated and dismissed risks are history)."""
    if not risky_user or risky_user.get("riskState") not in ("atRisk", "confirmedCompromised"):
        return None
    state = "confirmed compromised" if risky_user["riskState"] == "confirmedCompromised" else "at risk"
    return f"{risky_user.get('riskLevel') or 'unknown'} ({state})"


def gives_mailbox(assigned: Mapping[str, Any], sku: Mapping[str, Any]) -> bool:
    """Whether an assigned licence gives the account a mailbox: an Exchange Online plan not disabled."""
    disabled = {plan.lower() for plan in assigned.get("disabledPlans") or []}
    return any(
        plan.get("servicePlanName") in MAILBOX_PLANS and (plan.get("servicePlanId") or "").lower() not in disabled
        for plan in sku.get("servicePlans") or []
    )


def licences(
    user: Mapping[str, Any], skus: Mapping[str, Mapping[str, Any]], activity: Mapping[str, Any] | None
) -> str:
    """Licence names, flagging those that give the account a mailbox, and whether the mailbox is used."""
    parts = []
    has_mailbox = False
    for assigned in user.get("assignedLicenses") or []:
        sku_id = (assigned.get("skuId") or "").lower()
        sku = skus.get(sku_id)
        if sku is None:
            parts.append(f"licence {sku_id}")
            continue
        part_number = sku.get("skuPartNumber") or sku_id
        mailbox = gives_mailbox(assigned, sku)
        has_mailbox = has_mailbox or mailbox
        parts.append(SKU_NAMES.get(part_number, part_number) + (" — includes a mailbox" if mailbox else ""))
    if not parts:
        return "none"
    text = "; ".join(parts)
    if has_mailbox and activity is not None:
        sent, read = int(activity.get("sendCount") or 0), int(activity.get("readCount") or 0)
        period = activity.get("reportPeriod") or "30"
        text += f" (used: {sent:,} sent, {read:,} read in {period} days)" if sent or read else f" (unused for {period} days)"
    return shorten(text)


# ---- recovery contacts --------------------------------------------------------------------------


def normalise_email(address: str) -> str:
    return address.strip().lower()


def normalise_phone(number: str) -> str:
    """Digits only, so "+1 425-555-0100" and "+1 4255550100" are seen as the same phone."""
    return re.sub(r"\D", "", number.split("x")[0])


def mask_email(address: str) -> str:
    """``megan.bowen77@gmail.com`` -> ``m•••@gmail.com``: enough to recognise, not to use."""
    local, _, domain = address.strip().partition("@")
    return f"{local[:1]}{_MASK * 3}@{domain.lower()}" if domain else _MASK * 3


def mask_phone(number: str) -> str:
    """``+44 7700900123`` -> ``+44 ••••••0123``: the country code and the last four digits stay."""
    number = number.strip().split("x")[0].strip()
    prefix, rest = "", number
    if number.startswith("+") and " " in number:
        prefix, rest = number.split(" ", 1)
        prefix += " "
    digits = sum(ch.isdigit() for ch in rest)
    keep = 4 if digits >= 8 else digits // 2
    masked, seen = [], 0
    for ch in rest:
        if ch.isdigit():
            seen += 1
            masked.append(ch if seen > digits - keep else _MASK)
        else:
            masked.append(ch)
    return prefix + "".join(masked)


def email_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower()
