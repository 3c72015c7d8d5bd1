"""A local Bot Connector: the far side of the wire for Teams, speaking the Bot Framework REST API v3.

It records every activity the bot sends (replies, proactive messages, updates) so tests can assert on
exactly what a Teams client would have received.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    method: str
    path: str
    conversation_id: str
    activity_id: str | None
    body: dict[str, Any]

    @property
    def cards(self) -> list[dict[str, Any]]:
        return [
            a["content"]
            for a in self.body.get("attachments") or []
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]


@dataclass
class FakeConnector:
    received: list[Received] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    runner: web.AppRunner | None = None
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
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

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(
            Received("POST", request.path, request.match_info["conversation"], request.match_info.get("activity"), body)
        )
        return web.json_response({"id": f"sent-{next(self._ids)}"}, status=201)

    async def _put(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(
            Received("PUT", request.path, request.match_info["conversation"], request.match_info["activity"], body)
        )
        return web.json_response({"id": request.match_info["activity"]})

    def texts(self) -> list[str]:
        return [r.body.get("text") or "" for r in self.received]

    def cards(self) -> list[dict[str, Any]]:
        return [card for r in self.received for card in r.cards]


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
