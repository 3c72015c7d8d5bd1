"""The security leads' live status message stays good through quiet hours: its chart image is a signed link that
expires after an hour (bot/exports.py), so a message redrawn only when an answer arrives would show a broken
image (403) after an hour of quiet. It is redrawn with a fresh link before then — a few times an hour, never
every round. Time is the service's ManualClock, moved round by round."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from bot.exports import LINK_LIFETIME, BadLink
from tests.integration.fake_connector import card_text
from tests.integration.slack_app import SlackBot, serve_slack_demo
from tests.integration.test_teams_messages import TENANT, Bot, bot  # noqa: F401  (the fixture)

ROUND = timedelta(minutes=5)
QUIET = timedelta(hours=2)


def chart_link(message: Any) -> str:
    (image,) = [block for block in message.blocks if block["type"] == "image"]
    return str(image["image_url"])


@pytest.fixture
async def slack(tmp_path: Path) -> AsyncIterator[SlackBot]:
    served = await serve_slack_demo(tmp_path)
    yield served
    await served.close()


async def test_a_quiet_slack_live_status_gets_a_fresh_chart_link_before_the_old_one_expires_not_every_round(
    slack: SlackBot,
) -> None:
    service = slack.runtime.service
    leads = slack.slack.add_channel("security-leads", [slack.member("alexw@contoso.com")])
    await slack.command("alexw@contoso.com", "watch status", channel=leads)
    (live,) = await slack.until(lambda: slack.slack.posted(leads))
    first = chart_link(live)
    await slack.runtime.scheduler.run_once()
    assert slack.slack.message(leads, live.ts).edits == 0  # nothing changed, the link is new: no redraw

    links = []
    for _ in range(QUIET // ROUND):
        service.clock.advance(ROUND)  # type: ignore[attr-defined]
        await slack.runtime.scheduler.run_once()
        shown = slack.slack.message(leads, live.ts)
        # What the channel shows still opens when the next round comes: it never goes stale in between.
        service.links.read(chart_link(shown).split("/exports/", 1)[1], service.clock.now() + ROUND)
        links.append(chart_link(shown))
    assert links[50 // 5 - 1] != first  # after 50 minutes of quiet it was redrawn with another link
    with pytest.raises(BadLink):
        service.links.read(first.split("/exports/", 1)[1], service.clock.now())
    assert slack.slack.message(leads, live.ts).edits == QUIET // (LINK_LIFETIME / 2)  # twice an hour, of 24 rounds


async def test_a_quiet_teams_live_status_card_is_redrawn_a_few_times_an_hour_not_every_round(bot: Bot) -> None:  # noqa: F811
    channel = {"conversationType": "channel", "id": "19:access-reviews@thread.tacv2", "tenantId": TENANT}
    await bot.post(bot.activity(type="message", text="<at>accessbot</at> watch status", conversation=channel,
                                entities=[{"type": "mention", "text": "<at>accessbot</at>",
                                           "mentioned": {"id": "28:accessbot", "name": "accessbot"}}]))
    clock = bot.runtime.service.clock
    await bot.runtime.scheduler.run_once()  # the first round records what opening the week queued: one redraw

    def redraws() -> list[Any]:
        return [r for r in bot.connector.received if r.method == "PUT" and r.conversation_id == channel["id"]]

    before = len(redraws())
    for _ in range(timedelta(minutes=50) // ROUND):
        clock.advance(ROUND)  # type: ignore[attr-defined]
        await bot.runtime.scheduler.run_once()
    (redrawn,) = redraws()[before:]  # one in ten rounds, after 50 minutes of quiet
    assert "Live: updated as answers arrive (last Mon 23 Nov 10:00 UTC)" in card_text(redrawn.cards[0])
