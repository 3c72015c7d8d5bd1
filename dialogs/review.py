"""The review flow: list a person's open items, and turn a click on a card into a recorded answer.

Whatever the outcome — recorded, a repeated click, a conflicting answer, a refusal — the person gets the
item's current card back with a line saying what happened, so the card always tells the truth.
"""

from __future__ import annotations

from typing import Any, Mapping

from bot.engine.decisions import DecisionRequest, Verdict
from bot.engine.model import MFA_DEVICES_EVIDENCE, Action, Campaign, ReviewItem
from bot.service import ReviewService, UnknownItem
from dialogs.actions import ACTION, ITEM, JUSTIFICATION, REASSIGN_TO
from dialogs.digest import digest_view
from dialogs.pending import (
    KIND_LABELS,
    answer_line,
    closed_line,
    delegation_line,
    nothing_waiting,
    pending_for,
    waiting_summary,
)
from dialogs.views import Actor, ChoiceView, DigestView, ItemView, ListView, TextView, Tone, View

# Up to this many items come as one card each; more come as one digest card.
DIGEST_AFTER = 5
MAX_CARDS = DIGEST_AFTER

_TONE = {Verdict.RECORDED: Tone.GOOD, Verdict.DUPLICATE: Tone.NORMAL, Verdict.CONFLICT: Tone.WARNING}


def item_view(
    service: ReviewService,
    item: ReviewItem,
    campaign: Campaign,
    notice: TextView | None = None,
    viewer: str | None = None,
) -> ItemView:
    """The item's card. ``viewer`` is who will see it: buttons appear only for someone who may answer."""
    subject = item.subject
    facts = list(subject.evidence.items())
    facts.append(("Reviewer" if len(item.reviewers) == 1 else "Reviewers", _names(service, item.reviewers)))
    warnings = []
    if not campaign.snapshot_complete:
        missing = ", ".join(campaign.snapshot_missing) or "some collections"
        warnings.append(f"Incomplete data: {missing} could not be collected; judge with care.")
    if subject.break_glass:
        warnings.append("Registered break-glass account: confirm it is still needed; it is never revoked from a review.")
    if item.exception is not None:
        grant = item.exception
        warnings.append(
            f"Accepted exception until {grant.expires:%Y-%m-%d}: {grant.rationale} "
            f"(approved by {grant.approved_by}). It will be asked again when the exception expires."
        )
    state = service.campaign(campaign.id)
    closed = closed_line(state) if state is not None else None
    if item.overdue and item.is_open and not closed:
        warnings.append("Overdue: the deadline has passed; the security leads have been told.")

    outcome = None
    choices: tuple[ChoiceView, ...] = ()
    if item.decision is not None:
        tone = Tone.ATTENTION if item.decision.action is Action.REVOKE else Tone.GOOD
        text = answer_line(service, item.decision)
        if item.decision.justification:
            text += f" — “{item.decision.justification}”"
        outcome = TextView(text, tone)
    elif closed:
        outcome = TextView(f"{closed}: no answer was recorded for this item.")
    else:
        if viewer is None or service.may_answer(viewer, item):
            choices = _choices(item)
        if item.history:
            last = item.history[-1]
            outcome = TextView(answer_line(service, last), Tone.NORMAL)

    return ItemView(
        item_id=item.id,
        campaign_id=campaign.id,
        header=f"Access review · {campaign.tenant_name} · due {campaign.due:%a %d %b %H:%M} UTC",
        title=subject.title,
        kind_label=KIND_LABELS[subject.kind],
        facts=tuple(facts),
        findings=tuple((f.severity, f"{f.title}" + (f" — {f.recommendation}" if f.recommendation else "")) for f in subject.findings),
        warnings=tuple(warnings),
        notice=notice,
        outcome=outcome,
        choices=choices,
        subject_key=subject.key,
        delegation=delegation_line(service, viewer, item) if choices else "",
    )


