"""The PostgreSQL tests skip on a laptop without a database, but never in CI: a skipped backend would pass."""

from __future__ import annotations

import pytest

from tests.postgres import URL_VARIABLE, server_url, with_schema


def test_without_a_database_url_the_postgres_tests_skip_and_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(URL_VARIABLE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=URL_VARIABLE):
        server_url()


def test_in_ci_a_missing_database_url_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(URL_VARIABLE, raising=False)
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="in CI the PostgreSQL tests must run"):
        server_url()


def test_a_test_schema_is_chosen_through_the_urls_libpq_options() -> None:
    assert with_schema("postgresql://u@h/db?sslmode=require", "s1") == \
        "postgresql://u@h/db?sslmode=require&options=-c%20search_path%3Ds1"
