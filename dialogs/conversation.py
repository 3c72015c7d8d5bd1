"""Turns what a person typed into the view to show; the one entry point every channel calls for text."""

from __future__ import annotations

import re

from bot.service import ReviewService
from dialogs.help import help_view
from dialogs.review import my_reviews
from dialogs.status import status
from dialogs.views import Actor, TextView, View

_COMMANDS = {
    "help": "help",
    "my reviews": "my reviews",
    "reviews": "my reviews",
    "my review": "my reviews",
    "review": "my reviews",
    "status": "status",
}


def normalise(text: str) -> str:
    """Lower-case, single-spaced, without a leading slash or trailing punctuation."""
    return re.sub(r"\s+", " ", text or "").strip().lstrip("/").rstrip(".!?").strip().lower()


def respond(service: ReviewService, actor: Actor, text: str) -> View:
    command = _COMMANDS.get(normalise(text))
    if command == "help":
        return help_view(bool(actor.object_id) and service.is_security_lead(actor.object_id or ""))
    if command == "my reviews":
        return my_reviews(service, actor)
    if command == "status":
        return status(service, actor)
    return TextView(f"Sorry, I don't know “{text.strip()[:80]}”. Say 'help' to see what I can do.")
