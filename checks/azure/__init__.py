"""Reading a tenant's Azure side through Azure Resource Manager: where Entra's logs are exported
(``microsoft.aadiam`` diagnostic settings), the subscriptions and management groups, and who holds a
privileged role on them. Everything that talks to ARM lives here, as Graph lives in ``checks/graph/``;
nothing downstream of a ``TenantSnapshot`` does."""

from checks.azure.arm import ARM_URL, ArmError, ArmReader, arm_reader
from checks.azure.collect import collect_azure, with_azure

__all__ = ["ARM_URL", "ArmError", "ArmReader", "arm_reader", "collect_azure", "with_azure"]
