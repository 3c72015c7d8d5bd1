"""The security leads' live status message, as every channel keeps it: where it was posted (an address stored
under the channel's own key) and which change it last showed, so a round redraws it only when something was
recorded since — or when the chart image link it carries is getting old. Each channel only says how to post
and redraw a message of its own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.exports import LINK_LIFETIME
from bot.service import ReviewService
from bot.store.base import Store
from dialogs.status import campaign_status
from dialogs.views import StatusView


# The message's chart image is a signed link that expires after LINK_LIFETIME (bot/exports.py), and a quiet
# campaign records nothing for hours: past this age the message is redrawn anyway, with a fresh link. Half the
# link's life leaves room for a scheduler round of up to as long (the default round is 30 s), and costs one
# update per half hour of quiet, not one per round.
REDRAW_AFTER = LINK_LIFETIME / 2


class LiveStatus:
    def __init__(self, service: ReviewService, store: Store, key: str) -> None:
        self.service = service
        self.store = store
        self.key = key
        self._drawn_at = -1  # ReviewService.changes when it was last drawn
        self._drawn_time: datetime | None = None  # the service clock's time then: the age of its chart link

    async def posted(self, address: dict[str, Any]) -> None:
        """It was posted (or moved) here, showing the campaign as it stands now."""
        await self.store.save_conversation(self.key, address)
        self.drawn()

    def drawn(self) -> None:
        self._drawn_at = self.service.changes
        self._drawn_time = self.service.clock.now()

    async def due(self) -> tuple[dict[str, Any], StatusView] | None:
        """Where it is and what it should show now, or None when nothing changed since it was drawn and its
        chart link is not yet REDRAW_AFTER old (or none was posted, or there is no campaign to show)."""
        if self.service.changes == self._drawn_at and not self._link_ageing():
            return None
        address = await self.store.get_conversation(self.key)
        if address is None:
            return None
        view = campaign_status(self.service, live=True)
        return (address, view) if isinstance(view, StatusView) else None

    def _link_ageing(self) -> bool:
        return self._drawn_time is not None and self.service.clock.now() - self._drawn_time >= REDRAW_AFTER
