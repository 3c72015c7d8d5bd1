"""Renders view models as Microsoft Teams messages: Adaptive Cards 1.5 with Universal Actions.

Buttons are ``Action.Execute`` (answered through the ``adaptiveCard/action`` invoke with the updated card)
each carrying an ``Action.Submit`` fallback for clients without Universal Actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dialogs.views import (
    ChoiceView,
    HelpView,
    ItemView,
    ListView,
    StatusView,
    TextView,
    Tone,
    View,
)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERB = "decide"

_COLOR = {Tone.NORMAL: "Default", Tone.GOOD: "Good", Tone.WARNING: "Warning", Tone.ATTENTION: "Attention"}
_SEVERITY_COLOR = {"critical": "Attention", "high": "Attention", "medium": "Warning", "low": "Default"}


@dataclass(frozen=True)
class TeamsMessage:
    """One outgoing message: plain text, or an Adaptive Card (with optional summary text)."""

    text: str = ""
    card: dict[str, Any] | None = None


def render(view: View) -> list[TeamsMessage]:
    if isinstance(view, TextView):
        return [TeamsMessage(text=view.text)]
    if isinstance(view, ItemView):
        return [TeamsMessage(card=item_card(view))]
    if isinstance(view, ListView):
        messages = [TeamsMessage(text=view.intro)]
        messages.extend(TeamsMessage(card=item_card(item)) for item in view.items)
        if view.more:
            messages.append(TeamsMessage(text=f"{view.more} more after these — say 'my reviews' again once done."))
        return messages
    if isinstance(view, StatusView):
        return [TeamsMessage(card=status_card(view))]
    if isinstance(view, HelpView):
        return [TeamsMessage(card=help_card(view))]
    raise TypeError(f"no Teams rendering for {type(view).__name__}")


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": "1.5", "body": body}
    if actions:
        card["actions"] = actions
    return card


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _facts(pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in pairs]}


def item_card(view: ItemView) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        _text(view.header, size="Small", isSubtle=True),
        _text(view.title, size="Medium", weight="Bolder", spacing="Small"),
        _text(view.kind_label, isSubtle=True, spacing="None"),
    ]
    body.extend(_text(f"⚠️ {warning}", color="Warning", size="Small") for warning in view.warnings)
    body.append(_facts(view.facts))
    for severity, finding in view.findings:
        body.append(_text(f"**{severity.upper()}** {finding}", color=_SEVERITY_COLOR.get(severity.lower(), "Default")))
    if view.outcome is not None:
        body.append(_text(view.outcome.text, weight="Bolder", color=_COLOR[view.outcome.tone]))
    if view.notice is not None:
        body.append(_text(view.notice.text, size="Small", color=_COLOR[view.notice.tone]))
    actions: list[dict[str, Any]] = []
    if view.choices:
        if any(choice.needs_justification for choice in view.choices):
            body.append(
                {
                    "type": "Input.Text",
                    "id": "justification",
                    "label": "Justification (required to revoke)",
                    "placeholder": "Why should this access go?",
                    "isMultiline": True,
                    "maxLength": 500,
                }
            )
        actions = [_choice_action(view, choice) for choice in view.choices]
    return _card(body, actions)


def _execute(title: str, data: dict[str, Any], style: str = "default") -> dict[str, Any]:
    action: dict[str, Any] = {
        "type": "Action.Execute",
        "title": title,
        "verb": VERB,
        "data": data,
        "fallback": {"type": "Action.Submit", "title": title, "data": data},
    }
    if style != "default":
        action["style"] = style
    return action


def _choice_action(view: ItemView, choice: ChoiceView) -> dict[str, Any]:
    data = {"item": view.item_id, "action": choice.action}
    if not choice.needs_person:
        return _execute(choice.title, data, choice.style)
    return {
        "type": "Action.ShowCard",
        "title": f"{choice.title}…",
        "card": _card(
            [
                {
                    "type": "Input.Text",
                    "id": "reassign_to",
                    "label": "Hand this item to (work e-mail address)",
                    "placeholder": "name@contoso.com",
                    "style": "Email",
                }
            ],
            [_execute(choice.title, data)],
        ),
    }


def status_card(view: StatusView) -> dict[str, Any]:
    body: list[dict[str, Any]] = [_text(view.title, size="Medium", weight="Bolder")]
    body.extend(_text(f"⚠️ {warning}", color="Warning", size="Small") for warning in view.warnings)
    body.append(_facts(tuple((row.label, row.value) for row in view.rows)))
    if view.owners:
        body.append(_text("By reviewer", weight="Bolder", spacing="Medium"))
        body.append(_facts(tuple((row.label, row.value) for row in view.owners)))
    return _card(body)


def help_card(view: HelpView) -> dict[str, Any]:
    body = [_text(view.title, size="Medium", weight="Bolder"), _facts(view.commands)]
    if view.footer:
        body.append(_text(view.footer, size="Small", isSubtle=True))
    return _card(body)
