"""Runs a remediation plan's calls through msgraph-sdk, one by one, reporting each call's outcome.

Only used when the policy's remediation mode is `apply`: the client it gets is the one place write
permissions (RoleManagement.ReadWrite.Directory, ...) are ever used. A failed call is reported with
Graph's status and error code. Throttling and outages (429/503/504) are first retried by the SDK's own
``RetryHandler`` (configured in ``checks/graph/client.py``, honouring Retry-After); what still fails, or a
timeout, is marked ``retryable`` with Graph's Retry-After, and the remediation worker tries the whole job
again later (``bot/remediation/workflow.py``). Anything else (400, 403, 404, ...) is final: the security
leads are told and decide.
"""

from __future__ import annotations

import json
from typing import Any

from kiota_abstractions.method import Method
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options.response_handler_option import ResponseHandlerOption
from msgraph import GraphServiceClient

from bot.remediation.plan import GraphCall

_METHODS = {"DELETE": Method.DELETE, "POST": Method.POST, "PATCH": Method.PATCH}
RETRYABLE = frozenset({429, 500, 502, 503, 504})  # worth another attempt later; anything else is Graph's answer


class GraphExecutor:
    def __init__(self, client: GraphServiceClient) -> None:
        self.client = client

    async def execute(self, call: GraphCall) -> dict[str, Any]:
        adapter = self.client.request_adapter
        request = RequestInformation()
        request.http_method = _METHODS[call.method]
        request.url = adapter.base_url.rstrip("/") + call.path
        for name, value in call.headers.items():
            request.headers.try_add(name, value)
        if call.body is not None:
            request.headers.try_add("Content-Type", "application/json")
            request.content = json.dumps(call.body).encode()
        # The native handler hands back the HTTP response itself, so the ledger records Graph's real status.
        request.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        try:
            response = await adapter.send_primitive_async(request, "bytes", None)
        except Exception as failed:  # a transport failure or timeout: no status at all, worth another attempt
            return {"call": call.show(), "status": 0, "error": type(failed).__name__, "retryable": True}
        status = int(response.status_code)
        if status < 300:
            return {"call": call.show(), "status": status, "error": ""}
        result: dict[str, Any] = {"call": call.show(), "status": status, "error": _error_code(response)}
        if status in RETRYABLE:
            result.update(retryable=True, retry_after=_seconds(response.headers.get("retry-after")))
        return result


def _seconds(retry_after: str | None) -> float:
    """Graph's Retry-After in seconds (it sends a number of seconds); 0 when absent or unreadable."""
    try:
        return max(0.0, float(retry_after or 0))
    except ValueError:
        return 0.0


def _error_code(response: Any) -> str:
    """Graph's own error code and message, e.g. 'Authorization_RequestDenied: Insufficient privileges'."""
    try:
        error = response.json().get("error", {})
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")[:200]
    except ValueError:
        return response.text[:200]
