"""Collection runs: what each run is for, so a campaign never opens from the wrong kind of data, and old runs can
be pruned by review period.

A run is ``full`` (every customer collected afresh: the data a review period's campaigns open from) or
``changes`` (a change check between full collections: delta queries from the last complete snapshot, which
must never open a campaign). ``period`` is the review period the run belongs to (the partner policy's
schedule), by which the leader keeps the runs of the last N periods; ``opened_at`` is when the leader opened
the customers' campaigns of a settled full run, so it does not open them again every round.

Runs recorded before this revision are read back from their jobs: the kind from the jobs' ``mode``, the
period from the run's first job.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE collection_runs (
            run_id     text PRIMARY KEY,
            kind       text NOT NULL CHECK (kind IN ('full', 'changes')),
            period     text NOT NULL,
            created_at timestamptz NOT NULL,
            opened_at  timestamptz
        );
        CREATE INDEX collection_runs_period ON collection_runs (period);
        INSERT INTO collection_runs (run_id, kind, period, created_at)
        SELECT run_id,
               CASE WHEN bool_or(payload::jsonb ->> 'mode' = 'changes') THEN 'changes' ELSE 'full' END,
               to_char(min(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI'),
               min(created_at)
        FROM collection_jobs GROUP BY run_id;
    """)


def downgrade() -> None:
    op.execute("DROP TABLE collection_runs")
