"""One URL picks the backend (``ACCESSBOT_DATABASE_URL``): empty keeps TinyDB in the data directory, the
embedded default for one instance; ``postgresql://…`` is the shared PostgreSQL store. Every command that
opens a store (serve, demo, campaign, ledger) opens it here, so the choice is made in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Union

from bot.clock import Clock
from bot.ledger_signing import LedgerSigner
from bot.operator_errors import ExitCode, OperatorError
from bot.store.postgres_store import PostgresStore
from bot.store.tinydb_store import TinyDBStore

BackendStore = Union[TinyDBStore, PostgresStore]
"""Either backend: beside the Store protocol, both offer set_aside() and rotate_ledger_key()."""


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def checked_url(url: str) -> str:
    """The database URL, or a one-line refusal of anything that is neither empty nor PostgreSQL's."""
    if url and not is_postgres(url):
        scheme = url.split(":", 1)[0] if ":" in url else "no scheme"
        raise OperatorError(f"ACCESSBOT_DATABASE_URL must be empty (TinyDB in the data directory) or start with "
                            f"postgresql:// (got {scheme})", ExitCode.USAGE)
    return url


async def open_store(
    database_url: str,
    data_dir: Path,
    *,
    read_only: bool = False,
    signer: LedgerSigner | None = None,
    clock: Clock | None = None,
) -> BackendStore:
    """The configured store, ready: a PostgreSQL one has connected and checked its schema (a database behind
    the code is refused with one line saying to run `accessbot db upgrade`)."""
    if not checked_url(database_url):
        return TinyDBStore(data_dir, read_only=read_only, signer=signer, clock=clock)
    store = PostgresStore(database_url, read_only=read_only, signer=signer, clock=clock)
    await store.start()
    return store
