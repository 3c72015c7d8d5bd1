"""A delegate (the policy's ``[delegates]``) sees on whose behalf they answer, and the answer says it everywhere
it is shown: the Teams card, the Slack message, the digest line, the ledger record and the evidence report.

In the demo policy Adele Vance answers for Patti Fernandez, and Lynne Robbins for Alex Wilber.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import AsyncIterator

import pytest

from bot.report.figures import tenant_report
from tests.integration.fake_connector import card_text
from tests.integration.slack_app import SlackBot, serve_slack_demo
from tests.integration.test_slack_channel import buttons, item_message, texts
from tests.integration.test_teams_messages import PATTI, Bot, bot  # noqa: F401  (the fixture)

ADELE = {"id": "29:1adele", "name": "Adele Vance", "aadObjectId": "ba898b2a-9794-415b-a3df-cf7b824da266"}
LYNNE = {"id": "29:1lynne", "name": "Lynne Robbins", "aadObjectId": "0352574e-9ccb-4a60-b927-66c30c6c9a04"}
AS_PATTIS = "as Patti Fernandez's delegate"


async def test_a_delegates_cards_say_whose_delegate_they_are_and_the_reviewers_own_do_not(bot: Bot) -> None:
    await bot.say("my reviews", person=ADELE)
    cards = bot.connector.cards()
    assert len(cards) == 2 and all(f"You answer {AS_PATTIS}." in card_text(card) for card in cards)
    before = len(cards)
    await bot.say("my reviews", person=PATTI)
    assert not any("delegate" in card_text(card) for card in bot.connector.cards()[before:])


async def test_a_delegates_answer_is_recorded_with_both_names_and_shown_on_the_card_and_in_the_report(bot: Bot) -> None:
    service = bot.runtime.service
    item = bot.item_id("Pradeep Gupta — Exchange Administrator")
    status, body = await bot.execute("decide", {"item": item, "action": "keep", "justification": ""}, person=ADELE)
    assert status == 200
    assert f"Kept by Adele Vance {AS_PATTIS} at 2026-11-23 09:30 UTC" in card_text(body["value"])
    (record,) = [r for r in await bot.runtime.store.ledger_records() if r.type == "decision"]
    assert (record.data["actor"], record.data["actor_id"]) == ("Adele Vance", ADELE["aadObjectId"])
    assert (record.data["on_behalf_of_name"], record.data["on_behalf_of"]) == ("Patti Fernandez", PATTI["aadObjectId"])

    (state,) = service.campaigns()
    report = tenant_report(state, [record], service.clock.now(), service.display_name)
    assert [a.actor for a in report.attestations] == [f"Adele Vance {AS_PATTIS}"]
    # An answer recorded before the ledger kept the reviewer's name: the report names them from the id it holds.
    older = replace(record, data={k: v for k, v in record.data.items() if k != "on_behalf_of_name"})
    report = tenant_report(state, [older], service.clock.now(), service.display_name)
    assert [a.actor for a in report.attestations] == [f"Adele Vance {AS_PATTIS}"]


async def test_a_delegates_digest_says_on_each_line_whose_item_it_is(bot: Bot) -> None:
    await bot.say("my reviews", person=LYNNE)
    (digest,) = bot.connector.cards()
    rows = [c for c in digest["body"] if c.get("type") == "Container" and c.get("separator")]
    assert len(rows) > 5 and all("You answer as Alex Wilber's delegate." in card_text({"body": [row]}) for row in rows)
    await bot.execute("digest", {"keep_unflagged": True}, person=LYNNE)
    kept = [r for r in await bot.runtime.store.ledger_records() if r.type == "decision"]
    assert kept and all(r.data["on_behalf_of_name"] == "Alex Wilber" for r in kept)


@pytest.fixture
async def slack(tmp_path: Path) -> AsyncIterator[SlackBot]:
    served = await serve_slack_demo(tmp_path)
    yield served
    await served.close()


async def test_in_slack_a_delegates_message_says_whose_delegate_they_are_before_and_after_the_answer(
    slack: SlackBot,
) -> None:
    adele = "adelev@contoso.com"
    message = await item_message(slack, adele, "Exchange Administrator")
    assert f"You answer {AS_PATTIS}." in texts([message])
    keep = buttons(message)["Keep"]["action_id"]
    await slack.send(slack.slack.block_actions(slack.member(adele), keep, channel=message.channel, ts=message.ts))
    updated = await slack.until(lambda: slack.slack.message(message.channel, message.ts).edits
                                and slack.slack.message(message.channel, message.ts))
    shown = json.dumps(updated.blocks, ensure_ascii=False)
    assert f"Kept by Adele Vance {AS_PATTIS} at 2026-11-23 09:30 UTC" in shown and "You answer" not in shown
