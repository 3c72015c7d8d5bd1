"""A local Slack: the far side of the wire for the Slack channel, speaking the Web API and Socket Mode.

slack_sdk's ``AsyncWebClient(token=..., base_url=fake.api_url)`` and slack-bolt's ``AsyncApp(client=...)`` talk
to it unchanged. What it reproduces, because the channel depends on each:

- **The Web API's envelope.** HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}`` (with
  ``response_metadata.messages`` for ``invalid_arguments`` / ``invalid_blocks``), arguments read from the query,
  a form body (structured fields such as ``blocks`` or ``view`` as JSON strings) or a JSON body.
- **Tokens.** The bot token (``xoxb-``) in ``Authorization: Bearer`` or a ``token`` field: ``not_authed`` when
  absent, ``invalid_auth`` when wrong, ``token_revoked`` after ``revoke()``, ``not_allowed_token_type`` for the
  app-level token (``xapp-``) anywhere but ``apps.connections.open`` and the bot token there; ``missing_scope``
  (with ``needed`` and ``provided``) when the bot lacks the method's scope.
- **Methods.** ``auth.test``; ``chat.postMessage`` (to a channel id, a ``#name`` or a user id, which posts in
  the app's DM and answers with the ``D…`` id), ``chat.update`` and ``chat.delete`` (the ``D…`` id only: a user id
  is ``channel_not_found``), ``chat.postEphemeral`` (the user must be in the channel); ``conversations.open``;
  ``users.info``, ``users.lookupByEmail`` (``users_not_found``); ``views.open`` (the ``trigger_id`` is single use and
  lives 3 s of the fake's clock: ``expired_trigger_id``, ``exchanged_trigger_id``, ``invalid_trigger_id``),
  ``views.update`` (by ``view_id`` or ``external_id``, ``hash_conflict`` on a stale ``hash``), ``views.publish``;
  ``apps.connections.open``. Anything else is ``unknown_method``.
- **Block Kit's limits**, read independently of slack_sdk's models: 50 blocks a message, 100 a view, 3,000
  characters a section's text, 10 fields of 2,000, 150 characters a header, 25 elements an action block, unique
  ``block_id`` and ``action_id``, a modal's title of 24; a message over them is ``invalid_blocks``, a view
  ``invalid_arguments``; a message with neither text nor blocks is ``no_text``, over 40,000 characters
  ``msg_too_long``.
- **Limits and faults.** ``throttle()``: HTTP 429 with ``Retry-After`` (whole seconds, as Slack sends them) and
  ``{"ok": false, "error": "ratelimited"}``, per method and/or per channel, N times; ``fail()``: a 5xx;
  ``channel_pace``: ``chat.postMessage`` to one channel over that window answers 429 as Slack does past about
  one message a second.
- **Socket Mode.** ``apps.connections.open`` hands out a single-use ``ws://127.0.0.1:PORT/link/?ticket=…`` URL;
  the socket greets with ``hello``, carries ``events_api`` / ``interactive`` / ``slash_commands`` envelopes pushed
  by the test, records the ``{"envelope_id": …}`` acknowledgements, and ``disconnect()`` asks the client to
  reconnect (``drop()`` just closes the socket).
- **Answers by response_url.** Commands and interactions carry a ``response_url`` on this fake; what the app
  sends there is kept in ``responses`` (``ephemeral`` unless it says ``in_channel``), five times in 30 minutes
  (``used_url``, ``expired_url`` after).

Every Web API call is recorded (``calls``: method, arguments, the fake's clock, the outcome); what users would
see is kept as state (``messages``, ``ephemerals``, ``views``, the Home tab of each user). The payload builders
(``slash_command``, ``block_actions``, ``view_submission``, ``app_home_opened``, ``url_verification``) issue
fresh ``trigger_id``\\ s on the same clock, and ``post_to_app()`` delivers them over HTTP signed with the
signing secret.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Self
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from bot.ratelimit import Window
from tests.fakes import slack_payloads as payloads
from tests.fakes.slack_payloads import Person, Workspace
from tests.fakes.slack_signing import FORM, JSON, signed_headers

BOT_TOKEN = "xoxb-0000000001-0000000002-fakebottoken"
APP_TOKEN = "xapp-1-A0ACCESS01-0000000003-fakeapptoken"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

# The scope each method needs from a bot token (Slack's method reference); none for the rest.
SCOPE_NEEDED = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "chat.postEphemeral": "chat:write",
    "conversations.open": "im:write",
    "users.info": "users:read",
    "users.lookupByEmail": "users:read.email",
}
BOT_SCOPES = frozenset({"chat:write", "im:write", "users:read", "users:read.email", "commands",
                        "app_mentions:read", "im:history"})
TRIGGER_LIFETIME = 3.0  # seconds a trigger_id may be exchanged for a modal
RESPONSE_URL_USES = 5  # a response_url takes five messages ...
RESPONSE_URL_LIFETIME = 30 * 60.0  # ... within thirty minutes
STRUCTURED = ("blocks", "attachments", "view", "metadata")  # JSON-encoded when sent as form fields

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_TEXT = 40000


class SlackError(Exception):
    """One ``{"ok": false}`` answer: its ``error`` code, the extra fields Slack adds, the HTTP status."""

    def __init__(self, error: str, *, status: int = 200, messages: list[str] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.status, self.headers, self.extra = error, status, headers or {}, extra
        if messages:
            self.extra["response_metadata"] = {"messages": messages}


@dataclass
class Call:
    """One Web API request as the fake read it."""

    method: str
    params: dict[str, Any]
    at: float  # the fake's clock
    token: str | None
    status: int = 200
    error: str | None = None  # None when it answered ok

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Fault:
    """Answer matching requests with ``status`` (429 with ``Retry-After``, or a 5xx), ``times`` times (None:
    always). ``method`` and ``channel`` narrow it (None matches any)."""

    status: int
    method: str | None = None
    channel: str | None = None
    times: int | None = 1
    retry_after: int = 1
    fired: int = 0

    def matches(self, method: str, channels: set[str]) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        return self.method in (None, method) and (self.channel is None or self.channel in channels)


@dataclass
class Message:
    """A message as a channel shows it now (``edits`` counts its updates)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0
    deleted: bool = False
    metadata: dict[str, Any] | None = None

    def as_slack(self, ws: Workspace) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "message", "user": ws.bot_user_id, "bot_id": ws.bot_id, "app_id": ws.app_id,
                                "team": ws.team_id, "text": self.text, "ts": self.ts, "blocks": self.blocks}
        if self.thread_ts:
            body["thread_ts"] = self.thread_ts
        if self.edits:
            body["edited"] = {"user": ws.bot_user_id, "ts": self.ts}
        return body


