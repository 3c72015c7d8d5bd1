"""Conditional appends: each ledger version key's last seq, and each record's event key, unique per ledger.

Several instances share the database; whether an answer (or a reminder, an escalation, a sign-off) may be
recorded is decided inside the ledger's append transaction against these, never from a process's memory
(``bot/store/concurrency.py``). Existing rows are filled here by parsing each line in Python, as in 0002; when
an old ledger holds an event key twice, the first record keeps it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from bot.store.concurrency import Versions

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE ledger_records ADD COLUMN event_key text;
        CREATE TABLE ledger_versions (
            ledger      text NOT NULL,
            key         text NOT NULL,
            seq         bigint NOT NULL,
            PRIMARY KEY (ledger, key)
        );
    """)
    bind = op.get_bind()
    ledgers: dict[str, Versions] = {}
    for ledger, seq, line in bind.execute(sa.text("SELECT ledger, seq, line FROM ledger_records ORDER BY ledger, seq")):
        record = json.loads(line)
        data = record.get("data")
        ledgers.setdefault(ledger, Versions()).fold(seq, str(record.get("type")), data if isinstance(data, dict) else {})
    for ledger, versions in ledgers.items():
        if versions.event_keys:
            bind.execute(sa.text("UPDATE ledger_records SET event_key = :key WHERE ledger = :ledger AND seq = :seq"),
                         [{"ledger": ledger, "seq": seq, "key": key} for key, seq in versions.event_keys.items()])
        if versions.seqs:
            bind.execute(sa.text("INSERT INTO ledger_versions (ledger, key, seq) VALUES (:ledger, :key, :seq)"),
                         [{"ledger": ledger, "key": key, "seq": seq} for key, seq in versions.seqs.items()])
    op.execute("CREATE UNIQUE INDEX ledger_records_event_key ON ledger_records (ledger, event_key) "
               "WHERE event_key IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX ledger_records_event_key; ALTER TABLE ledger_records DROP COLUMN event_key; "
               "DROP TABLE ledger_versions")
