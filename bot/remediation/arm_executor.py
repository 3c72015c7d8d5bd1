"""A Graph executor that also runs the Azure Resource Manager calls of a remediation plan (removing an
Azure role assignment): still the one executor the remediation worker calls.

Only used when the policy's remediation mode is `apply`, as ``GraphExecutor`` is. The ARM session is the
SDK's pipeline (``checks/azure/arm.py``), whose retry policy retries 429 and 5xx honouring Retry-After; what
still fails with those is marked ``retryable`` for the worker to try the job again later; anything else is
ARM's final answer. ARM answers 204 to a DELETE of a role assignment that is not there (any more): done.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import AzureError
from azure.core.rest import HttpRequest

from msgraph import GraphServiceClient

from bot.remediation.graph_executor import RETRYABLE, GraphExecutor, _seconds
from bot.remediation.plan import ARM, GraphCall
from checks.azure.arm import ArmReader


class ArmAndGraphExecutor(GraphExecutor):
    """ARM calls through ``arm`` (None: ARM is not configured, and such a call fails saying so); every other
    call through Graph as ``GraphExecutor`` runs it."""

    def __init__(self, client: GraphServiceClient, arm: ArmReader | None) -> None:
        super().__init__(client)
        self.arm = arm

    async def execute(self, call: GraphCall) -> dict[str, Any]:
        if call.service != ARM:
            return await super().execute(call)
        if self.arm is None:
            return {"call": call.show(), "status": 0,
                    "error": "no Azure Resource Manager access is configured (ACCESSBOT_ARM_BASE_URL)"}
        request = HttpRequest(call.method, call.path, headers=dict(call.headers), json=call.body)
        try:
            response = await self.arm.client.send_request(request, **self.arm.call_options)
        except AzureError as failed:  # no answer (connection, timeout): worth another attempt
            return {"call": call.show(), "status": 0, "error": type(failed).__name__, "retryable": True}
        status = response.status_code
        if status < 300:
            return {"call": call.show(), "status": status, "error": ""}
        result: dict[str, Any] = {"call": call.show(), "status": status, "error": _error(response)}
        if status in RETRYABLE:
            result.update(retryable=True, retry_after=_seconds(response.headers.get("retry-after")))
        return result

    async def close(self) -> None:
        if self.arm is not None:
            await self.arm.close()


def _error(response: Any) -> str:
    try:
        error = (response.json() or {}).get("error") or {}
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")[:200]
    except ValueError:
        return response.text()[:200]


__all__ = ["ArmAndGraphExecutor"]
