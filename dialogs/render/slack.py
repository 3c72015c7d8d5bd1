"""Renders view models as Slack messages: Block Kit, built with slack_sdk's block models.

Every block is built as a slack_sdk model and turned into JSON with ``to_dict()``, which runs the
models' validation (text lengths, field counts, option counts): a message Slack would refuse with
``invalid_blocks`` fails here, in tests, instead. What the models do not check, this module does: at
most 50 blocks a message (100 in a view), 3,000 characters a section (long text is split over several
sections, never cut), and a digest with more rows than fit is paged into several messages.

Buttons carry the channel-neutral verbs and data of ``dialogs/actions.py``: the verb and what must be
asked first ("justification" for Revoke, "person" for Reassign) in the ``action_id``, the data as JSON in
the ``value``. A Revoke or Reassign click opens a modal (``ask_modal``) instead of deciding at once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    ImageBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View as SlackView

from dialogs import actions
from dialogs.views import (
    ConfirmView,
    DigestRow,
    DigestView,
    FindingsView,
    HelpView,
    ItemView,
    ListView,
    RollupView,
    StackView,
    StatusRow,
    StatusView,
    TextView,
    Tone,
    View,
    WitnessView,
)

MAX_BLOCKS = 50  # a message
MAX_VIEW_BLOCKS = 100  # a modal or the App Home tab
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10  # a section's fields
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_FALLBACK_TEXT = 4000  # the notification text beside the blocks (Slack truncates longer ones)
MAX_ALT_TEXT = 2000  # an image's alt text
MAX_IMAGE_URL = 3000

ACTION_PREFIX = "accessbot"
CHOOSE_ACTION = f"{ACTION_PREFIX}:choose:"  # + item id: a digest row's select, read from the message's state
MODAL_CALLBACK = f"{ACTION_PREFIX}:ask"
ASK_JUSTIFICATION = "justification"
ASK_PERSON = "person"
_ACTION_ID = re.compile(rf"^{ACTION_PREFIX}:(?P<verb>[a-z_]+):(?P<ask>[a-z]*):\d+$")

_TONE_MARK = {Tone.NORMAL: "", Tone.GOOD: "✅ ", Tone.WARNING: "⚠️ ", Tone.ATTENTION: "❗ "}
_SEVERITY_MARK = {"critical": "🔴", "high": "🟠", "medium": "🟡", "low": "⚪"}


@dataclass(frozen=True)
class SlackMessage:
    """One message: the notification text and the blocks (already validated JSON)."""

    text: str
    blocks: list[dict[str, Any]]
    item_id: str | None = None  # set on an item's own message, so it can be redrawn in place later


@dataclass(frozen=True)
class Click:
    """A button click read back: the verb, what to ask before acting on it, and the data."""

    verb: str
    ask: str
    data: dict[str, Any]


def read_click(action_id: str, value: str | None) -> Click | None:
    """The click a button of ours encodes; None for anything else (an unknown id, a value that is not a
    JSON object): such a click is acknowledged and ignored."""
    match = _ACTION_ID.match(action_id or "")
    if match is None:
        return None
    try:
        data = json.loads(value or "{}")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return Click(match["verb"], match["ask"], data)


def escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters: what a person or a tenant named is shown
    as written, never as a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _split(text: str, limit: int) -> list[str]:
    """Text in pieces of at most ``limit`` characters, broken at a line end or a space where there is one."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n ")
    return [*pieces, text] if text or not pieces else pieces


