"""The check modules, one per subject area; importing this package registers every check."""

from checks.rules import (
    accounts,
    activity,
    assignments,
    azure_roles,
    global_admins,
    log_retention,
    mfa,
    mfa_devices,
    partner_activity,
    partners,
    recovery,
    risk,
)

__all__ = [
    "accounts", "activity", "assignments", "azure_roles", "global_admins", "log_retention", "mfa", "mfa_devices",
    "partner_activity", "partners", "recovery", "risk",
]
