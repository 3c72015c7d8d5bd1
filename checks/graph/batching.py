"""Raw reads from Microsoft Graph through the SDK's request adapter: single requests, paging, ``$batch``.

Why raw JSON rather than the SDK's typed models: the snapshot keeps Graph's own JSON shapes, and
turning typed models back into JSON would rename, drop or add properties. Every request still goes
through msgraph-sdk's middleware (authentication, kiota's RetryHandler, redirects, telemetry).

Why our own ``$batch`` handling: msgraph-core's ``BatchResponseContent`` drops inner bodies that are
JSON objects (kiota-python issue 737), and inner 429/503 responses are not retried by anyone, so
they are re-sent here after their ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from checks.graph.budget import TenantBudget
from checks.graph.client import DEFAULT_RETRY, RetrySettings

log = logging.getLogger(__name__)

BATCH_LIMIT = 20  # Graph refuses a $batch of more than 20 requests
RETRY_STATUSES = frozenset({429, 503, 504})
_ERRORS: dict[str, Any] = {"4XX": ODataError, "5XX": ODataError}  # kiota: any client or server error


class GraphError(Exception):
    """A request Graph did not answer with success: its HTTP status (None when no answer came back,
    e.g. a timeout) and Graph's error code, which tells a missing licence from a missing permission."""

    def __init__(self, status: int | None, code: str = "", message: str = "", retry_after: str | None = None) -> None:
        super().__init__(f"{status or code}: {message}" if message else str(status or code))
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after  # the answer's Retry-After header, as Graph sent it

    def describe(self) -> str:
        """Short form for a ``missing`` entry: ``503``, ``timeout``, ``403 Authorization_RequestDenied``."""
        if self.status is None:
            return self.code or "no answer"
        if self.status == 403 and self.code:
            return f"403 {self.code}"
        return str(self.status)


@dataclass(frozen=True)
class BatchRequest:
    """One GET inside a ``$batch``. ``key`` is the caller's handle for the answer; ``url`` is relative
    to the version root and starts with ``/`` (e.g. ``/users/{id}/authentication/phoneMethods``)."""

    key: Hashable
    url: str


