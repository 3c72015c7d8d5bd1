"""Domain values to JSON-able dicts and back, exactly: what is stored is what comes back.

Written field by field rather than by reflection so the stored format is visible here and a renamed
model field fails a round-trip test instead of silently dropping data. Fields that have a default in
the model are read with that default, so files written before a field existed still load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any, Mapping

from bot.engine.model import (
    Action,
    AssignmentType,
    Campaign,
    Decision,
    Finding,
    ItemState,
    PolicyExceptionGrant,
    ReviewItem,
    Stage,
    Subject,
    SubjectKind,
)
from bot.store.base import OutboxMessage, PostedCard

JsonDict = dict[str, Any]


def campaign_to_dict(campaign: Campaign) -> JsonDict:
    return {
        "id": campaign.id,
        "tenant_id": campaign.tenant_id,
        "tenant_name": campaign.tenant_name,
        "period": campaign.period,
        "opened_at": campaign.opened_at.isoformat(),
        "due": campaign.due.isoformat(),
        "item_count": campaign.item_count,
        "snapshot_complete": campaign.snapshot_complete,
        "snapshot_missing": list(campaign.snapshot_missing),
        "items_digest": campaign.items_digest,
    }


def campaign_from_dict(raw: Mapping[str, Any]) -> Campaign:
    return Campaign(
        id=raw["id"],
        tenant_id=raw["tenant_id"],
        tenant_name=raw["tenant_name"],
        period=raw["period"],
        opened_at=datetime.fromisoformat(raw["opened_at"]),
        due=datetime.fromisoformat(raw["due"]),
        item_count=raw["item_count"],
        snapshot_complete=raw.get("snapshot_complete", True),
        snapshot_missing=tuple(raw.get("snapshot_missing", ())),
        items_digest=raw.get("items_digest", ""),
    )


def item_to_dict(item: ReviewItem) -> JsonDict:
    return {
        "id": item.id,
        "campaign_id": item.campaign_id,
        "subject": subject_to_dict(item.subject),
        "reviewers": list(item.reviewers),
        "due": item.due.isoformat(),
        "opened_at": item.opened_at.isoformat(),
        "state": item.state.value,
        "stage": item.stage.value,
        "decision": None if item.decision is None else decision_to_dict(item.decision),
        "exception": None if item.exception is None else exception_to_dict(item.exception),
        "overdue": item.overdue,
        "history": [decision_to_dict(d) for d in item.history],
    }


def item_from_dict(raw: Mapping[str, Any]) -> ReviewItem:
    decision = raw.get("decision")
    exception = raw.get("exception")
    return ReviewItem(
        id=raw["id"],
        campaign_id=raw["campaign_id"],
        subject=subject_from_dict(raw["subject"]),
        reviewers=tuple(raw["reviewers"]),
        due=datetime.fromisoformat(raw["due"]),
        opened_at=datetime.fromisoformat(raw["opened_at"]),
        state=ItemState(raw.get("state", ItemState.OPEN.value)),
        stage=Stage(raw.get("stage", Stage.OWNER.value)),
        decision=None if decision is None else decision_from_dict(decision),
        exception=None if exception is None else exception_from_dict(exception),
        overdue=raw.get("overdue", False),
        history=tuple(decision_from_dict(d) for d in raw.get("history", ())),
    )


ITEMS_TABLE = "items"
_CHUNK_BYTES = 1 << 20


def items_file_chunks(items: Iterable[ReviewItem]) -> Iterator[bytes]:
    """The items file of a campaign, byte for byte what TinyDB writes for one ``items`` table with
    document ids 1, 2, 3… (so TinyDB reads it back), but encoded one item at a time in ~1 MB chunks:
    100,000 items never exist as one dict, one document string and one byte string at once."""
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    buffer = [f'{{"{ITEMS_TABLE}":{{']
    size = 0
    for doc_id, item in enumerate(items, start=1):
        piece = f'{"," if doc_id > 1 else ""}"{doc_id}":{encode(item_to_dict(item))}'
        buffer.append(piece)
        size += len(piece)
        if size >= _CHUNK_BYTES:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    buffer.append("}}")
    yield "".join(buffer).encode()


def read_items_file(path: Path) -> list[ReviewItem]:
    """The items of the items file at ``path``, decoded from ~1 MB reads one item at a time: the file's text,
    its parsed tree and the items never exist side by side, so a restart with 100,000 items holds them once."""
    def chunks() -> Iterator[str]:
        with path.open(encoding="utf-8") as file:
            while chunk := file.read(_CHUNK_BYTES):
                yield chunk
    return list(iter_items_file(chunks()))


class _JsonStream:
    """Just enough of an incremental JSON reader for the items file: punctuation and whole values, read
    from chunks of text and asking for the next chunk only when a value runs past what was read."""

    _decode = json.JSONDecoder().raw_decode

    def __init__(self, chunks: Iterable[str]) -> None:
        self._chunks = iter(chunks)
        self._text = ""
        self._pos = 0

    def _more(self) -> bool:
        chunk = next(self._chunks, None)
        if chunk is None:
            return False
        self._text, self._pos = self._text[self._pos:] + chunk, 0
        return True

    def _next_char(self) -> str:
        """The next character that is not white space ('' at the end), left unread."""
        while True:
            while self._pos < len(self._text) and self._text[self._pos].isspace():
                self._pos += 1
            if self._pos < len(self._text) or not self._more():
                return self._text[self._pos:self._pos + 1]

    def at_end(self) -> bool:
        return not self._next_char()

    def skip(self, mark: str) -> bool:
        """Read ``mark`` if it comes next; False (nothing read) if something else does."""
        if self._next_char() != mark:
            return False
        self._pos += 1
        return True

    def expect(self, mark: str) -> None:
        if not self.skip(mark):
            raise ValueError(f"the items file is damaged: {mark!r} expected at {self._next_char()!r}")

    def value(self) -> Any:
        """The next string or object (what an items file holds besides punctuation)."""
        self._next_char()
        while True:
            try:
                value, self._pos = self._decode(self._text, self._pos)
                return value
            except json.JSONDecodeError:
                if not self._more():
                    raise


def iter_items_file(chunks: Iterable[str]) -> Iterator[ReviewItem]:
    """The items of an items file (streamed by ``items_file_chunks`` or written by TinyDB, with or without
    spaces) in file order, one document at a time: ``{"items": {"1": {...}, "2": {...}}}``."""
    stream = _JsonStream(chunks)
    if not stream.skip("{"):
        if not stream.at_end():
            raise ValueError("the items file is damaged: it does not start with '{'")
        return  # TinyDB reads an empty file as an empty database
    if stream.skip("}"):
        return
    if stream.value() != ITEMS_TABLE:
        raise ValueError(f"the items file holds one table, {ITEMS_TABLE!r}")
    stream.expect(":")
    stream.expect("{")
    while not stream.skip("}"):
        stream.skip(",")
        stream.value()  # the document id: the file's order is the items' order
        stream.expect(":")
        yield item_from_dict(stream.value())


def subject_to_dict(subject: Subject) -> JsonDict:
    return {
        "key": subject.key,
        "kind": subject.kind.value,
        "title": subject.title,
        "holder_name": subject.holder_name,
        "holder_ids": list(subject.holder_ids),
        "role_id": subject.role_id,
        "role_name": subject.role_name,
        "partner_id": subject.partner_id,
        "partner_name": subject.partner_name,
        "assignment_type": None if subject.assignment_type is None else subject.assignment_type.value,
        "permanent": subject.permanent,
        "break_glass": subject.break_glass,
        "evidence": dict(subject.evidence),
        "findings": [finding_to_dict(f) for f in subject.findings],
    }


def subject_from_dict(raw: Mapping[str, Any]) -> Subject:
    assignment = raw.get("assignment_type")
    return Subject(
        key=raw["key"],
        kind=SubjectKind(raw["kind"]),
        title=raw["title"],
        holder_name=raw["holder_name"],
        holder_ids=tuple(raw.get("holder_ids", ())),
        role_id=raw.get("role_id"),
        role_name=raw.get("role_name"),
        partner_id=raw.get("partner_id"),
        partner_name=raw.get("partner_name"),
        assignment_type=None if assignment is None else AssignmentType(assignment),
        permanent=raw.get("permanent", False),
        break_glass=raw.get("break_glass", False),
        evidence=dict(raw.get("evidence", {})),
        findings=tuple(finding_from_dict(f) for f in raw.get("findings", ())),
    )


def finding_to_dict(finding: Finding) -> JsonDict:
    return {
        "check_id": finding.check_id,
        "title": finding.title,
        "severity": finding.severity,
        "recommendation": finding.recommendation,
        "scuba": finding.scuba,
    }


def finding_from_dict(raw: Mapping[str, Any]) -> Finding:
    return Finding(
        check_id=raw["check_id"],
        title=raw["title"],
        severity=raw["severity"],
        recommendation=raw.get("recommendation", ""),
        scuba=raw.get("scuba"),
    )


def decision_to_dict(decision: Decision) -> JsonDict:
    return {
        "item_id": decision.item_id,
        "action": decision.action.value,
        "actor_id": decision.actor_id,
        "actor_name": decision.actor_name,
        "at": decision.at.isoformat(),
        "justification": decision.justification,
        "reassign_to": decision.reassign_to,
        "on_behalf_of": decision.on_behalf_of,
        "on_behalf_of_name": decision.on_behalf_of_name,
        "system": decision.system,
    }


def decision_from_dict(raw: Mapping[str, Any]) -> Decision:
    return Decision(
        item_id=raw["item_id"],
        action=Action(raw["action"]),
        actor_id=raw["actor_id"],
        actor_name=raw["actor_name"],
        at=datetime.fromisoformat(raw["at"]),
        justification=raw.get("justification", ""),
        reassign_to=raw.get("reassign_to"),
        on_behalf_of=raw.get("on_behalf_of"),
        system=raw.get("system", False),
        on_behalf_of_name=raw.get("on_behalf_of_name") or "",
    )


def exception_to_dict(grant: PolicyExceptionGrant) -> JsonDict:
    return {
        "subject": grant.subject,
        "rationale": grant.rationale,
        "approved_by": grant.approved_by,
        "expires": grant.expires.isoformat(),
    }


def exception_from_dict(raw: Mapping[str, Any]) -> PolicyExceptionGrant:
    return PolicyExceptionGrant(
        subject=raw["subject"],
        rationale=raw["rationale"],
        approved_by=raw["approved_by"],
        expires=date.fromisoformat(raw["expires"]),
    )


def outbox_to_dict(message: OutboxMessage) -> JsonDict:
    return {
        "key": message.key,
        "recipient": message.recipient,
        "kind": message.kind,
        "payload": message.payload,
        "created_at": message.created_at.isoformat(),
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at.isoformat(),
        "sent_at": _optional_time(message.sent_at),
        "last_error": message.last_error,
    }


def outbox_from_dict(raw: Mapping[str, Any]) -> OutboxMessage:
    sent_at = raw.get("sent_at")
    return OutboxMessage(
        key=raw["key"],
        recipient=raw["recipient"],
        kind=raw["kind"],
        payload=raw["payload"],
        created_at=datetime.fromisoformat(raw["created_at"]),
        attempts=raw.get("attempts", 0),
        next_attempt_at=datetime.fromisoformat(raw["next_attempt_at"]),
        sent_at=None if sent_at is None else datetime.fromisoformat(sent_at),
        last_error=raw.get("last_error", ""),
    )


def card_to_dict(card: PostedCard) -> JsonDict:
    return {"channel": card.channel, "message_id": card.message_id, "address": card.address}


def card_from_dict(raw: Mapping[str, Any]) -> PostedCard:
    """A posted card; a record written before cards were channel-tagged (``{"reference", "activity_id"}``,
    or a bare Bot Framework reference beside its activity id) is a Teams card."""
    if "channel" in raw and "address" in raw:
        return PostedCard(str(raw["channel"]), str(raw["message_id"]), dict(raw["address"]))
    return PostedCard("teams", str(raw["activity_id"]), dict(raw["reference"]))


def _optional_time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
