"""A local Microsoft Graph v1.0 for generated tenants, speaking Graph's wire format over aiohttp.

What it reproduces, because the collector depends on each: collections as ``{"value": [...]}`` paged
with ``@odata.nextLink`` (``$top``, ``$skiptoken``) — every list, and never more than ``page_size`` items
to a page whatever ``$top`` asks, as Graph pages server-side, so a reader that trusts ``$top`` to avoid
paging loses items here as it would there; ``$select`` (users without it return only default
properties; ``signInActivity`` needs a premium tenant); ``$expand=principal`` on role listings (a
partner's group living in another tenant expands to what Graph shows of it, its ``organizationId`` and
name, or to null, and a direct lookup of it answers 404 ``Request_ResourceNotFound``); ``$batch``
of at most 20 with inner status/headers/body; the email activity report as a 302 to a CSV download;
Graph's error envelope; PIM for Groups' schedule instances, only when filtered on a ``groupId`` or ``principalId`` (as Graph
requires), with ``$expand=principal``; the directory audit log filtered by ``activityDateTime ge``, newest first, refused
with 403 ``Authorization_RequestDenied`` to a tenant without the licence. Faults are injected per path pattern: 429 with Retry-After and 503 (at the top
level, inside batches, or both), slow answers, and 403 for licence-gated data in non-premium tenants.
Every request is counted by route so tests can assert how the collector spent its requests.

Several tenants can be served at once: ``base_url(tenant_id)`` is ``http://127.0.0.1:PORT/{tenant}/v1.0``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from aiohttp import web

from tests.fakes.tenant_generator import GeneratedTenant

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?:-[0-9a-fA-F-]{36})?")
_USER_DEFAULT = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation",
    "preferredLanguage", "surname", "userPrincipalName", "id",
)
_LICENCE = ("Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Neither tenant is B2C or tenant doesn't have premium license")
_CSV_COLUMNS = (
    ("Report Refresh Date", "reportRefreshDate"), ("User Principal Name", "userPrincipalName"),
    ("Display Name", "displayName"), ("Is Deleted", "isDeleted"), ("Deleted Date", "deletedDate"),
    ("Last Activity Date", "lastActivityDate"), ("Send Count", "sendCount"), ("Receive Count", "receiveCount"),
    ("Read Count", "readCount"), ("Meeting Created Count", "meetingCreatedCount"),
    ("Meeting Interacted Count", "meetingInteractedCount"), ("Assigned Products", "assignedProducts"),
    ("Report Period", "reportPeriod"),
)
MAX_BATCH = 20
_T = "#microsoft.graph."
# The typed method endpoints under users/{id}/authentication and the @odata.type each lists.
_TYPED_METHODS = {
    "fido2Methods": _T + "fido2AuthenticationMethod",
    "microsoftAuthenticatorMethods": _T + "microsoftAuthenticatorAuthenticationMethod",
    "windowsHelloForBusinessMethods": _T + "windowsHelloForBusinessAuthenticationMethod",
    "passwordMethods": _T + "passwordAuthenticationMethod",
}
# Graph gives every account's password method this id.
_PASSWORD_METHOD_ID = "28c10230-6103-485e-b985-444c60001490"


@dataclass
class Fault:
    """Answer requests whose path matches ``pattern`` with ``status`` (``times`` times, or always), or
    delay them by ``delay`` seconds. ``where``: ``top`` (plain requests), ``batch`` (inside $batch), ``any``."""

    pattern: re.Pattern[str]
    status: int = 503
    times: int | None = None
    retry_after: str | None = None
    where: str = "any"
    delay: float = 0.0
    code: str | None = None
    tenant: str | None = None  # only this tenant's requests (Graph throttles per app and tenant)
    fired: int = 0

    def applies(self, path: str, where: str, tenant_id: str) -> bool:
        if self.where not in ("any", where) or not self.pattern.search(path):
            return False
        if self.tenant is not None and self.tenant != tenant_id:
            return False
        return self.times is None or self.fired < self.times


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def route_of(method: str, path: str) -> str:
    """A request's route with ids replaced, e.g. ``GET /users/{id}/authentication/phoneMethods``."""
    return f"{method} {_GUID.sub('{id}', path)}"


