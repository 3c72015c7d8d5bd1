"""Live collection for the operator's commands and the server: settings → Graph client → snapshots on disk.

The last snapshot of each tenant is kept in the data directory, and the last *complete* one separately:
the collector compares against it to refuse believing an implausible drop of admins, and the server
starts from the last snapshot instead of waiting for Graph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Literal

from bot.config import Settings
from bot.operator_errors import OperatorError
from bot.store.atomic_storage import replace_file
from checks.azure import arm_reader, collect_azure, with_azure
from checks.azure.collect import AzureView
from checks.graph import (
    DEFAULT_RETRY,
    GraphCredentials,
    RetrySettings,
    PartnerView,
    close_client,
    collect_customers,
    collect_partner,
    collect_tenant,
    graph_client,
)
from checks.graph.batching import GraphReader
from checks.graph.directory_audits import read_directory_audits
from checks.snapshot import (
    SnapshotError,
    TenantSnapshot,
    collection_keys,
    load_snapshot,
    snapshot_to_dict,
)

TENANT_PLACEHOLDER = "{tenant}"


class GraphNotConfigured(ValueError):
    """No Graph credentials in the configuration: say which settings to set."""


@dataclass(frozen=True)
class GraphAccess:
    credentials: GraphCredentials
    base_url: str  # may hold {tenant}, for a per-tenant endpoint (a local Graph in tests)
    arm_base_url: str = ""  # Azure Resource Manager with the same app; empty: Azure is not read

    def url_for(self, tenant_id: str) -> str:
        return self.base_url.replace(TENANT_PLACEHOLDER, tenant_id)

    def client_for(self, tenant_id: str, retry: RetrySettings = DEFAULT_RETRY):  # type: ignore[no-untyped-def]
        try:
            return graph_client(self.credentials.for_tenant(tenant_id), self.url_for(tenant_id), retry=retry)
        except ValueError as bad:  # azure-identity reads the key file here: not PEM or PKCS12, wrong password
            raise OperatorError(
                f"Microsoft Graph credentials: {bad} (ACCESSBOT_GRAPH_CERTIFICATE_PATH="
                f"{self.credentials.certificate_path}); give a PEM or PKCS12 file with the app's certificate and "
                "private key (docs/permissions.md)"
            ) from bad


def graph_access(settings: Settings, tenant_id: str) -> GraphAccess:
    if not settings.graph_credential:
        raise GraphNotConfigured(
            "no Microsoft Graph credentials: set ACCESSBOT_GRAPH_CREDENTIAL (client_secret, certificate, "
            "managed_identity, default or access_token) and the matching ACCESSBOT_GRAPH_* settings (docs/permissions.md)"
        )
    try:
        credentials = GraphCredentials(
            kind=settings.graph_credential,
            tenant_id=settings.graph_tenant_id or tenant_id,
            client_id=settings.graph_client_id,
            client_secret=settings.graph_client_secret.get_secret_value(),
            certificate_path=settings.graph_certificate_path,
            access_token=settings.graph_access_token.get_secret_value(),
        )
    except ValueError as bad:
        raise GraphNotConfigured(f"Microsoft Graph credentials: {bad}") from bad
    return GraphAccess(credentials, settings.graph_base_url, settings.arm_base_url)


class SnapshotArchive:
    """``snapshots/<tenant>.json`` (the last collection) and ``<tenant>.complete.json`` (the last complete one)."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = Path(data_dir) / "snapshots"

    def last(self, tenant_id: str, *, complete: bool = False) -> TenantSnapshot | None:
        path = self.folder / f"{tenant_id.lower()}{'.complete' if complete else ''}.json"
        try:
            return load_snapshot(path) if path.exists() else None
        except SnapshotError:
            return None

    def keep(self, snapshot: TenantSnapshot) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        body = json.dumps(snapshot_to_dict(snapshot), ensure_ascii=False).encode()
        names = [f"{snapshot.tenant_id.lower()}.json"] + ([f"{snapshot.tenant_id.lower()}.complete.json"] if snapshot.complete else [])
        for name in names:
            replace_file(self.folder / name, body)

    def keep_only_complete(self, tenant_id: str) -> int:
        """Thin a tenant down to its last complete snapshot (pruning; bot/collection_jobs.py): the last one
        becomes that complete one, and a tenant without one keeps nothing. 1 when a file changed, else 0."""
        last, complete = (self.folder / f"{tenant_id.lower()}{suffix}.json" for suffix in ("", ".complete"))
        if not last.exists():
            return 0
        if not complete.exists():
            last.unlink()
            return 1
        body = complete.read_bytes()
        if last.read_bytes() == body:
            return 0
        replace_file(last, body)
        return 1


