"""Drains the outbox: every message was stored before this runs, so a crash loses nothing.

A message is marked sent only after the channel accepted it. A person the bot has no conversation with
yet (the app is not installed for them) keeps their messages queued until they say hello.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.clock import Clock
from bot.store.base import Store

NO_CONVERSATION_RETRY = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=1)


class DeliveryError(Exception):
    """The channel refused a message; ``retry_after`` is the channel's own wish when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MessageSender(Protocol):
    async def send_text(self, reference: dict, text: str) -> None:
        """Send a proactive message into a stored conversation; raise DeliveryError when refused."""
        ...


@dataclass(frozen=True)
class DrainResult:
    sent: int
    deferred: int


class Notifier:
    def __init__(self, store: Store, sender: MessageSender, clock: Clock, batch: int = 50) -> None:
        self.store = store
        self.sender = sender
        self.clock = clock
        self.batch = batch

    async def drain(self) -> DrainResult:
        sent = deferred = 0
        now = self.clock.now()
        for message in await self.store.due_messages(now, self.batch):
            reference = await self.store.get_conversation(message.recipient)
            if reference is None:
                await self.store.mark_retry(
                    message.key, "no conversation with this person yet", now + NO_CONVERSATION_RETRY
                )
                deferred += 1
                continue
            try:
                await self.sender.send_text(reference, str(message.payload["text"]))
            except DeliveryError as refused:
                await self.store.mark_retry(message.key, str(refused), now + _backoff(message.attempts, refused))
                deferred += 1
                continue
            await self.store.mark_sent(message.key, self.clock.now())
            sent += 1
        return DrainResult(sent, deferred)


def _backoff(attempts: int, refused: DeliveryError) -> timedelta:
    """Exponential backoff with full jitter, or the channel's Retry-After when it named one."""
    if refused.retry_after is not None:
        return timedelta(seconds=refused.retry_after)
    ceiling = min(MAX_BACKOFF.total_seconds(), 2.0 ** min(attempts, 12))
    return timedelta(seconds=random.uniform(1.0, max(1.0, ceiling)))
