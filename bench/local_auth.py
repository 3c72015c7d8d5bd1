"""Bot Framework authentication for the benchmarks and the auth tests, on, with nothing leaving 127.0.0.1.

The channel's side is played locally: an OpenID
metadata document and a JWKS publishing our own RSA key (endorsed for msteams), served from a thread
because botbuilder fetches them with a blocking call, and tokens signed with that key. The bots validate
every request exactly as they would against Bot Framework's public cloud: signature, issuer, audience,
expiry, and the serviceurl claim against the activity.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bot.channels.teams import BotCredentials

APP_ID = "5b7d9f1a-2c4e-4a6b-8d0f-1e3a5c7e9b02"
TENANT = "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"
ISSUER = "https://api.botframework.com"
KEY_ID = "accessbot-bench-key"
# Where replies would go. Nothing is sent there in these benchmarks (invoke answers ride the HTTP response,
# conversationUpdate needs no reply); a closed local port makes any stray send fail at once, locally.
SERVICE_URL = "http://127.0.0.1:9/"


class OpenIdServer:
    """The channel's OpenID metadata and signing keys on an ephemeral local port, in a daemon thread."""

    def __init__(self, key: rsa.RSAPrivateKey | None = None, key_id: str = KEY_ID) -> None:
        self.key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = key_id
        documents: dict[str, Any] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = documents.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body or {}).encode())

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        base = f"http://127.0.0.1:{self._server.server_address[1]}"
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        documents["/v1/.well-known/openidconfiguration"] = {
            "issuer": ISSUER,
            "jwks_uri": f"{base}/v1/.well-known/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
        }
        documents["/v1/.well-known/keys"] = {"keys": [{**jwk, "kid": key_id, "use": "sig", "endorsements": ["msteams"]}]}
        self.metadata_url = f"{base}/v1/.well-known/openidconfiguration"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OpenIdServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()

    def token(self, lifetime: int = 3600) -> str:
        """A channel token as the Bot Connector sends it: one token serves every request for an hour."""
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": APP_ID, "nbf": now - 60, "exp": now + lifetime, "serviceurl": SERVICE_URL}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.key_id})


def credentials(metadata_url: str) -> BotCredentials:
    return BotCredentials(
        app_id=APP_ID, app_password="not-used-offline", app_tenant_id=TENANT,
        openid_metadata_url=metadata_url, token_issuer=ISSUER,
    )


def person_activity(object_id: str, display_name: str, **fields: Any) -> dict[str, Any]:
    """An activity from ``object_id`` in their personal chat with the bot, as Teams posts it."""
    return {
        "id": str(uuid.uuid4()),
        "channelId": "msteams",
        "serviceUrl": SERVICE_URL,
        "from": {"id": f"29:{object_id}", "name": display_name, "aadObjectId": object_id},
        "conversation": {"conversationType": "personal", "tenantId": TENANT, "id": f"a:personal-{object_id}"},
        "recipient": {"id": f"28:{APP_ID}", "name": "accessbot"},
        "channelData": {"tenant": {"id": TENANT}},
        "locale": "en-GB",
        **fields,
    }


def decide(object_id: str, display_name: str, item_id: str) -> dict[str, Any]:
    """Keep, pressed on a review card (Universal Actions)."""
    value = {"action": {"type": "Action.Execute", "verb": "decide", "data": {"item": item_id, "action": "keep"}}}
    return person_activity(object_id, display_name, type="invoke", name="adaptiveCard/action", value=value)


def first_contact(object_id: str, display_name: str) -> dict[str, Any]:
    """The conversationUpdate Teams sends when someone opens a personal chat with the bot."""
    return person_activity(
        object_id, display_name, type="conversationUpdate",
        membersAdded=[{"id": f"29:{object_id}", "aadObjectId": object_id}, {"id": f"28:{APP_ID}"}],
    )
