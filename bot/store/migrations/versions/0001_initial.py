"""The first schema: campaigns and their items, conversation references, cards, the outbox with its sent keys,
and the ledger (records, signed checkpoints and key rotations, and the acknowledged head).

Documents are kept as the same canonical JSON text the embedded store writes (not jsonb, which would reorder
keys and refuse text TinyDB accepts), so both backends give back exactly what was stored; the columns beside
them are only what the queries filter and sort on.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE campaigns (
            id          text PRIMARY KEY,
            opened_at   timestamptz NOT NULL,
            doc         text NOT NULL
        );
        CREATE TABLE campaign_items (
            campaign_id text NOT NULL REFERENCES campaigns (id),
            position    integer NOT NULL,
            doc         text NOT NULL,
            PRIMARY KEY (campaign_id, position)
        );
        CREATE TABLE conversations (
            key         text PRIMARY KEY,
            reference   text NOT NULL
        );
        CREATE TABLE cards (
            id          bigserial PRIMARY KEY,
            item_id     text NOT NULL,
            activity_id text NOT NULL,
            reference   text NOT NULL,
            UNIQUE (item_id, activity_id)
        );
        CREATE TABLE outbox (
            id              bigserial PRIMARY KEY,
            key             text NOT NULL UNIQUE,
            recipient       text NOT NULL,
            created_at      timestamptz NOT NULL,
            next_attempt_at timestamptz NOT NULL,
            state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'undeliverable')),
            left_at         timestamptz,
            doc             text NOT NULL
        );
        CREATE INDEX outbox_due ON outbox (next_attempt_at, created_at, id) WHERE state = 'pending';
        CREATE INDEX outbox_left ON outbox (left_at) WHERE state <> 'pending';
        CREATE INDEX outbox_recipient ON outbox (recipient) WHERE state = 'pending';
        CREATE TABLE ledger_records (
            ledger      text NOT NULL,
            seq         bigint NOT NULL CHECK (seq > 0),
            line        text NOT NULL,
            PRIMARY KEY (ledger, seq)
        );
        CREATE TABLE ledger_entries (
            ledger      text NOT NULL,
            n           bigint NOT NULL CHECK (n > 0),
            line        text NOT NULL,
            PRIMARY KEY (ledger, n)
        );
        CREATE TABLE ledger_heads (
            ledger      text PRIMARY KEY,
            seq         bigint NOT NULL,
            hash        text NOT NULL
        );
    """)


def downgrade() -> None:
    op.execute("""
        DROP TABLE ledger_heads, ledger_entries, ledger_records, outbox, cards, conversations, campaign_items, campaigns;
    """)