@dataclass(frozen=True)
class BatchResponse:
    """The answer to one batched request; status 0 means the batch itself got no answer."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self) -> GraphError:
        detail = (self.body.get("error") or {}) if isinstance(self.body, dict) else {}
        return GraphError(self.status or None, detail.get("code") or "", detail.get("message") or "")


class GraphReader:
    """Reads one tenant through a ``GraphServiceClient``, at most ``concurrency`` requests at a time.

    With a ``budget`` (checks/graph/budget.py) the tenant's throttling is handled here rather than by kiota
    (whose RetryHandler the client must then have off: ``RetrySettings(max_retries=0)`` in ``graph_client``):
    a throttled answer pauses every request of the tenant until its Retry-After, top-level requests are
    retried here up to ``retry.max_retries`` times, and a tenant throttled past its budget raises
    ``TenantThrottled`` instead of holding the collection."""

    def __init__(
        self, client: GraphServiceClient, *, concurrency: int = 8, retry: RetrySettings = DEFAULT_RETRY,
        budget: TenantBudget | None = None,
    ) -> None:
        self._adapter = client.request_adapter
        self._slots = budget.slots if budget is not None else asyncio.Semaphore(max(1, concurrency))
        self._retry = retry
        self._budget = budget
        self.requests = 0  # HTTP requests we started (kiota's own retries of them not included)
        self.batch_retries = 0  # batch items re-sent after an inner 429/503/504

    def url(self, path: str) -> str:
        """An absolute URL for a path under the version root (``nextLink`` values are already absolute)."""
        if path.startswith(("https://", "http://")):
            return path
        return self._adapter.base_url.rstrip("/") + "/" + path.lstrip("/")

    async def get_json(self, path: str) -> dict[str, Any]:
        content = await self._send(Method.GET, self.url(path), accept="application/json")
        parsed = json.loads(content) if content else {}
        if not isinstance(parsed, dict):
            raise GraphError(200, "UnexpectedBody", f"expected a JSON object from {path}")
        return parsed

    async def get_bytes(self, path: str) -> bytes:
        """A non-JSON answer, such as a usage report, which Graph serves as a 302 to a CSV download."""
        return await self._send(Method.GET, self.url(path))

    async def list_all(self, path: str) -> list[dict[str, Any]]:
        """Every item of a collection, following ``@odata.nextLink`` to the last page."""
        items: list[dict[str, Any]] = []
        next_url: str | None = path
        while next_url:
            page = await self.get_json(next_url)
            items.extend(page.get("value") or [])
            next_url = page.get("@odata.nextLink")
        return items

    async def batch(self, requests: Sequence[BatchRequest]) -> dict[Hashable, BatchResponse]:
        """Answers to every request, sent 20 to a ``$batch``; items throttled or unavailable inside a
        batch are re-sent (alone, in new batches) after their Retry-After, up to ``max_retries`` times."""
        keys = [r.key for r in requests]
        if len(set(keys)) != len(keys):
            raise ValueError("batch request keys must be unique")
        answers: dict[Hashable, BatchResponse] = {}
        pending = list(requests)
        attempt = 0
        while pending:
            answers.update(await self._send_batches(pending))
            again = [r for r in pending if answers[r.key].status in RETRY_STATUSES]
            if not again or attempt >= self._retry.max_retries:
                break
            attempt += 1
            wait = max(self._wait(answers[r.key], attempt) for r in again)
            self.batch_retries += len(again)
            log.info("Graph throttled %d batched requests; re-sending in %.1f s", len(again), wait)
            await self._pause(wait, max(answers[r.key].status for r in again))
            pending = again
        return answers

    async def _send_batches(self, requests: Sequence[BatchRequest]) -> dict[Hashable, BatchResponse]:
        chunks = [requests[i : i + BATCH_LIMIT] for i in range(0, len(requests), BATCH_LIMIT)]
        answered = await asyncio.gather(*(self._send_batch(chunk) for chunk in chunks))
        merged: dict[Hashable, BatchResponse] = {}
        for part in answered:
            merged.update(part)
        return merged

    async def _send_batch(self, chunk: Sequence[BatchRequest]) -> dict[Hashable, BatchResponse]:
        body = {"requests": [{"id": str(n), "method": "GET", "url": r.url} for n, r in enumerate(chunk, 1)]}
        try:
            content = await self._send(
                Method.POST, self.url("$batch"), json.dumps(body).encode(), accept="application/json"
            )
            replies = (json.loads(content) if content else {}).get("responses") or []
        except GraphError as failed:
            whole = BatchResponse(failed.status or 0, {"error": {"code": failed.code, "message": failed.message}})
            return {r.key: whole for r in chunk}
        by_id = {str(reply.get("id")): reply for reply in replies if isinstance(reply, dict)}
        answers: dict[Hashable, BatchResponse] = {}
        for n, request in enumerate(chunk, 1):
            reply = by_id.get(str(n))
            if reply is None:
                answers[request.key] = BatchResponse(0, {"error": {"code": "missingFromBatchResponse"}})
            else:
                answers[request.key] = BatchResponse(
                    int(reply.get("status") or 0), reply.get("body"), dict(reply.get("headers") or {})
                )
        return answers

    def _wait(self, answer: BatchResponse, attempt: int) -> float:
        given = next((v for k, v in answer.headers.items() if k.lower() == "retry-after"), None)
        return self._retry_wait(given, attempt)

    def _retry_wait(self, given: str | None, attempt: int) -> float:
        """Graph's Retry-After (capped by ``max_retry_after``), or the backoff when it gave none."""
        seconds = _retry_after_seconds(given) if given is not None else None
        if seconds is None:
            return self._retry.backoff(attempt)
        return min(seconds, self._retry.max_retry_after)

    async def _pause(self, seconds: float, status: int) -> None:
        """Wait before re-sending: the whole tenant waits when it has a budget (which may give the tenant back)."""
        if self._budget is None:
            await asyncio.sleep(seconds)
            return
        self._budget.throttled(seconds, status)
        await self._budget.ready()

    async def _send(self, method: Method, url: str, body: bytes | None = None, accept: str | None = None) -> bytes:
        if self._budget is None:
            return await self._send_once(method, url, body, accept)
        attempt = 0
        while True:
            try:
                content = await self._send_once(method, url, body, accept)
            except GraphError as failed:
                if failed.status not in RETRY_STATUSES or attempt >= self._retry.max_retries:
                    raise
                attempt += 1
                await self._pause(self._retry_wait(failed.retry_after, attempt), failed.status)
                continue
            self._budget.answered()
            return content

    async def _send_once(self, method: Method, url: str, body: bytes | None = None, accept: str | None = None) -> bytes:
        info = RequestInformation(method)
        info.url = url
        if accept:
            info.headers.try_add("Accept", accept)
        if body is not None:
            info.set_stream_content(body, "application/json")
        async with self._slots:
            if self._budget is not None:  # inside the slot: a request queued behind a 429 waits out its Retry-After
                await self._budget.ready()
            self.requests += 1
            try:
                content = await self._adapter.send_primitive_async(info, "bytes", _ERRORS)
            except ODataError as failed:
                detail = failed.error
                raise GraphError(
                    failed.response_status_code,
                    (detail.code if detail else None) or "",
                    (detail.message if detail else None) or "",
                    _header(failed.response_headers, "retry-after"),
                ) from failed
            except APIError as failed:
                raise GraphError(failed.response_status_code, "", str(failed),
                                 _header(failed.response_headers, "retry-after")) from failed
            except httpx.TimeoutException as failed:
                raise GraphError(None, "timeout", f"no answer in time from {url}") from failed
            except httpx.TransportError as failed:
                raise GraphError(None, "network", str(failed)) from failed
            except ClientAuthenticationError as failed:
                raise GraphError(None, "authentication", failed.message) from failed
        return content or b""


def _header(headers: Any, name: str) -> str | None:
    """A header of a failed answer (kiota hands them over as httpx headers or a dict), in any case."""
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value if isinstance(value, str) else ", ".join(value)
    return None


def _retry_after_seconds(value: str) -> float | None:
    """Retry-After as seconds (Graph sends whole seconds; an HTTP date is allowed too)."""
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


__all__ = ["BATCH_LIMIT", "RETRY_STATUSES", "BatchRequest", "BatchResponse", "GraphError", "GraphReader"]
