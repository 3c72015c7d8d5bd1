"""Renders view models as Microsoft Teams messages: Adaptive Cards 1.5 with Universal Actions.

Buttons are ``Action.Execute`` (answered through the ``adaptiveCard/action`` invoke with the updated card)
each carrying an ``Action.Submit`` fallback for clients without Universal Actions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from dialogs import actions
from dialogs.actions import CHOICE_PREFIX
from dialogs.charts import DonutChart, StackedBarChart
from dialogs.render.teams_charts import chart_element
from dialogs.views import (
    ChoiceView,
    ConfirmView,
    DigestRow,
    DigestView,
    FindingsView,
    HelpView,
    ItemView,
    ListView,
    RollupView,
    StackView,
    StatusView,
    TextView,
    Tone,
    View,
    WitnessView,
)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_REFRESH_USERS = 60  # Teams refreshes automatically for at most 60 listed users
# Teams refuses bot messages over its size limit (~28 KB of card JSON is the safe figure); a digest stops
# adding rows before that, and says how many more there are.
CARD_BUDGET_BYTES = 24 * 1024

# Text colours that read well on a white card. "Warning" (amber) and "Good" (light green in Teams' light
# theme) text are hard to read on white, so only "Default" and "Attention" colour text, bold where it
# matters; a warning is dark text on the "warning" container's tint.
_COLOR = {Tone.NORMAL: "Default", Tone.GOOD: "Default", Tone.WARNING: "Default", Tone.ATTENTION: "Attention"}
_WEIGHT = {Tone.NORMAL: "Default", Tone.GOOD: "Bolder", Tone.WARNING: "Bolder", Tone.ATTENTION: "Bolder"}
_SEVERITY_COLOR = {"critical": "Attention", "high": "Attention", "medium": "Default", "low": "Default"}


def _tone(view: TextView, **style: Any) -> dict[str, Any]:
    """A notice or outcome in its tone, readable on white."""
    text = f"⚠️ {view.text}" if view.tone is Tone.WARNING else view.text
    return _text(text, color=_COLOR[view.tone], weight=_WEIGHT[view.tone], **style)


def _warnings(warnings: Sequence[str]) -> list[dict[str, Any]]:
    """Warnings as dark text on the warning tint (never amber text on white)."""
    if not warnings:
        return []
    return [{"type": "Container", "style": "warning", "items": [_text(f"⚠️ {w}", size="Small") for w in warnings]}]


def _notice(view: TextView) -> dict[str, Any]:
    """The answer to a click, boxed so it is seen next to the button that was pressed."""
    style = {Tone.GOOD: "good", Tone.WARNING: "warning", Tone.ATTENTION: "attention"}.get(view.tone, "emphasis")
    return {"type": "Container", "style": style, "items": [_text(view.text, weight="Bolder")]}


@dataclass(frozen=True)
class TeamsMessage:
    """One outgoing message: plain text, or an Adaptive Card (with optional summary text)."""

    text: str = ""
    card: dict[str, Any] | None = None
    item_id: str | None = None  # set on an item's own card, so it can be updated in place later


def render(view: View, viewers: Sequence[str] = ()) -> list[TeamsMessage]:
    """``viewers`` are the Teams user ids (MRIs) whose clients should refresh item cards automatically."""
    if isinstance(view, TextView):
        return [TeamsMessage(text=view.text)]
    if isinstance(view, ItemView):
        return [TeamsMessage(card=item_card(view, viewers), item_id=view.item_id)]
    if isinstance(view, DigestView):
        return [TeamsMessage(card=digest_card(view))]
    if isinstance(view, ListView):
        messages = [TeamsMessage(text=view.intro)]
        messages.extend(TeamsMessage(card=item_card(item, viewers), item_id=item.item_id) for item in view.items)
        if view.more:
            messages.append(TeamsMessage(text=f"{view.more} more after these — say 'my reviews' again once done."))
        return messages
    if isinstance(view, StatusView):
        return [TeamsMessage(card=status_card(view))]
    if isinstance(view, HelpView):
        return [TeamsMessage(card=help_card(view))]
    if isinstance(view, ConfirmView):
        return [TeamsMessage(card=confirm_card(view))]
    if isinstance(view, FindingsView):
        return [TeamsMessage(card=findings_card(view))]
    if isinstance(view, RollupView):
        return [TeamsMessage(card=rollup_card(view))]
    if isinstance(view, WitnessView):
        return [TeamsMessage(card=witness_card(view))]
    if isinstance(view, StackView):
        return [message for part in view.parts for message in render(part, viewers)]
    raise TypeError(f"no Teams rendering for {type(view).__name__}")


def _card(body: list[dict[str, Any]], buttons: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.5", "body": body}
    if buttons:
        card["actions"] = buttons
    return card


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _facts(pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in pairs]}


def card_for(view: View, viewers: Sequence[str] = ()) -> dict[str, Any]:
    """The one card that answers a card action (an invoke must answer with a card)."""
    if isinstance(view, ItemView):
        return item_card(view, viewers)
    if isinstance(view, DigestView):
        return digest_card(view)
    if isinstance(view, StatusView):
        return status_card(view)
    if isinstance(view, HelpView):
        return help_card(view)
    if isinstance(view, ConfirmView):
        return confirm_card(view)
    if isinstance(view, FindingsView):
        return findings_card(view)
    if isinstance(view, RollupView):
        return rollup_card(view)
    if isinstance(view, WitnessView):
        return witness_card(view)
    return _card([_tone(view) if isinstance(view, TextView) else _text("Done.")])


def item_card(view: ItemView, viewers: Sequence[str] = ()) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        _text(view.header, size="Small", isSubtle=True),
        _text(view.title, size="Medium", weight="Bolder", spacing="Small"),
        _text(view.kind_label, isSubtle=True, spacing="None"),
    ]
    if view.delegation:
        body.append(_text(view.delegation, weight="Bolder", spacing="Small"))
    body.extend(_warnings(view.warnings))
    body.append(_facts(view.facts))
    for severity, finding in view.findings:
        body.append(_text(f"**{severity.upper()}** {finding}", color=_SEVERITY_COLOR.get(severity.lower(), "Default")))
    if view.outcome is not None:
        body.append(_tone(view.outcome))
    if view.notice is not None:
        body.append(_notice(view.notice))
    buttons: list[dict[str, Any]] = []
    if view.choices:
        if any(choice.needs_justification for choice in view.choices):
            body.append(
                {
                    "type": "Input.Text",
                    "id": actions.JUSTIFICATION,
                    "label": "Justification (required to revoke)",
                    "placeholder": "Why should this access go?",
                    "isMultiline": True,
                    "maxLength": 500,
                }
            )
        buttons = [_choice_action(view, choice) for choice in view.choices]
    card = _card(body, buttons)
    if viewers:
        # Universal Actions refresh: whoever opens this card later sees the item as it stands then.
        card["refresh"] = {
            "action": {"type": "Action.Execute", "verb": actions.REFRESH, "data": {actions.ITEM: view.item_id}},
            "userIds": list(viewers)[:MAX_REFRESH_USERS],
        }
    return card


def _execute(
    title: str, data: dict[str, Any], style: str = "default", verb: str = actions.DECIDE, inputs: str = "auto"
) -> dict[str, Any]:
    """Action.Execute, with an Action.Submit fallback that names the verb so the message path can route it."""
    action: dict[str, Any] = {
        "type": "Action.Execute",
        "title": title,
        "verb": verb,
        "data": data,
        "fallback": {"type": "Action.Submit", "title": title, "data": {"verb": verb, **data}},
    }
    if inputs != "auto":
        action["associatedInputs"] = inputs
        action["fallback"]["associatedInputs"] = inputs
    if style != "default":
        action["style"] = style
    return action


def _choice_action(view: ItemView, choice: ChoiceView) -> dict[str, Any]:
    data = {actions.ITEM: view.item_id, actions.ACTION: choice.action}
    if not choice.needs_person:
        return _execute(choice.title, data, choice.style)
    return {
        "type": "Action.ShowCard",
        "title": f"{choice.title}…",
        "card": _card(
            [
                {
                    "type": "Input.Text",
                    "id": actions.REASSIGN_TO,
                    "label": "Hand this item to (work e-mail address)",
                    "placeholder": "name@contoso.com",
                    "style": "Email",
                }
            ],
            [_execute(choice.title, data)],
        ),
    }


def digest_card(view: DigestView) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        _text(view.header, size="Small", isSubtle=True),
        _text(view.title, size="Medium", weight="Bolder", spacing="Small"),
        _text(view.intro, spacing="Small"),
    ]
    body.extend(_warnings(view.warnings))
    shown = 0
    used = len(json.dumps(body).encode()) + 3 * 1024  # the header, the justification box and the buttons
    for row in view.rows:
        items: list[dict[str, Any]] = [
            _text(f"**{row.title}**", spacing="None"),
            _text(f"{row.kind_label} · {row.summary}", size="Small", isSubtle=True, spacing="None"),
        ]
        if row.delegation:
            items.append(_text(row.delegation, size="Small", weight="Bolder", spacing="None"))
        items.extend(_text(f"⚑ {flag}", size="Small", color="Attention", spacing="None") for flag in row.flags[:2])
        if len(row.flags) > 2:
            items.append(_text(f"⚑ and {len(row.flags) - 2} more — see Details", size="Small", color="Attention", spacing="None"))
        if row.outcome is not None:
            items.append(_tone(row.outcome, size="Small"))
        if row.choosable:
            items.append(
                {
                    "type": "ColumnSet",
                    "columns": [
                        {"type": "Column", "width": "stretch", "items": [_choice_set(row)]},
                        {
                            "type": "Column",
                            "width": "auto",
                            "items": [
                                {
                                    "type": "ActionSet",
                                    "actions": [_execute("Details", {actions.ITEM: row.item_id}, verb=actions.DETAILS, inputs="none")],
                                }
                            ],
                        },
                    ],
                }
            )
        container = {"type": "Container", "separator": True, "spacing": "Medium", "items": items}
        used += len(json.dumps(container).encode())
        if used > CARD_BUDGET_BYTES:
            break
        body.append(container)
        shown += 1
    more = view.more + len(view.rows) - shown
    if more:
        body.append(_text(f"{more} more after these: answer these, then say 'my reviews' again.", size="Small"))
    if view.notice is not None:  # beside the buttons: the answer to "Submit" is seen where it was pressed
        body.append(_notice(view.notice))
    buttons: list[dict[str, Any]] = []
    if any(row.choosable for row in view.rows):
        body.append(
            {
                "type": "Input.Text",
                "id": actions.JUSTIFICATION,
                "label": "Justification (required for every Revoke)",
                "placeholder": "Why should the revoked access go?",
                "isMultiline": True,
                "maxLength": 500,
            }
        )
        whose = {actions.TENANT: view.tenant} if view.tenant else {}
        buttons = [
            _execute("Submit answers", {actions.SUBMIT_DIGEST: True, **whose}, "positive", actions.DIGEST),
            _execute("Keep all not flagged", {actions.KEEP_UNFLAGGED: True, **whose}, verb=actions.DIGEST, inputs="none"),
        ]
    return _card(body, buttons)


def _choice_set(row: DigestRow) -> dict[str, Any]:
    return {
        "type": "Input.ChoiceSet",
        "id": f"{CHOICE_PREFIX}{row.item_id}",
        "label": "Your answer",  # the row's title is right above it
        "style": "compact",
        "placeholder": "Choose…",
        "choices": [
            {"title": "Keep", "value": "keep"},
            {"title": "Revoke", "value": "revoke"},
            {"title": "Don't know", "value": "dont_know"},
        ],
    }


def status_card(view: StatusView) -> dict[str, Any]:
    """The figures, then the progress donut; by reviewer, a stacked bar chart whose fallback (for hosts
    without charts) is the per-reviewer list itself."""
    body: list[dict[str, Any]] = [_text(view.title, size="Medium", weight="Bolder")]
    body.extend(_warnings(view.warnings))
    body.append(_facts(tuple((row.label, row.value) for row in view.rows)))
    body.extend(chart_element(chart) for chart in view.charts if isinstance(chart, DonutChart))
    if view.owners:
        body.append(_text("By reviewer", weight="Bolder", spacing="Medium"))
        owners = _facts(tuple((row.label, row.value) for row in view.owners))
        bars = next((chart for chart in view.charts if isinstance(chart, StackedBarChart) and chart.bars), None)
        body.append(owners if bars is None else chart_element(bars, owners))
    return _card(body)


def help_card(view: HelpView) -> dict[str, Any]:
    body = [_text(view.title, size="Medium", weight="Bolder"), _facts(view.commands)]
    if view.footer:
        body.append(_text(view.footer, size="Small", isSubtle=True))
    return _card(body)


def confirm_card(view: ConfirmView) -> dict[str, Any]:
    """The question, what it applies to, and Confirm / Cancel; each answer names the intent and its ref."""
    body: list[dict[str, Any]] = [
        _text(view.title, size="Medium", weight="Bolder"),
        _text(view.text),
        *(_text(f"**{row.label}** · {row.value}", size="Small", spacing="None") for row in view.rows),
    ]
    if view.more:
        body.append(_text(f"and {view.more} more.", size="Small"))
    data = {actions.INTENT: view.intent, actions.REF: view.ref}
    buttons = [
        _execute(view.confirm_title, {**data, actions.CONFIRMED: True}, "destructive", actions.CONFIRM, inputs="none"),
        _execute("Cancel", {**data, actions.CONFIRMED: False}, verb=actions.CONFIRM, inputs="none"),
    ]
    return _card(body, buttons)


def findings_card(view: FindingsView) -> dict[str, Any]:
    """Counts first (by severity, then one line per check), then each check's group: what it was found on,
    as one wrapped line rather than a name squeezed into a narrow column."""
    body: list[dict[str, Any]] = [
        _text(view.title, size="Medium", weight="Bolder"),
        _text(" · ".join(f"**{row.value}** {row.label.lower()}" for row in view.by_severity), spacing="Small"),
    ]
    for group in view.groups:
        colour = _SEVERITY_COLOR.get(group.severity, "Default")
        reference = f" ({group.reference})" if group.reference else ""
        found_on = " · ".join(group.found_on) + (f" · and {group.more} more" if group.more else "")
        body.append(
            {
                "type": "Container",
                "separator": True,
                "spacing": "Medium",
                "items": [
                    _text(f"**{group.severity.upper()}** · {group.title}{reference} — {len(group.found_on) + group.more}",
                          color=colour),
                    _text(found_on, size="Small", spacing="None"),
                ],
            }
        )
    if view.pages > 1:
        more = f" Say '{view.next_hint}' for the next." if view.next_hint else ""
        body.append(_text(f"Page {view.page} of {view.pages}.{more}", size="Small", isSubtle=True))
    return _card(body)


def rollup_card(view: RollupView) -> dict[str, Any]:
    """A partner's customers, worst first: the totals, then one line per customer on this page (its name bold,
    red when it needs attention), then the page and what to say for the next one."""
    body: list[dict[str, Any]] = [
        _text(view.title, size="Medium", weight="Bolder"),
        _text(" · ".join(f"**{row.value}** {row.label}" for row in view.totals), spacing="Small"),
    ]
    for row in view.rows:
        body.append(_text(f"**{row.name}** · {row.line}", size="Small", spacing="Small", color=_COLOR[row.tone]))
    footer = f"Page {view.page} of {view.pages}." if view.pages > 1 else ""
    if view.next_hint:
        footer += f" Say '{view.next_hint}' for the next."
    footer = " ".join(part for part in (footer.strip(), view.footer) if part)
    if footer:
        body.append(_text(footer, size="Small", isSubtle=True))
    return _card(body)


def witness_card(view: WitnessView) -> dict[str, Any]:
    """The checkpoint's text in a monospace TextBlock that wraps (the renderer breaks even the long hex strings:
    docs/dependency-notes.md#adaptive-cards-renderer-and-chromium), so the bubble never overflows and the text
    copies whole. A TextBlock reads markdown, which cannot touch this text: hex, digits, an ISO time and JSON
    keys, with a single underscore and no asterisk, bracket or backtick."""
    return _card(
        [
            _text(view.title, weight="Bolder"),
            _text(view.summary, size="Small", isSubtle=True, spacing="None"),
            _text(view.advice, size="Small"),
            {"type": "Container", "style": "emphasis", "items": [_text(view.code, fontType="Monospace", size="Small")]},
        ]
    )
