"""Slack, end to end: signed requests to the running app's /slack/events, Web API calls answered by the local
fake Slack, decisions recorded in the same ledger as Teams'."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from bot.ledger import verify
from bot.channels.channel_set import ChannelSet
from bot.notifier import DrainResult, Notifier
from bot.store.base import OutboxMessage
from dialogs.render import slack as render
from dialogs.security_lead import LEAD_ONLY
from tests.integration.fake_connector import FakeConnector, card_text
from tests.integration.slack_app import MONDAY, WAIT, SlackBot, serve_slack_demo
from tests.integration.test_teams_messages import PATTI as TEAMS_PATTI
from tests.integration.test_teams_messages import Bot

ALEX, PATTI = "alexw@contoso.com", "pattif@contoso.com"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[SlackBot]:
    served = await serve_slack_demo(tmp_path)
    yield served
    await served.close()


def texts(messages: Any) -> str:
    """Everything a list of messages (or responses) shows, as one string."""
    return json.dumps([getattr(m, "blocks", None) or getattr(m, "body", None) for m in messages], ensure_ascii=False)


def buttons(message: Any) -> dict[str, dict[str, Any]]:
    return {element["text"]["text"]: element for block in message.blocks if block["type"] == "actions"
            for element in block["elements"]}


async def ledger_length(bot: SlackBot) -> int:
    return len(await bot.runtime.store.ledger_records())


async def item_message(bot: SlackBot, email: str, title: str) -> Any:
    await bot.command(email, "mine")
    dm = bot.slack.dm_of(bot.member(email))
    return await bot.until(lambda: next((m for m in bot.slack.posted(dm) if title in texts([m]) and buttons(m)), None))


# ---- signature and replay -----------------------------------------------------------------------------------------

async def test_a_request_signed_with_another_secret_is_refused_401_and_nothing_is_processed(bot: SlackBot) -> None:
    before = await ledger_length(bot)
    channel = bot.slack.add_channel("security", [bot.member(ALEX)])
    assert await bot.send(bot.slack.slash_command(bot.member(ALEX), "mine"), secret="not-the-signing-secret") == 401
    await bot.command(ALEX, "status", channel=channel)  # answered after the refused one would have been
    (answer,) = await bot.until(lambda: bot.slack.responses)
    assert "Answered" in texts([answer]) and bot.slack.calls_to("chat.postMessage") == []
    assert await ledger_length(bot) == before


async def test_a_replayed_request_older_than_five_minutes_is_refused_401_and_nothing_is_processed(bot: SlackBot) -> None:
    item = bot.item_id("Pradeep Gupta — Exchange Administrator")
    card = await item_message(bot, PATTI, "Pradeep Gupta — Exchange Administrator")
    before = await ledger_length(bot)
    click = bot.slack.block_actions(bot.member(PATTI), buttons(card)["Keep"]["action_id"], channel=card.channel, ts=card.ts)
    assert await bot.send(click, timestamp=int(time.time()) - 6 * 60) == 401
    # A signed request after it is answered; by then the refused one would have been worked on too.
    channel = bot.slack.add_channel("security", [bot.member(PATTI)])
    await bot.command(PATTI, "status", channel=channel)
    await bot.until(lambda: bot.slack.responses)
    assert bot.slack.calls_to("chat.update") == [] and await ledger_length(bot) == before
    assert bot.runtime.service.item(item)[0].decision is None


@pytest.mark.parametrize("body", ["payload=%7Bnot-json", "payload=%5B1%2C2%5D", "", "x" * 5000, "\u2603=%ff%fe"])
async def test_a_signed_body_that_is_no_slack_request_gets_a_4xx_never_a_5xx(bot: SlackBot, body: str) -> None:
    before = await ledger_length(bot)
    assert 400 <= await bot.send(body) < 500
    assert await ledger_length(bot) == before


async def test_slacks_url_check_is_answered_with_its_challenge(bot: SlackBot) -> None:
    challenge = bot.slack.url_verification()
    status, body = await bot.slack.post_to_app(bot.url, challenge)
    assert status == 200 and challenge["challenge"] in body


# ---- slash commands ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "shows"),
    [
        ("help", "history"),
        ("status", "Answered"),
        ("overdue", "overdue"),
        ("findings", "CRITICAL"),
        ("history meganb@contoso.com", "meganb@contoso.com"),
        ("export", "/exports/"),
        ("remind", "remind"),
        ("sign off", "Sign off"),
        ("mine", "Global Administrator"),
    ],
)
async def test_each_command_answers_a_security_lead_in_their_dm(bot: SlackBot, text: str, shows: str) -> None:
    assert await bot.command(ALEX, text) == 200
    dm = bot.slack.dm_of(bot.member(ALEX))
    posted = await bot.until(lambda: bot.slack.posted(dm))
    assert shows.lower() in texts(posted).lower(), texts(posted)[:500]


@pytest.mark.parametrize("command", ["overdue", "findings", "history", "export", "remind", "sign off"])
async def test_security_lead_commands_are_refused_to_a_reviewer_exactly_as_in_teams(bot: SlackBot, command: str) -> None:
    assert await bot.command(PATTI, command) == 200
    posted = await bot.until(lambda: bot.slack.posted(bot.slack.dm_of(bot.member(PATTI))))
    assert LEAD_ONLY.format(command=command)[:40] in texts(posted)


async def test_an_empty_command_answers_with_help(bot: SlackBot) -> None:
    await bot.command(PATTI, "")
    posted = await bot.until(lambda: bot.slack.posted(bot.slack.dm_of(bot.member(PATTI))))
    assert "my reviews" in texts(posted).lower()


# ---- privacy in channels ---------------------------------------------------------------------------------------

async def test_mine_said_in_a_channel_goes_to_the_dm_and_the_channel_sees_nothing(bot: SlackBot) -> None:
    channel = bot.slack.add_channel("security", [bot.member(PATTI), bot.member(ALEX)])
    assert await bot.command(PATTI, "mine", channel=channel) == 200
    pointer = await bot.until(lambda: bot.slack.responses)
    assert pointer[0].response_type == "ephemeral" and "personal chat" in texts(pointer)
    dm = bot.slack.dm_of(bot.member(PATTI))
    assert "Exchange Administrator" in texts(bot.slack.posted(dm))
    assert bot.slack.posted(channel) == []


async def test_findings_asked_in_a_channel_by_a_lead_go_to_the_dm_never_the_channel(bot: SlackBot) -> None:
    channel = bot.slack.add_channel("security", [bot.member(ALEX)])
    await bot.command(ALEX, "findings", channel=channel)
    await bot.until(lambda: bot.slack.responses)
    assert "CRITICAL" in texts(bot.slack.posted(bot.slack.dm_of(bot.member(ALEX))))
    assert bot.slack.posted(channel) == [] and "CRITICAL" not in texts(bot.slack.responses)


async def test_status_by_a_lead_shows_the_chart_image_whose_link_serves_a_png_through_the_app(bot: SlackBot) -> None:
    await bot.command(ALEX, "status")
    dm = bot.slack.dm_of(bot.member(ALEX))
    (message,) = await bot.until(lambda: bot.slack.posted(dm))
    (image,) = [block for block in message.blocks if block["type"] == "image"]
    assert "Answered" in texts([message]) and "Progress: " in image["alt_text"]
    # The link names the public URL; this app listens on a test port: the same path, asked of this app.
    path = image["image_url"].split("/exports/", 1)[1]
    base = bot.url.removesuffix("/slack/events")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as session:
        async with session.get(f"{base}/exports/{path}") as response:
            png = await response.read()
            assert response.status == 200 and response.headers["Content-Type"] == "image/png"
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


async def test_status_asked_in_a_channel_answers_only_the_person_who_asked(bot: SlackBot) -> None:
    channel = bot.slack.add_channel("security", [bot.member(PATTI)])
    await bot.command(PATTI, "status", channel=channel)
    (answer,) = await bot.until(lambda: bot.slack.responses)
    assert answer.response_type == "ephemeral" and bot.slack.posted(channel) == []


# ---- deciding: buttons, the Revoke modal, the message in place ----------------------------------------------------

async def test_keep_is_recorded_and_the_message_updates_in_place_with_who_what_and_when(bot: SlackBot) -> None:
    card = await item_message(bot, PATTI, "Exchange Administrator")
    click = bot.slack.block_actions(bot.member(PATTI), buttons(card)["Keep"]["action_id"], channel=card.channel, ts=card.ts)
    assert await bot.send(click) == 200
    updated = await bot.until(lambda: bot.slack.message(card.channel, card.ts).edits and bot.slack.message(card.channel, card.ts))
    assert "Kept by Patti Fernandez at 2026-11-23 09:30" in texts([updated]) and not buttons(updated)
    item = bot.runtime.service.item(bot.item_id("Pradeep Gupta — Exchange Administrator"))[0]
    assert item.decision is not None and item.decision.action.value == "keep"
    assert verify(await bot.runtime.store.ledger_records()).ok


async def test_an_unfamiliar_mfa_method_reported_in_slack_goes_to_the_security_leads(bot: SlackBot) -> None:
    card = await item_message(bot, PATTI, "Exchange Administrator")  # Pradeep's card lists his MFA devices
    unfamiliar = buttons(card)["Unfamiliar MFA method"]
    assert await bot.send(bot.slack.block_actions(bot.member(PATTI), unfamiliar["action_id"], channel=card.channel,
                                                  ts=card.ts)) == 200
    item_id = bot.item_id("Pradeep Gupta — Exchange Administrator")
    handed = await bot.until(lambda: (item := bot.runtime.service.item(item_id)[0]).stage == "security_leads" and item)
    assert handed.decision is None  # still open, now the security leads' to answer
    record = [r for r in await bot.runtime.store.ledger_records() if r.data.get("item_id") == item_id][-1]
    assert record.data["action"] == "unfamiliar_method" and record.data["actor_id"] == bot.runtime.service.resolve_person(PATTI)


async def modal_opened(bot: SlackBot) -> str:
    await bot.until(lambda: [c for c in bot.slack.calls_to("views.open") if c.ok])
    return next(v for v, view in bot.slack.views.items() if view.get("callback_id") == render.MODAL_CALLBACK)


async def test_revoke_opens_a_modal_within_the_trigger_window_and_its_justification_is_recorded(bot: SlackBot) -> None:
    title = "Pradeep Gupta — Exchange Administrator"
    card = await item_message(bot, PATTI, title)
    click = bot.slack.block_actions(bot.member(PATTI), buttons(card)["Revoke…"]["action_id"], channel=card.channel, ts=card.ts)
    assert await bot.send(click) == 200
    view_id = await modal_opened(bot)
    assert bot.runtime.service.item(bot.item_id(title))[0].decision is None  # nothing decided until it is submitted

    submitted = bot.slack.view_submission(bot.member(PATTI), view_id, {"justification": "Left the company in October"})
    assert await bot.send(submitted) == 200
    updated = await bot.until(lambda: bot.slack.message(card.channel, card.ts).edits and bot.slack.message(card.channel, card.ts))
    assert "Revoked by Patti Fernandez" in texts([updated])
    item = bot.runtime.service.item(bot.item_id(title))[0]
    assert item.decision is not None and item.decision.justification == "Left the company in October"


async def test_reassign_asks_for_the_person_in_a_modal_and_hands_the_item_over(bot: SlackBot) -> None:
    title = "Pradeep Gupta — recovery contacts"
    card = await item_message(bot, PATTI, title)
    click = bot.slack.block_actions(bot.member(PATTI), buttons(card)["Reassign…"]["action_id"], channel=card.channel, ts=card.ts)
    await bot.send(click)
    view_id = await modal_opened(bot)
    await bot.send(bot.slack.view_submission(bot.member(PATTI), view_id, {"reassign_to": "leeg@contoso.com"}))
    await bot.until(lambda: bot.slack.message(card.channel, card.ts).edits)
    item = bot.runtime.service.item(bot.item_id(title))[0]
    assert bot.runtime.service.resolve_person("leeg@contoso.com") in item.reviewers


async def test_a_digest_submit_with_a_revoke_asks_one_justification_then_records_every_choice(bot: SlackBot) -> None:
    await bot.command(ALEX, "mine")
    dm = bot.slack.dm_of(bot.member(ALEX))
    digest = await bot.until(lambda: next((m for m in bot.slack.posted(dm) if "Submit answers" in buttons(m)), None))
    rows = [block for block in digest.blocks if block.get("block_id", "").startswith("choice:")]
    first, second = rows[0]["block_id"].removeprefix("choice:"), rows[1]["block_id"].removeprefix("choice:")
    click = bot.slack.block_actions(bot.member(ALEX), buttons(digest)["Submit answers"]["action_id"], channel=dm, ts=digest.ts)
    click["state"] = {"values": {
        rows[0]["block_id"]: {rows[0]["accessory"]["action_id"]: {"type": "static_select", "selected_option": {"value": "keep"}}},
        rows[1]["block_id"]: {rows[1]["accessory"]["action_id"]: {"type": "static_select", "selected_option": {"value": "revoke"}}},
    }}
    await bot.send(click)
    view_id = await modal_opened(bot)
    await bot.send(bot.slack.view_submission(bot.member(ALEX), view_id, {"justification": "Contract ended"}))
    await bot.until(lambda: bot.slack.message(dm, digest.ts).edits)
    kept, revoked = (bot.runtime.service.item(item)[0].decision for item in (first, second))
    assert kept is not None and kept.action.value == "keep"
    assert revoked is not None and revoked.action.value == "revoke" and revoked.justification == "Contract ended"


def open_rows(message: Any) -> list[str]:
    """The items a digest page still offers a choice for."""
    return [block["block_id"].removeprefix("choice:") for block in message.blocks
            if block.get("block_id", "").startswith("choice:")]


async def digest_pages(bot: SlackBot, email: str) -> list[Any]:
    await bot.command(email, "mine")
    dm = bot.slack.dm_of(bot.member(email))

    def both_pages() -> list[Any] | None:
        pages = [m for m in bot.slack.posted(dm) if "Submit answers" in buttons(m)]
        return pages if len(pages) == 2 else None

    return await bot.until(both_pages)


async def test_an_answer_on_one_page_of_a_two_page_digest_redraws_the_other_page_too(bot: SlackBot) -> None:
    first, second = await digest_pages(bot, ALEX)
    on_second = open_rows(second)
    click = bot.slack.block_actions(bot.member(ALEX), buttons(second)["Submit answers"]["action_id"],
                                    channel=second.channel, ts=second.ts)
    click["state"] = {"values": {
        row["block_id"]: {row["accessory"]["action_id"]: {"type": "static_select", "selected_option": {"value": "keep"}}}
        for row in second.blocks if row.get("block_id", "").startswith("choice:")}}
    await bot.send(click)
    await bot.until(lambda: bot.slack.message(first.channel, first.ts).edits)  # the page not clicked is redrawn too
    await bot.until(lambda: bot.slack.message(second.channel, second.ts).edits)
    pages = [bot.slack.message(first.channel, first.ts), bot.slack.message(second.channel, second.ts)]
    assert all(bot.runtime.service.item(item)[0].decision is not None for item in on_second)
    assert not set(on_second) & {item for page in pages for item in open_rows(page)}  # nowhere offered as open
    assert texts(pages).count("Kept by Alex Wilber") >= len(on_second)
    assert "Recorded" in texts(pages)


async def test_a_digest_item_answered_in_teams_is_redrawn_on_every_page_of_the_slack_digest(both: tuple[SlackBot, Bot]) -> None:
    slack, teams = both
    first, second = await digest_pages(slack, ALEX)
    item = open_rows(second)[0]
    await slack.until(lambda: item in slack.runtime.store.every_card())  # kept once the last page is posted
    status, _ = await teams.execute("decide", {"item": item, "action": "keep"})
    assert status == 200
    await slack.runtime.scheduler.run_once()
    pages = [slack.slack.message(first.channel, first.ts), slack.slack.message(second.channel, second.ts)]
    assert [page.edits for page in pages] == [1, 1]  # the digest redrawn once, though it holds many items
    assert item not in {row for page in pages for row in open_rows(page)} and "Kept by Alex Wilber" in texts(pages)


# ---- App Home -----------------------------------------------------------------------------------------------------

async def test_the_home_tab_shows_the_persons_open_items_and_the_campaigns_progress(bot: SlackBot) -> None:
    assert await bot.send(bot.slack.app_home_opened(bot.member(PATTI))) == 200
    home = await bot.until(lambda: bot.slack.home_of(bot.member(PATTI)))
    shown = json.dumps(home["blocks"], ensure_ascii=False)
    assert "Pradeep Gupta — Exchange Administrator" in shown and "waiting for your answer" in shown and "Due" in shown
    assert "Global Administrator" not in shown  # Alex's items are not Patti's


# ---- people Slack cannot map ----------------------------------------------------------------------------------------

async def test_a_member_matching_nobody_in_the_directory_is_told_why_and_nothing_is_recorded(bot: SlackBot) -> None:
    stranger = bot.slack.add_user("someone@fabrikam.example")["id"]
    before = await ledger_length(bot)
    await bot.send(bot.slack.slash_command(stranger, "mine"))
    said = texts(await bot.until(lambda: bot.slack.responses))
    assert "someone@fabrikam.example" in said and "[slack] users" in said and stranger in said
    assert await ledger_length(bot) == before


# ---- one item, two channels -----------------------------------------------------------------------------------------

@pytest.fixture
async def both(tmp_path: Path) -> AsyncIterator[tuple[SlackBot, Bot]]:
    """One deployment serving Teams (through the fake Bot Connector) and Slack at once."""
    connector = FakeConnector()
    await connector.start()
    served = await serve_slack_demo(tmp_path, teams_service_url=connector.url)
    yield served, Bot(served.runtime, served.url.replace("/slack/events", "/api/messages"), connector)
    await served.close()
    await connector.stop()


async def test_a_decision_made_in_slack_refreshes_the_teams_card_of_the_same_item(both: tuple[SlackBot, Bot]) -> None:
    slack, teams = both
    title = "Pradeep Gupta — Exchange Administrator"
    assert await teams.say("my reviews", person=TEAMS_PATTI) == 201
    (teams_card,) = [c for c in await slack.runtime.store.cards(slack.item_id(title)) if c.channel == "teams"]
    card = await item_message(slack, PATTI, title)
    await slack.send(slack.slack.block_actions(slack.member(PATTI), buttons(card)["Keep"]["action_id"],
                                               channel=card.channel, ts=card.ts))
    await slack.until(lambda: slack.slack.message(card.channel, card.ts).edits)

    await slack.runtime.scheduler.run_once()
    (update,) = [r for r in teams.connector.received if r.method == "PUT"]
    assert update.activity_id == teams_card.message_id and "Kept by Patti Fernandez" in card_text(update.cards[0])


async def test_a_decision_made_in_teams_refreshes_the_slack_message_of_the_same_item(both: tuple[SlackBot, Bot]) -> None:
    slack, teams = both
    title = "Pradeep Gupta — Exchange Administrator"
    card = await item_message(slack, PATTI, title)
    status, _ = await teams.execute("decide", {"item": slack.item_id(title), "action": "keep"}, person=TEAMS_PATTI)
    assert status == 200 and slack.slack.message(card.channel, card.ts).edits == 0

    await slack.runtime.scheduler.run_once()
    redrawn = slack.slack.message(card.channel, card.ts)
    assert redrawn.edits == 1 and "Kept by Patti Fernandez" in texts([redrawn]) and not buttons(redrawn)
    await slack.runtime.scheduler.run_once()
    assert slack.slack.message(card.channel, card.ts).edits == 1  # redrawn once, not every round


# ---- the security leads' live status ------------------------------------------------------------------------------

async def test_the_live_status_is_posted_in_the_leads_channel_and_updated_in_place_as_answers_arrive(bot: SlackBot) -> None:
    leads = bot.slack.add_channel("security-leads", [bot.member(ALEX)])
    await bot.command(ALEX, "watch status", channel=leads)
    (live,) = await bot.until(lambda: bot.slack.posted(leads))
    card = await item_message(bot, PATTI, "Pradeep Gupta — Exchange Administrator")
    await bot.send(bot.slack.block_actions(bot.member(PATTI), buttons(card)["Keep"]["action_id"], channel=card.channel, ts=card.ts))
    await bot.until(lambda: bot.slack.message(card.channel, card.ts).edits)

    await bot.runtime.scheduler.run_once()
    assert bot.slack.message(leads, live.ts).edits == 1 and len(bot.slack.posted(leads)) == 1


# ---- someone Slack cannot find --------------------------------------------------------------------------------------

def forget_lee(bot: SlackBot) -> str:
    """Lee Gu has no Slack account (and no Teams chat here); his object id."""
    lee = bot.runtime.service.resolve_person("leeg@contoso.com")
    assert lee is not None
    del bot.slack.users[bot.member("leeg@contoso.com")]
    bot.slack._by_email.pop("leeg@contoso.com")
    return lee


def message_to(person: str) -> OutboxMessage:
    return OutboxMessage(key=f"fallback:week-48>{person}", recipient=person, kind="escalation",
                         payload={"text": "3 items now wait for you."}, created_at=MONDAY, next_attempt_at=MONDAY)


async def test_someone_slack_cannot_find_waits_for_teams_and_nothing_is_dropped(bot: SlackBot) -> None:
    lee = forget_lee(bot)
    await bot.runtime.store.enqueue([message_to(lee)])
    result = await bot.runtime.notifier.drain()  # with it, the campaign's own requests to the others
    assert result.undeliverable == 0 and result.deferred == 1
    (waiting,) = await bot.runtime.store.due_messages(MONDAY + timedelta(hours=1), 10)
    assert waiting.recipient == lee and waiting.attempts == 1
    lookups = len(bot.slack.calls_to("users.lookupByEmail"))
    bot.runtime.service.clock.advance(timedelta(minutes=10))  # type: ignore[attr-defined]
    assert (await bot.runtime.notifier.drain()).deferred == 1
    assert len(bot.slack.calls_to("users.lookupByEmail")) == lookups  # not asked again at every round


async def test_with_slack_alone_a_person_it_cannot_find_is_reported_to_the_security_leads(bot: SlackBot) -> None:
    lee = forget_lee(bot)
    assert bot.runtime.slack is not None
    slack_only = ChannelSet(bot.runtime.service, bot.runtime.store, [bot.runtime.slack])
    notifier = Notifier(bot.runtime.store, slack_only, bot.runtime.service.clock,
                        on_undeliverable=bot.runtime.notifier.on_undeliverable)
    await bot.runtime.store.enqueue([message_to(lee)])
    first = await notifier.drain()  # with it, the campaign's requests and the report to the leads
    assert first.undeliverable == 1 and first.deferred == 0
    assert await notifier.drain() == DrainResult(0, 0)
    report = texts(bot.slack.posted(bot.slack.dm_of(bot.member(ALEX))))
    assert "Could not reach Lee Gu in Teams or Slack" in report and "[slack] users" in report

