"""A local Azure Resource Manager speaking ARM's wire format over aiohttp, for one tenant.

What it reproduces, because the reader depends on each: lists as ``{"value": [...], "nextLink": ...}``
with ``nextLink`` an absolute URL carrying a ``$skiptoken`` (pages of ``page_size``, whatever the
client asks); ``api-version`` required on every request (400 ``MissingApiVersionParameter`` without);
ARM's error envelope ``{"error": {"code", "message"}}``; a bearer token on every request (401
``AuthenticationFailed`` without). Faults are injected per path pattern: 429 with ``Retry-After``, 5xx,
and 403 ``AuthorizationFailed`` (an app without the role). A DELETE of an item removes it (200), and of
something absent answers 204, as ARM does for role assignments. Requests are counted by path.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import urlencode

from aiohttp import web

ENTRA_DIAGNOSTIC_SETTINGS = "/providers/microsoft.aadiam/diagnosticSettings"


@dataclass
class ArmFault:
    pattern: re.Pattern[str]
    status: int
    times: int | None = None
    retry_after: str | None = None
    code: str = "InternalServerError"
    fired: int = 0

    def applies(self, path: str) -> bool:
        return bool(self.pattern.search(path)) and (self.times is None or self.fired < self.times)


SUBSCRIPTIONS = "/subscriptions"
MANAGEMENT_GROUPS = "/providers/Microsoft.Management/managementGroups"


@dataclass
class ArmTenant:
    """What ARM holds for the tenant: lists by path, in any case (``/subscriptions``,
    ``/providers/microsoft.aadiam/diagnosticSettings``, ``/subscriptions/{id}/providers/Microsoft.Authorization/
    roleAssignments``, ...). A tenant without subscriptions, management groups or log exports lists none."""

    lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lists = {path.lower(): items for path, items in self.lists.items()}
        for path in (SUBSCRIPTIONS, MANAGEMENT_GROUPS, ENTRA_DIAGNOSTIC_SETTINGS):
            self.lists.setdefault(path.lower(), [])

    def subscription(self, subscription: dict[str, Any], **rbac: list[dict[str, Any]]) -> None:
        """A subscription with its ``roleAssignments``, ``roleEligibilityScheduleInstances``, ``roleDefinitions``."""
        self.lists[SUBSCRIPTIONS.lower()].append(subscription)
        base = f"/subscriptions/{subscription['subscriptionId']}/providers/Microsoft.Authorization"
        for name in ("roleAssignments", "roleEligibilityScheduleInstances", "roleDefinitions"):
            self.lists[f"{base}/{name}".lower()] = rbac.get(name, [])


class FakeArm:
    def __init__(self, tenant: ArmTenant, page_size: int = 100) -> None:
        self.tenant = tenant
        self.page_size = page_size
        self.faults: list[ArmFault] = []
        self.requests: Counter[str] = Counter()
        self.sent: Counter[int] = Counter()
        self.deleted: list[str] = []  # every DELETE path, in order
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def fail(self, pattern: str, status: int, *, times: int | None = None, retry_after: str | None = None,
             code: str | None = None) -> ArmFault:
        default = {429: "TooManyRequests", 403: "AuthorizationFailed", 503: "ServiceUnavailable"}.get(status, "Error")
        fault = ArmFault(re.compile(pattern), status, times, retry_after, code or default)
        self.faults.append(fault)
        return fault

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        self.requests[path] += 1
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        if "api-version" not in request.query:
            return _error(400, "MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required for all requests.")
        for fault in self.faults:
            if fault.applies(path):
                fault.fired += 1
                self.sent[fault.status] += 1
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                return _error(fault.status, fault.code, f"Injected {fault.status}", headers)
        if request.method == "DELETE":
            return self._delete(path)
        items = self.tenant.lists.get(path.rstrip("/").lower())
        if items is None or request.method != "GET":
            return _error(404, "ResourceNotFound" if request.method == "GET" else "MethodNotAllowed",
                          f"The resource '{path}' was not found.")
        start = int(request.query.get("$skiptoken") or 0)
        body: dict[str, Any] = {"value": items[start:start + self.page_size]}
        if start + self.page_size < len(items):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(start + self.page_size)
            body["nextLink"] = f"{self.url}{path}?{urlencode(query)}"
        return web.json_response(body)

    def _delete(self, path: str) -> web.Response:
        """ARM's DELETE of a role assignment: 200 with what was deleted, 204 when there is no such assignment."""
        self.deleted.append(path)
        for items in self.tenant.lists.values():
            found = _deleted(items, path)
            if found is not None:
                return web.json_response(found)
        return web.Response(status=204)


def _deleted(items: list[dict[str, Any]], path: str) -> dict[str, Any] | None:
    for item in items:
        if (item.get("id") or "").lower() == path.lower():
            items.remove(item)
            return item
    return None


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


__all__ = ["ENTRA_DIAGNOSTIC_SETTINGS", "MANAGEMENT_GROUPS", "SUBSCRIPTIONS", "ArmFault", "ArmTenant", "FakeArm"]
