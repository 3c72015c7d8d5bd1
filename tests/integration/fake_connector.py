"""A local Bot Connector: the far side of the wire for Teams, speaking the Bot Framework REST API v3.

It records every activity the bot sends (replies, proactive messages, updates) so tests can assert on
exactly what a Teams client would have received, and it can behave like Teams under load:

- ``per_conversation`` / ``per_tenant`` windows: it enforces them the way Teams does, answering 429 with
  the Retry-After that would let the request through, and counts those refusals in ``over_limit``;
- ``fault_rate`` of requests refused with one of ``fault_statuses`` (429 with ``fault_retry_after``,
  412, 502, 504) *before* being accepted, so a refused message was not delivered;
- 403 for the conversations in ``blocked`` (blocked or uninstalled app), 404 for those in ``missing``,
  413 for a body over ``max_bytes`` (Teams refuses messages over about 100 KB);
- ``delay`` seconds before answering an accepted request (a slow connector);
- ``clock``: where its windows read the time (``time.monotonic``, or a test's fake clock shared with
  the bot's limiter); ``on_accept`` is called with each request it accepts, as it accepts it.

Its windows are its own few lines, not the bot's limiter, so a mistake in the limiter cannot hide here.
Accepted requests only count toward them: the bot's limiter also counts refused ones, so it stays on
the cautious side of this fake.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from aiohttp import web

from bot.ratelimit import Window


@dataclass
class Received:
    method: str
    path: str
    conversation_id: str
    activity_id: str | None
    body: dict[str, Any]
    at: float = 0.0  # the connector's clock when it was accepted

    @property
    def cards(self) -> list[dict[str, Any]]:
        return [
            a["content"]
            for a in self.body.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]


@dataclass
class FakeConnector:
    per_conversation: Sequence[Window] = ()
    per_tenant: Sequence[Window] = ()
    fault_rate: float = 0.0
    fault_statuses: Sequence[int] = (429, 412, 502, 504)
    fault_retry_after: float | None = 1.0
    blocked: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)  # conversations always answered 500 (the Agents Playground's
    # answer to a proactive message for anyone but its current user)
    max_bytes: int = 100 * 1024
    delay: float = 0.0
    seed: int = 0
    clock: Callable[[], float] = time.monotonic
    on_accept: Callable[[Received], None] | None = None
    received: list[Received] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)  # conversations the bot started
    not_installed: set[str] = field(default_factory=set)  # people the app is not installed for
    refused: Counter[int] = field(default_factory=Counter)  # every refusal, by status
    injected: Counter[int] = field(default_factory=Counter)  # the random faults among them
    over_limit: int = 0  # 429s because a window was full
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _accepted_at: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    runner: web.AppRunner | None = None
    url: str = ""

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/v3/conversations", self._create_conversation)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._post)
        app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", self._post)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._put)
        return app

    async def start(self) -> str:
        self.runner = web.AppRunner(self.app())
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _create_conversation(self, request: web.Request) -> web.Response:
        """POST /v3/conversations: a personal chat with one member (the app must be installed for them)."""
        body = await request.json()
        members = body.get("members") or []
        if len(members) != 1 or body.get("isGroup"):
            return web.json_response({"error": {"code": "BadArgument", "message": "one member, not a group"}}, status=400)
        member = members[0].get("aadObjectId") or members[0].get("id")
        if member in self.not_installed:
            return web.json_response({"error": {"code": "Forbidden", "message": "app not installed"}}, status=403)
        self.created.append(body)
        return web.json_response({"id": f"a:created-{member}", "activityId": f"created-{next(self._ids)}"}, status=201)

    async def _post(self, request: web.Request) -> web.Response:
        return await self._receive(request, "POST", 201)

    async def _put(self, request: web.Request) -> web.Response:
        return await self._receive(request, "PUT", 200)

    async def _receive(self, request: web.Request, method: str, status: int) -> web.Response:
        raw = await request.read()
        conversation = request.match_info["conversation"]
        if len(raw) > self.max_bytes:
            return self._refuse(413, "MessageSizeTooBig", "The message is over the size limit.")
        if conversation in self.blocked:
            return self._refuse(403, "Forbidden", "The bot is not part of the conversation roster.")
        if conversation in self.missing:
            return self._refuse(404, "ConversationNotFound", "Conversation not found.")
        if conversation in self.failing:
            return self._refuse(500, "InternalServerError", "An error occurred.")
        body = await request.json()
        now = self.clock()  # after the last await: acceptance times are appended in order
        keys = {f"conversation:{conversation}": self.per_conversation, f"tenant:{_tenant(body)}": self.per_tenant}
        wait = max(self._room_in(key, windows, now) for key, windows in keys.items())
        if wait > 0:
            self.over_limit += 1
            return self._refuse(429, "TooManyRequests", "Over the rate limit.", retry_after=wait)
        if self.fault_rate and self._random.random() < self.fault_rate:
            fault = self._random.choice(list(self.fault_statuses))
            self.injected[fault] += 1
            retry_after = self.fault_retry_after if fault == 429 else None
            return self._refuse(fault, "Injected", "An injected failure.", retry_after)
        for key in keys:
            self._accepted_at[key].append(now)
        activity = request.match_info.get("activity")
        received = Received(method, request.path, conversation, activity, body, now)
        self.received.append(received)
        if self.on_accept is not None:
            self.on_accept(received)
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response({"id": activity if method == "PUT" else f"sent-{next(self._ids)}"}, status=status)

    def _room_in(self, key: str, windows: Sequence[Window], now: float) -> float:
        """Seconds until one more request fits every window of ``key`` (0 when it fits now)."""
        accepted = self._accepted_at[key]
        wait = 0.0
        for window in windows:
            inside = len(accepted) - bisect.bisect_right(accepted, now - window.seconds)
            if inside >= window.limit:
                wait = max(wait, accepted[len(accepted) - window.limit] + window.seconds - now)
        return wait

    def _refuse(self, status: int, code: str, message: str, retry_after: float | None = None) -> web.Response:
        self.refused[status] += 1
        headers = {} if retry_after is None else {"Retry-After": _seconds(retry_after)}
        return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)

    def texts(self) -> list[str]:
        return [r.body.get("text") or "" for r in self.received]

    def cards(self) -> list[dict[str, Any]]:
        return [card for r in self.received for card in r.cards]

    def deliveries(self) -> Counter[tuple[str, str]]:
        """How many times each (conversation, text) was accepted: 0 means lost, 2 or more duplicated."""
        return Counter((r.conversation_id, r.body.get("text") or "") for r in self.received if r.method == "POST")

    def texts_in(self, conversation_id: str) -> list[str]:
        """What one conversation received, in the order it arrived."""
        return [r.body.get("text") or "" for r in self.received if r.conversation_id == conversation_id]

    def busiest(self, seconds: float) -> int:
        """The most requests this connector accepted within any ``seconds``-long interval."""
        times = sorted(r.at for r in self.received)
        return max((bisect.bisect_left(times, t + seconds) - i for i, t in enumerate(times)), default=0)


def _seconds(value: float) -> str:
    """A Retry-After value: whole seconds as Teams sends them, milliseconds (rounded up) below that."""
    if value >= 1:
        return str(math.ceil(value))
    return f"{max(1, math.ceil(value * 1000)) / 1000:.3f}"


def _tenant(body: dict[str, Any]) -> str:
    """The app and tenant Teams counts a request under (botbuilder spells the tenant 'tenantID')."""
    conversation = body.get("conversation") or {}
    tenant = conversation.get("tenantId") or conversation.get("tenantID") or ""
    return f"{(body.get('from') or {}).get('id') or ''}|{tenant}"


def card_text(card: dict[str, Any]) -> str:
    """All visible text of a card, flattened, for assertions."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("text", "title", "value", "label"):
                if isinstance(node.get(key), str):
                    parts.append(node[key])
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card.get("body", []))
    walk(card.get("actions", []))
    return "\n".join(parts)
