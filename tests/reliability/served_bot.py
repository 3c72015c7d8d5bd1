"""accessbot's real aiohttp app on the demo tenant, served from its own event loop in a thread.

Hypothesis drives plain synchronous tests, so the server (the app, its store in a temporary folder and a
local Bot Connector for replies) runs on a loop of its own and the tests talk to it over HTTP with
``http.client``, which sends exactly the bytes and headers it is given (a bogus charset, a non-UTF-8 body).
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Coroutine, Mapping, TypeVar

from aiohttp import web

from bot.app import Runtime, build_runtime, create_app, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from tests.integration.fake_connector import FakeConnector
from tests.integration.test_teams_messages import MONDAY

T = TypeVar("T")

# What a refused request must leave as it was: the ledger, the outbox and everything remembered.
STATE_FILES = ("ledger.jsonl", "ledger.head", "outbox.jsonl", "outbox-sent.jsonl", "conversations.jsonl", "cards.jsonl",
               "channel-settings.json")
REQUEST_TIMEOUT = 60.0  # seconds before a request counts as hung: generous, for a busy 2-core machine


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class ServedBot:
    """Start with ``start()``, stop with ``stop()``; ``post``/``get`` block until the answer arrives."""

    def __init__(self, data_dir: Path, credentials: BotCredentials = BotCredentials()) -> None:
        self.data_dir = data_dir
        self.credentials = credentials
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.connector = FakeConnector()
        self.runtime: Runtime | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(REQUEST_TIMEOUT)

    def start(self) -> ServedBot:
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        await self.connector.start()
        policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
        self.runtime = await build_runtime(
            data_dir=self.data_dir, policy=policy, snapshot=snapshot, clock=ManualClock(MONDAY),
            credentials=self.credentials,
        )
        await self.runtime.service.open_current_campaign()
        self._runner = web.AppRunner(create_app(self.runtime, background=False))
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(REQUEST_TIMEOUT)
        self.loop.close()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self.connector.stop()

    def request(self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            connection.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                connection.putheader(name, _raw(value))
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def post(self, body: bytes, content_type: str = "application/json", authorization: str | None = None) -> Answer:
        headers = {"Content-Type": content_type}
        if authorization is not None:
            headers["Authorization"] = authorization
        return self.request("POST", "/api/messages", body, headers)

    def state(self) -> dict[str, str]:
        """A digest of every file a request could change."""
        digests = {}
        for name in STATE_FILES:
            path = self.data_dir / name
            digests[name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"
        return digests


def _raw(value: str) -> bytes:
    """A header value as the bytes a hostile client would send: escaped surrogates (from undecodable bytes) back
    to those bytes, and any other lone surrogate (a fuzzer draws those too) as its raw three bytes."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")
