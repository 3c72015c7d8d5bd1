"""Who a Slack member is in the directory, and who a directory user is in Slack.

Routing, decisions and the ledger speak Entra object ids; Slack knows people by member id (``U…``). The
two meet by the policy's explicit ``[slack] users`` map first (for people whose Slack e-mail is not their
directory address), then by e-mail: ``users.info`` gives a member's profile e-mail, ``users.lookupByEmail``
the member of a directory user's address (``mail``, else their user principal name). A member matched
neither way is unidentified: the dialogs record nothing for them and the channel says why.

What was found is kept for the life of the process (a member's e-mail rarely changes; a restart forgets),
and that Slack has nobody with someone's address for an hour; a person's DM with the bot is kept in the
store as their Slack address (``slack:<object id>``), with the workspace's team id when several workspaces
installed the app (bot/channels/slack_workspaces.py). One ``SlackPeople`` serves one workspace: member ids and
DMs are the workspace's own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.channels.slack_errors import FAILURES, refusal
from bot.notifier import DeliveryError
from bot.service import ReviewService
from bot.store.base import Store

NOT_IN_SLACK_FOR = 3600.0  # seconds before someone Slack did not know is looked up again
ADDRESS_PREFIX = "slack:"  # the store key of a person's Slack DM address: slack:<Entra object id>


@dataclass(frozen=True)
class Member:
    """A Slack member as the channel sees them: who they are in the directory (None: unmapped)."""

    slack_id: str
    object_id: str | None
    name: str
    email: str = ""


class SlackPeople:
    def __init__(self, service: ReviewService, store: Store, client: AsyncWebClient, team_id: str | None = None) -> None:
        """``team_id`` names the workspace of ``client``'s token when several are installed (OAuth): it goes into
        every address kept, so what is sent later goes out with that workspace's token. None: the one workspace."""
        self.service = service
        self.store = store
        self.client = client
        self.team_id = team_id
        self._members: dict[str, Member] = {}  # Slack member id -> who they are
        self._slack_ids: dict[str, str] = {}  # Entra object id -> Slack member id
        self._dms: dict[str, str] = {}  # Slack member id -> the bot's DM with them (D…)
        # Entra object id -> (Slack's "nobody has that e-mail", until when it is believed): a person who is
        # not in Slack is not looked up again at every delivery round (users.lookupByEmail is Tier 3).
        self._missing: dict[str, tuple[DeliveryError, float]] = {}

    def _mapped(self) -> dict[str, str]:
        """The policy's explicit map, as Slack member id -> Entra object id (people it names that the
        directory does not hold are left out; `accessbot doctor` names people the policy cannot resolve)."""
        found = {}
        for person, slack_id in self.service.policy.slack_users.items():
            object_id = self.service.resolve_person(person)
            if object_id is not None:
                found[slack_id] = object_id
        return found

    async def member(self, slack_id: str, fallback_name: str = "someone") -> Member:
        """Who this Slack member is; ``object_id`` None when the policy maps them nowhere and their Slack
        e-mail is nobody's in the directory. Raises DeliveryError when Slack cannot be asked."""
        known = self._members.get(slack_id)
        if known is not None:
            return known
        object_id = self._mapped().get(slack_id)
        try:
            info = await self.client.users_info(user=slack_id)
        except FAILURES as failed:
            if object_id is None:
                raise refusal(failed) from failed
            info = {"user": {}}  # mapped by the policy: the e-mail is not needed
        user = info.get("user") or {}
        profile = user.get("profile") or {}
        email = str(profile.get("email") or "")
        if object_id is None and email:
            object_id = self.service.resolve_person(email)
        name = self.service.display_name(object_id) if object_id else str(
            profile.get("real_name") or user.get("real_name") or user.get("name") or fallback_name)
        found = Member(slack_id, object_id, name, email)
        self._members[slack_id] = found
        if object_id is not None:
            self._slack_ids.setdefault(object_id, slack_id)
        return found

    async def slack_id_of(self, object_id: str) -> str:
        """The Slack member id of a directory user; DeliveryError (permanent for users_not_found) when Slack
        has nobody with their address."""
        if object_id in self._slack_ids:
            return self._slack_ids[object_id]
        for slack_id, mapped in self._mapped().items():
            if mapped == object_id:
                self._slack_ids[object_id] = slack_id
                return slack_id
        missing = self._missing.get(object_id)
        if missing is not None and missing[1] > time.monotonic():
            raise missing[0]
        user = self.service.snapshot.user(object_id) or {}
        email = str(user.get("mail") or user.get("userPrincipalName") or "")
        if not email:
            raise DeliveryError("the directory holds no e-mail address for them to find them in Slack", permanent=True)
        try:
            found = await self.client.users_lookupByEmail(email=email)
        except FAILURES as failed:
            refused = refusal(failed)
            if refused.permanent:
                self._missing[object_id] = (refused, time.monotonic() + NOT_IN_SLACK_FOR)
            raise refused from failed
        slack_id = str((found.get("user") or {}).get("id") or "")
        self._slack_ids[object_id] = slack_id
        return slack_id

    async def dm(self, slack_id: str) -> str:
        """The bot's DM with a member (``conversations.open``): the id chat.update needs, unlike the member id."""
        if slack_id not in self._dms:
            try:
                opened = await self.client.conversations_open(users=slack_id)
            except FAILURES as failed:
                raise refusal(failed) from failed
            self._dms[slack_id] = str((opened.get("channel") or {}).get("id") or "")
        return self._dms[slack_id]

    async def remember(self, member: Member, dm: str) -> None:
        """Keep a mapped member's DM as their Slack address; when it is new, release what waited for them."""
        if member.object_id is None:
            return
        if await self.store.save_conversation(ADDRESS_PREFIX + member.object_id, self.address(member.slack_id, dm)):
            await self.store.release_recipient(member.object_id, self.service.clock.now())

    def address(self, slack_id: str, dm: str) -> dict[str, str]:
        """A person's Slack address: their member id and DM, and the workspace's team id when several are served."""
        address = {"user": slack_id, "channel": dm}
        if self.team_id is not None:
            address["team"] = self.team_id
        return address
