"""Several Slack workspaces behind one Web API, and Slack's side of the OAuth install: the far side of the wire
for accessbot's multi-workspace mode (bot/channels/slack_oauth.py).

Each workspace is a ``FakeSlack`` (tests/fakes/fake_slack.py) with its own members, channels, ids and bot token;
one aiohttp server answers for all of them, as slack.com does:

- **Per-token isolation.** A Web API call is answered by the workspace whose token it carries, so a token of
  team A sees only team A (``auth.test`` answers with A's ids; posting into B's channel is ``channel_not_found``).
  An unknown token is ``invalid_auth``.
- **The consent page.** ``GET /oauth/v2/authorize?client_id&scope&state&redirect_uri&team`` stands for the
  installer approving in the workspace ``team`` (Slack asks which; the test says): 302 back to ``redirect_uri``
  with a single-use ``code`` and the ``state`` unchanged (``error=access_denied`` with ``deny=1``).
- **``oauth.v2.access``**: the client id and secret by HTTP Basic auth (as slack_sdk sends them) or form fields,
  the code (single use, ``invalid_code``), the same ``redirect_uri`` (``bad_redirect_uri``); it answers in the
  shape of Slack's method reference: ``access_token``, ``token_type``, ``scope``, ``bot_user_id``, ``app_id``,
  ``team{id,name}`` (null for an org-wide install), ``enterprise`` (null, or ``{id,name}`` in an Enterprise Grid
  org), ``authed_user``, ``is_enterprise_install``.
- **Socket Mode.** The app-level token is the app's: ``apps.connections.open`` through it opens one socket
  (served by the first workspace), over which the test pushes any workspace's envelopes.
- **``apps.uninstall``** with a workspace's token and the app's credentials: the app is removed and its token
  answers ``token_revoked``; ``uninstall(team)`` does the same from Slack's side (an admin removed the app),
  after which the test sends the ``app_uninstalled`` event.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from tests.fakes.fake_slack import BOT_SCOPES, SIGNING_SECRET, FakeSlack
from tests.fakes.slack_payloads import Workspace

CLIENT_ID = "1234567890.0987654321"
CLIENT_SECRET = "fake-client-secret-0123456789abcdef"
APP_ID = "A0ACCESS01"


@dataclass
class Grant:
    """A code handed back by the consent page, and what it is for."""

    team_id: str
    redirect_uri: str
    installer: str
    org_wide: bool = False


class FakeSlackWorkspaces:
    """Workspaces side by side on one Web API, with the app's OAuth credentials."""

    def __init__(self, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.workspaces: dict[str, FakeSlack] = {}
        self.names: dict[str, str] = {}
        self.enterprise: dict[str, dict[str, str]] = {}  # team id -> its Enterprise Grid org
        self.grants: dict[str, Grant] = {}
        self.exchanges: list[dict[str, Any]] = []  # every oauth.v2.access answer, as sent
        self.uninstalled: list[str] = []  # team ids, in order
        self.url = ""
        self._codes = itertools.count(1)
        self._runner: web.AppRunner | None = None

    def add_workspace(self, team_id: str, name: str, *, enterprise: dict[str, str] | None = None) -> FakeSlack:
        """A workspace whose bot token is issued when the app is installed there."""
        n = len(self.workspaces) + 1
        ws = FakeSlack(workspace=Workspace(team_id=team_id, team_domain=name.lower().replace(" ", ""), app_id=APP_ID,
                                           bot_user_id=f"U0BOT{n:05d}", bot_id=f"B0BOT{n:05d}"),
                       bot_token=f"xoxb-{n:010d}-{team_id}-fakeworkspacetoken", signing_secret=SIGNING_SECRET,
                       first_id=n * 1_000_000)
        ws.url = self.url
        self.workspaces[team_id] = ws
        self.names[team_id] = name
        if enterprise is not None:
            self.enterprise[team_id] = enterprise
        return ws

    def uninstall(self, team_id: str) -> None:
        """An admin removed the app from the workspace: its token is revoked."""
        self.workspaces[team_id].revoke()
        self.uninstalled.append(team_id)

    # ---- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/oauth/v2/authorize", self._authorize)
        app.router.add_get("/link/", self._link)
        app.router.add_post("/response/{url_id}", self._respond)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        for ws in self.workspaces.values():
            ws.url = self.url
        return self

    async def stop(self) -> None:
        for ws in self.workspaces.values():
            await ws.stop()  # its own client session, used to post to the app
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    # ---- the consent page --------------------------------------------------------------------------

    async def _authorize(self, request: web.Request) -> web.Response:
        query = request.query
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            return web.Response(status=400, text="invalid client_id or redirect_uri")
        if set(query.get("scope", "").split(",")) - BOT_SCOPES:
            return web.Response(status=400, text="invalid_scope")
        state = query.get("state", "")
        if query.get("deny"):
            raise web.HTTPFound(f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': state})}")
        team_id = query.get("team", "")
        if team_id not in self.workspaces:
            return web.Response(status=400, text="the installer chose no workspace of this fake (pass team=)")
        code = f"fakecode.{next(self._codes):08d}"
        self.grants[code] = Grant(team_id, redirect_uri, query.get("installer", "U0INSTALLER"),
                                  org_wide=query.get("org") == "1")
        raise web.HTTPFound(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}")

    # ---- the Web API -------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = dict(parse_qsl(request.query_string)) | dict(parse_qsl((await request.read()).decode("utf-8", "replace")))
        if method == "oauth.v2.access":
            return self._oauth_v2_access(request, params)
        token = _bearer(request) or params.get("token", "")
        ws = next((w for w in self.workspaces.values() if token in (w.bot_token, w.app_token)), None)
        if ws is None:
            return web.json_response({"ok": False, "error": "invalid_auth" if token else "not_authed"})
        if method == "apps.uninstall":
            if (params.get("client_id"), params.get("client_secret")) != (self.client_id, self.client_secret):
                return web.json_response({"ok": False, "error": "invalid_client_id"})
            self.uninstall(ws.ws.team_id)
            return web.json_response({"ok": True})
        return await ws._api(request)  # that workspace's own answer, calls recorded there

    def _oauth_v2_access(self, request: web.Request, params: dict[str, str]) -> web.Response:
        client_id, client_secret = _basic(request) or (params.get("client_id", ""), params.get("client_secret", ""))
        if client_id != self.client_id:
            return web.json_response({"ok": False, "error": "invalid_client_id"})
        if client_secret != self.client_secret:
            return web.json_response({"ok": False, "error": "bad_client_secret"})
        grant = self.grants.pop(params.get("code", ""), None)
        if grant is None:
            return web.json_response({"ok": False, "error": "invalid_code"})
        if params.get("redirect_uri") and params["redirect_uri"] != grant.redirect_uri:
            return web.json_response({"ok": False, "error": "bad_redirect_uri"})
        ws = self.workspaces[grant.team_id]
        ws.revoked = False  # installing again brings the token back
        enterprise = self.enterprise.get(grant.team_id)
        answer = {
            "ok": True,
            "access_token": ws.bot_token,
            "token_type": "bot",
            "scope": ",".join(sorted(ws.scopes)),
            "bot_user_id": ws.ws.bot_user_id,
            "app_id": APP_ID,
            "team": None if grant.org_wide else {"name": self.names[grant.team_id], "id": grant.team_id},
            "enterprise": enterprise,
            "authed_user": {"id": grant.installer},
            "is_enterprise_install": grant.org_wide,
        }
        self.exchanges.append(answer)
        return web.json_response(answer)

    async def _link(self, request: web.Request) -> web.StreamResponse:
        """Socket Mode: the app-level token is the app's, not a workspace's, so the socket opened through one
        workspace's ``apps.connections.open`` carries every workspace's envelopes (the test pushes them)."""
        ticket = request.query.get("ticket", "")
        for ws in self.workspaces.values():
            if ticket in ws._tickets:
                return await ws._link(request)
        return web.Response(status=401, text="invalid ticket")

    async def _respond(self, request: web.Request) -> web.Response:
        url_id = request.match_info["url_id"]
        for ws in self.workspaces.values():
            if url_id in ws._response_urls:
                return await ws._respond(request)
        return web.json_response({"ok": False, "error": "invalid_url"}, status=404)

    def event(self, team_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """An Events API callback from a workspace (e.g. ``{"type": "app_uninstalled"}``), as Slack POSTs it."""
        return {"token": "fake-verification-token", "team_id": team_id, "api_app_id": APP_ID, "event": event,
                "type": "event_callback", "event_id": f"Ev{next(self._codes):08d}", "event_time": 1700000000,
                "authorizations": [{"enterprise_id": None, "team_id": team_id, "user_id": self.workspaces[team_id].ws.bot_user_id,
                                    "is_bot": True, "is_enterprise_install": False}]}


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:] if header.startswith("Bearer ") else ""


def _basic(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    client_id, _, secret = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    return client_id, secret

