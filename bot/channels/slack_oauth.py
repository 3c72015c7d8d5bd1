"""Installing accessbot in several Slack workspaces through OAuth ("Distribute" an app), an option beside the
default of one workspace and one bot token (docs/slack-app.md#several-workspaces-oauth-install).

slack-bolt's own OAuth flow runs it: ``GET /slack/install`` issues a state (kept in our store, and in a cookie
of the installer's browser) and sends the browser to Slack's consent page; Slack sends it back to ``GET
/slack/oauth_redirect`` with a code and the state, which must match the cookie and be consumed once from the
store; the code is exchanged (``oauth.v2.access``) for the workspace's bot token, and the installation is
kept sealed (bot/channels/slack_installations.py).

An open install URL on a security product must not let any workspace attach itself: only the workspaces in
``ACCESSBOT_SLACK_ALLOWED_TEAMS`` (team ids) may install. Another workspace that completes Slack's consent
page is uninstalled again at once (``apps.uninstall``), nothing of it is kept, and the browser is told why.
An Enterprise Grid org-wide install (``is_enterprise_install``) is refused the same way: it would attach
every workspace of the org, present and future, without anyone allowing them one by one; install it in each
allowed workspace of the org instead.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from typing import Iterable

from slack_bolt.error import BoltError
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.slack_errors import FAILURES
from bot.channels.slack_installations import SealedInstallationStore, StoredStateStore, TokenSeal
from bot.store.base import StoreUnavailable

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# The bot scopes of manifest/slack/manifest.yaml: what each workspace grants at install.
BOT_SCOPES = ("app_mentions:read", "chat:write", "commands", "im:history", "im:write", "users:read", "users:read.email")


@dataclass(frozen=True)
class SlackOAuth:
    """The app's OAuth credentials, the key that seals tokens, and the workspaces allowed to install."""

    client_id: str
    client_secret: str = field(repr=False)
    token_key: str = field(repr=False)
    allowed_teams: frozenset[str] = frozenset()
    redirect_uri: str = ""  # {ACCESSBOT_PUBLIC_URL}/slack/oauth_redirect, as registered in the app's settings

    def problem(self) -> str | None:
        """What is missing, in the settings' own names; None when complete."""
        if not self.client_id or not self.client_secret:
            return "ACCESSBOT_SLACK_CLIENT_ID and ACCESSBOT_SLACK_CLIENT_SECRET are both needed for the OAuth install"
        if not self.token_key:
            return ("ACCESSBOT_SLACK_TOKEN_KEY is needed in OAuth mode: the workspaces' bot tokens are stored encrypted "
                    "with it, never in clear")
        try:
            TokenSeal(self.token_key)
        except ValueError as bad:
            return str(bad)
        if not self.allowed_teams:
            return ("ACCESSBOT_SLACK_ALLOWED_TEAMS is empty: name the workspaces (team ids, T…) that may install "
                    "accessbot; an open install URL would let any workspace attach itself")
        return None


def parse_teams(text: str) -> frozenset[str]:
    """``T0123,T0456`` (commas or spaces) as a set of team ids."""
    return frozenset(part for part in text.replace(",", " ").split() if part)


def authorize_url(api_url: str) -> str:
    """Slack's consent page beside its Web API (https://slack.com/oauth/v2/authorize for the real one)."""
    root = api_url.rstrip("/")
    root = root[: -len("/api")] if root.endswith("/api") else root
    return f"{root}/oauth/v2/authorize"


class InstallRefused(BoltError):
    """This workspace may not install accessbot; the message says why and who can change it."""


def refusal_of(installation: Installation, allowed: Iterable[str]) -> str | None:
    """Why an installation is refused, or None when its workspace is allowed."""
    if installation.is_enterprise_install or not installation.team_id:
        org = installation.enterprise_name or installation.enterprise_id or "an Enterprise Grid org"
        return (f"accessbot cannot be installed for a whole Enterprise Grid org ({org}): install it in each workspace "
                "that runs reviews, once your accessbot administrators allowed it")
    if installation.team_id not in allowed:
        return (f"the workspace {installation.team_name or ''} ({installation.team_id}) is not allowed to install "
                "accessbot: ask your accessbot administrators to add its team id to ACCESSBOT_SLACK_ALLOWED_TEAMS")
    return None


