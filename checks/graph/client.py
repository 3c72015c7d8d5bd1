"""Credentials and a configured ``GraphServiceClient``: the one place that knows how accessbot talks to Graph.

Top-level throttling (429) and outages (503/504) are retried by kiota's own ``RetryHandler``, which honours
``Retry-After``; we only configure it (how many retries, how long a backoff may grow) rather than write a
second retry loop. Requests inside a ``$batch`` are not seen by that handler, so ``batching.py`` re-sends
them with the same ``RetrySettings``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import weakref
from dataclasses import dataclass, field
from enum import StrEnum, auto
from pathlib import Path
from typing import Any

import httpx
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import (
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import RetryHandler
from kiota_http.middleware.options import RetryHandlerOption, UrlReplaceHandlerOption
from msgraph import GraphServiceClient
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as sdk_middleware_options
from msgraph_core import GraphClientFactory

GRAPH_SCOPES = ("https://graph.microsoft.com/.default",)
GRAPH_V1 = "https://graph.microsoft.com/v1.0"

# What graph_client opened for each client, to close it again: kiota's adapter offers no close of its own,
# and msgraph-core's AsyncGraphTransport does not close the transport it wraps (closing the httpx client
# alone leaves its connection pool open), so the wrapped transports are kept here and closed too.
_OPENED: weakref.WeakKeyDictionary[
    GraphServiceClient, tuple[httpx.AsyncClient, list[httpx.AsyncBaseTransport], AsyncTokenCredential | None]
] = weakref.WeakKeyDictionary()


class CredentialKind(StrEnum):
    """How the app proves who it is to Entra ID; chosen by the operator in config (the lower-case names)."""

    CLIENT_SECRET = auto()
    CERTIFICATE = auto()
    MANAGED_IDENTITY = auto()
    DEFAULT = auto()  # DefaultAzureCredential: environment, workload identity, managed identity, Azure CLI...
    ACCESS_TOKEN = auto()  # a token already obtained, e.g. `az account get-access-token`: one-off scans


@dataclass(frozen=True)
class GraphCredentials:
    """The app registration used to read one tenant. ``client_secret`` never appears in repr or logs."""

    kind: CredentialKind
    tenant_id: str
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    certificate_path: Path | None = None
    access_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", CredentialKind(self.kind))
        if not self.tenant_id.strip():
            raise ValueError("Graph credentials need the tenant id to read")
        needs_app = self.kind in (CredentialKind.CLIENT_SECRET, CredentialKind.CERTIFICATE)
        if needs_app and not self.client_id.strip():
            raise ValueError(f"{self.kind.value} credentials need the app's client id")
        if self.kind is CredentialKind.CLIENT_SECRET and not self.client_secret:
            raise ValueError("client_secret credentials need the secret")
        if self.kind is CredentialKind.CERTIFICATE and self.certificate_path is None:
            raise ValueError("certificate credentials need the path of a PEM or PKCS12 certificate with its key")
        if self.kind is CredentialKind.ACCESS_TOKEN and not self.access_token:
            raise ValueError("access_token credentials need the token")

    def for_tenant(self, tenant_id: str) -> GraphCredentials:
        """The same app signing in to another tenant: how a CSP partner reaches each GDAP customer."""
        return dataclasses.replace(self, tenant_id=tenant_id)

    def token_credential(self) -> AsyncTokenCredential:
        """The azure-identity credential for this configuration (async, as kiota awaits tokens)."""
        if self.kind is CredentialKind.CLIENT_SECRET:
            return ClientSecretCredential(self.tenant_id, self.client_id, self.client_secret)
        if self.kind is CredentialKind.CERTIFICATE:
            return CertificateCredential(self.tenant_id, self.client_id, certificate_path=str(self.certificate_path))
        if self.kind is CredentialKind.MANAGED_IDENTITY:
            return ManagedIdentityCredential(client_id=self.client_id or None)
        if self.kind is CredentialKind.ACCESS_TOKEN:
            return AccessTokenCredential(self.access_token)
        return DefaultAzureCredential(
            managed_identity_client_id=self.client_id or None, additionally_allowed_tenants=[self.tenant_id]
        )


class AccessTokenCredential:
    """An async token credential handing out one token obtained elsewhere. It cannot renew it: when it
    expires (its ``exp`` claim, or an hour for an opaque token), Graph answers 401 and the run says so."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.expires_on = _expiry(token)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, self.expires_on)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> AccessTokenCredential:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