@dataclass
class Ephemeral:
    """A message only ``user`` saw in ``channel``."""

    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    message_ts: str


@dataclass
class Response:
    """A message the app sent to a command's or interaction's ``response_url`` (``in_channel`` or, by
    default, ``ephemeral``: only the person who acted sees it)."""

    url_id: str
    user: str
    channel: str
    body: dict[str, Any]
    at: float

    @property
    def response_type(self) -> str:
        return str(self.body.get("response_type") or "ephemeral")


@dataclass
class Channel:
    id: str
    name: str
    members: set[str]
    is_im: bool = False
    bot_member: bool = True


class FakeSlack:
    """One workspace with one app installed. ``clock`` reads the fake's time (triggers, pace, records)."""

    def __init__(self, *, workspace: Workspace | None = None, bot_token: str = BOT_TOKEN,
                 app_token: str = APP_TOKEN, signing_secret: str = SIGNING_SECRET,
                 scopes: frozenset[str] = BOT_SCOPES, channel_pace: Window | None = None,
                 clock: Callable[[], float] = time.monotonic, first_id: int = 1) -> None:
        """``first_id`` starts this workspace's ids (U…, C…, D…, ts): workspaces served side by side
        (tests/fakes/fake_slack_oauth.py) never share an id, as Slack's never do."""
        self.ws = workspace or Workspace()
        self.bot_token, self.app_token, self.signing_secret = bot_token, app_token, signing_secret
        self.scopes = set(scopes)
        self.channel_pace = channel_pace
        self.clock = clock
        self.revoked = False
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.refused: Counter[int] = Counter()  # HTTP refusals (429, 5xx) by status
        self.over_pace = 0  # 429s because a channel's pace was exceeded
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, Channel] = {}
        self.messages: dict[str, list[Message]] = defaultdict(list)
        self.ephemerals: list[Ephemeral] = []
        self.responses: list[Response] = []
        self.views: dict[str, dict[str, Any]] = {}
        self.home: dict[str, str] = {}  # user id -> the view id of their published Home tab
        self.acks: dict[str, dict[str, Any]] = {}  # envelope id -> what the client sent back
        self.envelopes: list[dict[str, Any]] = []  # every envelope pushed, in order
        self.connections_opened = 0
        self.url = ""
        self._ids = itertools.count(first_id)
        self._dm: dict[str, str] = {}  # user id -> D… id
        self._by_email: dict[str, str] = {}  # lower-case e-mail -> user id
        self._order: list[Message] = []  # every message, in the order it was posted
        self._response_urls: dict[str, tuple[str, str, float]] = {}  # id -> (user, channel, issued at)
        self._triggers: dict[str, float] = {}  # trigger id -> when it was issued
        self._exchanged: set[str] = set()
        self._accepted: dict[str, list[float]] = defaultdict(list)  # channel -> postMessage times, for the pace
        self._epoch = int(time.time())
        self._tickets: set[str] = set()
        self._socket: web.WebSocketResponse | None = None
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self._link)
        app.router.add_post("/response/{url_id}", self._respond)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._socket is not None and not self._socket.closed:
            await self._socket.close()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        """What to give slack_sdk as ``base_url`` (it ends with a slash, as slack_sdk's own default does)."""
        return f"{self.url}/api/"

    # ---- the workspace ---------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):09d}"

    def add_user(self, email: str, *, name: str | None = None, real_name: str | None = None,
                 deleted: bool = False, is_bot: bool = False, tz: str = "Europe/London") -> dict[str, Any]:
        """A member of the workspace, in ``users.info``'s shape."""
        handle = name or email.split("@")[0]
        shown = real_name or handle.title()
        user = {
            "id": self._id("U"), "team_id": self.ws.team_id, "name": handle, "deleted": deleted,
            "real_name": shown, "tz": tz, "is_bot": is_bot, "is_admin": False, "is_app_user": False,
            "updated": self._epoch,
            "profile": {"email": email, "real_name": shown, "display_name": handle, "team": self.ws.team_id},
        }
        self.users[user["id"]] = user
        self._by_email.setdefault(email.lower(), user["id"])
        return user

    def add_channel(self, name: str, members: list[str] | tuple[str, ...] = (), *, bot_member: bool = True) -> str:
        """A public channel (``C…``) with these members; ``bot_member=False`` leaves the app out of it."""
        channel = Channel(self._id("C"), name, set(members), bot_member=bot_member)
        self.channels[channel.id] = channel
        return channel.id

    def dm_of(self, user_id: str) -> str:
        """The app's DM with a user (opened on first use, as ``conversations.open`` does)."""
        if user_id not in self._dm:
            channel = Channel(self._id("D"), user_id, {user_id}, is_im=True)
            self.channels[channel.id] = channel
            self._dm[user_id] = channel.id
        return self._dm[user_id]

    def revoke(self) -> None:
        """The app was uninstalled: its tokens answer ``token_revoked`` from now on."""
        self.revoked = True

    # ---- faults and records ----------------------------------------------------------------------

    def throttle(self, method: str | None = None, *, channel: str | None = None, times: int | None = 1,
                 retry_after: int = 1) -> Fault:
        """Answer 429 ``ratelimited`` with ``Retry-After: retry_after`` (whole seconds) ``times`` times."""
        fault = Fault(429, method, channel, times, retry_after)
        self.faults.append(fault)
        return fault

    def fail(self, method: str | None = None, *, status: int = 500, channel: str | None = None,
             times: int | None = 1) -> Fault:
        """Answer ``status`` (a 5xx) ``times`` times, before anything is done."""
        fault = Fault(status, method, channel, times)
        self.faults.append(fault)
        return fault

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posted(self, channel: str | None = None) -> list[Message]:
        """Messages still shown (not deleted), in one channel or all, in the order they were posted."""
        return [m for m in (self.messages[channel] if channel else self._order) if not m.deleted]

    def deliveries(self) -> Counter[tuple[str, str]]:
        """How many times each (channel, text) was posted: 0 means lost, 2 or more sent twice."""
        return Counter((m.channel, m.text) for m in self._order)

    def message(self, channel: str, ts: str) -> Message:
        for m in self.messages[channel]:
            if m.ts == ts and not m.deleted:
                return m
        raise KeyError(f"no message {ts} in {channel}")

    def home_of(self, user_id: str) -> dict[str, Any] | None:
        view_id = self.home.get(user_id)
        return None if view_id is None else self.views[view_id]

    # ---- inbound payloads (what Slack would send the app) ----------------------------------------

    def new_trigger(self) -> str:
        """A ``trigger_id``, issued now on the fake's clock."""
        n = next(self._ids)
        trigger = f"{n}.{self._epoch}.fa{n:030x}"
        self._triggers[trigger] = self.clock()
        return trigger

    def person(self, user_id: str) -> Person:
        return Person(user_id, self.users[user_id]["name"])

    def _response_url(self, user_id: str, channel: str) -> str:
        """A ``response_url`` on this fake (Slack's are on hooks.slack.com), good for 5 messages in 30 minutes."""
        url_id = f"{self.ws.team_id}-{next(self._ids)}"
        self._response_urls[url_id] = (user_id, channel, self.clock())
        return f"{self.url}/response/{url_id}"

    def url_verification(self) -> dict[str, Any]:
        """The challenge Slack sends to a new events request URL; the app must answer with ``challenge``."""
        return {"token": self.ws.verification_token, "challenge": f"fake-challenge-{next(self._ids)}",
                "type": "url_verification"}

    def slash_command(self, user_id: str, text: str = "", *, command: str = "/access-review",
                      channel_id: str | None = None) -> dict[str, str]:
        """The fields of ``/access-review text`` typed by ``user_id`` in a channel (default: the app's DM)."""
        where = channel_id or self.dm_of(user_id)
        channel = self.channels[where]
        return payloads.slash_command_fields(
            self.ws, self.person(user_id), command=command, text=text, channel_id=where,
            channel_name="directmessage" if channel.is_im else channel.name, trigger_id=self.new_trigger(),
            response_url=self._response_url(user_id, where))

    def block_actions(self, user_id: str, action_id: str, *, channel: str | None = None, ts: str | None = None,
                      view_id: str | None = None, selected: str | None = None) -> dict[str, Any]:
        """``user_id`` used the element ``action_id`` of a message the app posted (``channel``, ``ts``) or of a
        view (``view_id``). ``selected``: the user picked in a users_select, or an option's value."""
        if view_id is not None:
            view = self.views[view_id]
            blocks, where, at = view["blocks"], {"view": view}, self.dm_of(user_id)
        else:
            assert channel is not None and ts is not None, "a message action needs channel and ts"
            msg = self.message(channel, ts)
            blocks = msg.blocks
            shown = self.channels[channel]
            where = {"channel": {"id": channel, "name": "directmessage" if shown.is_im else shown.name},
                     "message": msg.as_slack(self.ws)}
            at = channel
        block_id, element = _find_element(blocks, action_id)
        action: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "type": element["type"],
                                  "action_ts": self._ts()}
        if element["type"] == "button":
            action["text"] = element["text"]
            if "value" in element:
                action["value"] = element["value"]
            if "style" in element:
                action["style"] = element["style"]
        else:
            action.update(_selection(element, selected))
        return payloads.block_actions_payload(self.ws, self.person(user_id), action=action,
                                              trigger_id=self.new_trigger(),
                                              response_url=self._response_url(user_id, at), **where)

    def view_submission(self, user_id: str, view_id: str, values: dict[str, str]) -> dict[str, Any]:
        """``user_id`` submitted the modal ``view_id`` with ``values`` by input ``action_id``; the view's
        ``state`` is filled in the shape of each input's element type."""
        view = json.loads(json.dumps(self.views[view_id]))
        state: dict[str, dict[str, Any]] = {}
        for block in view["blocks"]:
            element = block.get("element") if block.get("type") == "input" else None
            if element is None:
                continue
            chosen = values.get(element["action_id"])
            state.setdefault(block["block_id"], {})[element["action_id"]] = (
                {"type": element["type"], **_selection(element, chosen)})
        view["state"] = {"values": state}
        return payloads.view_submission_payload(self.ws, self.person(user_id), view=view,
                                                trigger_id=self.new_trigger())

    def app_home_opened(self, user_id: str, *, tab: str = "home") -> dict[str, Any]:
        """The ``event_callback`` Slack sends when ``user_id`` opens the app's Home tab."""
        event = payloads.app_home_opened_event(user_id, dm_channel=self.dm_of(user_id), event_ts=self._ts(),
                                               tab=tab, view=self.home_of(user_id))
        return payloads.event_callback(self.ws, event, event_id=f"Ev{next(self._ids):09d}",
                                       event_time=self._epoch + int(self.clock()))

    async def post_to_app(self, url: str, body: dict[str, Any] | str, *, timestamp: int | None = None,
                          secret: str | None = None) -> tuple[int, str]:
        """Deliver a payload to the app's HTTP endpoint as Slack does, signed; answers (status, body).

        ``body``: the fields of a slash command, an interaction (``{"type": "block_actions", ...}``), an event
        callback, or an already encoded string sent as a form. ``timestamp`` and ``secret`` forge a replay or
        a wrong signature."""
        if isinstance(body, str):
            raw, kind = body, FORM
        elif body.get("type") in ("event_callback", "url_verification"):
            raw, kind = json.dumps(body), JSON
        elif "command" in body:
            raw, kind = payloads.slash_command_form(body), FORM
        else:
            raw, kind = payloads.interactive_form(body), FORM
        headers = signed_headers(secret or self.signing_secret, raw, timestamp=timestamp, content_type=kind)
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        async with self._client.post(url, data=raw.encode("utf-8"), headers=headers) as response:
            return response.status, await response.text()

    async def _respond(self, request: web.Request) -> web.Response:
        """POST to a ``response_url``: JSON with ``text``/``blocks``, ``response_type``, ``replace_original``."""
        url_id = request.match_info["url_id"]
        if url_id not in self._response_urls:
            return web.json_response({"ok": False, "error": "invalid_url"}, status=404)
        user, channel, issued = self._response_urls[url_id]
        if self.clock() - issued > RESPONSE_URL_LIFETIME:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        if sum(r.url_id == url_id for r in self.responses) >= RESPONSE_URL_USES:
            return web.json_response({"ok": False, "error": "used_url"}, status=404)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"ok": False, "error": "invalid_payload"}, status=400)
        problems = _block_problems(body.get("blocks") or [], MAX_MESSAGE_BLOCKS, "/blocks")
        if problems:
            return web.json_response({"ok": False, "error": "invalid_blocks",
                                      "response_metadata": {"messages": problems}}, status=400)
        if not body.get("text") and not body.get("blocks") and not body.get("delete_original"):
            return web.json_response({"ok": False, "error": "no_text"}, status=400)
        self.responses.append(Response(url_id, user, channel, body, self.clock()))
        return web.json_response({"ok": True})

    # ---- Socket Mode -----------------------------------------------------------------------------

    async def wait_connected(self, timeout: float = 10.0) -> None:
        """Until a Socket Mode client holds an open socket (its ``hello`` sent)."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: self._socket is not None and not self._socket.closed)

    async def push(self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool | None = None) -> str:
        """Send an envelope (``events_api``, ``interactive``, ``slash_commands``) down the open socket; its id."""
        if self._socket is None or self._socket.closed:
            raise RuntimeError("no Socket Mode client is connected")
        if accepts_response_payload is None:  # Slack lets the ack carry a response where one is shown
            accepts_response_payload = kind == "slash_commands" or payload.get("type") == "view_submission"
        envelope_id = f"{next(self._ids):08x}-fake-{self._epoch:x}"
        body = payloads.envelope(kind, payload, envelope_id=envelope_id,
                                 accepts_response_payload=accepts_response_payload)
        self.envelopes.append(body)
        await self._socket.send_str(json.dumps(body))
        return envelope_id

    async def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """What the client acknowledged ``envelope_id`` with (``{"envelope_id": ...}``, maybe a ``payload``)."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: envelope_id in self.acks)
        return self.acks[envelope_id]

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the client to move to a new connection, as Slack does every few hours."""
        if self._socket is not None and not self._socket.closed:
            await self._socket.send_str(json.dumps(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake-1"}}))

    async def drop(self) -> None:
        """Close the socket from Slack's side without warning."""
        if self._socket is not None and not self._socket.closed:
            await self._socket.close()

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self.connections_opened += 1
        await socket.send_str(json.dumps({
            "type": "hello", "num_connections": 1,
            "debug_info": {"host": "applink-fake-1", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.ws.app_id}}))
        async with self._changed:
            self._socket = socket
            self._changed.notify_all()
        async for frame in socket:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                ack = json.loads(frame.data)
            except ValueError:
                continue
            if isinstance(ack, dict) and "envelope_id" in ack:
                async with self._changed:
                    self.acks[ack["envelope_id"]] = ack
                    self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()
        return socket

    # ---- the Web API -----------------------------------------------------------------------------

    def _ts(self) -> str:
        """A message timestamp: seconds on the fake's clock since start, unique by its counter."""
        return f"{self._epoch + int(self.clock())}.{next(self._ids) % 1_000_000:06d}"

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await _arguments(request)
        except SlackError:
            params = {}
            bad_body = True
        else:
            bad_body = False
        token = _token(request, params)
        call = Call(method, params, self.clock(), token)
        self.calls.append(call)
        try:
            if bad_body:
                raise SlackError("invalid_json")
            self._authorise(method, token)
            self._fault(method, params)
            handler = getattr(self, "_" + method.replace(".", "_"), None)
            if handler is None:
                raise SlackError("unknown_method")
            answer = handler(params)
        except SlackError as refusal:
            call.status, call.error = refusal.status, refusal.error
            if refusal.status != 200:
                self.refused[refusal.status] += 1
            return web.json_response({"ok": False, "error": refusal.error, **refusal.extra},
                                     status=refusal.status, headers=refusal.headers)
        return web.json_response({"ok": True, **answer})

    def _authorise(self, method: str, token: str | None) -> None:
        if not token:
            raise SlackError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise SlackError("invalid_auth")
        if self.revoked:
            raise SlackError("token_revoked")
        if (method == "apps.connections.open") != (token == self.app_token):
            raise SlackError("not_allowed_token_type")
        needed = SCOPE_NEEDED.get(method)
        if needed and needed not in self.scopes:
            raise SlackError("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))

    def _fault(self, method: str, params: dict[str, Any]) -> None:
        named = str(params.get("channel") or "")
        channels = {named, self._dm.get(named, named)}  # a post to a user id is a post to their DM
        for fault in self.faults:
            if fault.matches(method, channels):
                fault.fired += 1
                if fault.status == 429:
                    raise SlackError("ratelimited", status=429, headers={"Retry-After": str(fault.retry_after)})
                raise SlackError("fatal_error" if fault.status == 500 else "service_unavailable", status=fault.status)

    def _pace(self, channel: str) -> None:
        """Past ``channel_pace`` in one channel, chat.postMessage answers 429 with the wait that lets it in."""
        if self.channel_pace is None:
            return
        now, window, accepted = self.clock(), self.channel_pace, self._accepted[channel]
        inside = len(accepted) - bisect.bisect_right(accepted, now - window.seconds)
        if inside >= window.limit:
            self.over_pace += 1
            wait = accepted[len(accepted) - window.limit] + window.seconds - now
            raise SlackError("ratelimited", status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
        accepted.append(now)

    def _channel(self, params: dict[str, Any], *, users_allowed: bool) -> Channel:
        """The conversation a message method names: an id, a ``#name``, or (to post only) a user id."""
        given = str(params.get("channel") or "")
        if users_allowed and given in self.users:
            return self.channels[self.dm_of(given)]
        if given in self.channels:
            channel = self.channels[given]
        else:
            named = [c for c in self.channels.values() if not c.is_im and c.name == given.lstrip("#")]
            if not named:
                raise SlackError("channel_not_found")
            channel = named[0]
        if not channel.bot_member:
            raise SlackError("not_in_channel")
        return channel

    def _content(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        text = str(params.get("text") or "")
        blocks = params.get("blocks") or []
        if not text and not blocks and not params.get("attachments"):
            raise SlackError("no_text")
        if len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
        problems = _block_problems(blocks, MAX_MESSAGE_BLOCKS, "/blocks")
        if problems:
            raise SlackError("invalid_blocks", messages=problems)
        return text, blocks

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"https://{self.ws.team_domain}.slack.com/", "team": self.ws.team_domain.title(),
                "user": "accessbot", "team_id": self.ws.team_id, "user_id": self.ws.bot_user_id,
                "bot_id": self.ws.bot_id, "is_enterprise_install": False}

    def _chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params, users_allowed=True)
        text, blocks = self._content(params)
        self._pace(channel.id)
        message = Message(channel.id, self._ts(), text, blocks, params.get("thread_ts"), metadata=params.get("metadata"))
        self.messages[channel.id].append(message)
        self._order.append(message)
        return {"channel": channel.id, "ts": message.ts, "message": message.as_slack(self.ws)}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params, users_allowed=False)
        try:
            message = self.message(channel.id, str(params.get("ts") or ""))
        except KeyError:
            raise SlackError("message_not_found") from None
        if "text" in params or "blocks" in params:
            message.text, message.blocks = self._content({**{"text": message.text}, **params})
        message.edits += 1
        return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": message.as_slack(self.ws)}

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params, users_allowed=False)
        try:
            self.message(channel.id, str(params.get("ts") or "")).deleted = True
        except KeyError:
            raise SlackError("message_not_found") from None
        return {"channel": channel.id, "ts": params["ts"]}

    def _chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params, users_allowed=False)
        user = str(params.get("user") or "")
        if user not in self.users:
            raise SlackError("user_not_found")
        if user not in channel.members:
            raise SlackError("user_not_in_channel")
        text, blocks = self._content(params)
        ephemeral = Ephemeral(channel.id, user, text, blocks, self._ts())
        self.ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.message_ts}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if not users:
            raise SlackError("users_list_not_supplied")
        if any(u not in self.users for u in users):
            raise SlackError("user_not_found")
        if len(users) > 1:
            raise SlackError("invalid_arguments", messages=["[ERROR] the fake opens one-to-one DMs only"])
        return {"channel": {"id": self.dm_of(users[0])}}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user") or ""))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def _users_lookupByEmail(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email") or "").lower()
        if not email:
            raise SlackError("invalid_arguments", messages=["[ERROR] missing required field: email"])
        user = self.users.get(self._by_email.get(email, ""))
        if user is None or user["deleted"]:
            raise SlackError("users_not_found")
        return {"user": user}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = str(params.get("trigger_id") or "")
        if trigger not in self._triggers:
            raise SlackError("invalid_trigger_id")
        if trigger in self._exchanged:
            raise SlackError("exchanged_trigger_id")
        if self.clock() - self._triggers[trigger] > TRIGGER_LIFETIME:
            raise SlackError("expired_trigger_id")
        view = self._store_view(params.get("view"), None)
        self._exchanged.add(trigger)
        return {"view": view}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view_id = params.get("view_id")
        if not view_id and params.get("external_id"):
            view_id = next((v["id"] for v in self.views.values() if v["external_id"] == params["external_id"]), None)
        if not view_id or view_id not in self.views:
            raise SlackError("not_found")
        if params.get("hash") and params["hash"] != self.views[view_id]["hash"]:
            raise SlackError("hash_conflict")
        return {"view": self._store_view(params.get("view"), view_id)}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user_id") or "")
        if user not in self.users:
            raise SlackError("user_not_found")
        view = params.get("view")
        if not isinstance(view, dict) or view.get("type") != "home":
            raise SlackError("invalid_arguments", messages=["[ERROR] a published view must be of type home"])
        current = self.home.get(user)
        if current and params.get("hash") and params["hash"] != self.views[current]["hash"]:
            raise SlackError("hash_conflict")
        stored = self._store_view(view, current)
        self.home[user] = stored["id"]
        return {"view": stored}

    def _store_view(self, view: Any, view_id: str | None) -> dict[str, Any]:
        problems = _view_problems(view)
        if problems:
            raise SlackError("invalid_arguments", messages=problems)
        assert isinstance(view, dict)
        view_id = view_id or self._id("V")
        stored = {
            "id": view_id, "team_id": self.ws.team_id, "type": view["type"], "title": view.get("title"),
            "submit": view.get("submit"), "close": view.get("close"), "blocks": view["blocks"],
            "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""), "state": {"values": {}}, "hash": f"{next(self._ids)}.fakehash",
            "clear_on_close": bool(view.get("clear_on_close")), "notify_on_close": bool(view.get("notify_on_close")),
            "root_view_id": view_id, "previous_view_id": None, "app_id": self.ws.app_id,
            "app_installed_team_id": self.ws.team_id, "bot_id": self.ws.bot_id,
        }
        self.views[view_id] = stored
        return stored

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = f"fake-{next(self._ids):012x}"
        self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self.url.rsplit(':', 1)[1]}/link/?ticket={ticket}&app_id={self.ws.app_id}"}