class GuardedOAuthFlow(AsyncOAuthFlow):
    """Bolt's OAuth flow, keeping only installations of allowed workspaces; a refused one is uninstalled again."""

    def __init__(self, *, client: AsyncWebClient, settings: AsyncOAuthSettings, oauth: SlackOAuth) -> None:
        super().__init__(client=client, logger=log, settings=settings)
        self.oauth = oauth

    async def store_installation(self, request: AsyncBoltRequest, installation: Installation) -> None:
        refused = refusal_of(installation, self.oauth.allowed_teams)
        if refused is None:
            try:
                await self.settings.installation_store.async_save(installation)
            except StoreUnavailable as unavailable:  # Bolt shows its failure page for a BoltError, a 500 otherwise
                raise BoltError(f"the installation could not be stored: {unavailable}") from unavailable
            log.info("accessbot was installed in the Slack workspace %s (%s)", installation.team_name, installation.team_id)
            return
        log.warning("refused an install: %s", refused)
        if installation.bot_token:  # Slack installed the app already: take it out again, and keep no token
            try:  # the credentials in the form body: slack_sdk's apps_uninstall puts them in the URL, which access logs keep
                await self.client.api_call("apps.uninstall", headers={"Authorization": f"Bearer {installation.bot_token}"},
                                           data={"client_id": self.oauth.client_id, "client_secret": self.oauth.client_secret})
            except FAILURES as failed:
                log.warning("could not uninstall the refused installation of %s: %s",
                            installation.team_id or installation.enterprise_id, type(failed).__name__)
        raise InstallRefused(refused)


def _page(title: str, text: str, status: int, clear_cookie: str) -> BoltResponse:
    body = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>")
    return BoltResponse(status=status, body=body,
                        headers={"Content-Type": "text/html; charset=utf-8", "Set-Cookie": [clear_cookie]})


FAILURE_TEXT = {
    "invalid_browser": "This install was not started in this browser (or its cookie expired): start again from the "
                       "install link.",
    "invalid_state": "This install link was already used, expired or was not issued by accessbot: start again from "
                     "the install link.",
    "access_denied": "The install was cancelled in Slack; nothing was installed.",
    "missing_code": "Slack sent no authorisation code; start again from the install link.",
    "invalid_code": "Slack did not accept the authorisation code; start again from the install link.",
}


async def _installed(args: AsyncSuccessArgs) -> BoltResponse:
    team = args.installation.team_name or args.installation.team_id or "your workspace"
    return _page("accessbot is installed",
                 f"accessbot is installed in {team}. Say /access-review help in Slack to begin.", 200,
                 args.settings.state_utils.build_set_cookie_for_deletion())


async def _failed(args: AsyncFailureArgs) -> BoltResponse:
    clear = args.settings.state_utils.build_set_cookie_for_deletion()
    if isinstance(args.error, InstallRefused):
        return _page("accessbot was not installed", str(args.error), 403, clear)
    if args.reason == "storage_error":
        log.error("an allowed Slack installation could not be stored: %s", type(args.error).__name__)
    text = FAILURE_TEXT.get(args.reason, "accessbot could not be installed; try again, and tell your accessbot "
                                         "administrators if it persists.")
    return _page("accessbot was not installed", text, args.suggested_status_code, clear)


def oauth_flow(oauth: SlackOAuth, client: AsyncWebClient, installations: SealedInstallationStore,
               states: StoredStateStore, api_url: str) -> GuardedOAuthFlow:
    """Bolt's flow with our stores, our pages and the allow list; the install path redirects straight to Slack's
    consent page (no intermediate page of Bolt's)."""
    settings = AsyncOAuthSettings(
        client_id=oauth.client_id,
        client_secret=oauth.client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        redirect_uri=oauth.redirect_uri or None,
        install_path=INSTALL_PATH,
        install_page_rendering_enabled=False,
        redirect_uri_path=REDIRECT_PATH,
        callback_options=AsyncCallbackOptions(success=_installed, failure=_failed),
        authorization_url=authorize_url(api_url),
        installation_store=installations,
        installation_store_bot_only=True,
        state_store=states,
        state_expiration_seconds=int(states.lifetime.total_seconds()),
        logger=log,
    )
    return GuardedOAuthFlow(client=client, settings=settings, oauth=oauth)
