"""``accessbot db migrate-from-tinydb``: move a deployment's data directory into an empty PostgreSQL database
without losing or reordering a ledger record.

The ledger is copied as it stands — every record with its own seq, prev and hash, every signed checkpoint and
key rotation in its order — never chained again, so the signatures made on the old machine still verify and
``accessbot ledger verify`` on the database proves the move. Everything goes in one transaction: a move that
fails half-way leaves the database empty, ready to try again. A ledger that does not verify on its own, or
ends in records no checkpoint signs, is refused: start the bot on it once (it sets such records aside) or
run ``accessbot ledger verify`` and look first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import psycopg

from bot.ledger import EMPTY_HEAD, LedgerHead, LedgerRecord, canonical_json, record_to_line, verify
from bot.ledger_signing import Checkpoint, SignedEntry, entry_to_line
from bot.operator_errors import ExitCode, OperatorError
from bot.store.base import campaign_of
from bot.store.codec import campaign_to_dict, item_to_dict, outbox_to_dict
from bot.store.concurrency import Versions
from bot.store.installations import LocalInstallationRecords
from bot.store.postgres_schema import behind_message, schema_revision
from bot.store.postgres_store import LEDGER, card_row
from bot.store.tinydb_store import TinyDBStore

_TABLES = ("campaigns", "campaign_items", "conversations", "cards", "outbox", "ledger_records", "ledger_entries",
           "ledger_heads", "ledger_versions", "channel_settings", "slack_installations")
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Moved:
    campaigns: int
    items: int
    records: int
    signed_entries: int
    conversations: int
    cards: int
    pending: int
    left_queue: int
    slack_installations: int = 0  # Slack workspaces installed by OAuth, moved still sealed (same key)


async def migrate_from_tinydb(data_dir: Path, url: str) -> Moved:
    """Copy ``data_dir`` into the database at ``url`` (at the latest schema, and empty). Takes the data
    directory's writer lock, so the bot must be stopped; raises OperatorError with what to do otherwise."""
    if not (data_dir / "ledger.jsonl").exists() and not (data_dir / "campaigns.json").exists():
        raise OperatorError(f"{data_dir} holds no accessbot data (no ledger.jsonl, no campaigns.json)", ExitCode.USAGE)
    source = TinyDBStore(data_dir)  # the writer lock: nothing may be appended while it is copied
    try:
        records = await source.ledger_records()
        entries = await source.ledger_checkpoints()
        anchor = await source.ledger_anchor()
        _refuse_unprovable(records, entries, anchor, source.set_aside())
        campaigns = await source.list_campaigns()
        items = {campaign.id: await source.campaign_items(campaign.id) for campaign in campaigns}
        references = source.conversation_references()
        settings = source.channel_settings()
        cards = source.every_card()
        pending = await source.due_messages(_FAR_FUTURE, 2**31)
        left = source.left_queue()
        installed = LocalInstallationRecords(data_dir).every()
    finally:
        await source.close()

    async with await psycopg.AsyncConnection.connect(url) as conn:
        problem = behind_message(await schema_revision(conn))
        if problem is not None:
            raise OperatorError(problem, ExitCode.UNAVAILABLE)
        async with conn.transaction():
            for table in _TABLES:
                await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")  # nobody writes while it is checked empty
                row = await (await conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")).fetchone()
                if row and row[0]:
                    raise OperatorError(f"the database is not empty (table {table} has rows): migrate-from-tinydb only "
                                        "fills a new database", ExitCode.USAGE)
            cursor = conn.cursor()
            for campaign in reversed(campaigns):
                await cursor.execute("INSERT INTO campaigns (id, opened_at, doc) VALUES (%s, %s, %s)",
                                     (campaign.id, campaign.opened_at, _text(campaign_to_dict(campaign))))
                await cursor.executemany("INSERT INTO campaign_items (campaign_id, position, doc) VALUES (%s, %s, %s)",
                                         [(campaign.id, n, _text(item_to_dict(item)))
                                          for n, item in enumerate(items[campaign.id])])
            await cursor.executemany("INSERT INTO conversations (key, reference) VALUES (%s, %s)",
                                     [(key, _text(reference)) for key, reference in references.items()])
            await cursor.executemany("INSERT INTO channel_settings (name, value) VALUES (%s, %s)", list(settings.items()))
            await cursor.executemany(
                "INSERT INTO slack_installations (team_id, enterprise_id, sealed, installed_at) VALUES (%s, %s, %s, %s)",
                [(i.team_id, i.enterprise_id, i.sealed, i.installed_at) for i in installed])
            await cursor.executemany("INSERT INTO cards (item_id, activity_id, reference) VALUES (%s, %s, %s)",
                                     [(item_id, *card_row(card)) for item_id, sent in cards.items() for card in sent])
            await cursor.executemany(
                "INSERT INTO outbox (key, recipient, created_at, next_attempt_at, doc) VALUES (%s, %s, %s, %s, %s)",
                [(m.key, m.recipient, m.created_at, m.next_attempt_at, _text(outbox_to_dict(m))) for m in pending])
            await cursor.executemany(  # a key that left the queue keeps refusing its twin, until its horizon
                "INSERT INTO outbox (key, recipient, created_at, next_attempt_at, state, left_at, doc) "
                "VALUES (%s, '', %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                [(entry[0], at, at, "undeliverable" if len(entry) > 2 else "sent", at, _text({"key": entry[0]}))
                 for entry in left for at in [datetime.fromisoformat(entry[1])]])
            versions = Versions()
            for record in records:
                versions.fold_record(record)
            holds = {seq: key for key, seq in versions.event_keys.items()}  # the first record of an event key keeps it
            await cursor.executemany(
                "INSERT INTO ledger_records (ledger, seq, line, campaign_id, event_key) VALUES (%s, %s, %s, %s, %s)",
                [(LEDGER, r.seq, record_to_line(r).decode().rstrip("\n"), campaign_of(r), holds.get(r.seq))
                 for r in records])
            await cursor.executemany("INSERT INTO ledger_versions (ledger, key, seq) VALUES (%s, %s, %s)",
                                     [(LEDGER, key, seq) for key, seq in versions.seqs.items()])
            await cursor.executemany("INSERT INTO ledger_entries (ledger, n, line) VALUES (%s, %s, %s)",
                                     [(LEDGER, n, entry_to_line(e).decode().rstrip("\n")) for n, e in enumerate(entries, 1)])
            if records:
                head = records[-1].head
                await cursor.execute("INSERT INTO ledger_heads (ledger, seq, hash) VALUES (%s, %s, %s)",
                                     (LEDGER, head.seq, head.hash))
    return Moved(len(campaigns), sum(len(each) for each in items.values()), len(records), len(entries),
                 len(references), sum(len(sent) for sent in cards.values()), len(pending), len(left), len(installed))


