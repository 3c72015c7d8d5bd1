"""The real PostgreSQL the store tests run against: ``ACCESSBOT_TEST_POSTGRES_URL`` (``.ci/run`` sets it to
the local server). Without it the PostgreSQL tests skip and say why, except in CI, where they fail: a CI
run that silently skipped them would pass without ever testing the backend.

Each test gets a schema of its own, created and migrated with ``accessbot db upgrade``'s own code, and
reaches it through the URL's ``options=-c search_path=…``, so the store under test needs no test hook.
"""

from __future__ import annotations

import os
import secrets
from typing import Iterator
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
import pytest

from bot.store.postgres_schema import upgrade

URL_VARIABLE = "ACCESSBOT_TEST_POSTGRES_URL"


def server_url() -> str:
    url = os.environ.get(URL_VARIABLE, "")
    if not url:
        reason = f"{URL_VARIABLE} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: in CI the PostgreSQL tests must run")
        pytest.skip(reason)
    return url


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (libpq's ``options`` parameter)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "options"] + [("options", f"-c search_path={schema}")]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def new_schema(url: str) -> tuple[str, str]:
    """A fresh, empty schema on the server: its name and the URL that uses it."""
    schema = f"accessbot_test_{secrets.token_hex(6)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema, with_schema(url, schema)


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A URL to an empty schema (no tables: `accessbot db upgrade` has not run), dropped after the test."""
    url = server_url()
    schema, scoped = new_schema(url)
    yield scoped
    drop_schema(url, schema)


@pytest.fixture
def postgres_url(empty_postgres_url: str) -> str:
    """A URL to a fresh schema at the latest migration."""
    upgrade(empty_postgres_url)
    return empty_postgres_url
