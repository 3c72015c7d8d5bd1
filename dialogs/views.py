"""Channel-neutral view models: what a person should see, with no idea which chat app shows it.

Each channel's renderer turns these into its own format: Adaptive Cards for Teams (dialogs/render/teams.py) and
Block Kit for Slack (dialogs/render/slack.py). A new view type needs both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dialogs.charts import Chart


class Tone(StrEnum):
    NORMAL = "normal"
    GOOD = "good"
    WARNING = "warning"
    ATTENTION = "attention"


@dataclass(frozen=True)
class TextView:
    text: str
    tone: Tone = Tone.NORMAL


@dataclass(frozen=True)
class ChoiceView:
    """A button: ``action`` is the engine action; ``needs_justification`` makes the renderer ask for text."""

    action: str
    title: str
    style: str = "default"  # "positive" | "destructive" | "default"
    needs_justification: bool = False
    needs_person: bool = False


@dataclass(frozen=True)
class ItemView:
    """One review item as a card: the subject, its evidence, and either the choices or the answer."""

    item_id: str
    campaign_id: str
    header: str
    title: str
    kind_label: str
    facts: tuple[tuple[str, str], ...]
    findings: tuple[tuple[str, str], ...] = ()  # (severity, text)
    warnings: tuple[str, ...] = ()
    notice: TextView | None = None  # the answer to the click that produced this view
    outcome: TextView | None = None  # the decision, once there is one
    choices: tuple[ChoiceView, ...] = ()
    subject_key: str = ""
    delegation: str = ""  # "You answer as Patti Fernandez's delegate." when the viewer answers for a reviewer


@dataclass(frozen=True)
class ListView:
    title: str
    intro: str
    items: tuple[ItemView, ...] = ()
    more: int = 0  # items not shown to stay under the channel's message size


@dataclass(frozen=True)
class StatusRow:
    label: str
    value: str


@dataclass(frozen=True)
class StatusView:
    title: str
    rows: tuple[StatusRow, ...]
    owners: tuple[StatusRow, ...] = ()
    warnings: tuple[str, ...] = ()
    live: bool = False  # the channel's live status card, updated in place as answers arrive
    charts: tuple[Chart, ...] = ()  # the same figures drawn; each carries its own text fallback
    chart_image: str = ""  # a signed, expiring link to those charts as one PNG, for channels that show images


@dataclass(frozen=True)
class HelpView:
    title: str
    commands: tuple[tuple[str, str], ...]
    footer: str = ""


@dataclass(frozen=True)
class Actor:
    """The person talking to the bot, as the channel identified them."""

    object_id: str | None
    name: str


@dataclass(frozen=True)
class DigestRow:
    """One item inside a digest: enough to decide most items without opening them."""

    item_id: str
    title: str
    kind_label: str
    summary: str
    flags: tuple[str, ...] = ()  # findings, most severe first; an item with any is "flagged"
    outcome: TextView | None = None
    choosable: bool = True
    delegation: str = ""  # as on ItemView: on whose behalf this person answers this item

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class DigestView:
    """Many items on one card, with a choice per item and "keep all not flagged"."""

    header: str
    title: str
    intro: str
    rows: tuple[DigestRow, ...]
    more: int = 0
    notice: TextView | None = None
    warnings: tuple[str, ...] = ()
    tenant: str = ""  # whose review it is: its buttons carry it back (dialogs/actions.py: TENANT)


@dataclass(frozen=True)
class ConfirmView:
    """A question whose answer changes something for good: what it will do, what it applies to, and
    Confirm / Cancel. ``intent`` and ``ref`` come back with the answer, so a stale card can only ever
    confirm what it showed (e.g. the sign-off of one campaign, not of whichever is newest by then)."""

    title: str
    text: str
    rows: tuple[StatusRow, ...]
    intent: str
    ref: str
    confirm_title: str = "Confirm"
    more: int = 0  # rows not shown


@dataclass(frozen=True)
class FindingGroup:
    """Every finding of one check: which check, how bad, and what it was found on."""

    severity: str
    title: str
    reference: str  # e.g. the CISA ScubaGear policy id; "" when there is none
    found_on: tuple[str, ...]  # the items (or, for a tenant-wide check, the facts) it was found on
    more: int = 0  # found on this many more than listed


@dataclass(frozen=True)
class FindingsView:
    """The checks' findings, leading with the counts, grouped by check, one page at a time."""

    title: str
    by_severity: tuple[StatusRow, ...]
    groups: tuple[FindingGroup, ...]
    page: int = 1
    pages: int = 1
    next_hint: str = ""  # what to say for the next page


@dataclass(frozen=True)
class RollupRow:
    """One customer in a partner's roll-up: its name, the key ``status <customer>`` takes, one line of numbers."""

    name: str
    key: str
    line: str
    tone: Tone = Tone.NORMAL


@dataclass(frozen=True)
class RollupView:
    """A CSP partner's reviews across customers, worst first, one page at a time (dialogs/partner_status.py)."""

    title: str
    totals: tuple[StatusRow, ...]
    rows: tuple[RollupRow, ...]
    page: int = 1
    pages: int = 1
    next_hint: str = ""  # what to say for the next page
    footer: str = ""


@dataclass(frozen=True)
class WitnessView:
    """The ledger's signed checkpoint, posted to the security leads to keep (dialogs/notices.py): a line a person
    reads, and ``code``, the exact text ``accessbot ledger verify --witness`` reads, shown whole to be copied in
    a block that wraps (one long line of JSON overflows a chat bubble)."""

    title: str
    summary: str  # the record's hash prefix, when it was signed, the key's id
    advice: str
    code: str


@dataclass(frozen=True)
class StackView:
    """Several views answering one request, each sent as its own message(s), in order: e.g. a CSP partner's
    staffer's own digest, then where their reviews in customers' campaigns stand (dialogs/customer_reviews.py)."""

    parts: tuple[TextView | ItemView | ListView | StatusView | DigestView | RollupView, ...]


View = (TextView | ItemView | ListView | StatusView | HelpView | DigestView | ConfirmView | FindingsView | RollupView
        | WitnessView | StackView)


@dataclass(frozen=True)
class PrivateReply:
    """Personal content asked for where others read along (a group chat, a channel).

    The shared conversation gets only ``pointer``; ``content`` goes to the person in their personal chat.
    When no personal chat can be reached, the shared conversation gets ``unreachable`` instead, and the
    content goes nowhere: it is never posted where others can read it.
    """

    pointer: TextView
    content: View
    unreachable: TextView


Reply = View | PrivateReply
