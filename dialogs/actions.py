"""The buttons of every message, named once for every channel: their verbs, the keys of the data they
carry back, and where each verb goes.

A renderer puts a verb and its data on a button (an Adaptive Card's ``Action.Execute``, a Block Kit
button's ``action_id`` and ``value``); the channel reads them back from the click and calls ``perform``.
Neither needs to know what the other channel does, and a verb means the same thing everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from bot.review_directory import ReviewDirectory
from bot.service import ReviewService
from dialogs.views import Actor, View

# Verbs: what a button asks for.
DECIDE = "decide"  # Keep / Revoke / Don't know / Reassign on one item
REFRESH = "refresh"  # show the item as it stands now (a card opened later, on another device)
DIGEST = "digest"  # submit a digest's choices, or keep every item no check flagged
DETAILS = "details"  # open one digest row as the item's own card
CONFIRM = "confirm"  # Confirm / Cancel on a question whose answer changes something for good

# The keys of the data a button carries back (inputs a person filled in arrive under the same keys).
ITEM = "item"
ACTION = "action"  # the engine action (bot.engine.model.Action) of a DECIDE button
JUSTIFICATION = "justification"
REASSIGN_TO = "reassign_to"
KEEP_UNFLAGGED = "keep_unflagged"
SUBMIT_DIGEST = "digest"
INTENT = "intent"
REF = "ref"
CONFIRMED = "confirm"
CHOICE_PREFIX = "choice:"  # a digest row's answer: "choice:<item id>" -> "keep" | "revoke" | "dont_know"
TENANT = "tenant"  # the tenant whose digest a digest's buttons answer (a CSP partner's customer); older cards lack it


@dataclass(frozen=True)
class ActionResult:
    """What answers a click: the view that replaces the clicked message, and (for Details) one more view
    to post as a new message beside it."""

    replace: View
    post: View | None = None


async def service_for(directory: ReviewDirectory, data: Mapping[str, Any]) -> ReviewService:
    """The service a button's data concerns: the one holding its item; for a digest, the tenant it names, else
    the one holding a row it answers; otherwise (a sign-off confirmation, a card older than the tenant key) the
    deployment's own."""
    item_id = str(data.get(ITEM) or "")
    if item_id:
        return await directory.find(item_id)
    tenant = data.get(TENANT)
    if isinstance(tenant, str) and tenant:
        return directory.of_tenant(tenant)
    rows = [str(key)[len(CHOICE_PREFIX):] for key in data if str(key).startswith(CHOICE_PREFIX)]
    return await directory.find(rows[0]) if rows else directory.own


async def perform(directory: ReviewDirectory, actor: Actor, verb: str, data: Mapping[str, Any]) -> ActionResult:
    """Route a button's verb to its dialog, on the service holding what it concerns (``service_for``). An
    unknown verb is treated as DECIDE, whose dialog refuses a button it does not know without recording
    anything."""
    service = await service_for(directory, data)
    # Imported here: these dialogs import this module's data keys.
    from dialogs.conversation import confirm
    from dialogs.digest import digest_action, digest_view
    from dialogs.review import card_action, current_item

    item_id = str(data.get(ITEM) or "")
    if verb == REFRESH:
        return ActionResult(current_item(service, item_id, actor.object_id or ""))
    if verb == DIGEST:
        return ActionResult(await digest_action(service, actor, data))
    if verb == CONFIRM:
        return ActionResult(await confirm(service, actor, data))
    if verb == DETAILS:
        opened = current_item(service, item_id, actor.object_id or "")
        stays = digest_view(service, actor) if actor.object_id else current_item(service, "", None)
        return ActionResult(stays, post=opened)
    return ActionResult(await card_action(service, actor, data))
