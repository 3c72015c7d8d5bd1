"""Where the Slack workspaces that installed accessbot through OAuth are kept, and the OAuth states of installs
under way: beside the store's own data, on the same backend (bot/channels/slack_installations.py is Bolt's side,
and seals what is kept here).

Nothing here sees a token in clear: an installation arrives sealed (encrypted whole), a state as its SHA-256.
Two backends, one interface (``InstallationRecords``), as for the collection jobs (bot/collection_jobs.py):
``PostgresInstallationRecords`` (tables ``slack_installations`` and ``slack_oauth_states``, migration 0008)
shared by every instance, and ``LocalInstallationRecords`` (``slack-installations.json`` in the data directory,
replaced atomically) for one instance on TinyDB; ``accessbot db migrate-from-tinydb`` moves the one into the other.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from bot.ledger import canonical_json
from bot.store.atomic_storage import replace_file
from bot.store.base import StoreUnavailable
from bot.store.postgres_store import PostgresStore

STATE_LIFETIME = timedelta(minutes=10)  # as Bolt's own state stores: long enough to click through Slack's page
INSTALLATIONS_FILE = "slack-installations.json"


@dataclass(frozen=True)
class SealedInstallation:
    """One workspace's installation as kept: its ids in clear, the rest sealed."""

    team_id: str
    enterprise_id: str | None
    sealed: str
    installed_at: datetime


class InstallationRecords(Protocol):
    """Where sealed installations and OAuth states are kept; nothing here ever sees a token in clear."""

    async def save(self, team_id: str, enterprise_id: str | None, sealed: str, at: datetime) -> None:
        """Insert or replace the installation of a workspace (a reinstall brings a new token)."""
        ...

    async def sealed(self, team_id: str) -> str | None: ...

    async def team_ids(self) -> list[str]:
        """Every installed workspace, by team id, sorted."""
        ...

    async def delete(self, team_id: str) -> bool:
        """Forget a workspace's installation; False when there was none."""
        ...

    async def issue_state(self, state_hash: str, expires_at: datetime) -> None: ...

    async def consume_state(self, state_hash: str, now: datetime) -> bool:
        """True once for a state issued and not yet expired; it is gone afterwards."""
        ...


class PostgresInstallationRecords:
    """Tables of migration 0008, through the store's pool and its failure mapping (several instances share them)."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    async def save(self, team_id: str, enterprise_id: str | None, sealed: str, at: datetime) -> None:
        async with self.store.transaction(write=True) as conn:
            await conn.execute(
                "INSERT INTO slack_installations (team_id, enterprise_id, sealed, installed_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (team_id) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id, sealed = EXCLUDED.sealed, "
                "installed_at = EXCLUDED.installed_at", (team_id, enterprise_id, sealed, at))

    async def sealed(self, team_id: str) -> str | None:
        async with self.store.transaction() as conn:
            row = await (await conn.execute("SELECT sealed FROM slack_installations WHERE team_id = %s",
                                            (team_id,))).fetchone()
        return None if row is None else str(row[0])

    async def team_ids(self) -> list[str]:
        async with self.store.transaction() as conn:
            rows = await (await conn.execute("SELECT team_id FROM slack_installations ORDER BY team_id")).fetchall()
        return [str(team_id) for (team_id,) in rows]

    async def delete(self, team_id: str) -> bool:
        async with self.store.transaction(write=True) as conn:
            gone = await (await conn.execute("DELETE FROM slack_installations WHERE team_id = %s RETURNING 1",
                                             (team_id,))).fetchone()
        return gone is not None

    async def issue_state(self, state_hash: str, expires_at: datetime) -> None:
        async with self.store.transaction(write=True) as conn:
            await conn.execute("DELETE FROM slack_oauth_states WHERE expires_at < %s", (expires_at - 2 * STATE_LIFETIME,))
            await conn.execute("INSERT INTO slack_oauth_states (state_hash, expires_at) VALUES (%s, %s)",
                               (state_hash, expires_at))

    async def consume_state(self, state_hash: str, now: datetime) -> bool:
        """One DELETE: of two requests with the same state, only one gets the row back."""
        async with self.store.transaction(write=True) as conn:
            row = await (await conn.execute(
                "DELETE FROM slack_oauth_states WHERE state_hash = %s RETURNING expires_at", (state_hash,))).fetchone()
        return row is not None and row[0] > now


class LocalInstallationRecords:
    """One small JSON file in the data directory, replaced atomically on each change (installs are rare). One
    process writes a data directory (TinyDBStore's writer lock), so memory holds the truth between writes."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / INSTALLATIONS_FILE
        document = json.loads(self.path.read_bytes()) if self.path.exists() else {}
        self._installations: dict[str, dict[str, Any]] = document.get("installations", {})
        self._states: dict[str, str] = document.get("states", {})
        self._lock = asyncio.Lock()

    async def _write(self, installations: dict[str, dict[str, Any]], states: dict[str, str]) -> None:
        content = canonical_json({"installations": installations, "states": states})
        try:
            await asyncio.to_thread(replace_file, self.path, content)
        except OSError as failed:
            raise StoreUnavailable(f"cannot store the Slack installations: {failed}") from failed
        self._installations, self._states = installations, states

    async def save(self, team_id: str, enterprise_id: str | None, sealed: str, at: datetime) -> None:
        async with self._lock:
            entry = {"enterprise_id": enterprise_id, "sealed": sealed, "installed_at": at.isoformat()}
            await self._write({**self._installations, team_id: entry}, self._states)

    async def sealed(self, team_id: str) -> str | None:
        entry = self._installations.get(team_id)
        return None if entry is None else str(entry["sealed"])

    async def team_ids(self) -> list[str]:
        return sorted(self._installations)

    async def delete(self, team_id: str) -> bool:
        async with self._lock:
            if team_id not in self._installations:
                return False
            await self._write({k: v for k, v in self._installations.items() if k != team_id}, self._states)
            return True

    async def issue_state(self, state_hash: str, expires_at: datetime) -> None:
        async with self._lock:
            oldest = (expires_at - 2 * STATE_LIFETIME).isoformat()
            states = {k: v for k, v in self._states.items() if v >= oldest}
            await self._write(self._installations, {**states, state_hash: expires_at.isoformat()})

    async def consume_state(self, state_hash: str, now: datetime) -> bool:
        async with self._lock:
            expires = self._states.get(state_hash)
            if expires is None:
                return False
            await self._write(self._installations, {k: v for k, v in self._states.items() if k != state_hash})
            return datetime.fromisoformat(expires) > now

    def every(self) -> list[SealedInstallation]:
        """Every installation as kept, for `accessbot db migrate-from-tinydb`."""
        return [SealedInstallation(team_id, entry["enterprise_id"], entry["sealed"],
                                   datetime.fromisoformat(entry["installed_at"]))
                for team_id, entry in sorted(self._installations.items())]


def installation_records(store: Any, data_dir: Path) -> InstallationRecords:
    """The records on the deployment's backend: PostgreSQL's tables when the store is PostgreSQL, else a file in
    the data directory."""
    if isinstance(store, PostgresStore):
        return PostgresInstallationRecords(store)
    return LocalInstallationRecords(data_dir)
