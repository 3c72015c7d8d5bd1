"""The Graph application permissions accessbot needs, and which of them a deployment's token lacks.

The list is docs/permissions.md in code. An app-only token carries the granted application permissions
in its ``roles`` claim, so `accessbot doctor` can say exactly which grant is missing before a Monday run
fails half-way. Each entry names alternatives that also suffice (a broader permission covers a narrower).
"""

from __future__ import annotations

from collections.abc import Iterable

# (needed, also accepted instead)
READ: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("RoleManagement.Read.Directory", ("RoleManagement.Read.All", "RoleManagement.ReadWrite.Directory")),
    ("User.Read.All", ("User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")),
    ("AuditLog.Read.All", ()),
    ("GroupMember.Read.All", ("Group.Read.All", "GroupMember.ReadWrite.All", "Directory.Read.All")),
    ("Directory.Read.All", ("Directory.ReadWrite.All",)),
    ("Application.Read.All", ("Application.ReadWrite.All", "Directory.Read.All")),
    ("Policy.Read.All", ()),
    ("UserAuthenticationMethod.Read.All", ("UserAuthenticationMethod.ReadWrite.All",)),
    ("IdentityRiskyUser.Read.All", ("IdentityRiskyUser.ReadWrite.All",)),
    ("Reports.Read.All", ()),
    ("Organization.Read.All", ("Organization.ReadWrite.All", "Directory.Read.All")),
    ("CrossTenantInformation.ReadBasic.All", ()),
    ("PrivilegedEligibilitySchedule.Read.AzureADGroup", ("PrivilegedEligibilitySchedule.ReadWrite.AzureADGroup",)),
    ("PrivilegedAssignmentSchedule.Read.AzureADGroup", ("PrivilegedAssignmentSchedule.ReadWrite.AzureADGroup",)),
)
PARTNER_READ: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("DelegatedAdminRelationship.Read.All", ("DelegatedAdminRelationship.ReadWrite.All",)),
)
REMEDIATION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("RoleManagement.ReadWrite.Directory", ()),
    ("GroupMember.ReadWrite.All", ("Group.ReadWrite.All",)),
    ("UserAuthenticationMethod.ReadWrite.All", ()),
    ("AppRoleAssignment.ReadWrite.All", ()),
    ("DelegatedPermissionGrant.ReadWrite.All", ()),
    ("PrivilegedEligibilitySchedule.ReadWrite.AzureADGroup", ()),
)


def missing_permissions(granted: Iterable[str], needed: Iterable[tuple[str, tuple[str, ...]]]) -> list[str]:
    """The needed permissions that neither they nor an accepted alternative were granted."""
    have = set(granted)
    return [name for name, instead in needed if name not in have and not have.intersection(instead)]
