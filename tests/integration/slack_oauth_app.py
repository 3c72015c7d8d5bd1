"""The demo tenant's bot in OAuth mode: several Slack workspaces install it through the real aiohttp app's
/slack/install and /slack/oauth_redirect, against the local fake Slack of several workspaces
(tests/fakes/fake_slack_oauth.py). The installer's browser is an aiohttp client that follows the redirects one
by one and carries the state cookie back as a browser does over HTTPS (Bolt sets it ``Secure``)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
from aiohttp import web
from cryptography.fernet import Fernet

from bot.app import Runtime, build_runtime, create_app, load_inputs
from bot.channels.slack import SlackSettings
from bot.channels.slack_oauth import REDIRECT_PATH, SlackOAuth
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from tests.fakes.fake_slack import APP_TOKEN, SIGNING_SECRET, FakeSlack
from tests.fakes.fake_slack_oauth import CLIENT_ID, CLIENT_SECRET, FakeSlackWorkspaces

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
TEAM_A, TEAM_B, TEAM_OUTSIDE = "T0CONTOSO1", "T0CONTOSO2", "T0STRANGER"
IN_A = ("alexw@contoso.com", "lynner@contoso.com", "leeg@contoso.com")  # security leads and the fallback
IN_B = ("pattif@contoso.com", "adelev@contoso.com")
STATE_COOKIE = "slack-app-oauth-state"


@dataclass
class Installed:
    """What the installer's browser saw at the end of the dance."""

    status: int
    page: str


@dataclass
class OAuthBot:
    runtime: Runtime
    runner: web.AppRunner
    slack: FakeSlackWorkspaces
    url: str  # the app's root
    token_key: str
    members: dict[str, str]  # e-mail -> member id (in the workspace they belong to)

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    def workspace(self, team_id: str) -> FakeSlack:
        return self.slack.workspaces[team_id]

    async def start_install(self, browser: aiohttp.ClientSession) -> tuple[str, str]:
        """GET /slack/install: Slack's consent page it redirects to, and the state cookie it set."""
        async with browser.get(f"{self.url}/slack/install", allow_redirects=False) as started:
            assert started.status == 302, await started.text()
            return started.headers["Location"], started.cookies[STATE_COOKIE].value

    async def consent(self, browser: aiohttp.ClientSession, consent_page: str, team: str, **choices: str) -> str:
        """The installer approves in workspace ``team``: where Slack sends the browser back."""
        async with browser.get(consent_page, params={"team": team, **choices}, allow_redirects=False) as approved:
            assert approved.status == 302, await approved.text()
            return approved.headers["Location"]

    async def come_back(self, browser: aiohttp.ClientSession, redirect: str, cookie: str | None) -> Installed:
        headers = {"Cookie": f"{STATE_COOKIE}={cookie}"} if cookie is not None else {}
        async with browser.get(redirect, headers=headers, allow_redirects=False) as back:
            return Installed(back.status, await back.text())

    async def install(self, team: str, **choices: str) -> Installed:
        """The whole dance, as an admin of ``team`` clicking the install link."""
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as browser:
            consent_page, cookie = await self.start_install(browser)
            redirect = await self.consent(browser, consent_page, team, **choices)
            return await self.come_back(browser, redirect, cookie)

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.slack.stop()


async def serve_oauth_demo(data_dir: Path, *, database_url: str = "", socket_mode: bool = False,
                           allowed: frozenset[str] = frozenset({TEAM_A, TEAM_B})) -> OAuthBot:
    """The bot with three workspaces on the fake: A and B allowed, the third not; ``socket_mode`` receives
    Slack's requests over Socket Mode (the install still goes through the app's HTTP routes)."""
    slack = FakeSlackWorkspaces()
    a = slack.add_workspace(TEAM_A, "Contoso Security")
    b = slack.add_workspace(TEAM_B, "Contoso Operations", enterprise={"id": "E0CONTOSO", "name": "Contoso"})
    slack.add_workspace(TEAM_OUTSIDE, "Fabrikam")
    await slack.start()
    members = {email: a.add_user(email)["id"] for email in IN_A} | {email: b.add_user(email)["id"] for email in IN_B}
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    key = Fernet.generate_key().decode("ascii")
    oauth = SlackOAuth(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_key=key, allowed_teams=allowed,
                       redirect_uri=url + REDIRECT_PATH)
    demo_policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    runtime = await build_runtime(
        data_dir=data_dir, policy=demo_policy, snapshot=snapshot, clock=ManualClock(MONDAY),
        credentials=BotCredentials(), database_url=database_url,
        slack=SlackSettings(signing_secret="" if socket_mode else SIGNING_SECRET, api_url=slack.api_url, oauth=oauth,
                            socket_mode=socket_mode, app_token=APP_TOKEN if socket_mode else ""),
    )
    await runtime.service.open_current_campaign()
    runner = web.AppRunner(create_app(runtime, background=False))
    await runner.setup()
    await web.SockSite(runner, listening).start()
    return OAuthBot(runtime, runner, slack, url, key, members)
