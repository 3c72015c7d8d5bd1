"""The Slack workspaces that installed accessbot through OAuth, kept on our own store backends (never Bolt's
file or SQL stores), with every token sealed.

Why sealed: a security team does not accept bot tokens in clear in a database or a data directory, and a
copy of either (a backup, a dump handed to support) must not carry working tokens. Each installation is one
document (Bolt's ``Installation``: bot token, installer, scopes...) encrypted whole with Fernet (AES-128-CBC
and HMAC-SHA256, from ``cryptography``) under ``ACCESSBOT_SLACK_TOKEN_KEY``, which lives in the environment
(a secret store), never beside the data. Only the team id and the enterprise id stay in clear, to find it.
Several keys, comma-separated, rotate the key: the first seals, any of them opens
(docs/dependency-notes.md#slack-oauth-install).

The OAuth ``state`` (the nonce that ties the browser that started an install to the one that comes back) is
kept the same way, hashed, single use, for ten minutes: Bolt consumes it, so a replayed or forged state finds
nothing and the install is refused.

Two backends, one interface (``InstallationRecords``), as for the collection jobs (bot/collection_jobs.py):
``PostgresInstallationRecords`` (tables ``slack_installations`` and ``slack_oauth_states``, migration 0008)
shared by every instance, and ``LocalInstallationRecords`` (``slack-installations.json`` in the data directory,
replaced atomically) for one instance on TinyDB.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional, Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.clock import Clock, SystemClock
from bot.ledger import canonical_json
from bot.store.atomic_storage import replace_file
from bot.store.base import StoreUnavailable
from bot.store.postgres_store import PostgresStore

log = logging.getLogger(__name__)

STATE_LIFETIME = timedelta(minutes=10)  # as Bolt's own state stores: long enough to click through Slack's page
INSTALLATIONS_FILE = "slack-installations.json"
KEY_HINT = ("ACCESSBOT_SLACK_TOKEN_KEY must be a Fernet key (44 characters of URL-safe base64; make one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`), or "
            "several comma-separated, the newest first")


class SealBroken(StoreUnavailable):
    """A stored installation cannot be opened with the configured keys: the key was changed without keeping the
    old one beside it, or the row was altered. Nothing is sent with it; the workspace must install again."""


class TokenSeal:
    """Seals installation documents with the first key, opens them with any (key rotation)."""

    def __init__(self, keys: str) -> None:
        given = [key.strip() for key in keys.split(",") if key.strip()]
        if not given:
            raise ValueError(KEY_HINT)
        try:
            self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in given])
        except (ValueError, UnicodeEncodeError) as bad:
            raise ValueError(KEY_HINT) from bad

    def seal(self, document: dict[str, Any]) -> str:
        return self._fernet.encrypt(canonical_json(document)).decode("ascii")

    def open(self, sealed: str, team_id: str) -> dict[str, Any]:
        try:
            return json.loads(self._fernet.decrypt(sealed.encode("ascii")))
        except (InvalidToken, ValueError) as broken:
            raise SealBroken(f"the Slack installation of workspace {team_id} cannot be opened with "
                             f"ACCESSBOT_SLACK_TOKEN_KEY (changed without keeping the old key?): install again") from broken


def _state_hash(state: str) -> str:
    """States are kept hashed: whoever reads the table cannot finish someone else's install with one."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


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


def _plain(value: Any) -> Any:
    """Installation.to_dict_for_copying() as JSON: its datetimes as epoch seconds (what Installation() takes back)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {key: _plain(inner) for key, inner in value.items()}
    return value


class SealedInstallationStore(AsyncInstallationStore):
    """Bolt's installation store on our records: Bolt's OAuth flow saves through it, its ``authorize`` finds each
    workspace's bot token through it per request, and the channel finds the token of an address's workspace
    through ``bot_token``. One installation per workspace (bot scopes only; the installer's id is kept)."""

    def __init__(self, records: InstallationRecords, seal: TokenSeal, clock: Clock | None = None) -> None:
        self.records = records
        self.seal = seal
        self.clock = clock or SystemClock()

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        if not installation.team_id:
            raise ValueError("an installation without a workspace (an org-wide install) is not kept")
        sealed = self.seal.seal(_plain(installation.to_dict_for_copying()))
        await self.records.save(installation.team_id, installation.enterprise_id, sealed, self.clock.now())

    async def async_save_bot(self, bot: Bot) -> None:
        raise NotImplementedError("installations are saved whole (async_save)")

    async def async_find_installation(self, *, enterprise_id: Optional[str], team_id: Optional[str],
                                      user_id: Optional[str] = None,
                                      is_enterprise_install: Optional[bool] = False) -> Optional[Installation]:
        """The workspace's installation (whoever installed it: the bot token is the workspace's)."""
        if not team_id or is_enterprise_install:
            return None
        sealed = await self.records.sealed(team_id)
        if sealed is None:
            return None
        return Installation(**self.seal.open(sealed, team_id))

    async def async_find_bot(self, *, enterprise_id: Optional[str], team_id: Optional[str],
                             is_enterprise_install: Optional[bool] = False) -> Optional[Bot]:
        found = await self.async_find_installation(enterprise_id=enterprise_id, team_id=team_id,
                                                   is_enterprise_install=is_enterprise_install)
        return None if found is None else found.to_bot()

    async def async_delete_installation(self, *, enterprise_id: Optional[str], team_id: Optional[str],
                                        user_id: Optional[str] = None) -> None:
        if team_id:
            await self.records.delete(team_id)

    async def async_delete_bot(self, *, enterprise_id: Optional[str], team_id: Optional[str]) -> None:
        if team_id:
            await self.records.delete(team_id)

    async def async_delete_all(self, *, enterprise_id: Optional[str], team_id: Optional[str]) -> None:
        if team_id:
            await self.records.delete(team_id)

    async def bot_token(self, team_id: str) -> str | None:
        """The workspace's bot token, opened for one use; None when it is not (or no longer) installed."""
        installation = await self.async_find_installation(enterprise_id=None, team_id=team_id)
        return None if installation is None else installation.bot_token

    async def team_ids(self) -> list[str]:
        return await self.records.team_ids()


class StoredStateStore(AsyncOAuthStateStore):
    """Bolt's OAuth state store on our records: a state is issued when an install starts and consumed, once,
    when Slack sends the browser back; a forged, replayed or expired one is refused."""

    def __init__(self, records: InstallationRecords, clock: Clock | None = None,
                 lifetime: timedelta = STATE_LIFETIME) -> None:
        self.records = records
        self.clock = clock or SystemClock()
        self.lifetime = lifetime

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        await self.records.issue_state(_state_hash(state), self.clock.now() + self.lifetime)
        return state

    async def async_consume(self, state: str) -> bool:
        if not state:
            return False
        return await self.records.consume_state(_state_hash(state), self.clock.now().astimezone(timezone.utc))


def installation_records(store: Any, data_dir: Path) -> InstallationRecords:
    """The records on the deployment's backend: PostgreSQL's tables when the store is PostgreSQL, else a file in
    the data directory."""
    if isinstance(store, PostgresStore):
        return PostgresInstallationRecords(store)
    return LocalInstallationRecords(data_dir)
