"""The ledger records' campaign id as a column with an index, so one campaign's records are read alone.

An export, an evidence pack or the on-demand load of a past campaign selects by it (``ledger_records_of``)
instead of reading the whole ledger. It is filled by the writer from ``data.campaign_id``; existing rows are
filled here by parsing each line in Python, because casting the stored text to jsonb would refuse text the
ledger holds (see 0001).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ledger_records ADD COLUMN campaign_id text")
    bind = op.get_bind()
    filled = []
    for ledger, seq, line in bind.execute(sa.text("SELECT ledger, seq, line FROM ledger_records")):
        campaign_id = json.loads(line).get("data", {}).get("campaign_id")
        if isinstance(campaign_id, str):
            filled.append({"ledger": ledger, "seq": seq, "campaign_id": campaign_id})
    if filled:
        bind.execute(sa.text("UPDATE ledger_records SET campaign_id = :campaign_id WHERE ledger = :ledger AND seq = :seq"),
                     filled)
    op.execute("CREATE INDEX ledger_records_campaign ON ledger_records (ledger, campaign_id, seq) "
               "WHERE campaign_id IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX ledger_records_campaign; ALTER TABLE ledger_records DROP COLUMN campaign_id")
