"""Which Slack workspace a request or an address belongs to, and the Web API client that speaks for it.

With one bot token (the default) there is one workspace, and every address is its own. With the OAuth install
(bot/channels/slack_oauth.py) each workspace has its own bot token: a request is answered with the token of the
workspace it came from, and everything sent later — the outbox, reminders, the live status, the Home tab, card
redraws — with the token of the workspace its address names (``team`` in every stored address). A workspace
that uninstalled the app has no token any more: sending there is a permanent refusal, so the outbox marks the
message undeliverable and the security leads are told, as for anyone unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.slack_installations import SealBroken, SealedInstallationStore
from bot.channels.slack_people import SlackPeople
from bot.notifier import DeliveryError


@dataclass(frozen=True)
class Workspace:
    """One workspace as the channel speaks to it: its team id (None: the one workspace of the bot token), a
    client holding its bot token, and who its members are."""

    team_id: str | None
    client: AsyncWebClient
    people: SlackPeople

    def tag(self, address: dict) -> dict:
        """``address`` with this workspace's team id, when several are served."""
        return address if self.team_id is None else {**address, "team": self.team_id}


class Workspaces(Protocol):
    async def of(self, team_id: str | None) -> Workspace:
        """The workspace of a request or an address; DeliveryError (permanent) when it is not installed."""
        ...

    async def every(self) -> list[Workspace]:
        """Every workspace served now, to look a person up in."""
        ...

    def forget(self, team_id: str) -> None:
        """Drop what is known of a workspace that uninstalled the app."""
        ...


class OneWorkspace:
    """The default: one bot token, one workspace, whatever the request or the address says."""

    def __init__(self, workspace: Workspace) -> None:
        self.only = workspace

    async def of(self, team_id: str | None) -> Workspace:
        return self.only

    async def every(self) -> list[Workspace]:
        return [self.only]

    def forget(self, team_id: str) -> None:
        return None


class InstalledWorkspaces:
    """The workspaces that installed the app through OAuth. The token is read (and unsealed) from the store at
    each use, so an uninstall seen by one instance stops every instance at once; what was learned of a
    workspace's members is kept while its token stays the same."""

    def __init__(self, installations: SealedInstallationStore,
                 make: Callable[[str, str], Workspace]) -> None:
        self.installations = installations
        self.make = make  # (team id, bot token) -> a Workspace with a client of its own
        self._known: dict[str, Workspace] = {}

    async def of(self, team_id: str | None) -> Workspace:
        if not team_id:
            raise DeliveryError("the Slack address names no workspace (it was kept before the OAuth install was "
                                "turned on): the person must write to the bot again", permanent=True)
        try:
            token = await self.installations.bot_token(team_id)
        except SealBroken as broken:  # no retry will open it: the workspace must install again
            raise DeliveryError(str(broken), permanent=True) from broken
        if token is None:
            self.forget(team_id)
            raise DeliveryError(f"accessbot is no longer installed in the Slack workspace {team_id} (uninstalled)",
                                permanent=True)
        known = self._known.get(team_id)
        if known is None or known.client.token != token:
            known = self._known[team_id] = self.make(team_id, token)
        return known

    async def every(self) -> list[Workspace]:
        found = []
        for team_id in await self.installations.team_ids():
            try:
                found.append(await self.of(team_id))
            except DeliveryError:  # uninstalled meanwhile
                continue
        return found

    def forget(self, team_id: str) -> None:
        self._known.pop(team_id, None)
