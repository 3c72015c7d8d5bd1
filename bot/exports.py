"""Signed, expiring download links for exports, so a chat message can hand a security lead a file.

Teams personal chats cannot simply carry a file from a bot, and Slack needs a scope for uploads; a link
to our own server works in both. The link names the campaign and format and expires; it is signed with
a secret from the configuration (a random one per process if none is set, so links end with a restart).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

FORMATS = ("zip", "csv", "json")
LINK_LIFETIME = timedelta(hours=1)


class BadLink(ValueError):
    """A link that was altered, has expired, or never came from us."""


@dataclass(frozen=True)
class ExportRequest:
    campaign_id: str
    fmt: str
    requester: str


class ExportLinks:
    def __init__(self, base_url: str, secret: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = (secret or secrets.token_urlsafe(32)).encode()

    def make(self, request: ExportRequest, now: datetime) -> str:
        if request.fmt not in FORMATS:
            raise ValueError(f"unknown export format {request.fmt!r}")
        payload = {"c": request.campaign_id, "f": request.fmt, "u": request.requester,
                   "e": int((now + LINK_LIFETIME).timestamp())}
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{self.base_url}/exports/{body}.{_b64(self._sign(body))}"

    def read(self, token: str, now: datetime) -> ExportRequest:
        body, _, signature = token.partition(".")
        if not body or not signature or not hmac.compare_digest(_b64(self._sign(body)), signature):
            raise BadLink("this export link is not valid")
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError as broken:
            raise BadLink("this export link is not valid") from broken
        if now.timestamp() > payload["e"]:
            raise BadLink("this export link has expired; ask for a new one with 'export'")
        return ExportRequest(payload["c"], payload["f"], payload["u"])

    def _sign(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