# ---- reading requests ----------------------------------------------------------------------------

async def _arguments(request: web.Request) -> dict[str, Any]:
    """A method's arguments from the query and the body, whichever way slack_sdk sent them."""
    params: dict[str, Any] = dict(parse_qsl(request.query_string, keep_blank_values=True))
    raw = await request.read()
    if not raw:
        return params
    if request.content_type == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            raise SlackError("invalid_json") from None
        if isinstance(body, dict):
            params.update(body)
        return params
    params.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    for name in STRUCTURED:  # form fields carry structures as JSON text
        if isinstance(params.get(name), str) and params[name]:
            try:
                params[name] = json.loads(params[name])
            except ValueError:
                params[name] = None if name != "blocks" else [{"type": "unparseable"}]
    return params


def _token(request: web.Request, params: dict[str, Any]) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:]
    return params.pop("token", None) or None


# ---- Block Kit's limits ----------------------------------------------------------------------------

BLOCK_TYPES = {"section", "actions", "context", "divider", "header", "image", "input", "rich_text", "file",
               "video", "markdown"}


def _text_of(obj: Any) -> str:
    return obj.get("text", "") if isinstance(obj, dict) else ""


def _block_problems(blocks: Any, most: int, where: str) -> list[str]:
    """Block Kit's documented limits, as Slack words its refusals: ``[ERROR] … [json-pointer:/blocks/0/…]``."""
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{where}]"]
    problems: list[str] = []
    if len(blocks) > most:
        problems.append(f"[ERROR] no more than {most} items allowed [json-pointer:{where}]")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for i, block in enumerate(blocks):
        at = f"{where}/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(f"[ERROR] invalid block type [json-pointer:{at}/type]")
            continue
        kind = block["type"]
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > 255:
                problems.append(f"[ERROR] must be less than 256 characters [json-pointer:{at}/block_id]")
            if block_id in block_ids:
                problems.append(f"[ERROR] duplicate block_id [json-pointer:{at}/block_id]")
            block_ids.add(block_id)
        if kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"[ERROR] must provide text or fields [json-pointer:{at}]")
            if len(_text_of(block.get("text"))) > MAX_SECTION_TEXT:
                problems.append(f"[ERROR] must be less than 3001 characters [json-pointer:{at}/text/text]")
            fields = block.get("fields") or []
            if len(fields) > 10:
                problems.append(f"[ERROR] no more than 10 items allowed [json-pointer:{at}/fields]")
            for j, f in enumerate(fields):
                if len(_text_of(f)) > 2000:
                    problems.append(f"[ERROR] must be less than 2001 characters [json-pointer:{at}/fields/{j}/text]")
        if kind == "header":
            text = block.get("text")
            if not isinstance(text, dict) or text.get("type") != "plain_text":
                problems.append(f"[ERROR] must be a plain_text object [json-pointer:{at}/text]")
            elif len(text.get("text", "")) > 150:
                problems.append(f"[ERROR] must be less than 151 characters [json-pointer:{at}/text/text]")
        if kind == "context" and len(block.get("elements") or []) > 10:
            problems.append(f"[ERROR] no more than 10 items allowed [json-pointer:{at}/elements]")
        elements = list(block.get("elements") or []) if kind == "actions" else []
        if kind == "actions" and not 0 < len(elements) <= 25:
            problems.append(f"[ERROR] must have 1 to 25 items [json-pointer:{at}/elements]")
        for element in elements + [e for e in (block.get("accessory"), block.get("element")) if e]:
            if not isinstance(element, dict):
                continue
            action_id = element.get("action_id")
            if action_id is not None:
                if action_id in action_ids:
                    problems.append(f"[ERROR] duplicate action_id [json-pointer:{at}]")
                action_ids.add(action_id)
            if element.get("type") == "button":
                if len(_text_of(element.get("text"))) > 75:
                    problems.append(f"[ERROR] must be less than 76 characters [json-pointer:{at}/text/text]")
                if len(str(element.get("value", ""))) > 2000:
                    problems.append(f"[ERROR] must be less than 2001 characters [json-pointer:{at}/value]")
    return problems


