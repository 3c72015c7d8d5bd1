"""The digest: a reviewer with many items gets one card with a choice per item, not dozens of cards.

"Keep all not flagged" keeps, in one click, every item no check flagged — the common case for a healthy
tenant — and leaves the flagged ones for a closer look. Each answer goes through the same decision path
as a single card, so idempotency, self-review refusal and break-glass protection all still apply.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from bot.engine.changes import is_change_item
from bot.engine.decisions import DecisionRequest, Verdict
from bot.engine.model import Action, Campaign, ReviewItem
from bot.service import ReviewService, UnknownItem
from bot.engine.status import awaits_answer
from dialogs.actions import CHOICE_PREFIX, JUSTIFICATION, KEEP_UNFLAGGED
from dialogs.pending import KIND_LABELS, answer_line, delegation_line, nothing_waiting, pending_for, waiting_summary
from dialogs.views import Actor, DigestRow, DigestView, TextView, Tone

# The most rows one digest holds; each renderer fits them into its own message limits (Teams trims by card
# bytes, Slack pages into messages of 50 blocks), so the limit here is what a person can answer in one go.
MAX_ROWS = 25
SUMMARY_SKIP = ("Role", "Reviewer", "Reviewers")
LABEL_NEEDED = ("none registered", "not collected")


def digest_view(
    service: ReviewService,
    actor: Actor,
    notice: TextView | None = None,
    outcomes: Mapping[str, TextView] | None = None,
) -> DigestView | TextView:
    """The actor's open items (and those just answered, with their outcome) as one digest."""
    assert actor.object_id
    outcomes = outcomes or {}
    pending = pending_for(service, actor.object_id)
    answered = [service.item(item_id) for item_id in outcomes if item_id not in {i.id for i, _ in pending}]
    shown = (answered + pending)[:MAX_ROWS]
    if not shown:
        return nothing_waiting(service)
    campaign = shown[0][1]
    flagged = sum(1 for item, _ in pending if item.subject.findings and awaits_answer(item))
    return DigestView(
        header=f"Access review · {campaign.tenant_name} · due {campaign.due:%a %d %b %H:%M} UTC",
        title="Your access reviews",
        intro=(
            f"{waiting_summary(pending)}; {flagged} flagged by a check. Choose per item and submit, or keep "
            "everything not flagged in one go."
        ),
        rows=tuple(_row(service, actor.object_id, item, outcomes.get(item.id)) for item, _ in shown),
        more=max(0, len(pending) + len(answered) - MAX_ROWS),
        notice=notice,
        warnings=_campaign_warnings(campaign),
        tenant=service.policy.tenant_id,
    )


def digest_now(service: ReviewService, viewer: str, shown: Sequence[str]) -> DigestView | TextView:
    """A digest posted earlier, as it stands now, for redrawing it in place: the items it showed that were
    answered since (here, on another page, in another channel) keep their row with the answer, ahead of what
    still waits for ``viewer``."""
    waiting = {item.id for item, _ in pending_for(service, viewer)}
    outcomes: dict[str, TextView] = {}
    for item_id in shown:
        if item_id in waiting:
            continue
        try:
            item, _ = service.item(item_id)
        except UnknownItem:
            continue
        if item.decision is not None:
            tone = Tone.GOOD if item.decision.action is Action.KEEP else Tone.ATTENTION
            outcomes[item_id] = TextView(item.decision.summary(), tone)
        else:
            outcomes[item_id] = TextView("Answered: it no longer waits for you.", Tone.NORMAL)
    return digest_view(service, Actor(viewer, ""), None, outcomes)


def _fact(label: str, value: str) -> str:
    """A value as the one-line summary shows it, without its label: a value that means nothing alone ("none
    registered" — which? the email or the phone?) keeps its label."""
    return f"{label}: {value}" if value in LABEL_NEEDED else value


def _row(service: ReviewService, viewer: str, item: ReviewItem, outcome: TextView | None) -> DigestRow:
    subject = item.subject
    facts = [_fact(label, value) for label, value in subject.evidence.items() if label not in SUMMARY_SKIP][:3]
    if item.exception is not None:
        facts.insert(0, f"accepted exception until {item.exception.expires:%Y-%m-%d}")
    summary = " · ".join(facts)
    if len(summary) > 160:
        summary = summary[:157] + "…"
    if outcome is None and item.decision is not None:
        tone = Tone.GOOD if item.decision.action is Action.KEEP else Tone.ATTENTION
        outcome = TextView(answer_line(service, item.decision), tone)
    return DigestRow(
        item_id=item.id,
        title=subject.title,
        kind_label=KIND_LABELS[subject.kind],
        summary=summary,
        flags=tuple(f"{f.severity.upper()}: {f.title}" for f in subject.findings),
        outcome=outcome,
        choosable=item.is_open,
        delegation=delegation_line(service, viewer, item) if item.is_open else "",
    )


def _campaign_warnings(campaign: Campaign) -> tuple[str, ...]:
    if campaign.snapshot_complete:
        return ()
    return (f"Incomplete data: {', '.join(campaign.snapshot_missing) or 'some collections'} could not be collected.",)


async def digest_action(service: ReviewService, actor: Actor, data: Mapping[str, Any]) -> DigestView | TextView:
    """Submit the chosen answers, or keep every unflagged item; answer with the updated digest."""
    if not actor.object_id:
        return TextView("I can't tell who you are, so I can't record answers for you.", Tone.WARNING)
    justification = str(data.get(JUSTIFICATION) or "")
    campaigns = service.campaigns()
    if campaigns and campaigns[0].signed_off_by and not pending_for(service, actor.object_id):
        return nothing_waiting(service)  # "review closed", not a refusal per row
    if data.get(KEEP_UNFLAGGED):
        chosen = {
            item.id: Action.KEEP
            for item, _ in pending_for(service, actor.object_id)
            # accepted risks are not attested in bulk, nor an access change: "expected?" wants its own answer
            if not item.subject.findings and item.exception is None and not is_change_item(item)
        }
    else:
        chosen = {}
        for key, value in data.items():
            if str(key).startswith(CHOICE_PREFIX) and value:
                try:
                    chosen[str(key)[len(CHOICE_PREFIX):]] = Action(str(value))
                except ValueError:
                    continue
    if not chosen:
        return digest_view(
            service, actor,
            TextView("Nothing chosen, so nothing was recorded: pick Keep, Revoke or Don't know on an item first, "
                     "or use 'Keep all not flagged'.", Tone.WARNING),
        )
    outcomes: dict[str, TextView] = {}
    recorded = 0
    for item_id, action in chosen.items():
        try:
            service.item(item_id)
        except UnknownItem:
            continue
        result = await service.decide(
            DecisionRequest(item_id, action, actor.object_id, actor.name, justification if action is Action.REVOKE else "")
        )
        verdict = result.outcome.verdict
        recorded += verdict is Verdict.RECORDED
        if verdict is not Verdict.RECORDED:
            outcomes[item_id] = TextView(result.outcome.message, Tone.WARNING)
        elif result.item.decision is None:  # passed on: it leaves this reviewer's list
            outcomes[item_id] = TextView(result.outcome.message, Tone.NORMAL)
        else:
            outcomes[item_id] = TextView(answer_line(service, result.item.decision), Tone.GOOD)
    notice = TextView(f"Recorded {recorded} answer(s) in the attestation ledger.", Tone.GOOD if recorded else Tone.WARNING)
    return digest_view(service, actor, notice, outcomes)
