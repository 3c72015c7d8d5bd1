"""Alembic's entry point for accessbot's PostgreSQL schema: run by ``accessbot db upgrade`` (bot/store/postgres_schema.py),
which passes the database URL in the config; the revisions are plain SQL, so no model metadata is needed."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

url = context.config.get_main_option("sqlalchemy.url")
assert url, "bot/store/postgres_schema.py sets sqlalchemy.url"
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