def _expiry(token: str) -> int:
    try:
        payload = token.split(".")[1]
        return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return int(time.time()) + 3600


def token_roles(token: str) -> frozenset[str]:
    """The application permissions (``roles`` claim) an app-only Graph token carries: what was granted."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return frozenset()
    return frozenset(claims.get("roles") or ())


@dataclass(frozen=True)
class RetrySettings:
    """How hard to retry throttled or unavailable requests, for kiota (top level) and for batch items.

    A ``Retry-After`` from Graph is always honoured as given (up to ``max_retry_after`` inside batches);
    without one the wait is ``backoff_factor * 2**(attempt-1)`` plus ``delay``, capped at ``backoff_max``.
    """

    max_retries: int = 5
    delay: float = 0.0
    backoff_factor: float = 0.5
    backoff_max: float = 60.0
    max_retry_after: float = 180.0

    def backoff(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (1-based) when Graph gave no Retry-After."""
        return min(self.backoff_max, self.backoff_factor * 2 ** (attempt - 1) + self.delay)


DEFAULT_RETRY = RetrySettings()


def graph_client(
    credentials: GraphCredentials | AsyncTokenCredential,
    base_url: str | None = None,
    *,
    retry: RetrySettings = DEFAULT_RETRY,
    timeout: float = 60.0,
) -> GraphServiceClient:
    """A Graph v1.0 client with accessbot's retry and timeout settings.

    ``base_url`` replaces ``https://graph.microsoft.com/v1.0``, e.g. with a local fake server
    (kiota sends the bearer token over plain http only to localhost).
    """
    owned = isinstance(credentials, GraphCredentials)
    credential = credentials.token_credential() if isinstance(credentials, GraphCredentials) else credentials
    auth = AzureIdentityAuthenticationProvider(credential, scopes=list(GRAPH_SCOPES))
    http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)), http2=True)
    options = dict(sdk_middleware_options)
    options[RetryHandlerOption.get_key()] = RetryHandlerOption(
        delay=retry.delay, max_retries=retry.max_retries, should_retry=retry.max_retries > 0
    )
    options[UrlReplaceHandlerOption.get_key()] = sdk_middleware_options[UrlReplaceHandlerOption.get_key()]
    middleware = KiotaClientFactory.get_default_middleware(options)
    for handler in middleware:
        if isinstance(handler, RetryHandler):
            handler.backoff_factor = retry.backoff_factor
            handler.backoff_max = retry.backoff_max  # type: ignore[assignment]  # kiota types it int, uses it as a number
    middleware.append(GraphClientFactory._get_telemetry_handler(options))
    http.base_url = httpx.URL(base_url or GRAPH_V1)
    transports = [http._transport, *(t for t in http._mounts.values() if t is not None)]
    http = GraphClientFactory.create_with_custom_middleware(middleware, client=http)
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = base_url or GRAPH_V1
    client = GraphServiceClient(request_adapter=adapter)
    _OPENED[client] = (http, transports, credential if owned else None)
    return client


async def close_client(client: GraphServiceClient) -> None:
    """Close the connections (and the credential, if ``graph_client`` made it) of a client: a CSP
    partner opens one client per customer tenant, and leaving them open leaks sockets."""
    opened = _OPENED.pop(client, None)
    if opened is None:
        return
    http, transports, credential = opened
    await http.aclose()
    for transport in transports:
        await transport.aclose()
    if credential is not None:
        await credential.close()


__all__ = ["DEFAULT_RETRY", "GRAPH_SCOPES", "CredentialKind", "GraphCredentials", "RetrySettings", "close_client", "graph_client"]
