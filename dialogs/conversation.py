"""Turns what a person typed into the view to show; the one entry point every channel calls for text."""

from __future__ import annotations

import re
from typing import Any, Mapping

from bot.partner_campaigns import PartnerCampaigns
from bot.service import ReviewService
from dialogs.actions import CONFIRMED, INTENT, REF
from dialogs import security_lead
from dialogs.customer_reviews import my_reviews_across
from dialogs.help import help_view
from dialogs.partner_status import partner_status
from dialogs.review import my_reviews
from dialogs.status import campaign_status, status
from dialogs.views import Actor, ConfirmView, PrivateReply, Reply, TextView, Tone, View

_ALIASES = {
    "?": "help",
    "reviews": "my reviews",
    "mine": "my reviews",
    "my review": "my reviews",
    "review": "my reviews",
    "signoff": "sign off",
    "sign-off": "sign off",
    "start": "start review",
}
LEAD_COMMANDS = (
    "overdue", "findings", "history", "export", "remind", "start review", "sign off", "remediations", "approve",
    "watch status",
)


def normalise(text: str) -> str:
    """Lower-case, single-spaced, without a leading slash or trailing full stop."""
    return re.sub(r"\s+", " ", text or "").strip().lstrip("/").rstrip(".!").strip().lower()


def parse(text: str) -> tuple[str, str]:
    """(command, argument): the longest known command the text starts with, and what follows it."""
    said = normalise(text)
    said = _ALIASES.get(said, said)
    if said.startswith("mine "):  # 'mine <customer>' / 'mine <page>' on a CSP partner's deployment
        return "my reviews", (text or "").strip().lstrip("/")[len("mine"):].strip()
    for command in sorted(("help", "my reviews", "status", *LEAD_COMMANDS), key=len, reverse=True):
        if said == command or said.startswith(command + " "):
            return command, (text or "").strip().lstrip("/")[len(command):].strip()
    return "", said


# What these show is one person's: their own review list, or (for security leads) other people's access
# and signed download links. In a group chat or a channel they are delivered privately.
PRIVATE_COMMANDS = frozenset({"my reviews", "findings", "history", "overdue", "export", "remediations"})
_WHAT = {
    "my reviews": "your reviews",
    "findings": "the findings",
    "history": "that history",
    "overdue": "the overdue items",
    "export": "the download links",
    "remediations": "the remediations",
    "sign off": "what is still open before sign-off",
}


async def respond(service: ReviewService, actor: Actor, text: str, shared: bool = False,
                  partner: PartnerCampaigns | None = None) -> Reply:
    """The answer to what a person typed. ``shared``: said in a conversation others read (a group chat
    or a channel), where a personal answer comes back as a PrivateReply. ``partner``: a CSP partner's
    deployment, whose security leads ask ``status`` across its customers (dialogs/partner_status.py)."""
    command, argument = parse(text)
    if partner is not None and partner.is_partner_lead(actor.object_id):
        if command == "status":
            return partner_status(partner, actor, argument)
        if command == "help":
            return help_view(security_lead.is_lead(service, actor), is_partner_lead=True, customers=True)
    view = await _answer(service, actor, text, command, argument, partner)
    personal = command in PRIVATE_COMMANDS or isinstance(view, ConfirmView)  # a sign-off question lists items
    if not shared or not personal or not actor.object_id:
        return view
    if command != "my reviews" and not security_lead.is_lead(service, actor):
        return view  # the refusal, which shows nothing of anyone's access
    what = _WHAT.get(command, "that")
    return PrivateReply(
        pointer=TextView(f"I've sent {what} to you in our personal chat."),
        content=view,
        unreachable=TextView(
            f"I couldn't reach you in a personal chat, and I don't show {what} where others read along. "
            f"Open a chat with me and say '{command}' there.",
            Tone.WARNING,
        ),
    )


async def _answer(service: ReviewService, actor: Actor, text: str, command: str, argument: str,
                  partner: PartnerCampaigns | None = None) -> View:
    if command == "help":
        return help_view(security_lead.is_lead(service, actor), customers=partner is not None)
    if command == "my reviews":
        return my_reviews(service, actor) if partner is None else my_reviews_across(partner, service, actor, argument)
    if command == "status":
        return status(service, actor)
    if command in LEAD_COMMANDS:
        if not security_lead.is_lead(service, actor):
            return security_lead.refuse(command)
        return await _lead_command(service, actor, command, argument)
    return TextView(f"Sorry, I don't know “{(text or '').strip()[:80]}”. Say 'help' to see what I can do.")


async def _lead_command(service: ReviewService, actor: Actor, command: str, argument: str) -> View:
    if command == "overdue":
        return security_lead.overdue(service)
    if command == "findings":
        return security_lead.findings(service, argument)
    if command == "history":
        return await security_lead.history(service, argument)
    if command == "export":
        return security_lead.export(service, actor)
    if command == "remind":
        return await security_lead.remind(service, actor, argument)
    if command == "start review":
        return await security_lead.start_review(service)
    if command == "watch status":
        return campaign_status(service, live=True)
    if command == "remediations":
        return security_lead.remediations(service)
    if command == "approve":
        return await security_lead.approve(service, actor, argument)
    return await security_lead.sign_off(service, actor, argument)


async def confirm(service: ReviewService, actor: Actor, data: Mapping[str, Any]) -> View:
    """The answer to a ConfirmView's Confirm / Cancel: ``{"intent", "ref", "confirm"}``."""
    intent = str(data.get(INTENT) or "")
    if intent != security_lead.SIGN_OFF:
        return TextView("That button is not one I know; nothing changed.", Tone.WARNING)
    if not security_lead.is_lead(service, actor):
        return security_lead.refuse(intent)
    confirmed = data.get(CONFIRMED) is True  # only the card's own JSON true, never a truthy string
    return await security_lead.confirm_sign_off(service, actor, str(data.get(REF) or ""), confirmed)
