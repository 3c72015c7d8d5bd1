"""Checks on a Bot Framework activity (as parsed JSON) before the SDK or any dialog sees it.

botbuilder turns an activity without ``conversation`` into an AttributeError inside its turn-error handler
(an HTTP 500, docs/dependency-notes.md#proactive-turns-swallow-errors), and a lone UTF-16 surrogate is valid
JSON that no UTF-8 file can hold (docs/dependency-notes.md#the-http-edge-aiohttp). So the shape, the
tenant and the text of an activity are checked here, on plain dicts, with a sentence for whoever sent it. No botbuilder import: these are rules about the wire format.
"""

from __future__ import annotations

import re
from typing import Any, Iterator, Mapping

REQUIRED_ACCOUNTS = ("conversation", "from", "recipient")
OPTIONAL_STRINGS = ("id", "name", "text", "channelId", "replyToId", "locale", "textFormat")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Unicode category Cc except line feed and tab


def shape_problem(activity: Mapping[str, Any]) -> str | None:
    """Why this is not an activity accessbot can answer (None when it is): every field the SDK and the
    dialogs read must be there with the JSON type they expect."""
    if not isinstance(activity.get("type"), str) or not activity["type"]:
        return "body is not a Bot Framework activity (no 'type')"
    service_url = activity.get("serviceUrl")
    if not isinstance(service_url, str) or not service_url.lower().startswith(("https://", "http://")):
        return "activity has no 'serviceUrl' (an http(s) URL)"
    for name in REQUIRED_ACCOUNTS:
        account = activity.get(name)
        if not isinstance(account, dict) or not isinstance(account.get("id"), str) or not account["id"]:
            return f"activity has no '{name}' with an 'id'"
        for key in ("name", "aadObjectId", "tenantId", "conversationType", "role"):
            if account.get(key) is not None and not isinstance(account[key], str):
                return f"activity's '{name}.{key}' is not a string"
    for name in OPTIONAL_STRINGS:
        if activity.get(name) is not None and not isinstance(activity[name], str):
            return f"activity's '{name}' is not a string"
    for name in ("entities", "attachments", "membersAdded", "membersRemoved"):
        value = activity.get(name)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, dict) for v in value)):
            return f"activity's '{name}' is not a list of objects"
    channel_data = activity.get("channelData")
    if channel_data is not None:
        if not isinstance(channel_data, dict):
            return "activity's 'channelData' is not an object"
        tenant = channel_data.get("tenant")
        if tenant is not None and (not isinstance(tenant, dict) or not isinstance(tenant.get("id", ""), str)):
            return "activity's 'channelData.tenant' is not an object with a string 'id'"
    for path, text in _strings(activity, skip=("text", "value")):
        if _SURROGATE.search(text):
            return f"activity's {ascii(path)[:80]} holds text that is not valid Unicode (a lone UTF-16 surrogate)"
    return None


def tenants_of(activity: Mapping[str, Any]) -> set[str]:
    """Every tenant id the activity names (``channelData.tenant.id``, ``conversation.tenantId``), lower-case.
    Call after ``shape_problem``: both places are known to be well-typed by then."""
    named = set()
    tenant = (activity.get("channelData") or {}).get("tenant") or {}
    for value in (tenant.get("id"), activity["conversation"].get("tenantId")):
        if value is not None:  # an empty id is named, and served by nobody
            named.add(value.strip().lower())
    return named


def text_problem(text: str) -> str | None:
    """Why a person's typed text cannot be recorded (None when it can): a lone UTF-16 surrogate, or a
    control character other than a line break or tab. A Windows line break (CR LF) counts as a line break."""
    if _SURROGATE.search(text):
        return "it holds a character that is not valid Unicode (a lone UTF-16 surrogate)"
    if control := _CONTROL.search(text.replace("\r\n", "\n")):
        return f"it holds an invisible control character (U+{ord(control.group()):04X})"
    return None


def user_input_problem(activity: Mapping[str, Any]) -> str | None:
    """The first problem in what a person typed or entered: the message text, or any string of the
    submitted card (an ``adaptiveCard/action`` invoke's or an Action.Submit message's ``value``)."""
    text = activity.get("text")
    if isinstance(text, str) and (problem := text_problem(text)):
        return f"Your message could not be read: {problem}. Nothing was done; type it again without it."
    for path, value in _strings(activity.get("value"), prefix="value"):
        if problem := text_problem(value):
            field = path.rsplit(".", 1)[-1]
            where = f"in “{field}”" if text_problem(field) is None and len(field) <= 40 else "on the card"
            return f"Not recorded: what you entered {where} cannot be stored, because {problem}. Remove it and try again."
    return None


def _strings(node: Any, prefix: str = "", skip: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, keys included, with a dotted path to it."""
    if isinstance(node, str):
        yield prefix, node
    elif isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if not prefix and key in skip:
                continue
            yield path, str(key)
            yield from _strings(value, path)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{prefix}[{index}]")
