"""The evidence pack an auditor asks for: a campaign's attestations, its numbers per check, the ledger head,
the latest signed checkpoint and the public key that signed it.

Everything in it comes from the ledger and the campaign's opened items, so it can be rebuilt at any time
and checked against `accessbot ledger verify --public-key ledger-public-key.pem --witness
ledger-checkpoint.json` (docs/ledger.md).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import defaultdict
from datetime import datetime
from typing import Any, Sequence

from bot.engine.model import Action, ItemState
from bot.engine.state import CampaignState
from bot.engine.status import summarize
from bot.ledger import LedgerHead, LedgerRecord, export_csv, export_json
from bot.ledger_signing import Checkpoint, fingerprint, load_public_key


def campaign_records(records: Sequence[LedgerRecord], campaign_id: str) -> list[LedgerRecord]:
    return [record for record in records if record.data.get("campaign_id") == campaign_id]


def summary(
    state: CampaignState, head: LedgerHead, now: datetime, checkpoint: Checkpoint | None = None,
    public_key: bytes | None = None,
) -> dict[str, Any]:
    """Counts for the campaign, and per check id (with its ScubaGear id) for the items it flagged."""
    numbers = summarize(state, now)
    by_check: dict[str, dict[str, Any]] = defaultdict(lambda: {"items": 0, "kept": 0, "revoked": 0, "open": 0})
    for item in state.items.values():
        for finding in item.subject.findings:
            row = by_check[finding.check_id]
            row.update(title=finding.title, severity=finding.severity, scuba=finding.scuba)
            row["items"] += 1
            if item.state is ItemState.OPEN:
                row["open"] += 1
            elif item.decision is not None:
                row["kept" if item.decision.action is Action.KEEP else "revoked"] += 1
    campaign = state.campaign
    return {
        "campaign_id": campaign.id,
        "tenant": {"id": campaign.tenant_id, "name": campaign.tenant_name},
        "period": campaign.period,
        "opened_at": campaign.opened_at.isoformat(),
        "due": campaign.due.isoformat(),
        "snapshot_complete": campaign.snapshot_complete,
        "snapshot_missing": list(campaign.snapshot_missing),
        "items": {
            "total": numbers.total, "kept": numbers.kept, "revoked": numbers.revoked, "open": numbers.open,
            "overdue": numbers.overdue, "excepted": numbers.excepted, "expired_by_policy": numbers.expired,
        },
        "by_check": dict(sorted(by_check.items())),
        "signed_off": None if state.signed_off_by is None else {
            "by": state.signed_off_by, "at": state.signed_off_at.isoformat() if state.signed_off_at else None,
        },
        "ledger_head": {"seq": head.seq, "hash": head.hash},
        "ledger_checkpoint": None if checkpoint is None else checkpoint.to_dict(),
        "ledger_key_fingerprint": None if public_key is None else fingerprint(load_public_key(public_key)),
        "generated_at": now.isoformat(),
    }


def evidence_pack(
    state: CampaignState, records: Sequence[LedgerRecord], head: LedgerHead, now: datetime,
    checkpoint: Checkpoint | None = None, public_key: bytes | None = None,
) -> bytes:
    """A zip: attestations.csv, attestations.json, summary.json and — when the ledger is signed —
    ledger-checkpoint.json (a witness in itself) and ledger-public-key.pem."""
    mine = campaign_records(records, state.campaign.id)
    as_csv, as_json = io.StringIO(), io.StringIO()
    export_csv(mine, as_csv)
    export_json(mine, as_json)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as pack:
        pack.writestr("attestations.csv", as_csv.getvalue())
        pack.writestr("attestations.json", as_json.getvalue())
        pack.writestr("summary.json", json.dumps(summary(state, head, now, checkpoint, public_key), indent=2,
                                                 ensure_ascii=False))
        if checkpoint is not None:
            pack.writestr("ledger-checkpoint.json", json.dumps(checkpoint.to_dict(), indent=2) + "\n")
        if public_key is not None:
            pack.writestr("ledger-public-key.pem", public_key)
    return buffer.getvalue()
