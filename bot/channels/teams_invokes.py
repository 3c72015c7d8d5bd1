"""The answer to a Teams invoke accessbot does not handle, in the shape the caller waits for.

accessbot handles one invoke, ``adaptiveCard/action`` (a card button). Teams sends others when someone opens
a task module, a message extension, a tab or bot configuration; each of those families expects a 200 with
a body of its own shape and shows a "not supported" message from it, where botbuilder would answer 501
with a ``null`` body (an error for the client, a 5xx for monitoring). Any other name is the caller's
mistake: 400 with a JSON body naming what is handled.
"""

from __future__ import annotations

from typing import Any

CARD_ACTION_INVOKE = "adaptiveCard/action"
NOT_SUPPORTED = "accessbot does not support this here. Open accessbot's personal chat and say 'help'."


def unsupported_invoke(name: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for an invoke named ``name`` that accessbot does not handle."""
    family = name.split("/", 1)[0]
    if name in ("task/fetch", "task/submit", "composeExtension/fetchTask", "composeExtension/submitAction"):
        return 200, {"task": {"type": "message", "value": NOT_SUPPORTED}}
    if family == "composeExtension":
        return 200, {"composeExtension": {"type": "message", "text": NOT_SUPPORTED}}
    if family == "config":
        return 200, {"responseType": "config", "config": {"type": "message", "value": NOT_SUPPORTED}}
    if family == "tab":
        card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": NOT_SUPPORTED, "wrap": True}]}
        return 200, {"tab": {"type": "continue", "value": {"cards": [{"card": card}]}}}
    if name in ("fileConsent/invoke", "actionableMessage/executeAction", "message/submitAction", "handoff/action"):
        return 200, {}
    shown = name if len(name) <= 100 and name.isprintable() and name.isascii() else "(unprintable name)"
    return 400, {"error": f"accessbot does not handle the invoke {shown!r}; it handles {CARD_ACTION_INVOKE!r} only"}
