"""Azure Resource Manager through the Azure SDK's own pipeline (authentication, retries honouring
Retry-After), keeping ARM's JSON so a snapshot keeps ARM's shapes as it keeps Graph's.

Three traps (docs/dependency-notes.md#azure-resource-manager-azure-mgmt):
- azure-mgmt-resource 26 no longer ships ``SubscriptionClient``: it is ``azure.mgmt.resource.subscriptions``
  from the separate package azure-mgmt-resource-subscriptions.
- The ARM clients' bearer-token policy refuses plain http ("Bearer token authentication is not permitted
  for non-TLS protected (non-https) URLs") unless each call says ``enforce_https=False``: done here only
  for a local ARM (127.0.0.1 or localhost, the fakes of the tests), never for a real endpoint.
- azure-mgmt-authorization's msrest models and azure-mgmt-resource-subscriptions' hybrid models give ARM's
  JSON back in two different ways (``_wire``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.rest import HttpRequest
from azure.mgmt.authorization.aio import AuthorizationManagementClient
from azure.mgmt.resource.subscriptions.aio import SubscriptionClient

ARM_URL = "https://management.azure.com"
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class ArmError(Exception):
    """ARM refused or failed a read: ``status`` (0 when no answer came), ARM's error ``code`` and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status, self.code, self.message = status, code, message

    def describe(self) -> str:
        return f"{self.status} {self.code}" if self.status else self.code

    @property
    def refused(self) -> bool:
        """No permission (or no Azure access at all), as opposed to a fault worth retrying next time."""
        return self.status in (401, 403)


@dataclass
class ArmReader:
    """One ARM session: a ``SubscriptionClient`` whose pipeline every raw read goes through, and the
    credential and pipeline options for the per-subscription ``AuthorizationManagementClient``s."""

    client: SubscriptionClient
    base_url: str
    credential: AsyncTokenCredential
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def call_options(self) -> dict[str, Any]:
        return {"enforce_https": False} if urlsplit(self.base_url).hostname in _LOCAL_HOSTS else {}

    async def get(self, path_or_url: str) -> dict[str, Any]:
        """One GET of a path (``/providers/...?api-version=...``) or of a ``nextLink``; ARM's JSON answer."""
        try:
            response = await self.client.send_request(HttpRequest("GET", path_or_url), **self.call_options)
            response.raise_for_status()
            body = response.json()
        except HttpResponseError as failed:
            raise _arm_error(failed) from failed
        except AzureError as failed:  # no answer: connection refused, timeout
            raise ArmError(0, type(failed).__name__, str(failed)) from failed
        except ValueError as bad:
            raise ArmError(0, "InvalidJson", str(bad)) from bad
        if not isinstance(body, dict):
            raise ArmError(0, "InvalidJson", "the answer is not a JSON object")
        return body

    async def list_all(self, path: str) -> list[dict[str, Any]]:
        """Every item of an ARM list, following ``nextLink`` to the last page."""
        return [item async for item in self.pages(path)]

    async def pages(self, path: str) -> AsyncIterator[dict[str, Any]]:
        link: str | None = path
        while link:
            body = await self.get(link)
            for item in body.get("value") or []:
                if isinstance(item, dict):
                    yield item
            link = body.get("nextLink")

    async def subscriptions(self) -> list[dict[str, Any]]:
        """Every subscription the app can see, in ARM's JSON (azure-mgmt-resource-subscriptions pages it)."""
        return [_wire(s) async for s in self._sdk(self.client.subscriptions.list)]

    async def authorization(self, subscription_id: str, read: str, scope: str) -> list[dict[str, Any]]:
        """One azure-mgmt-authorization listing at ``scope`` (``role_assignments``, ``role_definitions``,
        ``role_eligibility_schedule_instances``), each item in ARM's JSON; nextLink is followed by the SDK."""
        async with AuthorizationManagementClient(self.credential, subscription_id, base_url=self.base_url.rstrip("/"),
                                                 **self.options) as client:
            operations = getattr(client, read)
            listing = operations.list if read == "role_definitions" else operations.list_for_scope
            return [_wire(item) async for item in self._sdk(listing, scope)]

    async def _sdk(self, listing: Any, *args: Any) -> AsyncIterator[Any]:
        try:
            async for item in listing(*args, **self.call_options):
                yield item
        except HttpResponseError as failed:
            raise _arm_error(failed) from failed
        except AzureError as failed:
            raise ArmError(0, type(failed).__name__, str(failed)) from failed

    async def close(self) -> None:
        await self.client.close()


def _wire(model: Any) -> dict[str, Any]:
    """A model back in ARM's JSON. azure-mgmt-authorization 4 has msrest models (``serialize``; their
    ``as_dict`` would flatten ``properties`` into snake_case); azure-mgmt-resource-subscriptions 1.0 has the
    new hybrid models, mappings over the JSON itself (``as_dict``, no ``serialize``)."""
    if hasattr(model, "serialize"):
        return model.serialize(keep_readonly=True)
    return model.as_dict()


def _arm_error(failed: HttpResponseError) -> ArmError:
    status = failed.status_code or 0
    code, message = "Error", str(failed.message or failed)
    try:
        error = (failed.response.json() or {}).get("error") or {} if failed.response is not None else {}
        code, message = error.get("code") or code, error.get("message") or message
    except (ValueError, AttributeError):
        pass
    return ArmError(status, code, message)


def arm_reader(credential: AsyncTokenCredential, base_url: str = ARM_URL, *, retry_total: int = 4,
               retry_backoff_factor: float = 0.8, retry_backoff_max: float = 60.0, timeout: float = 60.0) -> ArmReader:
    """An ARM session. azure-core's retry policy retries 429 and 5xx, honouring Retry-After; no second
    retry loop is added on top of it."""
    options: dict[str, Any] = dict(
        retry_total=retry_total, retry_backoff_factor=retry_backoff_factor, retry_backoff_max=retry_backoff_max,
        connection_timeout=timeout, read_timeout=timeout,
    )
    client = SubscriptionClient(credential, base_url=base_url.rstrip("/"), **options)
    return ArmReader(client, base_url, credential, options)


__all__ = ["ARM_URL", "ArmError", "ArmReader", "arm_reader"]
