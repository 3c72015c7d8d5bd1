"""The demo tenant's bot with a Slack workspace attached, against the local fake Slack (tests/fakes/fake_slack.py).

The workspace holds the demo's people under their directory e-mail addresses, so they are mapped by
``users.lookupByEmail`` / ``users.info`` as in a workspace that signs in with Entra ID. Requests reach the
app's real ``/slack/events``, signed with Slack's v0 scheme; Bolt answers them after ``ack()`` and goes on
working, so tests wait (with a timeout) for what the person would see.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from aiohttp import web

from bot.app import Runtime, build_runtime, create_app, load_inputs
from bot.channels.slack import SlackSettings
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.policy import Policy
from tests.fakes.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)
PEOPLE = ("alexw@contoso.com", "pattif@contoso.com", "leeg@contoso.com", "lynner@contoso.com", "adelev@contoso.com")
WAIT = 10.0  # seconds: only reached when the bot never does what is awaited; never a measure of speed


@dataclass
class SlackBot:
    runtime: Runtime
    runner: web.AppRunner
    slack: FakeSlack
    url: str  # the app's /slack/events
    members: dict[str, str]  # e-mail -> Slack member id

    def member(self, email: str) -> str:
        return self.members[email]

    async def send(self, body: dict[str, Any] | str, **signing: Any) -> int:
        status, _ = await self.slack.post_to_app(self.url, body, **signing)
        return status

    async def command(self, email: str, text: str, channel: str | None = None) -> int:
        return await self.send(self.slack.slash_command(self.member(email), text, channel_id=channel))

    async def until(self, what: Callable[[], Any], timeout: float = WAIT) -> Any:
        """Wait for the work Bolt runs after ack(): ``what`` returns something truthy once it is done."""
        async with asyncio.timeout(timeout):
            while not (found := what()):
                await asyncio.sleep(0.01)
        return found

    def item_id(self, title_part: str) -> str:
        for state in self.runtime.service.campaigns():
            for item in state.items.values():
                if title_part in item.subject.title:
                    return item.id
        raise AssertionError(f"no item titled like {title_part!r}")

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.slack.stop()


async def serve_slack_demo(data_dir: Path, *, policy: Policy | None = None, teams_service_url: str = "") -> SlackBot:
    slack = await FakeSlack().start()
    members = {email: slack.add_user(email)["id"] for email in PEOPLE}
    demo_policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    runtime = await build_runtime(
        data_dir=data_dir, policy=policy or demo_policy, snapshot=snapshot, clock=ManualClock(MONDAY),
        credentials=BotCredentials(), teams_service_url=teams_service_url,
        slack=SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack.api_url),
    )
    await runtime.service.open_current_campaign()
    runner = web.AppRunner(create_app(runtime, background=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return SlackBot(runtime, runner, slack, f"http://127.0.0.1:{port}/slack/events", members)
