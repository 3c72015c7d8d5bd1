"""The servers under test, each started in its own process with authentication on.

- ``accessbot``: the real app (``build_runtime`` + ``create_app``) on a synthetic tenant where each of N
  people reviews one item, plus a few ``/bench/...`` routes the benchmark uses to set up a state (grow the
  ledger) and to read what happened (ledger size, conversation writes) — never during a measurement.
- ``anchor``: a bare botbuilder ``CloudAdapter`` bot answering the same ``adaptiveCard/action`` invoke with
  a card, and nothing else: the least any Bot Framework bot in Python does per click. It runs msrest's
  ``ClientRetryPolicy.safe_codes`` as a frozenset (docs/dependency-notes.md#per-turn-clients), as accessbot
  does; everything else is botbuilder as shipped (its process imports accessbot's modules, which patch
  nothing until a ``TeamsChannel`` is built, and builds none).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from datetime import datetime, timezone
from multiprocessing.context import BaseContext
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any, Callable

from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, AdaptiveCardInvokeResponse, AdaptiveCardInvokeValue
from msrest.universal_http.requests import ClientRetryPolicy

from bench.local_auth import APP_ID, ISSUER, TENANT, credentials
from bench.tenants import reviewed_tenant
from tests.fakes.fake_slack import BOT_TOKEN, SIGNING_SECRET
from bot.app import build_runtime, create_app
from bot.channels.slack import SlackSettings
from bot.ledger_signing import LedgerSigner
from bot.clock import ManualClock
from bot.engine.model import LedgerEvent

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def serve_accessbot(people: int, metadata_url: str, ports: Queue, stop: Event) -> None:  # type: ignore[type-arg]
    asyncio.run(_accessbot(people, metadata_url, ports, stop))


def serve_accessbot_on(database_url: str, key_file: str, people: int, metadata_url: str, ports: Queue,  # type: ignore[type-arg]
                       stop: Event) -> None:
    """One instance on a shared PostgreSQL database, signing with the deployment's one key (``key_file``)."""
    asyncio.run(_accessbot(people, metadata_url, ports, stop, database_url, LedgerSigner.from_file(Path(key_file))))


def serve_accessbot_slack(people: int, metadata_url: str, slack_api_url: str, ports: Queue,  # type: ignore[type-arg]
                          stop: Event) -> None:
    """accessbot with a Slack workspace attached over HTTP (signing secret on), its Web API calls going to
    ``slack_api_url`` (the fake Slack, in a process of its own)."""
    slack = SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack_api_url)
    asyncio.run(_accessbot(people, metadata_url, ports, stop, slack=slack))


async def _accessbot(people: int, metadata_url: str, ports: Queue, stop: Event,  # type: ignore[type-arg]
                     database_url: str = "", signer: LedgerSigner | None = None,
                     slack: SlackSettings | None = None) -> None:
    policy, snapshot = reviewed_tenant(people)
    with tempfile.TemporaryDirectory() as data_dir:
        # Signed, as in production: every group commit writes an Ed25519 checkpoint (docs/ledger.md).
        runtime = await build_runtime(data_dir=Path(data_dir), policy=policy, snapshot=snapshot,
                                      clock=ManualClock(NOW), credentials=credentials(metadata_url),
                                      ledger_signer=signer or LedgerSigner.generate(), database_url=database_url,
                                      slack=slack)
        state, _ = await runtime.service.open_current_campaign()
        store = runtime.store
        ledger_size = len(await store.ledger_records())

        async def items(_: web.Request) -> web.Response:
            """Alex's Global Administrator items (the one-person case), and each person's own item."""
            alex = [i.id for i in state.items.values() if i.subject.title.endswith("— Global Administrator")
                    and i.subject.title.startswith("Admin ")]
            own = [[i.id, i.reviewers[0]] for i in state.items.values() if i.subject.role_name
                   and i.subject.role_name.startswith("Bench role ")]
            return web.json_response({"alex": alex, "own": own})

        async def grow_ledger(request: web.Request) -> web.Response:
            nonlocal ledger_size
            wanted = int((await request.json())["records"])
            filler = [LedgerEvent("bench_filler", {"n": n}) for n in range(1000)]
            while ledger_size < wanted:
                ledger_size += len(await store.append_ledger(filler[: wanted - ledger_size], NOW))
            return web.json_response({"ledger_records": ledger_size})

        async def stats(_: web.Request) -> web.Response:
            nonlocal ledger_size
            records = await store.ledger_records()
            ledger_size = len(records)
            decided = Counter(str(r.data.get("item_id")) for r in records if r.type == "decision")
            return web.json_response({
                "ledger_records": ledger_size,
                "decisions": decided,  # item id -> how many decisions the ledger holds for it
                "conversations": len(store._conversations),  # bench-only peek: how many people are known
                "conversation_writes": store._conversation_log.writes,
            })

        app = create_app(runtime, background=False)
        app.router.add_get("/bench/items", items)
        app.router.add_post("/bench/grow-ledger", grow_ledger)
        app.router.add_get("/bench/stats", stats)
        await _serve(app, ports, stop)


