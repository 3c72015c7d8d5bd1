"""Slack's v0 request signing, to sign the requests tests send to the bot as Slack would.

Slack signs every HTTP request it sends to an app: ``v0=`` + hex HMAC-SHA256, keyed with the app's signing
secret, of ``v0:{timestamp}:{raw body}``, in ``X-Slack-Signature``, with the Unix time in
``X-Slack-Request-Timestamp``. The receiver refuses a timestamp more than five minutes away from its own clock
(a replay). This module is written from that description, not from slack_sdk's ``SignatureVerifier``, so a test
that signs here and verifies with Bolt checks two independent readings of the scheme against each other.
"""

from __future__ import annotations

import hashlib
import hmac
import time

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def signature(secret: str, timestamp: int | str, body: str | bytes) -> str:
    """The ``X-Slack-Signature`` value of ``body`` sent at ``timestamp``."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    base = b"v0:" + str(timestamp).encode("ascii") + b":" + raw
    return "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: str | bytes, *, timestamp: int | None = None,
                   content_type: str = FORM) -> dict[str, str]:
    """The headers Slack sends with ``body``: its signature, its timestamp (now unless given) and its type.

    Slash commands and interactions arrive as form bodies (``FORM``), Events API callbacks as JSON (``JSON``).
    """
    at = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(at),
        "X-Slack-Signature": signature(secret, at, body),
    }
