"""What a Slack Web API refusal means for delivery: the notifier's DeliveryError, from Slack's own answer.

Slack answers most refusals with HTTP 200 and ``{"ok": false, "error": "..."}``; throttling with 429, a
``Retry-After`` in whole seconds and ``"error": "ratelimited"``; an outage with a 5xx. The SDK's own retries
are off (the notifier retries, under the channel's rate limits), so every answer comes straight here.
"""

from __future__ import annotations

import asyncio

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.notifier import DeliveryError, parse_retry_after

# Refusals that no retry will heal, with what a security lead can do about each.
PERMANENT = {
    "channel_not_found": "the conversation no longer exists",
    "is_archived": "the conversation was archived",
    "not_in_channel": "the app is not a member of that channel (invite it with /invite @accessbot)",
    "account_inactive": "their Slack account is deactivated",
    "user_not_found": "no such Slack member",
    "users_not_found": "no Slack member has their e-mail address (map them in the policy's [slack] users)",
    "user_disabled": "their Slack account is disabled",
    "cannot_dm_bot": "they are a bot",
    "msg_too_long": "the message is too long for Slack",
    "invalid_blocks": "Slack refused the message's blocks",
    "message_not_found": "the message was deleted",
    "cant_update_message": "the message can no longer be edited",
}
FAILURES = (SlackApiError, aiohttp.ClientError, asyncio.TimeoutError, OSError)  # what a Web API call may raise
RETRYABLE_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})


def refusal(failed: Exception) -> DeliveryError:
    """The DeliveryError a failed Web API call amounts to; anything that is not a Slack answer or a network
    failure is re-raised (a bug must not pass for a refusal)."""
    if isinstance(failed, SlackApiError):
        response = failed.response
        status = int(getattr(response, "status_code", 200) or 200)
        code = str(response.get("error") or "") if hasattr(response, "get") else ""
        headers = getattr(response, "headers", None) or {}
        retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
        if status == 429 or code == "ratelimited":
            return DeliveryError("Slack answered 429 (ratelimited)", retry_after, status=429)
        if status >= 500 or code in RETRYABLE_ERRORS:
            return DeliveryError(f"Slack answered {status} ({code or 'no error code'})", retry_after, status=max(status, 500))
        if code in PERMANENT:
            return DeliveryError(f"{PERMANENT[code]} ({code})", status=status, permanent=True)
        return DeliveryError(f"Slack refused: {code or status}", status=status)
    if isinstance(failed, FAILURES):
        return DeliveryError(f"could not reach Slack ({type(failed).__name__}: {failed})")
    raise failed