def serve_anchor(metadata_url: str, ports: Queue, stop: Event) -> None:  # type: ignore[type-arg]
    asyncio.run(_anchor(metadata_url, ports, stop))


async def _anchor(metadata_url: str, ports: Queue, stop: Event) -> None:  # type: ignore[type-arg]
    ClientRetryPolicy.safe_codes = frozenset(ClientRetryPolicy.safe_codes)  # type: ignore[assignment]

    class Config:
        APP_ID = APP_ID
        APP_PASSWORD = "not-used-offline"
        APP_TENANTID = TENANT
        APP_TYPE = "SingleTenant"
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = metadata_url
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = ISSUER

    class AnchorBot(ActivityHandler):
        """botbuilder's own route for the invoke: ActivityHandler parses it, this answers with a card."""

        async def on_adaptive_card_invoke(
            self, turn_context: TurnContext, invoke_value: AdaptiveCardInvokeValue
        ) -> AdaptiveCardInvokeResponse:
            data: dict[str, Any] = invoke_value.action["data"]  # botbuilder leaves the action a dict
            card = {
                "type": "AdaptiveCard", "version": "1.4",
                "body": [{"type": "TextBlock", "text": f"Kept by {turn_context.activity.from_property.name}",
                          "wrap": True},
                         {"type": "TextBlock", "text": f"Item {data['item']}", "isSubtle": True}],
            }
            return AdaptiveCardInvokeResponse(
                status_code=200, type="application/vnd.microsoft.card.adaptive", value=card
            )

    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(Config()))
    bot = AnchorBot()

    async def messages(request: web.Request) -> web.Response:
        """``CloudAdapter.process`` minus one line: it serializes the invoke body a second time, and the body
        ActivityHandler built for ``adaptiveCard/action`` is already a dict, so as shipped every such invoke
        answers 500 (botbuilder 4.17). accessbot's edge does the same as this."""
        activity = Activity().deserialize(await request.json())
        response = await adapter.process_activity(request.headers.get("Authorization", ""), activity, bot.on_turn)
        if response is None:
            return web.Response(status=201)
        return web.json_response(response.body, status=response.status)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    await _serve(app, ports, stop)


async def _serve(app: web.Application, ports: Queue, stop: Event) -> None:  # type: ignore[type-arg]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    ports.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    await asyncio.to_thread(stop.wait)
    await runner.cleanup()


class Server:
    """One server in its own (spawned) process, for the length of a ``with`` block; yields its base URL."""

    def __init__(self, context: BaseContext, target: Callable[..., None], *args: object, start_timeout: float = 600) -> None:
        self._ports: Queue = context.Queue()  # type: ignore[type-arg, attr-defined]
        self._stop = context.Event()  # type: ignore[attr-defined]
        self._process = context.Process(target=target, args=(*args, self._ports, self._stop), daemon=True)  # type: ignore[attr-defined]
        self._start_timeout = start_timeout

    def __enter__(self) -> str:
        self._process.start()
        try:
            port = self._ports.get(timeout=self._start_timeout)
        except BaseException:
            self._process.kill()
            raise
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

