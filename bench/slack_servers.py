"""The Slack side of the decision benchmark, each started in its own process (``bench.servers.Server``):

- ``fake Slack``: the local fake Slack (tests/fakes/fake_slack.py) holding N members, one per synthetic
  person (``admin{n}@contoso.com``, the address the directory gives them, so accessbot matches them by
  e-mail as it does in production), plus a control site the benchmark uses to build what Slack would send:
  the ``/access-review mine`` each person types, and the ``block_actions`` of the Keep button on the card the
  bot posted in their DM. Accessbot's Web API calls are answered here, so the fake's CPU is not the bot's.
- ``Slack anchor``: a bare slack-bolt ``AsyncApp`` on aiohttp that verifies each request's signature and
  acknowledges the same ``block_actions``, and does nothing else: the least a Bolt app in Python does per
  click.
"""

from __future__ import annotations

import asyncio
import json
import re
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bench.servers import _serve
from dialogs.render.slack import ACTION_PREFIX
from tests.fakes.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.fakes.slack_payloads import interactive_form, slash_command_form

KEEP = "Keep"


def serve_fake_slack(people: int, ports: Queue, stop: Event) -> None:  # type: ignore[type-arg]
    asyncio.run(_fake_slack(people, ports, stop))


def _keep_button(blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((element for block in blocks if block.get("type") == "actions" for element in block["elements"]
                 if element.get("type") == "button" and element["text"]["text"] == KEEP), None)


async def _fake_slack(people: int, ports: Queue, stop: Event) -> None:  # type: ignore[type-arg]
    slack = await FakeSlack().start()
    members = [slack.add_user(f"admin{n}@contoso.com")["id"] for n in range(people)]

    def card(n: int) -> tuple[Any, dict[str, Any]] | None:
        """The message in person n's DM with a Keep button on it, and that button."""
        for message in slack.posted(slack.dm_of(members[n])):
            button = _keep_button(message.blocks)
            if button is not None:
                return message, button
        return None

    async def info(_: web.Request) -> web.Response:
        """Where the Web API is, how many people have their card, and how the bot's calls went."""
        updates = slack.calls_to("chat.update")
        return web.json_response({"api_url": slack.api_url, "cards": sum(card(n) is not None for n in range(people)),
                                  "redrawn": sum(call.ok for call in updates),
                                  "refused": sum(not call.ok for call in slack.calls)})

    async def commands(request: web.Request) -> web.Response:
        """``/access-review mine`` typed by each of these people in their DM, as form bodies."""
        wanted = (await request.json())["people"]
        return web.json_response([slash_command_form(slack.slash_command(members[n], "mine")) for n in wanted])

    async def clicks(request: web.Request) -> web.Response:
        """Keep pressed on each of these people's cards: the ``payload=`` form bodies, and the items clicked."""
        forms, items = [], []
        for n in (await request.json())["people"]:
            found = card(n)
            if found is None:
                raise web.HTTPConflict(text=f"no card with a Keep button in the DM of person {n}")
            message, button = found
            payload = slack.block_actions(members[n], button["action_id"], channel=message.channel, ts=message.ts)
            forms.append(interactive_form(payload))
            items.append(json.loads(button["value"])["item"])
        return web.json_response({"forms": forms, "items": items})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/bench/info", info)
    app.router.add_post("/bench/commands", commands)
    app.router.add_post("/bench/clicks", clicks)
    try:
        await _serve(app, ports, stop)
    finally:
        await slack.stop()


def serve_slack_anchor(slack_api_url: str, ports: Queue, stop: Event) -> None:  # type: ignore[type-arg]
    asyncio.run(_slack_anchor(slack_api_url, ports, stop))


async def _slack_anchor(slack_api_url: str, ports: Queue, stop: Event) -> None:  # type: ignore[type-arg]
    """Bolt as shipped: its own request verification (the signing secret), its own aiohttp app; the listener
    acknowledges and returns."""
    bolt = AsyncApp(client=AsyncWebClient(token=BOT_TOKEN, base_url=slack_api_url), signing_secret=SIGNING_SECRET)

    @bolt.action(re.compile(rf"^{ACTION_PREFIX}:"))
    async def keep(ack: Any) -> None:
        await ack()

    await _serve(bolt.web_app(path="/slack/events"), ports, stop)