class FakeGraph:
    """The server. ``tenants`` are served by id; the first one also answers at ``/v1.0``."""

    def __init__(self, *tenants: GeneratedTenant, page_size: int = 100) -> None:
        self.tenants = {t.tenant_id: t for t in tenants}
        self.default = tenants[0].tenant_id
        self.page_size = page_size
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()  # top-level requests by route
        self.by_tenant: Counter[tuple[str, str]] = Counter()  # top-level requests by (tenant id, route)
        self.batched: Counter[str] = Counter()  # requests inside $batch by route
        self.sent: Counter[tuple[str, int]] = Counter()  # (where, status) of injected faults
        self.largest_batch = 0
        self.in_flight = 0
        self.most_in_flight = 0  # the most requests the server was answering at one moment
        self.tokens: set[str] = set()
        # Graph throttles per app and tenant: with a limit set, each tenant has a token bucket of ``burst``
        # refilled at ``per_second``; a request (a $batch costs one per item) beyond it gets 429 + Retry-After.
        self.tenant_limit: tuple[float, float, str] | None = None
        self._buckets: dict[str, tuple[float, float]] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def base_url(self, tenant_id: str | None = None) -> str:
        return f"{self.url}/{tenant_id or self.default}/v1.0"

    # ---- faults and counts -----------------------------------------------------------------------

    def fail(self, pattern: str, status: int = 503, *, times: int | None = None, retry_after: str | None = None,
             where: str = "any", code: str | None = None, tenant: str | None = None) -> Fault:
        fault = Fault(re.compile(pattern), status, times, retry_after, where, code=code, tenant=tenant)
        self.faults.append(fault)
        return fault

    def throttle(self, pattern: str, *, times: int | None = 1, retry_after: str = "1", where: str = "any",
                 tenant: str | None = None) -> Fault:
        return self.fail(pattern, 429, times=times, retry_after=retry_after, where=where, tenant=tenant)

    def slow(self, pattern: str, seconds: float, *, where: str = "top", tenant: str | None = None) -> Fault:
        fault = Fault(re.compile(pattern), 200, None, None, where, delay=seconds, tenant=tenant)
        self.faults.append(fault)
        return fault

    def limit_per_tenant(self, per_second: float, burst: float, retry_after: str = "1") -> None:
        self.tenant_limit = (per_second, burst, retry_after)

    def _over_limit(self, tenant_id: str, cost: int) -> Reply | None:
        if self.tenant_limit is None:
            return None
        per_second, burst, retry_after = self.tenant_limit
        now = time.monotonic()
        tokens, then = self._buckets.get(tenant_id, (burst, now))
        tokens = min(burst, tokens + (now - then) * per_second)
        if tokens < cost:
            self._buckets[tenant_id] = (tokens, now)
            self.sent[("top", 429)] += 1
            return Reply(429, _error("TooManyRequests", "Too many requests for this tenant"), {"Retry-After": retry_after})
        self._buckets[tenant_id] = (tokens - cost, now)
        return None

    def stats(self) -> dict[str, int]:
        """What a bench in another process reads at ``GET /_stats``."""
        return {"requests": self.total_requests(), "batches": self.requests["POST /$batch"],
                "batched_items": sum(self.batched.values()), "throttled": self.sent[("top", 429)] + self.sent[("batch", 429)],
                "tenants": len(self.tenants), "cpu_ms": int(time.process_time() * 1000)}

    def total_requests(self) -> int:
        return sum(self.requests.values())

    def tenant_requests(self, tenant_id: str, route: str | None = None) -> int:
        """Top-level requests one tenant answered (of one route, e.g. ``GET /organization``)."""
        return sum(n for (tid, r), n in self.by_tenant.items() if tid == tenant_id and route in (None, r))

    def reset_counts(self) -> None:
        self.requests.clear()
        self.by_tenant.clear()
        self.batched.clear()
        self.sent.clear()
        self.largest_batch = 0
        self.most_in_flight = 0

    # ---- HTTP ------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.split("/")
        if len(parts) > 3 and parts[1] == "_download":
            return self._download(parts[2])
        if request.path == "/_stats":
            return _json(Reply(200, self.stats()))
        if request.path == "/_reset":
            self.reset_counts()
            return _json(Reply(200, {}))
        if request.path == "/_limit":  # per_second=0 switches the per-tenant limit off
            per_second = float(request.query.get("per_second", "0"))
            self.tenant_limit = None if per_second <= 0 else (
                per_second, float(request.query.get("burst", per_second)), request.query.get("retry_after", "1"))
            self._buckets.clear()
            return _json(Reply(200, {}))
        if parts[1] == "v1.0":
            tenant_id, rest = self.default, "/" + "/".join(parts[2:])
        elif len(parts) > 2 and parts[2] == "v1.0":
            tenant_id, rest = parts[1], "/" + "/".join(parts[3:])
        else:
            return _json(Reply(404, _error("Request_ResourceNotFound", f"No route {request.path}")))
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or tenant_id not in self.tenants:
            return _json(Reply(401, _error("InvalidAuthenticationToken", "Access token is empty.")))
        self.tokens.add(auth[7:])
        self.requests[route_of(request.method, rest)] += 1
        self.by_tenant[(tenant_id, route_of(request.method, rest))] += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return _json(await self._answer(request, tenant_id, rest))
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, tenant_id: str, rest: str) -> Reply:
        base = f"{self.url}/{tenant_id}/v1.0"
        if request.method == "POST" and rest == "/$batch":
            body = await request.json()
            items = body.get("requests") if isinstance(body, dict) else None
            return (self._over_limit(tenant_id, len(items) if isinstance(items, list) else 1)
                    or await self._fault(rest, "top", tenant_id) or await self._batch(tenant_id, base, body))
        over = self._over_limit(tenant_id, 1)
        if over is not None:
            return over
        if request.method == "GET":
            query = list(parse_qsl(request.query_string, keep_blank_values=True))
            return await self._fault(rest, "top", tenant_id) or self._get(tenant_id, base, rest, query)
        return Reply(405, _error("Request_BadRequest", "Only GET and $batch are served"))

    async def _fault(self, path: str, where: str, tenant_id: str) -> Reply | None:
        for fault in self.faults:
            if fault.applies(path, where, tenant_id):
                fault.fired += 1
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                    continue
                self.sent[(where, fault.status)] += 1
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                code = fault.code or {429: "TooManyRequests", 503: "serviceNotAvailable", 504: "UnknownError"}.get(
                    fault.status, "Forbidden")
                return Reply(fault.status, _error(code, f"Injected {fault.status}"), headers)
        return None

    async def _batch(self, tenant_id: str, base: str, body: Any) -> Reply:
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return Reply(400, _error("BadRequest", "Invalid batch payload format."))
        if len(requests) > MAX_BATCH:
            return Reply(400, _error("BadRequest", f"Maximum of {MAX_BATCH} requests allowed in a batch."))
        ids = [r.get("id") for r in requests]
        if len(set(ids)) != len(ids):
            return Reply(400, _error("BadRequest", "Batch request ids must be unique."))
        self.largest_batch = max(self.largest_batch, len(requests))
        responses = []
        for item in requests:
            split = urlsplit(item.get("url") or "")
            path = "/" + unquote(split.path).lstrip("/")
            self.batched[route_of(item.get("method") or "GET", path)] += 1
            reply = await self._fault(path, "batch", tenant_id)
            if reply is None:
                query = list(parse_qsl(split.query, keep_blank_values=True))
                reply = self._get(tenant_id, base, path, query) if item.get("method") == "GET" else Reply(
                    405, _error("Request_BadRequest", "Only GET is served inside $batch"))
            headers = {"Content-Type": "application/json", **reply.headers}
            responses.append({"id": item["id"], "status": reply.status, "headers": headers, "body": reply.body})
        return Reply(200, {"responses": responses})

    # ---- Graph ------------------------------------------------------------------------------------

    def _get(self, tenant_id: str, base: str, path: str, query: list[tuple[str, str]]) -> Reply:
        tenant = self.tenants[tenant_id]
        q = dict(query)
        select = [s for s in q.get("$select", "").split(",") if s]
        expand = q.get("$expand") == "principal"
        segments = path.strip("/").split("/")
        role_lists = {
            "roleAssignments": tenant.role_assignments,
            "roleEligibilityScheduleInstances": tenant.eligibility_instances,
            "roleAssignmentScheduleInstances": tenant.assignment_instances,
        }
        pim_lists = {
            "eligibilityScheduleInstances": tenant.pim_group_eligibility_instances,
            "assignmentScheduleInstances": tenant.pim_group_assignment_instances,
        }
        gated = not tenant.premium
        match segments:
            case ["organization"]:
                return self._page(base, path, query, tenant.organization, "organization")
            case ["roleManagement", "directory", "roleDefinitions"]:
                return self._page(base, path, query, [_project(d, select) for d in tenant.role_definitions], "roleDefinitions")
            case ["roleManagement", "directory", name] if name in role_lists:
                items = [self._expanded(tenant, item) if expand else dict(item) for item in role_lists[name]]
                return self._page(base, path, query, items, f"roleManagement/directory/{name}")
            case ["directory", "deletedItems", "microsoft.graph.user"]:
                return self._page(base, path, query, [_project(u, select) for u in tenant.deleted_users.values()], "users")
            case ["identityProtection", "riskyUsers"]:
                if gated:
                    return Reply(403, _error(*_LICENCE))
                return self._page(base, path, query, tenant.risky_users, "identityProtection/riskyUsers")
            case ["contracts"]:
                return self._page(base, path, query, tenant.contracts, "contracts")
            case ["policies", "crossTenantAccessPolicy", "partners"]:
                return self._page(base, path, query, tenant.cross_tenant_partners, "policies/crossTenantAccessPolicy/partners")
            case ["servicePrincipals"]:
                sps = [_project(sp, select) for sp in tenant.service_principals.values()]
                return self._page(base, path, query, sps, "servicePrincipals")
            case ["servicePrincipals", sid, "appRoleAssignments"]:
                if sid not in tenant.service_principals:
                    return _not_found(sid)
                return self._page(base, path, query, tenant.app_role_assignments.get(sid, []), "appRoleAssignments")
            case ["servicePrincipals", sid, "oauth2PermissionGrants"]:
                if sid not in tenant.service_principals:
                    return _not_found(sid)
                return self._page(base, path, query, tenant.oauth2_permission_grants.get(sid, []), "oauth2PermissionGrants")
            case ["subscribedSkus"]:
                return self._page(base, path, query, tenant.subscribed_skus, "subscribedSkus")
            case ["reports", "getEmailActivityUserDetail(period='D30')"]:
                return Reply(302, None, {"Location": f"{self.url}/_download/{tenant_id}/EmailActivityUserDetail.csv"})
            case ["reports", "authenticationMethods", "userRegistrationDetails", uid]:
                if gated:
                    return Reply(403, _error(*_LICENCE))
                detail = tenant.registration_details.get(uid)
                return _single(base, "reports/authenticationMethods/userRegistrationDetails/$entity", detail, uid)
            case ["directoryObjects", oid]:
                found = _directory_object(tenant, oid)
                return _single(base, "directoryObjects/$entity", found, oid)
            case ["groups"]:
                wanted = re.fullmatch(r"displayName eq '(.*)'", q.get("$filter", ""))
                groups = [g for g in tenant.groups.values() if not wanted or g.get("displayName") == wanted.group(1)]
                return self._page(base, path, query, [_project(g, select) for g in groups], "groups")
            case ["identityGovernance", "privilegedAccess", "group", name] if name in pim_lists:
                # PIM for Groups refuses a listing not scoped to a group or a principal ($filter with eq).
                scoped = re.fullmatch(r"(groupId|principalId) eq '([^']*)'", q.get("$filter", "").strip())
                if not scoped:
                    return Reply(400, _error("BadRequest", "The request must filter on groupId or principalId."))
                if gated:  # what PIM answers a tenant without Entra ID P2
                    return Reply(400, _error("AadPremiumLicenseRequired", "The tenant needs an AAD Premium 2 license."))
                found = [self._expanded(tenant, i) if expand else dict(i) for i in pim_lists[name]
                         if i[scoped.group(1)] == scoped.group(2)]
                return self._page(base, path, query, found, f"identityGovernance/privilegedAccess/group/{name}")
            case ["groups", gid, "transitiveMembers"]:
                if gid not in tenant.groups:
                    return _not_found(gid)
                members = [_member(tenant, m, select) for m in tenant.group_members.get(gid, [])]
                return self._page(base, path, query, members, "directoryObjects")
            case ["users", "delta"]:
                return self._delta(base, path, query, tenant, "users",
                                   lambda uid: {"id": uid, **_project(tenant.users[uid], select or list(_USER_DEFAULT))})
            case ["groups", "delta"]:
                return self._delta(base, path, query, tenant, "groups", lambda gid: {
                    "id": gid, **_project(tenant.groups[gid], [s for s in select if s != "members"] or ["id", "displayName"]),
                    "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": m}
                                      for m in tenant.group_members.get(gid, [])]})
            case ["users"]:
                by_mail = re.fullmatch(r"mail eq '(.*)'", q.get("$filter", ""))
                wanted_mail = by_mail.group(1).replace("''", "'").lower() if by_mail else None
                users = [u for u in tenant.users.values() if wanted_mail is None or (u.get("mail") or "").lower() == wanted_mail]
                if gated and "signInActivity" in select:
                    return Reply(403, _error(*_LICENCE))
                return self._page(base, path, query, [_project(u, select or list(_USER_DEFAULT)) for u in users], "users")
            case ["users", uid]:
                user = _user(tenant, uid)
                if user is None:
                    return _not_found(uid)
                if gated and "signInActivity" in select:
                    return Reply(403, _error(*_LICENCE))
                return _single(base, "users/$entity", _project(user, select or list(_USER_DEFAULT)), uid)
            case ["users", uid, "manager"]:
                user = _user(tenant, uid)
                if user is None or user["id"] not in tenant.managers:
                    return _not_found(uid)
                manager = _directory_object(tenant, tenant.managers[user["id"]]) or {}
                return _single(base, "directoryObjects/$entity", {"@odata.type": manager["@odata.type"],
                                                                  **_project(manager, select)}, uid)
            case ["users", uid, "authentication", kind] if kind in ("emailMethods", "phoneMethods"):
                if uid not in tenant.users:
                    return _not_found(uid)
                methods = (tenant.email_methods if kind == "emailMethods" else tenant.phone_methods).get(uid, [])
                return self._page(base, path, query, methods, f"users('{uid}')/authentication/{kind}")
            case ["users", uid, "authentication", "methods"]:
                if uid not in tenant.users:
                    return _not_found(uid)
                return self._page(base, path, query, _methods(tenant, uid), f"users('{uid}')/authentication/methods")
            case ["users", uid, "authentication", kind] if kind in _TYPED_METHODS:
                if uid not in tenant.users:
                    return _not_found(uid)
                typed = [{k: v for k, v in m.items() if k != "@odata.type"}
                         for m in _methods(tenant, uid) if m["@odata.type"] == _TYPED_METHODS[kind]]
                return self._page(base, path, query, typed, f"users('{uid}')/authentication/{kind}")
            case ["auditLogs", "signIns"]:
                if gated:
                    return Reply(403, _error(*_LICENCE))
                access = re.fullmatch(r"crossTenantAccessType eq '([^']*)'(?: and createdDateTime ge (\S+))?",
                                      q.get("$filter", ""))
                if access:  # sign-ins into this tenant by people of other tenants (partners, B2B)
                    found = [s for s in tenant.partner_sign_ins if s["crossTenantAccessType"] == access.group(1)
                             and (not access.group(2) or s["createdDateTime"] >= access.group(2))]
                    return self._page(base, path, query, found, "auditLogs/signIns")
                wanted = re.fullmatch(r"userId eq '([^']*)'(?: and createdDateTime ge (\S+))?", q.get("$filter", ""))
                entries = tenant.sign_ins.get(wanted.group(1), []) if wanted else [
                    s for per_user in tenant.sign_ins.values() for s in per_user]
                if wanted and wanted.group(2):  # ISO timestamps in one format compare as text
                    entries = [s for s in entries if s["createdDateTime"] >= wanted.group(2)]
                return self._page(base, path, query, entries, "auditLogs/signIns")
            case ["auditLogs", "directoryAudits"]:
                if gated:  # what Graph answers a tenant whose licence does not expose the log through the API
                    return Reply(403, _error("Authorization_RequestDenied",
                                             "Tenant does not have a SKU required for this operation."))
                since = re.fullmatch(r"activityDateTime ge (\S+)", q.get("$filter", ""))
                if q.get("$filter") and not since:
                    return Reply(400, _error("BadRequest", f"Invalid filter clause: {q['$filter']}"))
                # Graph lists the newest first; ISO timestamps in one format compare as text.
                found = [e for e in reversed(tenant.directory_audits)
                         if not since or e["activityDateTime"] >= since.group(1)]
                return self._page(base, path, query, found, "auditLogs/directoryAudits")
            case ["tenantRelationships", call] if call.startswith("findTenantInformationByTenantId("):
                asked = re.fullmatch(r"findTenantInformationByTenantId\(tenantId='(.*)'\)", call)
                info = tenant.tenant_directory.get(asked.group(1)) if asked else None
                return _single(base, "microsoft.graph.tenantInformation", info, call)
            case ["tenantRelationships", "delegatedAdminRelationships"]:
                return self._page(base, path, query, tenant.delegated_admin_relationships, "delegatedAdminRelationships")
            case ["tenantRelationships", "delegatedAdminRelationships", rid, "accessAssignments"]:
                if rid not in tenant.access_assignments:
                    return _not_found(rid)
                return self._page(base, path, query, tenant.access_assignments[rid], "accessAssignments")
            case ["tenantRelationships", "delegatedAdminCustomers"]:
                return self._page(base, path, query, tenant.delegated_admin_customers, "delegatedAdminCustomers")
        return Reply(400, _error("BadRequest", f"Resource not found for the segment '{segments[-1]}'."))

    def _page(self, base: str, path: str, query: list[tuple[str, str]], items: list[Any], context: str) -> Reply:
        q = dict(query)
        size = min(int(q.get("$top") or self.page_size), self.page_size, 999)
        start = int(q.get("$skiptoken") or 0)
        body: dict[str, Any] = {"@odata.context": f"{base}/$metadata#{context}", "value": items[start : start + size]}
        if start + size < len(items):
            kept = [(k, v) for k, v in query if k != "$skiptoken"] + [("$skiptoken", str(start + size))]
            body["@odata.nextLink"] = f"{base}{path}?{urlencode(kept, quote_via=quote, safe='$,()')}"
        return Reply(200, body)

    def _delta(self, base: str, path: str, query: list[tuple[str, str]], tenant: GeneratedTenant, kind: str,
               shown: Any) -> Reply:
        """A delta round as Graph serves it: without a token every object (paged), with one the objects changed
        since (an object gone is ``@removed``); the last page carries ``@odata.deltaLink`` with a new token."""
        q = dict(query)
        present = tenant.users if kind == "users" else tenant.groups
        if "$deltatoken" in q:
            since = int(q["$deltatoken"])
            ids = list(dict.fromkeys(oid for k, oid in tenant.change_log[since:] if k == kind))
        else:
            ids = list(present)
        items = [shown(oid) if oid in present else {"id": oid, "@removed": {"reason": "changed"}} for oid in ids]
        reply = self._page(base, path, query, items, kind)
        if "@odata.nextLink" not in reply.body:
            kept = [(k, v) for k, v in query if k not in ("$deltatoken", "$skiptoken")]
            kept.append(("$deltatoken", str(len(tenant.change_log))))
            reply.body["@odata.deltaLink"] = f"{base}{path}?{urlencode(kept, quote_via=quote, safe='$,()')}"
        return reply

    def _expanded(self, tenant: GeneratedTenant, item: dict[str, Any]) -> dict[str, Any]:
        principal_id = item["principalId"]
        found = _directory_object(tenant, principal_id) or tenant.foreign_principals.get(principal_id)
        if found is None and principal_id in tenant.deleted_users:
            found = {"@odata.type": "#microsoft.graph.user", **tenant.deleted_users[principal_id]}
        return {**item, "principal": found}

    def _download(self, tenant_id: str) -> web.Response:
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            return web.Response(status=404)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([header for header, _ in _CSV_COLUMNS])
        for row in tenant.email_activity:
            writer.writerow([_csv_cell(row.get(key)) for _, key in _CSV_COLUMNS])
        return web.Response(body=("\ufeff" + out.getvalue()).encode(), content_type="application/octet-stream")


