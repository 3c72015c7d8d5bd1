"""What a person sees when their answer was not taken: refused at the edge, or the store could not keep it.

The card they clicked is answered with the same item (or digest) and a line saying plainly that nothing
was recorded and what to do, so they can answer again from the very card that says so.
"""

from __future__ import annotations

from bot.service import ReviewService, UnknownItem
from dialogs.digest import digest_view
from dialogs.review import item_view
from dialogs.views import Actor, TextView, Tone, View

STORE_DOWN = (
    "Your answer was NOT recorded: the attestation ledger cannot be written right now. Nothing changed; "
    "try again in a few minutes."
)


def rejected(why: str) -> str:
    """The line for one answer the store refused on its own (the others are recorded as usual); ``why`` is
    the store's own sentence, e.g. "this answer cannot be recorded: it holds a lone surrogate"."""
    said = why.strip().rstrip(".") or "the store refused it"
    return f"Not recorded. {said[0].upper()}{said[1:]}. Nothing changed; change what you entered and answer again."


def item_not_recorded(service: ReviewService, actor: Actor, item_id: str, message: str) -> View:
    """The item's card as it stands, with ``message`` on it; only the message when the item is unknown."""
    notice = TextView(message, Tone.ATTENTION)
    try:
        item, campaign = service.item(item_id)
    except UnknownItem:
        return notice
    return item_view(service, item, campaign, notice, viewer=actor.object_id or "")


def digest_not_recorded(service: ReviewService, actor: Actor, message: str) -> View:
    """The person's digest as it stands, with ``message`` on it."""
    if not actor.object_id:
        return TextView(message, Tone.ATTENTION)
    return digest_view(service, actor, TextView(message, Tone.ATTENTION))
