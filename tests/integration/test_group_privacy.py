"""What is one person's never lands where others read along: asked for in a group chat or a channel, it goes
to the person's personal chat and the shared conversation gets only a pointer."""

from __future__ import annotations

from typing import Any

from tests.integration.fake_connector import card_text
from tests.integration.test_teams_messages import ALEX, PATTI, TENANT, Bot, bot  # noqa: F401  (the fixture)

GROUP = "19:accessbot-reviewers@thread.v2"
CHANNEL = "19:accessbot-reviews@thread.tacv2"
ALEX_PERSON = {"id": "29:1alex", "name": "Alex Wilber", "aadObjectId": ALEX}


def _in(kind: str, conversation_id: str) -> dict[str, Any]:
    return {"conversationType": kind, "tenantId": TENANT, "id": conversation_id, "isGroup": True}


def _shared_text(bot: Bot, conversation_id: str) -> str:
    return "\n".join(
        (r.body.get("text") or "") + "".join(card_text(c) for c in r.cards)
        for r in bot.connector.received if r.conversation_id == conversation_id
    )


async def test_my_reviews_in_a_group_chat_sends_a_pointer_there_and_the_digest_to_the_personal_chat(bot: Bot) -> None:
    await bot.say("help")  # Alex's personal chat with the bot exists
    before = len(bot.connector.received)
    assert await bot.say("my reviews", conversation=_in("groupChat", GROUP)) == 201
    in_group = [r for r in bot.connector.received[before:] if r.conversation_id == GROUP]
    assert [r.body.get("text") for r in in_group] == ["I've sent your reviews to you in our personal chat."]
    assert not any(r.cards for r in in_group)
    personal = [r for r in bot.connector.received[before:] if r.conversation_id == "a:personal-29:1alex"]
    (digest,) = [card for r in personal for card in r.cards]
    assert "Your access reviews" in card_text(digest) and "CRITICAL" in card_text(digest)
    assert "CRITICAL" not in _shared_text(bot, GROUP) and "Megan Bowen" not in _shared_text(bot, GROUP)


async def test_a_reviewer_with_no_personal_chat_yet_gets_one_started_for_the_cards(bot: Bot) -> None:
    await bot.say("my reviews", person=PATTI, conversation=_in("channel", CHANNEL))
    (created,) = bot.connector.created
    assert created["members"][0]["aadObjectId"] == PATTI["aadObjectId"]
    personal = [r for r in bot.connector.received if r.conversation_id == f"a:created-{PATTI['aadObjectId']}"]
    assert sum(len(r.cards) for r in personal) == 2  # her two item cards, stored so they can be updated later
    assert await bot.runtime.store.cards(bot.item_id("Pradeep Gupta — Exchange Administrator"))
    assert "Pradeep Gupta" not in _shared_text(bot, CHANNEL)
    assert "sent your reviews to you in our personal chat" in _shared_text(bot, CHANNEL)


async def test_when_no_personal_chat_can_be_reached_nothing_personal_is_posted_in_the_group(bot: Bot) -> None:
    bot.connector.not_installed.add(PATTI["aadObjectId"])
    await bot.say("my reviews", person=PATTI, conversation=_in("groupChat", GROUP))
    said = _shared_text(bot, GROUP)
    assert "couldn't reach you in a personal chat" in said and "Open a chat with me and say 'my reviews'" in said
    assert "Pradeep Gupta" not in said and not bot.connector.cards()


async def test_a_security_leads_findings_and_history_asked_in_a_channel_go_to_the_lead_only(bot: Bot) -> None:
    await bot.say("help")
    for command, pointer in (("findings", "the findings"), ("history meganb@contoso.com", "that history"),
                             ("export", "the download links"), ("sign off", "what is still open")):
        await bot.say(command, conversation=_in("channel", CHANNEL))
        said = bot.connector.texts_in(CHANNEL)[-1]
        assert said.startswith(f"I've sent {pointer}") and said.endswith("to you in our personal chat."), command
    shared = _shared_text(bot, CHANNEL)
    assert "CRITICAL" not in shared and "Megan Bowen" not in shared and "/exports/" not in shared
    assert not [r for r in bot.connector.received if r.conversation_id == CHANNEL and r.cards]


async def test_status_in_a_channel_stays_in_the_channel(bot: Bot) -> None:
    await bot.say("status", conversation=_in("channel", CHANNEL))
    (card,) = [c for r in bot.connector.received if r.conversation_id == CHANNEL for c in r.cards]
    assert "Contoso review" in card_text(card)


async def test_the_welcome_in_a_group_chat_keeps_the_waiting_count_for_the_personal_chat(bot: Bot) -> None:
    await bot.say("help")
    await bot.post(bot.activity(type="installationUpdate", action="add", conversation=_in("groupChat", GROUP)))
    group = _shared_text(bot, GROUP)
    assert "Hi, I'm accessbot" in group and "waiting for you" not in group
    # Teams hands the bot only messages that mention it there: "say 'help'" would be heard by nobody.
    assert "mention me first: '@" in group and "Say 'help'" not in group
    assert "27 items are waiting for you: say 'my reviews'." in bot.connector.texts_in("a:personal-29:1alex")
