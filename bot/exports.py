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
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

CHART_FORMAT = "png"  # the status charts as an image; see ``needs_security_lead``
REPORT_FORMATS = ("pdf", "html")  # the evidence report (bot/report/)
FORMATS = ("zip", "csv", "json", *REPORT_FORMATS, CHART_FORMAT)
LINK_LIFETIME = timedelta(hours=1)
MAX_TOKEN_LENGTH = 2048  # a real link's token is about 250 characters
_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class BadLink(ValueError):
    """A link that was altered, has expired, or never came from us."""


@dataclass(frozen=True)
class ExportRequest:
    campaign_id: str
    fmt: str
    requester: str

    @property
    def needs_security_lead(self) -> bool:
        """Everything but the chart image is evidence, for security leads only. The chart shows the counts
        the leads' status card already shows to whoever reads it, and is linked from that card for nobody
        in particular: its signature and expiry are what guard it."""
        return self.fmt != CHART_FORMAT


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
        """The request a link carries, or BadLink. The token is whatever the URL path held, any bytes at
        all: only the characters we write get as far as the signature check (compare_digest refuses
        non-ASCII text with a TypeError)."""
        if len(token) > MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
            raise BadLink("this export link is not valid")
        body, _, signature = token.partition(".")
        if not hmac.compare_digest(_b64(self._sign(body)), signature):
            raise BadLink("this export link is not valid")
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            request, expires = ExportRequest(str(payload["c"]), str(payload["f"]), str(payload["u"])), float(payload["e"])
        except (ValueError, KeyError, TypeError) as broken:
            raise BadLink("this export link is not valid") from broken
        if now.timestamp() > expires:
            raise BadLink("this export link has expired; ask for a new one with 'export'")
        return request

    def _sign(self, body: str) -> bytes:
        return hmac.new(self._key, body.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
