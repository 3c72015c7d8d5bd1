"""Reading tenants through Microsoft Graph v1.0 (msgraph-sdk): credentials, batching, the collector and
the CSP partner side. Everything here produces ``TenantSnapshot``s; nothing downstream talks to Graph."""

from checks.graph.client import (
    DEFAULT_RETRY,
    CredentialKind,
    GraphCredentials,
    RetrySettings,
    close_client,
    graph_client,
)
from checks.graph.collector import LICENCE_GATED, collect_tenant, privileged_principals
from checks.graph.partner import PartnerView, collect_customers, collect_partner

__all__ = [
    "DEFAULT_RETRY",
    "LICENCE_GATED",
    "CredentialKind",
    "GraphCredentials",
    "PartnerView",
    "RetrySettings",
    "close_client",
    "collect_customers",
    "collect_partner",
    "collect_tenant",
    "graph_client",
    "privileged_principals",
]
