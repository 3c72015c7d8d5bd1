"""Slack workspaces installed through OAuth, and the OAuth states of installs under way
(bot/channels/slack_installations.py, bot/store/installations.py).

- ``slack_installations``: one row per workspace; ``sealed`` is the whole installation (bot token included)
  encrypted with ``ACCESSBOT_SLACK_TOKEN_KEY``, so the table never holds a token in clear.
- ``slack_oauth_states``: the SHA-256 of each state issued at /slack/install, deleted when consumed (once).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE slack_installations (
            team_id       text PRIMARY KEY,
            enterprise_id text,
            sealed        text NOT NULL,
            installed_at  timestamptz NOT NULL
        );
        CREATE TABLE slack_oauth_states (
            state_hash    text PRIMARY KEY,
            expires_at    timestamptz NOT NULL
        );
    """)


def downgrade() -> None:
    op.execute("DROP TABLE slack_oauth_states, slack_installations")
