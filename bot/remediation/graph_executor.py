"""Runs a remediation plan's calls through msgraph-sdk, one by one, reporting each call's outcome.

Only used when the policy's remediation mode is `apply`: the client it gets is the one place write
permissions (RoleManagement.ReadWrite.Directory, ...) are ever used. A failed call is reported with
Graph's status and error code, never retried blindly — the security leads are told and decide.
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
        except Exception as failed:  # a transport failure: no status at all
            return {"call": call.show(), "status": 0, "error": type(failed).__name__}
        status = int(response.status_code)
        return {"call": call.show(), "status": status, "error": "" if status < 300 else _error_code(response)}


def _error_code(response: Any) -> str:
    """Graph's own error code and message, e.g. 'Authorization_RequestDenied: Insufficient privileges'."""
    try:
        error = response.json().get("error", {})
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")[:200]
    except ValueError:
        return response.text[:200]