async def collect(access: GraphAccess, tenant_id: str, archive: SnapshotArchive, now: datetime,
                  reviewers: Iterable[str] = ()) -> TenantSnapshot:
    """One tenant, compared with its last complete snapshot, kept in the archive."""
    client = access.client_for(tenant_id)
    try:
        snapshot = await collect_tenant(client, tenant_id, now=now, previous=archive.last(tenant_id, complete=True),
                                        reviewers=reviewers)
    finally:
        await close_client(client)
    if access.arm_base_url:
        snapshot = with_azure(snapshot, await _read_azure(access, tenant_id))
    archive.keep(snapshot)
    return snapshot


def directory_audit_reader(access: GraphAccess, tenant_id: str) -> Callable[[datetime], Awaitable[list[dict[str, Any]]]]:
    """The change watch's reader of the tenant's directory audit log: a client per read, closed after it (a read
    every few minutes; an idle connection pool between them would only go stale)."""

    async def read(since: datetime) -> list[dict[str, Any]]:
        client = access.client_for(tenant_id)
        try:
            return await read_directory_audits(GraphReader(client), since)
        finally:
            await close_client(client)

    return read


async def _read_azure(access: GraphAccess, tenant_id: str) -> AzureView:
    """The tenant's Azure side (Entra's log exports) with the same app, signed in for ARM."""
    credential = access.credentials.for_tenant(tenant_id).token_credential()
    reader = arm_reader(credential, access.arm_base_url)
    try:
        return await collect_azure(reader)
    finally:
        await reader.close()
        await credential.close()


async def collect_all_customers(access: GraphAccess, partner_tenant_id: str, archive: SnapshotArchive, now: datetime,
                                progress: Callable[[int, int, str], None] | None = None) -> CollectionRun:
    """A CSP partner: every customer tenant reached through GDAP, with the same app signed in to each.

    What the partner tenant itself could not answer (its GDAP listings) is part of the run's problems:
    a 404 there means no customer could even be found, which must never read as "no customers".
    """
    client = access.client_for(partner_tenant_id)
    try:
        partner = await collect_partner(client, partner_tenant_id, now=now)
    finally:
        await close_client(client)
    previous = {tid: snap for tid, _ in partner.customer_tenants() if (snap := archive.last(tid, complete=True))}
    snapshots = await collect_customers(access.client_for, partner, now=now, previous=previous, progress=progress)
    for snapshot in snapshots:
        archive.keep(snapshot)
    return CollectionRun.of(snapshots, partner)


@dataclass(frozen=True)
class CollectionRun:
    """The tenants one run collected and, one line each, what it could not read (tenant, source, HTTP status).

    ``outcome`` is what the operator's exit code says: ``complete``; ``incomplete`` when some source or
    tenant could not be read; ``failed`` when nothing was read at all (a total outage, or a partner whose
    GDAP relationships could not be listed, so no customer could be reached).
    """

    snapshots: tuple[TenantSnapshot, ...]
    problems: tuple[str, ...]
    outcome: Literal["complete", "incomplete", "failed"]
    note: str = ""  # something worth saying that is not a failure (a partner with no GDAP customer)

    @classmethod
    def of(cls, snapshots: Iterable[TenantSnapshot], partner: PartnerView | None = None) -> CollectionRun:
        tenants = tuple(snapshots)
        problems = [f"{named_tenant(s.tenant_name, s.tenant_id)}: {entry}" for s in tenants for entry in s.missing]
        read_nothing = bool(tenants) and all(nothing_read(s) for s in tenants)
        note = ""
        if partner is not None:
            problems[:0] = [f"partner {named_tenant(partner.tenant_name, partner.tenant_id)}: {entry}" for entry in partner.missing]
            listed = not any(entry.startswith("delegatedAdminRelationships:") for entry in partner.missing)
            read_nothing = read_nothing or (not tenants and not listed)
            if not tenants and listed:
                note = f"{named_tenant(partner.tenant_name, partner.tenant_id)} has no customer reachable through an active GDAP relationship"
        outcome: Literal["complete", "incomplete", "failed"] = (
            "failed" if read_nothing else "incomplete" if problems else "complete"
        )
        return cls(tenants, tuple(problems), outcome, note)


def named_tenant(name: str, tenant_id: str) -> str:
    return tenant_id if not name or name == tenant_id else f"{name} ({tenant_id})"


def nothing_read(snapshot: TenantSnapshot) -> bool:
    """Collections failed and not one object was read: a total outage, not a tenant without admins."""
    if not snapshot.missing:
        return False
    body = snapshot_to_dict(snapshot)
    return not any(body.get(key) for key in collection_keys())