def _methods(tenant: GeneratedTenant, uid: str) -> list[dict[str, Any]]:
    """users/{id}/authentication/methods: the password, then every other method, each with its @odata.type."""
    methods: list[dict[str, Any]] = [{"@odata.type": _T + "passwordAuthenticationMethod", "id": _PASSWORD_METHOD_ID,
                                      "password": None, "createdDateTime": tenant.users[uid].get("createdDateTime")}]
    methods += [dict(m) for m in tenant.device_methods.get(uid, [])]
    methods += [{"@odata.type": _T + "phoneAuthenticationMethod", **m} for m in tenant.phone_methods.get(uid, [])]
    methods += [{"@odata.type": _T + "emailAuthenticationMethod", **m} for m in tenant.email_methods.get(uid, [])]
    return methods


def _csv_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return "+".join(value)
    return "" if value is None else str(value)


def _project(item: dict[str, Any], select: Iterable[str]) -> dict[str, Any]:
    wanted = list(select)
    if not wanted:
        return dict(item)
    return {k: item.get(k) for k in wanted}


def _user(tenant: GeneratedTenant, id_or_upn: str) -> dict[str, Any] | None:
    """``users/{id | userPrincipalName}``: Graph accepts either."""
    if id_or_upn in tenant.users:
        return tenant.users[id_or_upn]
    name = id_or_upn.lower()
    return next((u for u in tenant.users.values() if u["userPrincipalName"].lower() == name), None)


