"""Collection as jobs: one row per customer tenant per collection run, claimed by any instance with
``FOR UPDATE SKIP LOCKED`` and a lease, and each tenant's snapshots (the last one and the last complete one).

A job is ``pending`` (due at ``next_attempt_at``), ``running`` (held by ``worker`` until ``lease_until``; a
lease that ran out is claimable again, which is how a killed instance's job is resumed), ``done`` or
``failed`` (retries exhausted: the tenant's last complete snapshot stays in force and says so). Snapshots are
the snapshot file's JSON text, as ``DATA_DIR/snapshots/`` holds it for one instance (bot/collection.py).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE collection_jobs (
            run_id          text NOT NULL,
            tenant_id       text NOT NULL,
            tenant_name     text NOT NULL,
            payload         text NOT NULL,
            state           text NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'running', 'done', 'failed')),
            attempts        integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL,
            worker          text,
            lease_until     timestamptz,
            last_error      text NOT NULL DEFAULT '',
            created_at      timestamptz NOT NULL,
            finished_at     timestamptz,
            PRIMARY KEY (run_id, tenant_id)
        );
        CREATE INDEX collection_jobs_due ON collection_jobs (next_attempt_at) WHERE state = 'pending';
        CREATE INDEX collection_jobs_leased ON collection_jobs (lease_until) WHERE state = 'running';
        CREATE TABLE tenant_snapshots (
            tenant_id             text PRIMARY KEY,
            last_doc              text NOT NULL,
            last_collected_at     timestamptz NOT NULL,
            complete_doc          text,
            complete_collected_at timestamptz
        );
    """)


def downgrade() -> None:
    op.execute("DROP TABLE tenant_snapshots, collection_jobs")
