"""Outbox claims with a lease, one sending budget shared by every instance, and what channels learned.

- ``outbox.claimed_by`` / ``claimed_until``: the worker holding a pending message and until when
  (``claim_due`` takes them with ``FOR UPDATE SKIP LOCKED``); an index by recipient and queue order finds
  each person's oldest pending message, the only one of theirs that may be claimed.
- ``send_budget``: one GCRA cell per (limit, window, key) with its theoretical arrival time in epoch seconds
  (``bot/store/postgres_budget.py``).
- ``channel_settings``: e.g. ``teams.service_url``, so every instance can open conversations.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        ALTER TABLE outbox ADD COLUMN claimed_by text, ADD COLUMN claimed_until timestamptz;
        CREATE INDEX outbox_recipient_queue ON outbox (recipient, created_at, id) WHERE state = 'pending';
        DROP INDEX outbox_recipient;
        CREATE TABLE send_budget (
            cell        text PRIMARY KEY,
            tat         double precision NOT NULL
        );
        CREATE TABLE channel_settings (
            name        text PRIMARY KEY,
            value       text NOT NULL
        );
    """)


def downgrade() -> None:
    op.execute("""
        DROP TABLE channel_settings, send_budget;
        CREATE INDEX outbox_recipient ON outbox (recipient) WHERE state = 'pending';
        DROP INDEX outbox_recipient_queue;
        ALTER TABLE outbox DROP COLUMN claimed_until, DROP COLUMN claimed_by;
    """)
