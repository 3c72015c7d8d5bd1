"""The security leads' live status message, as every channel keeps it: where it was posted (an address stored
under the channel's own key) and which change it last showed, so a round redraws it only when something was
recorded since. Each channel only says how to post and redraw a message of its own."""

from __future__ import annotations

from typing import Any

from bot.service import ReviewService
from bot.store.base import Store
from dialogs.status import campaign_status
from dialogs.views import StatusView


class LiveStatus:
    def __init__(self, service: ReviewService, store: Store, key: str) -> None:
        self.service = service
        self.store = store
        self.key = key
        self._drawn_at = -1  # ReviewService.changes when it was last drawn

    async def posted(self, address: dict[str, Any]) -> None:
        """It was posted (or moved) here, showing the campaign as it stands now."""
        await self.store.save_conversation(self.key, address)
        self.drawn()

    def drawn(self) -> None:
        self._drawn_at = self.service.changes

    async def due(self) -> tuple[dict[str, Any], StatusView] | None:
        """Where it is and what it should show now, or None when nothing changed since it was drawn (or none
        was posted, or there is no campaign to show)."""
        if self.service.changes == self._drawn_at:
            return None
        address = await self.store.get_conversation(self.key)
        if address is None:
            return None
        view = campaign_status(self.service, live=True)
        return (address, view) if isinstance(view, StatusView) else None