def _choices(item: ReviewItem) -> tuple[ChoiceView, ...]:
    choices = [ChoiceView(Action.KEEP.value, "Keep", "positive")]
    if not item.subject.break_glass:
        choices.append(ChoiceView(Action.REVOKE.value, "Revoke", "destructive", needs_justification=True))
    choices.append(ChoiceView(Action.DONT_KNOW.value, "Don't know"))
    choices.append(ChoiceView(Action.REASSIGN.value, "Reassign", needs_person=True))
    if MFA_DEVICES_EVIDENCE in item.subject.evidence:
        # The justification box (if any) carries which method, but the alert lists them all anyway.
        choices.append(ChoiceView(Action.UNFAMILIAR_METHOD.value, "Unfamiliar MFA method", "destructive"))
    return tuple(choices)


def _names(service: ReviewService, object_ids: tuple[str, ...]) -> str:
    return ", ".join(service.display_name(o) for o in object_ids) or "nobody (tell a security lead)"


def my_reviews(service: ReviewService, actor: Actor) -> ListView | DigestView | TextView:
    """A card per item for a few items; one digest card for many."""
    if not actor.object_id:
        return TextView(_UNIDENTIFIED, Tone.WARNING)
    service.engaged(actor.object_id)
    pending = pending_for(service, actor.object_id)
    if not pending:
        return nothing_waiting(service)
    if len(pending) > DIGEST_AFTER:
        return digest_view(service, actor)
    shown = pending[:MAX_CARDS]
    return ListView(
        title="Your access reviews",
        intro=f"{waiting_summary(pending)}. Keep what is still needed; revoke what is not.",
        items=tuple(item_view(service, item, campaign, viewer=actor.object_id) for item, campaign in shown),
        more=len(pending) - len(shown),
    )


def _not_open_here(service: ReviewService) -> str:
    """Why a card's item is not among those held: closed reviews stay in the store, so an old card of a
    signed-off week reads as closed rather than as something that vanished."""
    if service.closed_campaign_ids:
        return ("That review item is not open here: its review was signed off and closed (its answers are in the "
                "ledger), or it no longer exists")
    return "That review item no longer exists here"


def current_item(service: ReviewService, item_id: str, viewer: str | None) -> View:
    """The item as it stands now: what a card refresh shows to whoever is looking at it."""
    try:
        item, campaign = service.item(item_id)
    except UnknownItem:
        return TextView(_not_open_here(service) + ".", Tone.WARNING)
    return item_view(service, item, campaign, viewer=viewer)


async def card_action(service: ReviewService, actor: Actor, data: Mapping[str, Any]) -> View:
    """Handle a Keep / Revoke / Don't know / Reassign / Unfamiliar MFA method click carrying ``{"item", "action", ...inputs}``."""
    item_id = str(data.get(ITEM) or "")
    try:
        action = Action(str(data.get(ACTION) or ""))
    except ValueError:
        return TextView("That button is not one I know; nothing was recorded.", Tone.WARNING)
    try:
        service.item(item_id)
    except UnknownItem:
        return TextView(_not_open_here(service) + "; nothing was recorded.", Tone.WARNING)
    if not actor.object_id:
        item, campaign = service.item(item_id)
        return item_view(service, item, campaign, TextView(_UNIDENTIFIED, Tone.WARNING), viewer="")

    reassign_to = None
    if action is Action.REASSIGN:
        wanted = str(data.get(REASSIGN_TO) or "").strip()
        reassign_to = service.resolve_person(wanted) if wanted else None
        if reassign_to is None:
            item, campaign = service.item(item_id)
            said = f"“{wanted}”" if wanted else "nobody"
            return item_view(
                service, item, campaign,
                TextView(f"Not reassigned: I can't find {said} in the directory. Give their e-mail address.", Tone.WARNING),
                viewer=actor.object_id,
            )
    result = await service.decide(
        DecisionRequest(
            item_id=item_id,
            action=action,
            actor_id=actor.object_id,
            actor_name=actor.name,
            justification=str(data.get(JUSTIFICATION) or ""),
            reassign_to=reassign_to,
        )
    )
    notice = TextView(result.outcome.message, _TONE.get(result.outcome.verdict, Tone.ATTENTION))
    return item_view(service, result.item, result.campaign, notice, viewer=actor.object_id)


_UNIDENTIFIED = (
    "I can't tell who you are in your organisation's directory, so I can't show or record reviews for you. "
    "Use accessbot from your work account."
)