def _view_problems(view: Any) -> list[str]:
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        return ["[ERROR] view type must be modal or home [json-pointer:/view/type]"]
    problems = _block_problems(view.get("blocks"), MAX_VIEW_BLOCKS, "/view/blocks")
    for name, most in (("title", 24), ("submit", 24), ("close", 24)):
        text = view.get(name)
        if view["type"] == "modal" and name == "title" and not isinstance(text, dict):
            problems.append("[ERROR] missing required field: title [json-pointer:/view/title]")
        if isinstance(text, dict) and len(text.get("text", "")) > most:
            problems.append(f"[ERROR] must be less than {most + 1} characters [json-pointer:/view/{name}/text]")
    has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
    if view["type"] == "modal" and has_input and not isinstance(view.get("submit"), dict):
        problems.append("[ERROR] submit is required when an input block is present [json-pointer:/view/submit]")
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
    return problems


# ---- interactive elements ---------------------------------------------------------------------------

def _find_element(blocks: list[dict[str, Any]], action_id: str) -> tuple[str, dict[str, Any]]:
    """The block id and the element whose ``action_id`` this is (Slack gives a block without an id one)."""
    for i, block in enumerate(blocks):
        candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
        candidates += [e for e in (block.get("accessory"), block.get("element")) if e]
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id") or f"fakeblock{i}", element
    raise KeyError(f"no element with action_id {action_id!r}")


def _selection(element: dict[str, Any], chosen: str | None) -> dict[str, Any]:
    """What an input or select element reports for the value ``chosen``, by its type."""
    kind = element["type"]
    if kind == "plain_text_input":
        return {"value": chosen}
    if kind == "users_select":
        return {"selected_user": chosen}
    if kind == "conversations_select":
        return {"selected_conversation": chosen}
    if kind in ("static_select", "radio_buttons"):
        options = element.get("options") or [o for g in element.get("option_groups") or [] for o in g["options"]]
        picked = next((o for o in options if o.get("value") == chosen), None)
        if chosen is not None and picked is None:
            raise KeyError(f"no option {chosen!r} in {element.get('action_id')!r}")
        return {"selected_option": picked}
    raise ValueError(f"the fake does not fill {kind} elements")
