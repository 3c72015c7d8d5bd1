"""Bot Framework JWT validation, on by default whenever an app id is configured.

The far side is faked the way the Bot Connector does it: an OpenID metadata document and a JWKS with our
own RSA key (endorsed for msteams), served from a thread because botbuilder fetches them with a blocking
call. Tokens are signed with that key; only one with the right issuer, audience, expiry and serviceurl
claim may reach the bot.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.local_auth import OpenIdServer
from bot.channels.teams import BotCredentials
from tests.integration.test_teams_messages import ALEX, TENANT, serve_demo

APP_ID = "5b7d9f1a-2c4e-4a6b-8d0f-1e3a5c7e9b02"
ISSUER = "https://api.botframework.com"
SERVICE_URL = "https://smba.trafficmanager.net/emea/"
KEY_ID = "accessbot-test-key"

SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
FORGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def openid_metadata_url() -> Iterator[str]:
    """The channel's OpenID metadata and JWKS, publishing SIGNING_KEY, on a local port."""
    with OpenIdServer(SIGNING_KEY, KEY_ID) as server:
        yield server.metadata_url


def token(**overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": APP_ID, "nbf": now - 60, "exp": now + 3600, "serviceurl": SERVICE_URL}
    key = overrides.pop("key", SIGNING_KEY)
    kid = overrides.pop("kid", KEY_ID)
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def invoke(item_id: str) -> dict[str, Any]:
    return {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "id": "f:auth",
        "serviceUrl": SERVICE_URL,
        "channelId": "msteams",
        "from": {"id": "29:1alex", "name": "Alex Wilber", "aadObjectId": ALEX},
        "conversation": {"conversationType": "personal", "tenantId": TENANT, "id": "a:alex"},
        "recipient": {"id": f"28:{APP_ID}", "name": "accessbot"},
        "value": {"action": {"type": "Action.Execute", "verb": "decide", "data": {"item": item_id, "action": "keep"}}},
    }


@pytest.fixture
async def secured_bot(tmp_path: Path, openid_metadata_url: str) -> AsyncIterator[tuple[str, Any]]:
    credentials = BotCredentials(
        app_id=APP_ID, app_password="not-used-offline", app_tenant_id=TENANT,
        openid_metadata_url=openid_metadata_url, token_issuer=ISSUER,
    )
    runtime, runner, url = await serve_demo(tmp_path, credentials)
    yield url, runtime
    await runner.cleanup()


async def post(url: str, body: dict[str, Any], authorization: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers=headers) as response:
            return response.status


def megan(runtime: Any) -> str:
    (state,) = runtime.service.campaigns()
    return next(i.id for i in state.items.values() if i.subject.title == "Megan Bowen — Global Administrator")


async def test_a_correctly_signed_token_reaches_the_bot(secured_bot: tuple[str, Any]) -> None:
    url, runtime = secured_bot
    assert await post(url, invoke(megan(runtime)), f"Bearer {token()}") == 200
    decisions = [r for r in await runtime.store.ledger_records() if r.type == "decision"]
    assert len(decisions) == 1


@pytest.mark.parametrize(
    ("case", "authorization"),
    [
        ("no token", None),
        ("not a bearer token", "Basic YWxleDpzZWNyZXQ="),
        ("garbage", "Bearer not.a.jwt"),
        ("forged: signed with another key", lambda: f"Bearer {token(key=FORGER_KEY)}"),
        ("forged: unknown key id", lambda: f"Bearer {token(key=FORGER_KEY, kid='attacker-key')}"),
        ("expired", lambda: f"Bearer {token(exp=int(time.time()) - 600, nbf=int(time.time()) - 7200)}"),
        ("wrong audience", lambda: f"Bearer {token(aud='00000000-1111-2222-3333-444444444444')}"),
        ("wrong issuer", lambda: f"Bearer {token(iss='https://sts.windows.net/attacker/')}"),
        ("wrong serviceurl", lambda: f"Bearer {token(serviceurl='https://evil.example/')}"),
        ("no serviceurl", lambda: f"Bearer {token(serviceurl=None)}"),
    ],
)
async def test_bad_tokens_get_401_and_record_nothing(secured_bot: tuple[str, Any], case: str, authorization: Any) -> None:
    url, runtime = secured_bot
    header = authorization() if callable(authorization) else authorization
    assert await post(url, invoke(megan(runtime)), header) == 401, case
    assert not [r for r in await runtime.store.ledger_records() if r.type == "decision"]
