"""The PostgreSQL schema's version: applying the Alembic migrations shipped in ``bot/store/migrations``
(``accessbot db upgrade``), and telling a server whether the database it was given is up to date.

Alembic and SQLAlchemy are used here only, to run the migrations; the store itself talks psycopg directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaBehind(RuntimeError):
    """The database is not at the schema this version of accessbot needs."""


def sqlalchemy_url(url: str) -> str:
    """``postgresql://…`` names psycopg 3 for SQLAlchemy too, so one driver serves the store and the migrations."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration: the schema this code needs."""
    head = ScriptDirectory.from_config(_config("postgresql://")).get_current_head()
    assert head is not None
    return head


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration the database lacks up to ``revision`` (idempotent: an up-to-date database is left
    alone); the tests of a migration stop at the one before it."""
    command.upgrade(_config(url), revision)


def behind_message(current: str | None) -> str | None:
    """Why a database at revision ``current`` cannot be used, or None when it is at the head."""
    head = head_revision()
    if current == head:
        return None
    found = "has no accessbot schema" if current is None else f"is at schema revision {current}"
    return f"the database {found}, this accessbot needs {head}: run `accessbot db upgrade`"


async def schema_revision(conn: psycopg.AsyncConnection[Any]) -> str | None:
    """The Alembic revision the database is at; None when it has no accessbot schema at all."""
    exists = await (await conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL")).fetchone()
    if not exists or not exists[0]:
        return None
    row = await (await conn.execute("SELECT version_num FROM alembic_version")).fetchone()
    return None if row is None else str(row[0])
