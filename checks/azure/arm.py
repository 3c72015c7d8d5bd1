"""Azure Resource Manager through the Azure SDK's own pipeline (authentication, retries honouring
Retry-After), reading raw ARM JSON so a snapshot keeps ARM's shapes as it keeps Graph's.

Two traps (docs/dependency-notes.md#azure-resource-manager-azure-mgmt):
- azure-mgmt-resource 26 no longer ships ``SubscriptionClient``: it is ``azure.mgmt.resource.subscriptions``
  from the separate package azure-mgmt-resource-subscriptions.
- The ARM clients' bearer-token policy refuses plain http ("Bearer token authentication is not permitted
  for non-TLS protected (non-https) URLs") unless each call says ``enforce_https=False``: done here only
  for a local ARM (127.0.0.1 or localhost, the fakes of the tests), never for a real endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.rest import HttpRequest
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
    """One ARM session: a ``SubscriptionClient`` whose pipeline every read goes through."""

    client: SubscriptionClient
    base_url: str
    requests: int = 0

    @property
    def call_options(self) -> dict[str, Any]:
        return {"enforce_https": False} if urlsplit(self.base_url).hostname in _LOCAL_HOSTS else {}

    async def get(self, path_or_url: str) -> dict[str, Any]:
        """One GET of a path (``/providers/...?api-version=...``) or of a ``nextLink``; ARM's JSON answer."""
        self.requests += 1
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

    async def close(self) -> None:
        await self.client.close()


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
    client = SubscriptionClient(
        credential, base_url=base_url.rstrip("/"), retry_total=retry_total, retry_backoff_factor=retry_backoff_factor,
        retry_backoff_max=retry_backoff_max, connection_timeout=timeout, read_timeout=timeout,
    )
    return ArmReader(client, base_url)


__all__ = ["ARM_URL", "ArmError", "ArmReader", "arm_reader"]