def _refuse_unprovable(
    records: Sequence[LedgerRecord], entries: Sequence[SignedEntry], anchor: LedgerHead | None, set_aside: list[str]
) -> None:
    """Only a ledger that would verify here is moved: its chain and anchor hold, and its last checkpoint (when
    signed) signs its last record, which is what the PostgreSQL store requires before it appends."""
    checked = verify(records, anchor)
    if not checked.ok:
        raise OperatorError(f"the ledger does not verify (record {checked.first_bad_seq}: {checked.problem}): run "
                            "`accessbot ledger verify` and look before moving it", ExitCode.FAILED)
    if set_aside:
        raise OperatorError(f"the data directory holds records set aside as unsigned ({', '.join(set_aside)}): "
                            "look at them and move them out of the data directory first", ExitCode.FAILED)
    checkpoints = [entry for entry in entries if isinstance(entry, Checkpoint)]
    head = records[-1].head if records else EMPTY_HEAD
    if checkpoints and checkpoints[-1].head != head:
        raise OperatorError(f"the ledger's last checkpoint signs record {checkpoints[-1].seq}, but it ends at record "
                            f"{head.seq}: start `accessbot serve` on it once (it sets unsigned records aside) or run "
                            "`accessbot ledger verify`", ExitCode.FAILED)


def _text(document: object) -> str:
    return canonical_json(document).decode()