def _clip(text: str, limit: int) -> str:
    """For one-line labels (a header, a button) only: the rest of what they say is in the body."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sections(markdown: str) -> list[Block]:
    """Markdown as one section, or several when it is longer than a section holds."""
    return [SectionBlock(text=MarkdownTextObject(text=piece)) for piece in _split(markdown, MAX_SECTION_TEXT)]


def _tone(view: TextView) -> list[Block]:
    return _sections(_TONE_MARK[view.tone] + escape(view.text))


def _facts(pairs: Sequence[tuple[str, str]]) -> list[Block]:
    """Label/value pairs as section fields, ten to a section; a pair longer than a field holds gets
    sections of its own, so nothing is cut."""
    blocks: list[Block] = []
    fields: list[MarkdownTextObject] = []
    for label, value in pairs:
        text = f"*{escape(label)}*\n{escape(value)}"
        if len(text) <= MAX_FIELD_TEXT:
            fields.append(MarkdownTextObject(text=text))
        else:
            blocks.extend(_sections(text))
    grouped = [SectionBlock(fields=fields[n : n + MAX_FIELDS]) for n in range(0, len(fields), MAX_FIELDS)]
    return [*grouped, *blocks]


def _rows(rows: Sequence[StatusRow]) -> list[Block]:
    return _facts([(row.label, row.value) for row in rows])


def _context(text: str) -> Block:
    return ContextBlock(elements=[MarkdownTextObject(text=_clip(escape(text), MAX_SECTION_TEXT))])


def _header(text: str) -> Block:
    return HeaderBlock(text=PlainTextObject(text=_clip(text, MAX_HEADER_TEXT)))


def _warnings(warnings: Sequence[str]) -> list[Block]:
    return [block for warning in warnings for block in _sections(f"⚠️ {escape(warning)}")]


def _button(title: str, verb: str, data: dict[str, Any], n: int, style: str = "default", ask: str = "") -> ButtonElement:
    return ButtonElement(
        text=_clip(title, MAX_BUTTON_TEXT),
        action_id=f"{ACTION_PREFIX}:{verb}:{ask}:{n}",
        value=json.dumps(data, separators=(",", ":")),
        style={"positive": "primary", "destructive": "danger"}.get(style),
    )


def _message(text: str, blocks: Sequence[Block], item_id: str | None = None) -> SlackMessage:
    """A message of at most 50 blocks. Only a digest can need more, and it pages; should another view
    ever grow past that, its middle gives way to a note, and its last block (the buttons) stays."""
    if len(blocks) > MAX_BLOCKS:
        left = len(blocks) - MAX_BLOCKS + 2
        blocks = [*blocks[: MAX_BLOCKS - 2], _context(f"({left} more parts not shown: Slack's message size.)"), blocks[-1]]
    return SlackMessage(_clip(text, MAX_FALLBACK_TEXT), [block.to_dict() for block in blocks], item_id)


def render(view: View) -> list[SlackMessage]:
    """Every message a view becomes, in order."""
    if isinstance(view, TextView):
        return [_message(view.text, _tone(view))]
    if isinstance(view, ItemView):
        return [item_message(view)]
    if isinstance(view, DigestView):
        return digest_messages(view)
    if isinstance(view, ListView):
        messages = [_message(view.intro, _sections(escape(view.intro)))]
        messages.extend(item_message(item) for item in view.items)
        if view.more:
            more = f"{view.more} more after these — say 'mine' again once done."
            messages.append(_message(more, _sections(more)))
        return messages
    if isinstance(view, StatusView):
        return [status_message(view)]
    if isinstance(view, HelpView):
        return [help_message(view)]
    if isinstance(view, ConfirmView):
        return [confirm_message(view)]
    if isinstance(view, FindingsView):
        return [findings_message(view)]
    if isinstance(view, RollupView):
        return [rollup_message(view)]
    if isinstance(view, WitnessView):
        return [witness_message(view)]
    if isinstance(view, StackView):
        return [message for part in view.parts for message in render(part)]
    raise TypeError(f"no Slack rendering for {type(view).__name__}")


def replacement(view: View) -> SlackMessage:
    """The one message that replaces a clicked one in place (chat.update): for a digest, its first page."""
    return render(view)[0]


def item_message(view: ItemView) -> SlackMessage:
    blocks: list[Block] = [
        _context(view.header),
        _header(view.title),
        _context(view.kind_label),
        *(_sections(f"*{escape(view.delegation)}*") if view.delegation else []),
        *_warnings(view.warnings),
        *_facts(view.facts),
    ]
    if view.findings:
        lines = [f"{_SEVERITY_MARK.get(severity.lower(), '•')} *{escape(severity.upper())}* {escape(finding)}"
                 for severity, finding in view.findings]
        blocks.extend(_sections("\n".join(lines)))
    if view.outcome is not None:
        blocks.extend(_tone(view.outcome))
    if view.notice is not None:
        blocks.append(DividerBlock())
        blocks.extend(_tone(view.notice))
    if view.choices:
        buttons = []
        for n, choice in enumerate(view.choices):
            ask = ASK_JUSTIFICATION if choice.needs_justification else ASK_PERSON if choice.needs_person else ""
            title = f"{choice.title}…" if ask else choice.title
            data = {actions.ITEM: view.item_id, actions.ACTION: choice.action}
            buttons.append(_button(title, actions.DECIDE, data, n, choice.style, ask))
        blocks.append(ActionsBlock(elements=buttons))
    return _message(view.title, blocks, view.item_id)


_CHOICES = (("Keep", "keep"), ("Revoke", "revoke"), ("Don't know", "dont_know"))


def _digest_row(row: DigestRow) -> list[Block]:
    """One item: what it is and its flags, with the answer chosen beside it (read at Submit)."""
    lines = [f"*{escape(row.title)}*", f"{escape(row.kind_label)} · {escape(row.summary)}"]
    if row.delegation:
        lines.append(f"_{escape(row.delegation)}_")
    lines.extend(f"⚑ {escape(flag)}" for flag in row.flags)
    if row.outcome is not None:
        lines.append(_TONE_MARK[row.outcome.tone] + escape(row.outcome.text))
    pieces = _split("\n".join(lines), MAX_SECTION_TEXT)
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=piece)) for piece in pieces]
    if row.choosable:
        blocks[0] = SectionBlock(
            block_id=f"{actions.CHOICE_PREFIX}{row.item_id}",
            text=MarkdownTextObject(text=pieces[0]),
            accessory=StaticSelectElement(
                action_id=f"{CHOOSE_ACTION}{row.item_id}",  # action ids are unique within a message
                placeholder="Your answer",
                options=[Option(text=title, value=value) for title, value in _CHOICES],
            ),
        )
    return blocks


def digest_messages(view: DigestView) -> list[SlackMessage]:
    """The digest as one message, or several when its rows need more than 50 blocks; each page has its
    own Submit (Slack hands back only the choices made in the clicked message)."""
    head: list[Block] = [_context(view.header), _header(view.title), *_sections(escape(view.intro)), *_warnings(view.warnings)]
    tail: list[Block] = []
    if view.more:
        tail.extend(_sections(f"{view.more} more after these: answer these, then say 'mine' again."))
    if view.notice is not None:
        tail.extend(_tone(view.notice))
    choosable = any(row.choosable for row in view.rows)
    whose = {actions.TENANT: view.tenant} if view.tenant else {}
    buttons: list[Block] = []
    if choosable:
        buttons.append(
            ActionsBlock(
                elements=[
                    _button("Submit answers", actions.DIGEST, {actions.SUBMIT_DIGEST: True, **whose}, 0, "positive",
                            ASK_JUSTIFICATION),
                    _button("Keep all not flagged", actions.DIGEST, {actions.KEEP_UNFLAGGED: True, **whose}, 1),
                ]
            )
        )
    rows = [_digest_row(row) for row in view.rows]
    pages: list[list[Block]] = [list(head)]
    for row in rows:
        reserve = len(tail) + len(buttons)  # the last page also carries the tail; every page its buttons
        if len(pages[-1]) + 1 + len(row) + reserve > MAX_BLOCKS:
            pages.append([_context(f"{view.title} (continued)")])
        pages[-1].extend([DividerBlock(), *row])
    pages[-1].extend(tail)
    count = len(pages)
    messages = []
    for n, page in enumerate(pages, 1):
        if count > 1:
            page.append(_context(f"Part {n} of {count}: submit each part's answers with its own button."))
        messages.append(_message(f"{view.title} ({n}/{count})" if count > 1 else view.title, [*page, *buttons]))
    return messages


def status_message(view: StatusView) -> SlackMessage:
    """The figures as text, and beside them the same figures drawn (the chart PNG behind a signed link),
    when the view carries one: Slack cannot draw charts itself, and the text stays for those who read."""
    blocks: list[Block] = [_header(view.title), *_warnings(view.warnings), *_rows(view.rows)]
    if view.owners:
        blocks.append(_context("By reviewer"))
        blocks.extend(_rows(view.owners))
    if view.chart_image and len(view.chart_image) <= MAX_IMAGE_URL:
        blocks.append(_chart_image(view))
    return _message(view.title, blocks)


def _chart_image(view: StatusView) -> Block:
    """The chart image; its alt text carries every figure the charts draw (each chart's own text fallback),
    so a screen reader, or a client that blocks images, loses nothing."""
    alt = " ".join(f"{chart.title}: {chart.fallback}." for chart in view.charts) or view.title
    return ImageBlock(image_url=view.chart_image, alt_text=_clip(alt, MAX_ALT_TEXT), title=_clip(view.title, MAX_HEADER_TEXT))


def help_message(view: HelpView) -> SlackMessage:
    lines = "\n".join(f"*{escape(command)}* — {escape(what)}" for command, what in view.commands)
    blocks: list[Block] = [_header(view.title), *_sections(lines)]
    if view.footer:
        blocks.append(_context(view.footer))
    return _message(view.title, blocks)


def confirm_message(view: ConfirmView) -> SlackMessage:
    lines = "\n".join(f"*{escape(row.label)}* · {escape(row.value)}" for row in view.rows)
    if view.more:
        lines += f"\nand {view.more} more."
    data = {actions.INTENT: view.intent, actions.REF: view.ref}
    blocks: list[Block] = [
        _header(view.title),
        *_sections(escape(view.text)),
        *(_sections(lines) if lines else []),
        ActionsBlock(
            elements=[
                _button(view.confirm_title, actions.CONFIRM, {**data, actions.CONFIRMED: True}, 0, "destructive"),
                _button("Cancel", actions.CONFIRM, {**data, actions.CONFIRMED: False}, 1),
            ]
        ),
    ]
    return _message(view.title, blocks)


def findings_message(view: FindingsView) -> SlackMessage:
    counts = " · ".join(f"*{escape(row.value)}* {escape(row.label.lower())}" for row in view.by_severity)
    blocks: list[Block] = [_header(view.title), *_sections(counts or "No findings.")]
    for group in view.groups:
        reference = f" ({escape(group.reference)})" if group.reference else ""
        found_on = " · ".join(escape(name) for name in group.found_on) + (f" · and {group.more} more" if group.more else "")
        mark = _SEVERITY_MARK.get(group.severity.lower(), "•")
        text = f"{mark} *{escape(group.severity.upper())}* · {escape(group.title)}{reference} — " \
               f"{len(group.found_on) + group.more}\n{found_on}"
        blocks.append(DividerBlock())
        blocks.extend(_sections(text))
    if view.pages > 1:
        more = f" Say '{view.next_hint}' for the next." if view.next_hint else ""
        blocks.append(_context(f"Page {view.page} of {view.pages}.{more}"))
    return _message(view.title, blocks)


def rollup_message(view: RollupView) -> SlackMessage:
    """A partner's customers, worst first, as the Teams card shows them: the totals, a section per customer on
    this page (its name bold, marked when it needs attention), then the page and what to say for the next.
    A page holds ``dialogs.partner_status.PAGE_SIZE`` customers, so it stays well inside 50 blocks."""
    totals = " · ".join(f"*{escape(row.value)}* {escape(row.label)}" for row in view.totals)
    blocks: list[Block] = [_header(view.title), *_sections(totals)]
    for row in view.rows:
        blocks.extend(_sections(f"{_TONE_MARK[row.tone]}*{escape(row.name)}* · {escape(row.line)}"))
    footer = f"Page {view.page} of {view.pages}." if view.pages > 1 else ""
    if view.next_hint:
        footer += f" Say '{view.next_hint}' for the next."
    footer = " ".join(part for part in (footer.strip(), view.footer) if part)
    if footer:
        blocks.append(_context(footer))
    return _message(view.title, blocks)


def witness_message(view: WitnessView) -> SlackMessage:
    """The checkpoint's text in a code block, which Slack wraps and which copies whole; the notification text is
    the readable line, not the JSON."""
    blocks: list[Block] = [
        *_sections(f"*{escape(view.title)}*"),
        _context(f"{view.summary}. {view.advice}"),
        *_sections(f"```{escape(view.code)}```"),
    ]
    return _message(f"{view.title} ({view.summary})", blocks)


def ask_modal(ask: str, subject: str, metadata: str) -> dict[str, Any]:
    """The modal a Revoke (justification) or Reassign (person) click opens; ``metadata`` comes back with
    the submission (the click's verb and data, and where the clicked message is)."""
    if ask == ASK_PERSON:
        title, submit, label = "Reassign", "Reassign", "Hand this item to (work e-mail address)"
        element: Any = PlainTextInputElement(action_id=actions.REASSIGN_TO, placeholder="name@contoso.com")
    else:
        title, submit, label = "Revoke access", "Revoke", "Justification (required to revoke)"
        element = PlainTextInputElement(
            action_id=actions.JUSTIFICATION, multiline=True, max_length=500, placeholder="Why should this access go?"
        )
    blocks: list[Block] = [
        *_sections(escape(subject)),
        InputBlock(block_id=element.action_id, label=label, element=element),
    ]
    modal = SlackView(
        type="modal", callback_id=MODAL_CALLBACK, title=title, submit=submit, close="Cancel",
        blocks=blocks, private_metadata=metadata,
    )
    return modal.to_dict()


def modal_inputs(state_values: dict[str, Any]) -> dict[str, str]:
    """What a person typed into an ``ask_modal``, under the data keys of dialogs/actions.py."""
    found: dict[str, str] = {}
    for key in (actions.JUSTIFICATION, actions.REASSIGN_TO):
        entry = (state_values.get(key) or {}).get(key) or {}
        if isinstance(entry.get("value"), str):
            found[key] = entry["value"]
    return found


def digest_choices(state_values: dict[str, Any]) -> dict[str, str]:
    """The answers chosen in a digest message (its ``state.values``), as ``choice:<item>`` data keys."""
    chosen: dict[str, str] = {}
    for block_id, elements in state_values.items():
        if not str(block_id).startswith(actions.CHOICE_PREFIX) or not isinstance(elements, dict):
            continue
        for action_id, element in elements.items():
            if not str(action_id).startswith(CHOOSE_ACTION) or not isinstance(element, dict):
                continue
            selected = element.get("selected_option") or {}
            if isinstance(selected.get("value"), str):
                chosen[str(block_id)] = selected["value"]
    return chosen


def home_view(sections: Sequence[View]) -> dict[str, Any]:
    """The App Home tab: the views given (the person's open items, the campaign's progress), one after
    another, within a view's 100 blocks; the buttons stay, so items can be answered there. A view's action
    ids must be unique across it, so the buttons of several messages are numbered anew."""
    blocks: list[dict[str, Any]] = []
    for view in sections:
        for message in render(view):
            if len(blocks) + len(message.blocks) + 1 > MAX_VIEW_BLOCKS:
                blocks.append(_context("More in our direct messages: say 'mine'.").to_dict())
                return _home(blocks)
            blocks.extend(message.blocks)
        blocks.append(DividerBlock().to_dict())
    return _home(blocks[:-1] if blocks else [_context("Nothing here yet.").to_dict()])


def _home(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    numbered = 0
    for block in blocks:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if (match := _ACTION_ID.match(element.get("action_id", ""))) is not None:
                element["action_id"] = f"{ACTION_PREFIX}:{match['verb']}:{match['ask']}:{numbered}"
                numbered += 1
    return SlackView(type="home", blocks=blocks).to_dict()