def _directory_object(tenant: GeneratedTenant, object_id: str) -> dict[str, Any] | None:
    if object_id in tenant.users:
        return {"@odata.type": "#microsoft.graph.user", **_project(tenant.users[object_id], _USER_DEFAULT)}
    if object_id in tenant.groups:
        return {"@odata.type": "#microsoft.graph.group", **tenant.groups[object_id]}
    if object_id in tenant.service_principals:
        return {"@odata.type": "#microsoft.graph.servicePrincipal", **tenant.service_principals[object_id]}
    return None


def _member(tenant: GeneratedTenant, object_id: str, select: list[str]) -> dict[str, Any]:
    found = _directory_object(tenant, object_id) or {"@odata.type": "#microsoft.graph.user", "id": object_id}
    return {"@odata.type": found["@odata.type"], **_project(found, select)}


def _single(base: str, context: str, item: dict[str, Any] | None, object_id: str) -> Reply:
    if item is None:
        return _not_found(object_id)
    return Reply(200, {"@odata.context": f"{base}/$metadata#{context}", **item})


def _not_found(object_id: str) -> Reply:
    return Reply(404, _error(
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present.",
    ))


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": {
        "date": "2026-11-23T08:00:00", "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}}}


def _json(reply: Reply) -> web.Response:
    if reply.status == 302:
        return web.Response(status=302, headers=reply.headers, content_type="text/plain")
    return web.Response(
        status=reply.status, text=json.dumps(reply.body) if reply.body is not None else "",
        content_type="application/json", headers=reply.headers,
    )


__all__ = ["MAX_BATCH", "FakeGraph", "Fault", "route_of"]
