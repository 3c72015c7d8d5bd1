"""The CSP partner's side: which customers the partner can administer (GDAP), and a snapshot of each.

Graph documents GDAP relationships from the partner's tenant only; a customer tenant sees the partner
merely as foreign principals and a service-provider entry. So a partner deployment first reads its own
tenant (``collect_partner``), then signs in to every customer reached through an active relationship
and collects it (``collect_customers``), attaching to each customer snapshot the relationships that
grant the partner access there, named with the partner (``partner``) as the snapshot format asks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from msgraph import GraphServiceClient

from checks.graph.batching import BatchRequest, GraphError, GraphReader
from checks.graph.client import DEFAULT_RETRY, RetrySettings, close_client
from checks.graph.collector import collect_tenant
from checks.snapshot import GraphObject, TenantSnapshot, collection_keys

log = logging.getLogger(__name__)

ADMIN_AGENTS_GROUP = "AdminAgents"  # the Partner Center group whose members act as Global Administrator in DAP customers
ClientFactory = Callable[[str], GraphServiceClient]
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class PartnerView:
    """What the partner tenant says about its delegated access to customers."""

    tenant_id: str
    tenant_name: str
    collected_at: datetime
    relationships: tuple[GraphObject, ...] = ()
    access_assignments: Mapping[str, tuple[GraphObject, ...]] = field(default_factory=dict)
    customers: tuple[GraphObject, ...] = ()
    admin_agents: tuple[GraphObject, ...] = ()
    complete: bool = True
    missing: tuple[str, ...] = ()

    def customer_tenants(self) -> list[tuple[str, str]]:
        """(tenant id, name) of every customer reachable through an active GDAP relationship, by name."""
        reachable: dict[str, str] = {}
        for relationship in self.relationships:
            customer = relationship.get("customer") or {}
            if relationship.get("status") == "active" and customer.get("tenantId"):
                reachable.setdefault(customer["tenantId"].lower(), customer.get("displayName") or customer["tenantId"])
        for customer in self.customers:
            tid = (customer.get("tenantId") or customer.get("id") or "").lower()
            if tid in reachable and customer.get("displayName"):
                reachable[tid] = customer["displayName"]
        return sorted(reachable.items(), key=lambda item: (item[1].lower(), item[0]))

    def relationships_with(self, customer_tenant_id: str) -> list[GraphObject]:
        key = customer_tenant_id.lower()
        return [r for r in self.relationships if ((r.get("customer") or {}).get("tenantId") or "").lower() == key]


async def collect_partner(
    client: GraphServiceClient,
    partner_tenant_id: str,
    *,
    now: datetime,
    concurrency: int = 8,
    retry: RetrySettings = DEFAULT_RETRY,
) -> PartnerView:
    """Read the partner tenant: GDAP relationships with their access assignments, the customers, and
    the members of the Admin Agents group (who hold Global Administrator in every DAP customer)."""
    reader = GraphReader(client, concurrency=concurrency, retry=retry)
    missing: list[str] = []

    async def read(key: str, path: str) -> list[dict[str, Any]] | None:
        try:
            return await reader.list_all(path)
        except GraphError as error:
            missing.append(f"{key}: could not be read ({error.describe()})")
            return None

    organization, relationships, customers, agents_groups = await asyncio.gather(
        read("organization", "/organization"),
        read("delegatedAdminRelationships", "/tenantRelationships/delegatedAdminRelationships?$top=300"),
        read("delegatedAdminCustomers", "/tenantRelationships/delegatedAdminCustomers?$top=300"),
        read(
            "adminAgents",
            "/groups?$filter=" + quote(f"displayName eq '{ADMIN_AGENTS_GROUP}'") + "&$select=id,displayName",
        ),
    )
    assignments: dict[str, tuple[GraphObject, ...]] = {}
    if relationships:
        answers = await reader.batch(
            [
                BatchRequest(r["id"], f"/tenantRelationships/delegatedAdminRelationships/{r['id']}/accessAssignments")
                for r in relationships
            ]
        )
        failures = []
        for relationship in relationships:
            answer = answers[relationship["id"]]
            if answer.ok and isinstance(answer.body, dict):
                values = list(answer.body.get("value") or [])
                if answer.body.get("@odata.nextLink"):
                    values += await reader.list_all(answer.body["@odata.nextLink"])
                assignments[relationship["id"]] = tuple(values)
            else:
                failures.append(answer.error().describe())
        if failures:
            missing.append(
                f"delegatedAdminAccessAssignments: {len(failures)} of {len(relationships)} relationships failed "
                f"({', '.join(sorted(set(failures)))})"
            )
    agents: list[dict[str, Any]] = []
    for group in agents_groups or []:
        members = await read("adminAgents", f"/groups/{group['id']}/transitiveMembers?$select=id,displayName,userPrincipalName&$top=999")
        agents += members or []
    org = organization or []
    return PartnerView(
        tenant_id=partner_tenant_id,
        tenant_name=(org[0].get("displayName") if org else None) or partner_tenant_id,
        collected_at=now,
        relationships=tuple(relationships or ()),
        access_assignments=assignments,
        customers=tuple(customers or ()),
        admin_agents=tuple(agents),
        complete=not missing,
        missing=tuple(missing),
    )


async def collect_customers(
    factory: ClientFactory,
    partner: PartnerView,
    *,
    now: datetime,
    previous: Mapping[str, TenantSnapshot] | None = None,
    tenants_at_once: int = 4,
    concurrency: int = 8,
    retry: RetrySettings = DEFAULT_RETRY,
    max_drop: float = 0.2,
    progress: Progress | None = None,
) -> list[TenantSnapshot]:
    """A snapshot of every customer reached through GDAP, in the order of ``customer_tenants()``.

    ``factory`` makes a client signed in to one customer tenant; ``previous`` maps a tenant id to its
    last complete snapshot (for the drop rule); ``progress(done, total, tenant_name)`` is called as each
    customer finishes. A customer that cannot be read at all still yields a snapshot: incomplete, with
    every collection named in ``missing``, so its reviews are held rather than emptied.
    """
    customers = partner.customer_tenants()
    previous = previous or {}
    slots = asyncio.Semaphore(max(1, tenants_at_once))
    done = 0

    async def one(tenant_id: str, name: str) -> TenantSnapshot:
        nonlocal done
        async with slots:
            snapshot = await _collect_customer(
                factory, tenant_id, name, now=now, previous=previous.get(tenant_id) or previous.get(tenant_id.lower()),
                concurrency=concurrency, retry=retry, max_drop=max_drop,
            )
        done += 1
        if progress is not None:
            progress(done, len(customers), snapshot.tenant_name)
        return with_partner_access(snapshot, partner)

    return list(await asyncio.gather(*(one(tid, name) for tid, name in customers)))


async def _collect_customer(
    factory: ClientFactory, tenant_id: str, name: str, *, now: datetime, previous: TenantSnapshot | None,
    concurrency: int, retry: RetrySettings, max_drop: float,
) -> TenantSnapshot:
    client: GraphServiceClient | None = None
    try:
        client = factory(tenant_id)
        return await collect_tenant(
            client, tenant_id, now=now, concurrency=concurrency, previous=previous, retry=retry, max_drop=max_drop
        )
    except Exception as failure:  # one unreachable customer must not stop the other customers' reviews
        log.exception("Could not collect customer tenant %s (%s)", name, tenant_id)
        reason = f"tenant could not be read ({type(failure).__name__}: {failure})"
        return TenantSnapshot(
            tenant_id=tenant_id, tenant_name=name, collected_at=now, complete=False,
            missing=tuple(f"{key}: {reason}" for key in collection_keys()),
        )
    finally:
        if client is not None:
            await close_client(client)


def with_partner_access(snapshot: TenantSnapshot, partner: PartnerView) -> TenantSnapshot:
    """The customer snapshot with the partner's relationships to it, each naming the partner, and the
    partner's security groups among its foreign principals attributed to the partner's tenant."""
    relationships = partner.relationships_with(snapshot.tenant_id)
    named = tuple(
        {**r, "partner": {"tenantId": partner.tenant_id, "displayName": partner.tenant_name}} for r in relationships
    )
    assignments = dict(snapshot.delegated_admin_access_assignments)
    unread = []
    for relationship in relationships:
        if relationship["id"] in partner.access_assignments:
            assignments[relationship["id"]] = partner.access_assignments[relationship["id"]]
        else:
            unread.append(relationship.get("displayName") or relationship["id"])
    containers = {
        (a.get("accessContainer") or {}).get("accessContainerId", "").lower()
        for r in relationships for a in partner.access_assignments.get(r["id"], ())
    }
    foreign = tuple(
        {**f, "tenantId": partner.tenant_id} if f["id"].lower() in containers and not f.get("tenantId") else f
        for f in snapshot.foreign_principals
    )
    missing = snapshot.missing
    if unread:
        missing += (f"delegatedAdminAccessAssignments: not read from the partner tenant for {', '.join(unread)}",)
    return dataclasses.replace(
        snapshot,
        delegated_admin_relationships=(*snapshot.delegated_admin_relationships, *named),
        delegated_admin_access_assignments=assignments,
        foreign_principals=foreign,
        complete=snapshot.complete and not unread,
        missing=missing,
    )


def customer_payload(partner: PartnerView, customer_tenant_id: str) -> dict[str, Any]:
    """What a customer's collection job carries of the partner tenant: the partner, and its relationships to
    this customer with their access assignments, so any instance can name the partner's access in the
    customer's snapshot without reading the partner tenant again."""
    relationships = partner.relationships_with(customer_tenant_id)
    return {
        "partner": {"tenantId": partner.tenant_id, "displayName": partner.tenant_name},
        "relationships": [dict(r) for r in relationships],
        "accessAssignments": {r["id"]: [dict(a) for a in partner.access_assignments[r["id"]]]
                              for r in relationships if r["id"] in partner.access_assignments},
    }


def partner_of(payload: Mapping[str, Any], collected_at: datetime) -> PartnerView | None:
    """The partner as a job's payload (``customer_payload``) describes it; None for a tenant no partner reaches."""
    named = payload.get("partner")
    if not isinstance(named, dict) or not named.get("tenantId"):
        return None
    return PartnerView(
        tenant_id=named["tenantId"], tenant_name=named.get("displayName") or named["tenantId"], collected_at=collected_at,
        relationships=tuple(payload.get("relationships") or ()),
        access_assignments={rid: tuple(found) for rid, found in (payload.get("accessAssignments") or {}).items()},
    )


__all__ = ["ADMIN_AGENTS_GROUP", "ClientFactory", "PartnerView", "Progress", "collect_customers", "collect_partner",
           "customer_payload", "partner_of", "with_partner_access"]
