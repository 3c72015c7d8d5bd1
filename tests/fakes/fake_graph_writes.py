"""The write side of a local Microsoft Graph v1.0, as remediation uses it, speaking Graph's wire format.

What it reproduces, because the remediation worker depends on each: a DELETE removes the object, and a
second DELETE of it answers 404 ``Request_ResourceNotFound`` (what a job resumed after a crash meets);
scripted answers per path (503 with Retry-After, then the real answer; or a lasting 403) in Graph's error
envelope; and a held path, whose request arrives (and takes effect) but is answered only when the test
releases it — how a test proves a click answered before any Graph call finished.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable, Self

from aiohttp import web

_CODES = {400: "BadRequest", 403: "Authorization_RequestDenied", 404: "Request_ResourceNotFound",
          429: "TooManyRequests", 503: "serviceNotAvailable", 504: "UnknownError"}


@dataclass
class Held:
    """A request held at the server: ``arrived`` once it got there, answered after ``release``."""

    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class FakeGraphWrites:
    """Records each call (method, path, body, headers) and runs the ``effects`` a call has elsewhere;
    ``answers`` are scripted statuses per path, used up in order before the real answer; ``refuse`` is a
    lasting refusal per path."""

    calls: list[tuple[str, str, Any, dict[str, str]]] = field(default_factory=list)
    tenants: list[str] = field(default_factory=list)  # the tenant of each call made through /{tenant}/v1.0/…
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)
    answers: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)  # (status, Retry-After)
    held: dict[str, Held] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    effects: list[Callable[[str, str], None]] = field(default_factory=list)  # what a call changes elsewhere
    url: str = ""
    _runner: web.AppRunner | None = None

    def hold(self, path: str) -> Held:
        self.held[path] = Held()
        return self.held[path]

    def answer(self, path: str, *statuses: int, retry_after: str | None = None) -> None:
        self.answers.setdefault(path, []).extend((status, retry_after) for status in statuses)

    def calls_to(self, path: str) -> list[str]:
        return [method for method, called, _, _ in self.calls if called == path]

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/v1.0/{tail:.*}", self._handle)
        app.router.add_route("*", "/{tenant}/v1.0/{tail:.*}", self._handle)  # per tenant, as a partner reaches customers
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/v1.0"
        return self

    async def stop(self) -> None:
        for held in self.held.values():
            held.release()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body = await request.json() if request.can_read_body else None
        self.calls.append((request.method, path, body, dict(request.headers)))
        if "tenant" in request.match_info:
            self.tenants.append(request.match_info["tenant"])
        for effect in self.effects:
            effect(request.method, path)
        if path in self.refuse:
            status, code = self.refuse[path]
            return _error(status, code)
        scripted = self.answers.get(path)
        if scripted:
            status, retry_after = scripted.pop(0)
            return _error(status, _CODES.get(status, "UnknownError"), retry_after)
        if request.method == "DELETE":
            if path in self.removed:
                return _error(404, "Request_ResourceNotFound")
            self.removed.add(path)  # it takes effect on arrival, whether or not the answer gets back
        held = self.held.get(path)
        if held is not None:
            held.arrived.set()
            await held.released.wait()
        if request.method == "DELETE":
            return web.Response(status=204)
        return web.json_response({"id": "request-1", "status": "Provisioned", **(body or {})}, status=201)


def _error(status: int, code: str, retry_after: str | None = None) -> web.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return web.json_response(
        {"error": {"code": code, "message": "Insufficient privileges to complete the operation." if status == 403
                   else f"{code} ({status})"}},
        status=status, headers=headers,
    )


__all__ = ["FakeGraphWrites", "Held"]
