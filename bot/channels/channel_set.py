"""The chat channels one deployment serves (Teams, Slack, or both), seen by the notifier and the
scheduler as one.

A person is reached in the channel they last used with the bot when there is one (a stored
conversation), otherwise in the first configured channel that can start one. A card posted about an
item in any channel is redrawn by the channel that posted it, so an answer given in Slack refreshes the
Teams card of the same item, and the other way round.
"""

from __future__ import annotations

import logging
from typing import Protocol, Sequence

from bot.notifier import DeliveryError
from bot.ratelimit import Charge, Limits
from bot.review_directory import ReviewDirectory
from bot.service import ReviewService
from bot.store.base import PostedCard, Store

log = logging.getLogger(__name__)


class Channel(Protocol):
    """What every channel module provides besides its HTTP entry point (docs/architecture.md, "How to add
    a channel")."""

    name: str
    limits: Limits  # its sending limits by name (bot/ratelimit.py), each name its own: 'teams.tenant'

    async def stored_address(self, recipient: str) -> dict | None:
        """Where this channel reaches the person (by Entra object id) already, without asking the platform."""
        ...

    async def open_address(self, recipient: str) -> dict | None:
        """Start a personal conversation with the person and keep it; None when this channel cannot (yet)."""
        ...

    def charges(self, address: dict, recipient: str) -> tuple[Charge, ...]: ...

    async def send_text(self, address: dict, text: str) -> None: ...

    async def redraw_card(self, item_id: str, card: PostedCard) -> None:
        """Replace a message this channel posted about the item with the item as it stands now."""
        ...

    async def refresh_live_status(self) -> None:
        """Redraw the security leads' live status message, when there is one and anything changed."""
        ...


class ChannelSet:
    """The notifier's one MessageSender and the scheduler's card upkeep, over every configured channel."""

    def __init__(self, service: ReviewService, store: Store, channels: Sequence[Channel],
                 directory: ReviewDirectory | None = None) -> None:
        """``directory``: every service whose answered items need their cards redrawn (a CSP partner's customers
        too); by default just ``service``."""
        if not channels:
            raise ValueError("at least one channel is needed")
        self.service = service
        self.directory = directory or ReviewDirectory(service)
        self.store = store
        self.channels = tuple(channels)
        self._by_name = {channel.name: channel for channel in self.channels}
        self.limits: Limits = {name: windows for channel in self.channels for name, windows in channel.limits.items()}

    def __getitem__(self, name: str) -> Channel:
        return self._by_name[name]

    async def reach(self, recipient: str) -> dict | None:
        """Where the person already talks to the bot, else the first channel that can start a conversation;
        None while none can yet (the message waits and is tried again). Only when every channel said it
        never will (Slack has nobody with their e-mail, and no other channel is served) is that refusal
        raised, so the notifier reports them unreachable to the security leads. One channel's "never"
        is not final while another may still reach them: Teams can once the app is installed for them."""
        for channel in self.channels:
            if (address := await channel.stored_address(recipient)) is not None:
                return {"channel": channel.name, "address": address}
        refusals: list[DeliveryError] = []
        for channel in self.channels:
            try:
                address = await channel.open_address(recipient)
            except DeliveryError as refused:  # the next channel may still reach them
                log.info("%s could not open a conversation with %s: %s", channel.name, recipient, refused)
                refusals.append(refused)
                continue
            if address is not None:
                return {"channel": channel.name, "address": address}
        if len(refusals) == len(self.channels) and all(refused.permanent for refused in refusals):
            raise refusals[-1]
        return None

    def charges(self, address: dict, recipient: str) -> tuple[Charge, ...]:
        return self._by_name[address["channel"]].charges(address["address"], recipient)

    async def send_text(self, address: dict, text: str) -> None:
        await self._by_name[address["channel"]].send_text(address["address"], text)

    async def refresh_answered_cards(self) -> None:
        """Every message posted about an item answered since the last round — on another device, in the
        other channel, in a digest, by the deadline — is redrawn in place by the channel that posted it."""
        redrawn: set[tuple[str, str]] = set()  # a message showing several answered items (a digest) is redrawn once
        for item_id in sorted(self.directory.take_answered()):
            for card in await self.store.cards(item_id):
                channel = self._by_name.get(card.channel)
                if channel is None:  # posted by a channel this deployment no longer serves
                    continue
                if (card.channel, card.message_id) in redrawn:
                    continue
                redrawn.add((card.channel, card.message_id))
                try:
                    await channel.redraw_card(item_id, card)
                except DeliveryError as refused:
                    log.warning("could not redraw the %s card of item %s: %s", card.channel, item_id, refused)

    async def refresh_live_status(self) -> None:
        for channel in self.channels:
            await channel.refresh_live_status()
