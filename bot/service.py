"""The review service: the pure engine wired to the store, the ledger and the outbox.

Every change follows one order — decide in the engine, make the ledger event durable, apply it to the
in-memory state with the same fold used at start-up, then queue the notices — so what a person is shown
after a click is exactly what an auditor will read in the ledger.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Protocol, Sequence

from bot.clock import Clock
from bot.engine.campaigns import (
    campaign_id,
    current_period,
    open_campaign,
    opened_event,
    review_requests,
)
from bot.engine.changes import (
    change_campaign_id,
    change_policy,
    is_change_campaign,
    latest_change_read,
    open_change_review,
)
from bot.engine.decisions import DecisionOutcome, DecisionRequest, Verdict, decide
from bot.engine.model import (
    SECURITY_LEADS,
    Action,
    Campaign,
    Decision,
    Finding,
    LedgerEvent,
    Notice,
    NoticeKind,
    ReviewItem,
    Subject,
    SubjectKind,
)
from bot.engine.routing import Routing, exceptions_from_policy, routing_from_policy
from bot.engine.signoff import SIGNED_OFF, SignOffOutcome, sign_off
from bot.engine.state import CampaignState, apply_event, decision_from_data
from bot.engine.status import CampaignSummary, awaits_answer, summarize
from bot.engine.timeline import tick
from bot.evidence_pack import evidence_pack
from bot.exports import ExportLinks, ExportRequest
from bot.ledger import EMPTY_HEAD, LedgerRecord, utc_stamp
from bot.ledger_history import LedgerHistory
from bot.ledger_signing import Checkpoint
from bot.metrics import DECISIONS
from bot.policy import Policy, RemediationMode
from bot.remediation.graph_executor import GraphExecutor
from bot.remediation.plan import plan_remediation
from bot.remediation.workflow import Remediation, Status, approve, attempt_event, outcome_event, propose, settle, succeeded
from bot.store.base import SENT_HORIZON, OutboxMessage, Store, StoreUnavailable, campaign_of
from bot.store.concurrency import expectations, moved_keys
from checks.access_changes import AccessChange, change_subject
from checks.findings import assess
from checks.registry import FindingResult
from checks.snapshot import TenantSnapshot

log = logging.getLogger(__name__)

NOTICES = "notices"  # where a ledger record carries the messages its event caused


def notice_to_data(notice: Notice) -> dict[str, Any]:
    return {"key": notice.key, "kind": notice.kind.value, "to": notice.to, "item_ids": list(notice.item_ids),
            "text": notice.text}


def notice_from_data(data: Mapping[str, Any]) -> Notice:
    return Notice(data["key"], NoticeKind(data["kind"]), data["to"], tuple(data["item_ids"]), data["text"])

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}

FOLLOW_PAGE = 1000  # ledger records read per page when catching up with what other instances recorded

ATTEMPTS = 8
"""How often one change is decided again after the store refused it as stale. Each refusal means another
instance recorded something this change depended on, so a handful of attempts is generous; past them the
change is reported as not recorded (503) rather than retried forever."""

SETTLED = frozenset({Status.DONE, Status.FAILED, Status.BLOCKED})
"""Remediation states nothing moves on from by itself: no approval, run or resumption is pending."""

FINAL_ACTIONS = frozenset({Action.KEEP.value, Action.REVOKE.value})  # answers that close an item


class LedgerFollowing(Protocol):
    """What a service asks of the shared follower it is attached to (bot/ledger_follower.py)."""

    async def catch_up(self) -> int: ...


class KeptMoving(StoreUnavailable):
    """A change was refused as stale ``ATTEMPTS`` times in a row: nothing was recorded."""


class UnknownItem(LookupError):
    """A card pointed at an item this deployment does not have (an old card, or a forged one)."""


@dataclass(frozen=True)
class DecisionResult:
    outcome: DecisionOutcome
    item: ReviewItem
    campaign: Campaign


async def rebuild_campaign(
    store: Store, campaign: Campaign, records: Sequence[LedgerRecord]
) -> tuple[CampaignState, bool]:
    """A campaign's current state: its items as opened, with its ledger events applied in order.
    Also says whether the ledger holds its opening (False only after a crash mid-opening)."""
    items = await store.campaign_items(campaign.id)
    state = CampaignState(campaign, {item.id: item for item in items})
    opened = False
    for record in records:
        if record.data.get("campaign_id") == campaign.id:
            opened = opened or record.type == "campaign_opened"
            apply_event(state, record.type, record.data)
    return state, opened


def closed_campaigns(campaigns: Sequence[Campaign], records: Sequence[LedgerRecord], current: str) -> set[str]:
    """The campaigns nothing can change any more, so start-up need not rebuild them: signed off (its answers
    are locked, nobody is chased or reminded) or, for a single-item change review, answered for good; not this
    period's campaign (which the scheduler would reopen), and with no remediation job left to approve, run or
    resume. A past campaign never signed off stays live: its reviewers are still chased and its sign-off is
    still owed. Decided by folding only the sign-off and remediation events (the same fold as a full rebuild,
    without the items) and, for change reviews, their final answers: a pass over records start-up reads anyway."""
    outlines = {campaign.id: CampaignState(campaign, {}) for campaign in campaigns if campaign.id != current}
    answered: set[str] = set()  # change reviews (one item each) whose item has its final answer
    for record in records:
        outline = outlines.get(campaign_of(record) or "")
        if outline is not None and (record.type == SIGNED_OFF or record.type.startswith("remediation_")):
            apply_event(outline, record.type, record.data)
        if (outline is not None and is_change_campaign(outline.campaign) and record.type == "decision"
                and record.data.get("action") in FINAL_ACTIONS):
            answered.add(outline.campaign.id)
    return {cid for cid, outline in outlines.items()
            if (outline.signed_off_by is not None or cid in answered)
            and all(r.status in SETTLED for r in outline.remediations.values())}


class ReviewService:
    """Holds the live state of every campaign and performs each change in the one safe order."""

    def __init__(
        self,
        store: Store,
        policy: Policy,
        snapshot: TenantSnapshot,
        clock: Clock,
        links: ExportLinks | None = None,
        executor: GraphExecutor | None = None,
        outsiders: Callable[[str], str | None] | None = None,
    ) -> None:
        """``outsiders`` resolves people the tenant's snapshot does not hold: a CSP partner's staff, who review the
        partner's access to each customer (bot/partner_campaigns.py)."""
        self.outsiders = outsiders
        self.store = store
        self.executor = executor
        self.links = links or ExportLinks("http://127.0.0.1:3978")
        self.policy = policy
        self.snapshot = snapshot
        self.clock = clock
        self.routing: Routing = routing_from_policy(policy, self._resolver(snapshot), snapshot.manager_of)
        self._campaigns: dict[str, CampaignState] = {}
        self.closed_campaign_ids: set[str] = set()  # signed off and finished: left in the store at start-up
        self._item_campaign: dict[str, str] = {}
        self._item_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tick_lock = asyncio.Lock()
        self._remediation_lock = asyncio.Lock()  # one worker runs jobs, one at a time, in this process
        self._remediation_wanted = asyncio.Event()  # set when a job became ready: the worker need not wait a round
        self._tenant_findings: list[FindingResult] | None = None  # worked out when first asked for
        self.changes = 0  # counts recorded events, so a live status card knows when to redraw
        self.decided_since: set[str] = set()  # items answered since a channel last redrew their cards
        self.engaged_at: dict[str, datetime] = {}  # when each person last looked at or answered their reviews
        # What this instance has folded of the ledger: every record up to _followed, and its own records beyond
        # it (_ahead) until the records of other instances between are caught up with. _versions holds, per
        # version key (bot/store/concurrency.py), the seq of the last folded record that moved it: what this
        # instance's appends say they saw. The store, not this memory, decides whether they still stand.
        self._followed = 0
        self._ahead: set[int] = set()
        self._versions: dict[str, int] = {}
        self._follow_lock = asyncio.Lock()
        self.follower: LedgerFollowing | None = None  # the one reader of a partner's shared ledger, when attached
        self.changes_read_to: datetime | None = None  # audit time of the newest access change recorded (the cursor)
        self.audit_source: str | None = None  # how reading the directory audit log went, for 'status'

    # ---- start-up -------------------------------------------------------------------------------

    async def start(self, history: LedgerHistory | None = None) -> None:
        """Rebuild every campaign that may still change from its opened items and the ledger, repairing an
        interrupted opening. Closed campaigns (``closed_campaigns``) stay in the store: holding each past week's
        items in memory made start-up and memory grow with history, and nothing changes them any more; their
        status, history, export and evidence pack are rebuilt on demand (``campaign_state``).

        ``history``: the ledger as read once for every service of a CSP partner's deployment (read here when
        not given). Only this tenant's records are folded, and only their notices queued again: a customer's
        service must not re-send the partner's or another customer's messages, to its own security leads."""
        history = history if history is not None else await LedgerHistory.read(self.store)
        records = history.records_of(self.policy.tenant_id)
        campaigns = history.campaigns_of(self.policy.tenant_id)
        closed = self.closed_campaign_ids = closed_campaigns(campaigns, records, self.current_campaign_id())
        self._followed = max(self._followed, history.last_seq)
        for record in records:
            if campaign_of(record) not in closed:  # nothing is appended about a closed campaign any more
                self._note_versions(record)
        for campaign in campaigns:
            if campaign.id not in self._campaigns and campaign.id not in closed and self._holds(campaign):
                await self._load(campaign, records)
        self.changes_read_to = latest_change_read(records)
        for record in records:
            if record.type == "decision" and not record.data.get("system"):
                self.engaged(record.data["actor_id"], datetime.fromisoformat(record.data["at"]))
        # Anything recorded but not yet in the outbox when the process died goes in now; the outbox
        # refuses what it already holds or has sent within SENT_HORIZON — older notices went long ago.
        recent = utc_stamp(self.clock.now() - SENT_HORIZON)
        await self.queue(
            [notice_from_data(n) for record in records if record.at >= recent for n in record.data.get(NOTICES, ())]
        )
        # A remediation left ready, or cut short mid-attempt, by the last process is the worker's first job.
        if any(r.status in (Status.READY, Status.RUNNING) for r in self.remediations()):
            self._remediation_wanted.set()

    async def _load(self, campaign: Campaign, records: Sequence[LedgerRecord]) -> CampaignState:
        state, opened = await rebuild_campaign(self.store, campaign, records)
        self._install(state)
        if not opened:  # the process died between storing the items and recording the opening
            await self._record((opened_event(campaign),), review_requests(campaign, list(state.items.values())))
        return state

    # ---- campaigns ------------------------------------------------------------------------------

    @property
    def tenant_findings(self) -> list[FindingResult]:
        """Findings that belong to no single item (e.g. too many Global Administrators), for 'findings'."""
        if self._tenant_findings is None:
            _, self._tenant_findings = assess(self.snapshot, self.clock.now(), self._break_glass())
        return self._tenant_findings

    def _break_glass(self) -> list[str]:
        return [account.principal for account in self.policy.break_glass]

    def use_snapshot(self, snapshot: TenantSnapshot) -> None:
        """A fresh collection for the next campaign. The people the policy names are resolved against it;
        if someone can no longer be found, the old snapshot stays in use and the error says who."""
        routing = routing_from_policy(self.policy, self._resolver(snapshot), snapshot.manager_of)
        self.snapshot, self.routing, self._tenant_findings = snapshot, routing, None

    def _resolver(self, snapshot: TenantSnapshot) -> Callable[[str], str | None]:
        if self.outsiders is None:
            return snapshot.resolve_principal
        outsiders = self.outsiders
        return lambda name: snapshot.resolve_principal(name) or outsiders(name)

    def current_campaign_id(self) -> str:
        period = current_period(self.policy.schedule_cron, self.policy.timezone, self.clock.now())
        return campaign_id(self.policy.tenant_id, period)

    async def open_current_campaign(self) -> tuple[CampaignState, bool]:
        """Open this period's campaign unless it is open already; returns (state, opened_now)."""
        cid = self.current_campaign_id()
        if cid in self._campaigns:
            return self._campaigns[cid], False
        now = self.clock.now()
        snapshot = self.snapshot
        subjects, self._tenant_findings = assess(snapshot, now, self._break_glass())
        opened = open_campaign(
            tenant_id=self.policy.tenant_id,
            tenant_name=self.policy.tenant_name,
            period=cid.split(":", 1)[1],
            subjects=subjects,
            routing=self.routing,
            policy=self.policy,
            now=now,
            exceptions=exceptions_from_policy(self.policy, snapshot.resolve_principal),
            snapshot_complete=snapshot.complete,
            snapshot_missing=snapshot.missing,
        )
        if not await self.store.save_campaign(opened.campaign, opened.items):
            # Another instance (or an earlier run) opened it first: adopt theirs, never a second one. Its opening
            # record arrives by catching up; if it is not recorded yet (that instance is still opening it, or
            # died doing so) the campaign is installed as opened and its opening recorded here, once (event key).
            await self.catch_up()
            if cid not in self._campaigns:
                existing = await self.store.get_campaign(cid)
                assert existing is not None
                items = await self.store.campaign_items(cid)
                self._install(CampaignState(existing, {item.id: item for item in items}))
                await self._record((opened_event(existing),), review_requests(existing, items))
            return self._campaigns[cid], False
        state = CampaignState(opened.campaign, {item.id: item for item in opened.items})
        self._install(state)
        await self._record(opened.events, opened.notices)
        return state, True

    def campaigns(self) -> list[CampaignState]:
        """Newest first, the weekly campaigns before the single-item change reviews: what 'the campaign' means
        to status, findings and sign-off is the newest weekly one, whichever changes were asked about since."""
        return sorted(self._campaigns.values(),
                      key=lambda s: (not is_change_campaign(s.campaign), s.campaign.opened_at), reverse=True)

    # ---- access changes -------------------------------------------------------------------------

    def change_cursor(self) -> datetime:
        """Where reading the directory audit log starts: the audit time of the newest change recorded in the
        ledger, or the opening of the newest weekly campaign (it asked about everything before), or now.
        Derived from the ledger, so a restart or another instance starts from the same place."""
        weekly = [s.campaign.opened_at for s in self._campaigns.values() if not is_change_campaign(s.campaign)]
        starts = [t for t in (self.changes_read_to, max(weekly, default=None)) if t is not None]
        return max(starts, default=self.clock.now())

    def role_subjects(self) -> list[Subject]:
        """The role holdings as the newest weekly campaign asked about them (or as the snapshot has them): who
        the admins are, and which roles an admin's MFA change concerns."""
        weekly = [s for s in self.campaigns() if not is_change_campaign(s.campaign)]
        subjects = ([item.subject for item in weekly[0].items.values()] if weekly
                    else assess(self.snapshot, self.clock.now(), self._break_glass())[0])
        return [subject for subject in subjects if subject.kind is SubjectKind.ROLE_ASSIGNMENT]

    def admin_ids(self) -> frozenset[str]:
        return frozenset(holder.lower() for subject in self.role_subjects() for holder in subject.holder_ids)

    async def open_change_review(self, change: AccessChange) -> bool:
        """Ask the owner about one access change at once. False when this audit event already has its review
        (here, in the store from an earlier run, or opened first by another instance): never asked twice."""
        cid = change_campaign_id(self.policy.tenant_id, change.event_id)
        if cid in self._campaigns or cid in self.closed_campaign_ids or await self._held_already(cid):
            self._read_to(change.at)
            return False
        roles_of_holder: dict[str, list[Subject]] = defaultdict(list)
        for subject in self.role_subjects():
            for holder in subject.holder_ids:
                roles_of_holder[holder].append(subject)
        opened = open_change_review(
            tenant_id=self.policy.tenant_id, tenant_name=self.policy.tenant_name, event_id=change.event_id,
            event_at=change.at, subject=change_subject(change), seed=change.seed, routing=self.routing,
            policy=self.policy, now=self.clock.now(), roles_of_holder=roles_of_holder,
        )
        if not await self.store.save_campaign(opened.campaign, opened.items):
            await self._held_already(cid)  # another instance opened it between our look and our save
            self._read_to(change.at)
            return False
        self._install(CampaignState(opened.campaign, {item.id: item for item in opened.items}))
        await self._record(opened.events, opened.notices)
        self._read_to(change.at)
        return True

    async def _held_already(self, cid: str) -> bool:
        """Whether the store holds this change review already (from an earlier run, or opened by another
        instance): then this instance catches up, which holds it here too once its opening is recorded (a
        half-recorded one is that instance's to finish, or start-up's)."""
        if await self.store.get_campaign(cid) is None:
            return False
        await self.catch_up()
        return True

    def open_change_reviews(self) -> int:
        """How many access changes still wait for an answer (for 'status')."""
        return sum(len(s.open_items()) for s in self._campaigns.values() if is_change_campaign(s.campaign))

    def _read_to(self, at: datetime) -> None:
        """Move the cursor on once a change is recorded (by us or before): never past one that is not."""
        if self.changes_read_to is None or at > self.changes_read_to:
            self.changes_read_to = at

    def campaign(self, cid: str) -> CampaignState | None:
        """A campaign held in memory (open, or loaded at start); ``campaign_state`` also finds closed ones."""
        return self._campaigns.get(cid)

    async def campaign_state(self, cid: str) -> CampaignState | None:
        """The campaign's state: the live one when held, else rebuilt from the store and its own ledger records
        (a closed campaign, read off the event loop). A rebuilt state is not kept: a closed campaign cannot
        change, and keeping every campaign someone exported is what start-up stopped doing."""
        state = self._campaigns.get(cid)
        if state is not None:
            return state
        campaign = await self.store.get_campaign(cid)
        if campaign is None:
            return None
        state, _ = await rebuild_campaign(self.store, campaign, await self.store.ledger_records_of(cid))
        return state

    async def knows_campaign(self, cid: str) -> bool:
        """Whether the campaign exists, held in memory or closed in the store (without rebuilding it)."""
        return cid in self._campaigns or await self.store.get_campaign(cid) is not None

    def summary(self, state: CampaignState) -> CampaignSummary:
        return summarize(state, self.clock.now())

    # ---- items and decisions --------------------------------------------------------------------

    def holds_item(self, item_id: str) -> bool:
        """Whether the item is in one of this service's live campaigns (which service a click goes to)."""
        return item_id in self._item_campaign

    def item(self, item_id: str) -> tuple[ReviewItem, Campaign]:
        cid = self._item_campaign.get(item_id)
        if cid is None:
            raise UnknownItem(item_id)
        state = self._campaigns[cid]
        return state.items[item_id], state.campaign

    def items_for(self, reviewer_id: str) -> list[tuple[ReviewItem, Campaign]]:
        """Open items this person may answer, as reviewer or delegate (never their own access), newest
        campaign first; accepted exceptions included. A signed-off campaign has none: it is closed."""
        found = []
        for state in self.campaigns():
            if state.signed_off_by is not None:
                continue
            for item in state.open_items():
                if self.may_answer(reviewer_id, item):
                    found.append((item, state.campaign))
        return found

    def waiting_for(self, person: str) -> list[tuple[ReviewItem, Campaign]]:
        """What is waiting for this person's answer (``awaits_answer``): the number every message gives them."""
        return [(item, campaign) for item, campaign in self.items_for(person) if awaits_answer(item)]

    def may_answer(self, person: str, item: ReviewItem) -> bool:
        """Whether this person's click on this item would be heard (as reviewer or delegate, not holder)."""
        if not person or not item.is_open or self.routing.may_act_for(person, item.reviewers) is None:
            return False
        return person not in item.subject.holder_ids or (
            item.subject.kind is SubjectKind.RECOVERY_CONTACT and self.routing.recovery_include_admin
        )

    def engaged(self, person: str, at: datetime | None = None) -> None:
        """The person is in their review (asked for their list, or answered): requests to start it are stale."""
        at = at or self.clock.now()
        previous = self.engaged_at.get(person)
        if person and (previous is None or at > previous):
            self.engaged_at[person] = at

    def notice_obsolete(self, message: OutboxMessage) -> str | None:
        """Why a queued message should no longer go (the notifier asks right before sending), or None.
        A "your review is open" (or "needs your answer again") request is stale once its recipient has
        looked at or answered their reviews after it was queued."""
        seen = self.engaged_at.get(message.recipient)
        if message.kind == NoticeKind.REVIEW_REQUEST.value and seen is not None and seen > message.created_at:
            return f"the recipient was already in the review at {seen:%Y-%m-%d %H:%M:%S} UTC"
        return None

    async def decide(self, request: DecisionRequest) -> DecisionResult:
        """Decide on this instance's view, and let the store refuse it if the view was stale: then catch up and
        decide again, so the second of two answers given at once on two instances is told who answered. A
        refusal, a conflict or an unknown item is decided again once after catching up too: another instance
        may have opened the campaign, reassigned the item or escalated it to this person."""
        self.engaged(request.actor_id)
        async with self._item_locks[request.item_id]:
            for attempt in range(ATTEMPTS):
                try:
                    item, campaign = self.item(request.item_id)
                except UnknownItem:
                    if attempt == 0 and await self.catch_up():
                        continue
                    raise
                locked_by = self._campaigns[campaign.id].signed_off_by
                outcome = decide(
                    item, request, self.routing, self.clock.now(), locked_by=locked_by,
                    max_justification=self.policy.justification_max_chars, name_of=self.display_name,
                )
                if outcome.verdict is Verdict.RECORDED:
                    if await self._record(outcome.events, outcome.notices) is None:
                        continue  # stale: caught up, decide again
                elif outcome.verdict in (Verdict.REFUSED, Verdict.CONFLICT) and attempt == 0 and await self.catch_up():
                    continue
                DECISIONS.labels(outcome.verdict.value).inc()
                if outcome.verdict is Verdict.REFUSED:
                    log.warning(
                        "refused %s on item %s by %s: %s", request.action.value, item.id, request.actor_id, outcome.message
                    )
                current, _ = self.item(request.item_id)
                return DecisionResult(outcome, current, campaign)
            raise KeptMoving(f"item {request.item_id} kept changing on other instances; the answer was not recorded")

    # ---- what security leads ask --------------------------------------------------------------

    async def sign_off(
        self, actor_id: str, actor_name: str, confirmed: bool = False, campaign_id: str | None = None
    ) -> SignOffOutcome:
        """Lock the newest campaign's answers (or ``campaign_id``'s: a confirmation names what it confirms);
        with items still waiting, only once ``confirmed``. The evidence pack then carries the sign-off."""
        campaigns = self.campaigns()
        if not campaigns:
            return SignOffOutcome(False, "No review campaign is open yet.")
        state = campaigns[0] if campaign_id is None else self._campaigns.get(campaign_id)
        if state is None:
            return SignOffOutcome(False, "That review no longer exists here; nothing was signed off.")
        for _ in range(ATTEMPTS):  # an answer recorded meanwhile on another instance makes it decide again
            outcome = sign_off(state, actor_id, actor_name, self.routing, self.policy.no_answer, self.clock.now(), confirmed)
            if not outcome.ok:
                return outcome
            if await self._record(outcome.events) is not None:
                await self.witness_checkpoint()
                return outcome
        raise KeptMoving(f"campaign {state.campaign.id} kept changing on other instances; it was not signed off")

    async def witness_checkpoint(self) -> Checkpoint | None:
        """Post the ledger's latest signed checkpoint to the security leads. Their copy lives outside the data
        directory, so it later proves that nothing up to it was removed or rewritten — even by someone who
        steals the signing key (docs/ledger.md). Once per checkpoint: the outbox refuses the twin, so a
        quiet day posts nothing new. None (and nothing posted) while the ledger is unsigned or empty."""
        checkpoint = await self.store.latest_checkpoint()
        if checkpoint is None:
            return None
        await self.queue([Notice(key=f"witness:{checkpoint.ledger_id[:16]}:{checkpoint.seq}", kind=NoticeKind.WITNESS,
                                 to=SECURITY_LEADS, item_ids=(), text=checkpoint.witness_text())])
        return checkpoint

    def overdue(self) -> list[tuple[ReviewItem, Campaign]]:
        now = self.clock.now()
        return [
            (item, state.campaign)
            for state in self.campaigns()
            if state.signed_off_by is None  # a signed-off review chases nobody
            for item in state.open_items()
            if awaits_answer(item) and (item.overdue or now >= item.due)
        ]

    def findings(self) -> list[tuple[ReviewItem, Finding]]:
        """Every finding on the newest campaign's items, most severe first."""
        campaigns = self.campaigns()
        if not campaigns:
            return []
        found = [(item, finding) for item in campaigns[0].items.values() for finding in item.subject.findings]
        return sorted(found, key=lambda pair: (SEVERITY_ORDER.get(pair[1].severity, 9), pair[0].subject.title))

    async def history(self, query: str) -> list[tuple[ReviewItem, Decision, Campaign]]:
        """Every answer ever recorded on the access of a person (UPN or id) or a partner (name), oldest first."""
        person = self.resolve_person(query)
        needle = query.strip().lower()

        def concerns(item: ReviewItem) -> bool:
            if person is not None:
                return person in item.subject.holder_ids
            return bool(needle) and needle in (item.subject.partner_name or item.subject.title).lower()

        found: list[tuple[int, ReviewItem, Decision, Campaign]] = []
        for campaign in await self.store.list_campaigns():  # closed ones too, rebuilt one at a time
            state = await self.campaign_state(campaign.id)
            if state is None or not any(concerns(item) for item in state.items.values()):
                continue
            for record in await self.store.ledger_records_of(campaign.id):
                item = state.items.get(record.data.get("item_id", ""))
                if record.type == "decision" and item is not None and concerns(item):
                    found.append((record.seq, item, decision_from_data(record.data), state.campaign))
        found.sort(key=lambda answer: answer[0])  # ledger order: campaigns' answers can interleave
        return [(item, decision, campaign) for _, item, decision, campaign in found]

    async def remind(self, reviewer_id: str, by_name: str) -> int:
        """A security lead's nudge: one reminder now, listing what the reviewer still owes."""
        waiting = [item for item, _ in self.waiting_for(reviewer_id)]
        if not waiting:
            return 0
        now = self.clock.now()
        await self.queue(
            [
                Notice(
                    key=f"manual-remind:{reviewer_id}:{now:%Y%m%dT%H%M}",
                    kind=NoticeKind.REMINDER,
                    to=reviewer_id,
                    item_ids=tuple(i.id for i in waiting),
                    text=f"{by_name} asks you to finish your access reviews: {len(waiting)} item(s) are waiting. "
                    "Say 'my reviews'.",
                )
            ]
        )
        return len(waiting)

    def export_link(self, request: ExportRequest) -> str:
        return self.links.make(request, self.clock.now())

    async def campaign_ledger(self, campaign_id: str) -> list[LedgerRecord]:
        """The campaign's ledger records (its export), read by campaign off the event loop."""
        return await self.store.ledger_records_of(campaign_id)

    async def evidence(self, campaign_id: str) -> bytes:
        """The campaign's evidence pack, open or closed: its own records, and the ledger's head as it stands."""
        state = await self.campaign_state(campaign_id)
        if state is None:
            raise UnknownItem(campaign_id)
        records = await self.store.ledger_records_of(campaign_id)
        head = await self.store.ledger_anchor() or EMPTY_HEAD
        return evidence_pack(state, records, head, self.clock.now(),
                             await self.store.latest_checkpoint(), self.store.ledger_public_key())

    # ---- time -----------------------------------------------------------------------------------

    async def tick(self) -> int:
        """Run the engine's clock work for every open campaign; returns how many events were recorded. A step
        another instance already recorded (a reminder round, an escalation: their event keys), or one an answer
        made stale, is refused by the store: caught up, the engine finds what is still due."""
        async with self._tick_lock:
            now = self.clock.now()
            recorded = 0
            for state in self.campaigns():
                for _ in range(ATTEMPTS):
                    if not state.open_items() or state.signed_off_by is not None:  # closed: nobody is chased
                        break
                    policy = change_policy(self.policy) if is_change_campaign(state.campaign) else self.policy
                    result = tick(state, self.routing, policy, now)
                    if not result.events:
                        break
                    if await self._record(result.events, result.notices) is not None:
                        recorded += len(result.events)
                        break
            return recorded

    # ---- people ---------------------------------------------------------------------------------

    def display_name(self, object_id: str) -> str:
        return self.snapshot.display_name(object_id)

    def is_security_lead(self, object_id: str) -> bool:
        return object_id in self.routing.security_leads

    def resolve_person(self, name_or_id: str) -> str | None:
        return self.snapshot.resolve_principal(name_or_id.strip())

    # ---- internals ------------------------------------------------------------------------------

    def _install(self, state: CampaignState) -> None:
        self._campaigns[state.campaign.id] = state
        for item_id in state.items:
            self._item_campaign[item_id] = state.campaign.id

    async def _record(
        self, events: Sequence[LedgerEvent], notices: Sequence[Notice] = ()
    ) -> Sequence[LedgerRecord] | None:
        """Durable first, then visible: the state changes only after the ledger has the event. Conditional: the
        append carries the versions this instance decided on, and the store refuses it when another instance
        recorded something it depends on since (or the same scheduled step): then nothing was recorded, this
        instance has caught up, and None tells the caller to decide again.

        The notices the events cause travel inside the last event's ledger record, so a crash between
        the ledger and the outbox loses none of them: start-up queues every recorded notice again, and
        the outbox refuses those it already has or has sent.
        """
        if notices:
            last = events[-1]
            events = [*events[:-1], LedgerEvent(last.type, {**last.data, NOTICES: [notice_to_data(n) for n in notices]})]
        appended = await self.store.append_if_current(events, expectations(events, self._versions), self.clock.now())
        if appended.refused:
            log.info("not recorded, %s stands in the way: catching up and deciding again",
                     ", ".join(f"record {r.seq} ({r.type})" for r in appended.standing) or "a newer record")
            await self.catch_up()
            return None
        records = appended.records
        for record in records:
            self._fold(record)
        # From here on the events are recorded: a store that stops writing now must not make the caller
        # report them as lost. The notices are inside the ledger record, and start-up queues them again.
        try:
            await self.queue(notices)
        except StoreUnavailable as unavailable:
            log.error("recorded, but the messages it causes wait for the next start: %s", unavailable)
        for record in records:
            if record.type == "decision" and record.data["action"] == Action.REVOKE.value:
                try:
                    await self._remediate(record.data["item_id"])
                except StoreUnavailable as unavailable:
                    log.error("revoke of item %s recorded, but its remediation was not: %s", record.data["item_id"], unavailable)
        return records

    # ---- following the ledger -------------------------------------------------------------------

    async def catch_up(self) -> int:
        """Fold what other instances recorded since this one last looked, a page at a time, off the event loop;
        returns how many records that was. Before deciding again after a refusal, before each scheduler round,
        and on a short poll: so a card drawn here shows an answer given on another instance. On a CSP partner's
        deployment one ``follower`` reads for every customer's service and hands each its own records
        (bot/ledger_follower.py), so a thousand services do not read each page a thousand times."""
        if self.follower is not None:
            return await self.follower.catch_up()
        folded = 0
        async with self._follow_lock:
            while True:
                page = await self.store.ledger_records_after(self._followed, FOLLOW_PAGE)
                folded += await self.take(page)
                if len(page) < FOLLOW_PAGE:
                    return folded

    async def take(self, records: Sequence[LedgerRecord]) -> int:
        """Fold these durable records (in ledger order), adopting the campaigns they open; how many were new."""
        folded = 0
        for record in records:
            if record.type == "campaign_opened" and not self._folded(record.seq):
                await self._adopt(record)
            folded += self._fold(record)
        return folded

    @property
    def followed(self) -> int:
        """The seq up to which this service has folded (or been shown it need not fold) every record."""
        return self._followed

    def passed(self, seq: int) -> None:
        """Every record up to ``seq`` that concerns this service was handed to it (``take``): the others, other
        tenants' records, are passed over without folding (bot/ledger_follower.py)."""
        if seq <= self._followed:
            return
        self._followed = seq
        self._ahead = {ahead for ahead in self._ahead if ahead > seq}
        while self._followed + 1 in self._ahead:
            self._ahead.remove(self._followed + 1)
            self._followed += 1

    async def _adopt(self, opening: LedgerRecord) -> None:
        """Another instance opened a campaign: hold it here too, as its items were opened."""
        cid = campaign_of(opening)
        if cid is None or cid in self._campaigns:
            return
        campaign = await self.store.get_campaign(cid)
        if campaign is not None and self._holds(campaign):
            self._install(CampaignState(campaign, {item.id: item for item in await self.store.campaign_items(cid)}))

    def _holds(self, campaign: Campaign) -> bool:
        """Whether the campaign is this service's tenant's. A CSP partner's store also holds every customer's
        campaigns, each held by that customer's own service (bot/partner_campaigns.py): the partner's tenant,
        or another customer, must not take them up, remind their reviewers or show them as its own."""
        return campaign.tenant_id.lower() == self.policy.tenant_id.lower()

    def _folded(self, seq: int) -> bool:
        return seq <= self._followed or seq in self._ahead

    def _fold(self, record: LedgerRecord) -> bool:
        """Apply one durable record to the live state, once, whichever instance recorded it (False: it was
        folded already). The same fold as start-up's, plus what the channel and the worker watch."""
        if self._folded(record.seq):
            return False
        if record.seq == self._followed + 1:
            self._followed = record.seq
            while self._followed + 1 in self._ahead:
                self._ahead.remove(self._followed + 1)
                self._followed += 1
        else:
            self._ahead.add(record.seq)
        self._note_versions(record)
        self.changes += 1
        state = self._campaigns.get(campaign_of(record) or "")
        if state is None:
            return True
        apply_event(state, record.type, record.data)
        if record.type == "decision":
            self.decided_since.add(record.data["item_id"])
            if not record.data.get("system"):
                self.engaged(record.data["actor_id"], datetime.fromisoformat(record.data["at"]))
        if record.type == SIGNED_OFF:  # every card of the campaign still offering buttons is redrawn locked
            self.decided_since.update(state.items)
        if record.type.startswith("remediation_"):
            self._remediation_wanted.set()  # the worker looks whether a job became ready
        return True

    def _note_versions(self, record: LedgerRecord) -> None:
        for key in moved_keys(record.type, record.data):
            if record.seq > self._versions.get(key, 0):
                self._versions[key] = record.seq

    # ---- remediation ----------------------------------------------------------------------------

    async def _remediate(self, item_id: str) -> None:
        """A revoke becomes a remediation proposal (unless remediation is off). Only the proposal is recorded
        here, inside the click and its item lock; the Graph calls are the worker's (``run_remediations``)."""
        if self.policy.remediation is RemediationMode.OFF:
            return
        for _ in range(ATTEMPTS):  # refused: the item moved on another instance; look again after catching up
            item, campaign = self.item(item_id)
            if item_id in self._campaigns[campaign.id].remediations or item.decision is None \
                    or item.decision.action is not Action.REVOKE:
                return
            subjects = [other.subject for other in self._campaigns[campaign.id].items.values()]
            plan = plan_remediation(item.subject, self.snapshot, subjects, self._removed_global_admins())
            event, notice = propose(item, plan, self.policy.remediation, self.policy.dual_custody_global_admin, self.clock.now())
            if await self._record((event,), (notice,)) is not None:
                self._remediation_wanted.set()
                return
        raise KeptMoving(f"item {item_id} kept changing on other instances; its remediation was not proposed")

    def remediations(self) -> list[Remediation]:
        return [r for state in self.campaigns() for r in state.remediations.values()]

    async def approve_remediation(self, ref: str, approver_id: str, approver_name: str) -> str:
        ref = ref.strip().lower()
        matches = [r for r in self.remediations() if ref and r.item_id.startswith(ref)]
        if len(matches) != 1:
            return f"No single remediation matches “{ref}”: say 'remediations' to see them."
        item_id = matches[0].item_id
        for _ in range(ATTEMPTS):  # refused: the job moved on another instance; approve what it is now
            remediation = self._campaigns[self.item(item_id)[1].id].remediations[item_id]
            holders = self.item(item_id)[0].subject.holder_ids
            event, message = approve(remediation, approver_id, approver_name, holders, self.routing, self.clock.now())
            if event is None:
                return message
            if await self._record((event,)) is not None:
                self._remediation_wanted.set()
                return message
        raise KeptMoving(f"the remediation of item {item_id} kept changing on other instances; it was not approved")

    async def remediation_wanted(self, timeout: float) -> None:
        """Wait until a job becomes ready, or ``timeout`` seconds (the worker's round) have passed.

        Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives in the same step as the
        event (docs/dependency-notes.md#wait_for-swallows-a-cancellation), and the worker would never stop."""
        wanted = asyncio.ensure_future(self._remediation_wanted.wait())
        try:
            await asyncio.wait((wanted,), timeout=timeout)
        finally:
            wanted.cancel()
        self._remediation_wanted.clear()

    async def run_remediations(self) -> int:
        """The worker: run every remediation that is ready (its backoff, if any, over) or was cut short,
        one after the other; returns how many attempts it made. Runs outside any click and item lock."""
        async with self._remediation_lock:
            ran = 0
            for remediation in self.remediations():
                if remediation.runnable(self.clock.now()):
                    await self._attempt(remediation)
                    ran += 1
            return ran

    async def _attempt(self, remediation: Remediation) -> None:
        """One attempt, as ledger records: the attempt (the claim) before any call, then its outcome. Calls
        an earlier attempt already made succeed are not sent again. The attempt record is the claim: refused,
        the job moved elsewhere meanwhile, and this worker leaves it to the next round's view of it."""
        if await self._record((attempt_event(remediation, self.clock.now()),)) is None:
            return
        attempt = remediation.attempts + 1
        earlier = list(remediation.results)
        results: list[dict[str, Any]] = []
        for index, call in enumerate(remediation.plan.calls):
            if index < len(earlier) and succeeded(earlier[index]):
                results.append(dict(earlier[index]))
            elif remediation.mode is RemediationMode.DRY_RUN:
                results.append({"call": call.show(), "description": call.description, "dry_run": True})
            elif self.executor is None:
                results.append({"call": call.show(), "status": 0,
                                "error": "remediation is 'apply' but no Microsoft Graph client is configured"})
            else:
                results.append(settle(await self.executor.execute(call), call.method, resumed=attempt > 1))
        event, notice = outcome_event(remediation, results, attempt, self.clock.now())
        if await self._record((event,), (notice,) if notice is not None else ()) is None:
            log.error("the outcome of remediation attempt %d on item %s was refused as stale: the job was changed "
                      "meanwhile; its next attempt repeats only the calls not known to have succeeded",
                      attempt, remediation.item_id)

    def _removed_global_admins(self) -> set[str]:
        """Principals whose Global Administrator access an applied remediation already removed."""
        removed = set()
        for remediation in self.remediations():
            if remediation.status is Status.DONE and remediation.mode is RemediationMode.APPLY and remediation.plan.global_admin:
                removed.update(self.item(remediation.item_id)[0].subject.holder_ids)
        return removed

    async def queue(self, notices: Sequence[Notice]) -> None:
        """Store messages in the outbox (one per recipient; the security leads each get their own)."""
        now = self.clock.now()
        messages = []
        for notice in notices:
            recipients = self.routing.security_leads if notice.to == SECURITY_LEADS else (notice.to,)
            for recipient in recipients:
                messages.append(
                    OutboxMessage(
                        key=f"{notice.key}>{recipient}",
                        recipient=recipient,
                        kind=notice.kind.value,
                        payload={"text": notice.text, "item_ids": list(notice.item_ids)},
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
        if messages:
            await self.store.enqueue(messages)

