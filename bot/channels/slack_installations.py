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

Where the sealed documents and hashed states are kept is the store's business (bot/store/installations.py:
PostgreSQL's tables, or a file in the data directory); this module is Bolt's side of it, and the seal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from bot.clock import Clock, SystemClock
from bot.ledger import canonical_json
from bot.store.base import StoreUnavailable
from bot.store.installations import STATE_LIFETIME, InstallationRecords

log = logging.getLogger(__name__)

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
        # team id -> (the sealed text, what it opened to): every send reads the row (an uninstall elsewhere stops
        # it at once) but unseals only a row that changed, not once per message.
        self._opened: dict[str, tuple[str, dict[str, Any]]] = {}

    def _open(self, sealed: str, team_id: str) -> dict[str, Any]:
        known = self._opened.get(team_id)
        if known is None or known[0] != sealed:
            known = self._opened[team_id] = (sealed, self.seal.open(sealed, team_id))
        return known[1]

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
            self._opened.pop(team_id, None)
            return None
        return Installation(**self._open(sealed, team_id))

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
        """The workspace's bot token, read from the store at each call; None when it is not (or no longer) installed."""
        sealed = await self.records.sealed(team_id)
        if sealed is None:
            self._opened.pop(team_id, None)
            return None
        return self._open(sealed, team_id).get("bot_token")

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
