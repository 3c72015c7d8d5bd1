"""What Slack sends to an app, in the shapes Slack documents: slash commands, interactions, events, envelopes.

Pure builders: they take the workspace's ids and the values of one request and return the payload, never
touching a network. ``tests/fakes/fake_slack.py`` calls them with the state it holds (the message a button sits
on, the modal being submitted, a fresh ``trigger_id``), so most tests use its methods rather than these.

How each one reaches an app:

- a slash command: over HTTP a form body (``slash_command_form``); in Socket Mode the same fields as a JSON
  object in a ``slash_commands`` envelope;
- an interaction (``block_actions``, ``view_submission``): over HTTP a form body with one field, ``payload``,
  holding the JSON (``interactive_form``); in Socket Mode the object itself in an ``interactive`` envelope;
- an event (``app_home_opened``): over HTTP the JSON ``event_callback`` body; in Socket Mode that body in an
  ``events_api`` envelope.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode


@dataclass(frozen=True)
class Workspace:
    """The ids every inbound payload carries."""

    team_id: str = "T0ACCESS01"
    team_domain: str = "contoso"
    app_id: str = "A0ACCESS01"
    bot_user_id: str = "U0ACCESSBOT"
    bot_id: str = "B0ACCESS01"
    verification_token: str = "fake-verification-token"  # deprecated by Slack, still sent in every payload


@dataclass(frozen=True)
class Person:
    """Who acts: a Slack user id and the handle Slack shows."""

    id: str
    name: str


def slash_command_fields(ws: Workspace, person: Person, *, command: str, text: str, channel_id: str,
                         channel_name: str, trigger_id: str, response_url: str) -> dict[str, str]:
    """The fields of a slash command invocation (``channel_name`` is ``directmessage`` in a DM)."""
    return {
        "token": ws.verification_token,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": person.id,
        "user_name": person.name,
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def slash_command_form(fields: dict[str, str]) -> str:
    """The form body Slack POSTs for a slash command."""
    return urlencode(fields)


def interactive_form(payload: dict[str, Any]) -> str:
    """The form body Slack POSTs for an interaction: one field, ``payload``, holding the JSON."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def _user(ws: Workspace, person: Person) -> dict[str, str]:
    return {"id": person.id, "username": person.name, "name": person.name, "team_id": ws.team_id}


def block_actions_payload(ws: Workspace, person: Person, *, action: dict[str, Any], trigger_id: str,
                          response_url: str, channel: dict[str, str] | None = None,
                          message: dict[str, Any] | None = None, view: dict[str, Any] | None = None,
                          is_ephemeral: bool = False) -> dict[str, Any]:
    """A ``block_actions`` interaction: one element of a message (``channel`` and ``message``) or of a view
    (``view``: a modal or the App Home tab) was used. ``action`` is the element as Slack reports it."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(ws, person),
        "api_app_id": ws.app_id,
        "token": ws.verification_token,
        "trigger_id": trigger_id,
        "team": {"id": ws.team_id, "domain": ws.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "actions": [action],
    }
    if view is not None:
        payload["container"] = {"type": "view", "view_id": view["id"]}
        payload["view"] = view
        payload["state"] = view.get("state") or {"values": {}}
    else:
        assert channel is not None and message is not None, "a message action needs its channel and message"
        payload["container"] = {"type": "message", "message_ts": message["ts"], "channel_id": channel["id"],
                                "is_ephemeral": is_ephemeral}
        payload["channel"] = channel
        payload["message"] = message
        payload["state"] = {"values": {}}
        payload["response_url"] = response_url
    return payload


def view_submission_payload(ws: Workspace, person: Person, *, view: dict[str, Any],
                            trigger_id: str) -> dict[str, Any]:
    """A ``view_submission``: the person pressed the modal's submit button; ``view["state"]`` holds the inputs."""
    return {
        "type": "view_submission",
        "team": {"id": ws.team_id, "domain": ws.team_domain},
        "user": _user(ws, person),
        "api_app_id": ws.app_id,
        "token": ws.verification_token,
        "trigger_id": trigger_id,
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def event_callback(ws: Workspace, event: dict[str, Any], *, event_id: str, event_time: int) -> dict[str, Any]:
    """The Events API body around one event."""
    return {
        "token": ws.verification_token,
        "team_id": ws.team_id,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [{"enterprise_id": None, "team_id": ws.team_id, "user_id": ws.bot_user_id,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }


def app_home_opened_event(person_id: str, *, dm_channel: str, event_ts: str, tab: str = "home",
                          view: dict[str, Any] | None = None) -> dict[str, Any]:
    """``app_home_opened``: the person opened the app's Home (or Messages) tab; ``view`` is the Home view
    last published for them, absent when there is none yet."""
    event: dict[str, Any] = {"type": "app_home_opened", "user": person_id, "channel": dm_channel, "tab": tab,
                             "event_ts": event_ts}
    if view is not None:
        event["view"] = view
    return event


def envelope(kind: str, payload: dict[str, Any], *, envelope_id: str,
             accepts_response_payload: bool) -> dict[str, Any]:
    """A Socket Mode envelope (``events_api``, ``interactive`` or ``slash_commands``) to be acknowledged
    by sending back ``{"envelope_id": ...}``."""
    body: dict[str, Any] = {"envelope_id": envelope_id, "payload": payload, "type": kind,
                            "accepts_response_payload": accepts_response_payload}
    if kind == "events_api":
        body["retry_attempt"] = 0
        body["retry_reason"] = ""
    return body
