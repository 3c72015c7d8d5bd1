"""Security leads ask the bot in chat; everyone else is politely refused. Driven through /api/messages."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta

import aiohttp

from tests.integration.fake_connector import card_text
from tests.integration.test_teams_messages import ALEX, TENANT, Bot, bot  # noqa: F401 (pytest fixture)

PATTI = {"id": "29:1patti", "name": "Patti Fernandez", "aadObjectId": "f66eb8b7-79c8-407b-8b95-85a879f2381e"}


def last_card_text(bot: Bot) -> str:  # noqa: F811
    return card_text(bot.connector.cards()[-1])


async def test_a_reviewer_who_is_not_a_security_lead_is_politely_refused(bot: Bot) -> None:  # noqa: F811
    for command in ("overdue", "findings", "history meganb@contoso.com", "export", "sign off"):
        await bot.say(command, person=PATTI)
        assert "Only the security leads" in bot.connector.texts()[-1], command
    assert not [r for r in await bot.runtime.store.ledger_records() if r.type == "campaign_signed_off"]


async def test_overdue_lists_items_past_their_deadline_with_their_reviewers(bot: Bot) -> None:  # noqa: F811
    await bot.say("overdue")
    assert bot.connector.texts()[-1] == "Nothing is overdue."
    bot.runtime.service.clock.advance(timedelta(days=6))  # type: ignore[attr-defined]
    await bot.runtime.service.tick()
    await bot.say("overdue")
    text = last_card_text(bot)
    assert "overdue item(s)" in text and "Megan Bowen — Global Administrator" in text and "Patti Fernandez" in text


async def test_history_shows_every_recorded_answer_about_a_person(bot: Bot) -> None:  # noqa: F811
    await bot.click(bot.item_id("Megan Bowen — Global Administrator"), "keep")
    await bot.say("history meganb@contoso.com")
    text = last_card_text(bot)
    assert "History of meganb@contoso.com" in text and "Kept by Alex Wilber" in text
    await bot.say("history nobody@nowhere.example")
    assert "No recorded answers" in bot.connector.texts()[-1]


async def test_export_gives_working_signed_links_and_refuses_altered_ones(bot: Bot) -> None:  # noqa: F811
    await bot.click(bot.item_id("Megan Bowen — Global Administrator"), "keep")
    await bot.say("export")
    links = dict(re.findall(r"\[([^\]]+)\]\((http://[^)]+)\)", bot.connector.texts()[-1]))
    assert set(links) == {"evidence report (PDF)", "report (HTML)", "evidence pack (zip)", "attestations CSV",
                          "attestations JSON"}
    base = bot.url.replace("/api/messages", "")
    async with aiohttp.ClientSession() as session:
        zip_link = links["evidence pack (zip)"]
        path = zip_link.split("/exports/", 1)[1]
        async with session.get(f"{base}/exports/{path}") as response:
            assert response.status == 200
            pack = zipfile.ZipFile(io.BytesIO(await response.read()))
        assert set(pack.namelist()) == {"attestations.csv", "attestations.json", "summary.json"}
        summary = json.loads(pack.read("summary.json"))
        records = await bot.runtime.store.ledger_records()
        assert summary["ledger_head"] == {"seq": records[-1].seq, "hash": records[-1].hash}
        assert summary["items"]["kept"] == 1
        assert "keep" in pack.read("attestations.csv").decode()
        forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
        async with session.get(f"{base}/exports/{forged}") as response:
            assert response.status == 403


async def test_remind_queues_a_reminder_for_that_reviewer_now(bot: Bot) -> None:  # noqa: F811
    await bot.say("remind pattif@contoso.com")
    assert "Reminded Patti Fernandez of 2 item(s)" in bot.connector.texts()[-1]
    due = await bot.runtime.store.due_messages(bot.runtime.service.clock.now(), 100)
    assert any(m.recipient == PATTI["aadObjectId"] and "asks you to finish" in m.payload["text"] for m in due)


async def test_sign_off_with_open_items_asks_first_and_a_typed_confirm_locks_the_answers(bot: Bot) -> None:  # noqa: F811
    await bot.say("sign off")
    question = last_card_text(bot)
    # the first fifteen open items by title are listed; Megan's is sixteenth since Isaiah's eligible User Administrator
    assert "29 item(s) are still waiting" in question and "Christie Cline — Global Administrator" in question
    assert not [r for r in await bot.runtime.store.ledger_records() if r.type == "campaign_signed_off"]
    await bot.say("sign off confirm")
    assert "Signed off by Alex Wilber" in bot.connector.texts()[-1]
    assert "29 item(s) are recorded as unanswered at sign-off" in bot.connector.texts()[-1]
    _, body = await bot.click(bot.item_id("Megan Bowen — Global Administrator"), "keep")
    assert "signed off by Alex Wilber" in card_text(body["value"])
    records = await bot.runtime.store.ledger_records()
    assert [r.type for r in records].count("campaign_signed_off") == 1 and "decision" not in [r.type for r in records]
    (signed,) = [r for r in records if r.type == "campaign_signed_off"]
    assert len(signed.data["unanswered"]) == 29 and signed.data["excepted"] == 2
    await bot.say("sign off")
    assert "Already signed off" in bot.connector.texts()[-1]


async def test_status_after_sign_off_calls_nobodys_items_open(bot: Bot) -> None:  # noqa: F811
    """It used to say "Unanswered at sign-off N" above "Alex Wilber M open": two counts of one thing."""
    await bot.say("sign off confirm")
    await bot.say("status")
    status = " ".join(last_card_text(bot).split())
    assert "Unanswered at sign-off 29" in status and "Signed off by Alex Wilber" in status
    assert "Alex Wilber 27 unanswered at sign-off, 0 answered" in status and " open" not in status


async def test_confirm_on_the_sign_off_card_signs_off_and_the_open_cards_redraw_locked(bot: Bot) -> None:  # noqa: F811
    await bot.say("my reviews", person=PATTI)  # two item cards with buttons in Patti's chat
    await bot.say("sign off")
    card = bot.connector.cards()[-1]
    confirm, cancel = card["actions"]
    assert (confirm["title"], cancel["title"]) == ("Sign off", "Cancel") and confirm["verb"] == "confirm"
    _, cancelled = await bot.execute(cancel["verb"], cancel["data"])
    assert "cancelled" in card_text(cancelled["value"])
    _, signed = await bot.execute(confirm["verb"], confirm["data"])
    assert "Signed off by Alex Wilber" in card_text(signed["value"]) and "actions" not in signed["value"]
    await bot.runtime.scheduler.run_once()  # the round after: every sent card is redrawn in place
    updates = [r for r in bot.connector.received if r.method == "PUT"]
    assert len(updates) == 2
    for update in updates:
        assert "Review closed, signed off by Alex Wilber" in card_text(update.cards[0])
        assert "actions" not in update.cards[0]
    await bot.say("my reviews", person=PATTI)
    assert "Review closed, signed off by Alex Wilber" in bot.connector.texts()[-1]
    assert "nothing to answer until the next review" in bot.connector.texts()[-1]


async def test_a_confirmation_for_a_campaign_signs_off_that_campaign_only(bot: Bot) -> None:  # noqa: F811
    _, body = await bot.execute("confirm", {"intent": "sign off", "ref": "tenant:1999-01-01T09:00", "confirm": True})
    assert "no longer exists" in card_text(body["value"])
    _, body = await bot.execute("confirm", {"intent": "sign off", "ref": "x", "confirm": True}, person=PATTI)
    assert "Only the security leads" in card_text(body["value"])
    campaign = bot.runtime.service.campaigns()[0].campaign.id
    _, body = await bot.execute("confirm", {"intent": "sign off", "ref": campaign, "confirm": "false"})
    assert "cancelled" in card_text(body["value"])
    _, body = await bot.execute("confirm", {"intent": "delete everything", "ref": campaign, "confirm": True})
    assert "not one I know" in card_text(body["value"])
    assert not [r for r in await bot.runtime.store.ledger_records() if r.type == "campaign_signed_off"]


async def test_start_review_says_the_period_is_already_open(bot: Bot) -> None:  # noqa: F811
    await bot.say("start review")
    assert "already open" in bot.connector.texts()[-1]


async def test_help_for_a_security_lead_lists_the_lead_commands(bot: Bot) -> None:  # noqa: F811
    await bot.say("help")
    assert "sign off" in last_card_text(bot) and "history <person or partner>" in last_card_text(bot)
    await bot.say("help", person=PATTI)
    assert "sign off" not in last_card_text(bot)


async def test_remediations_and_approve_answer_in_chat(bot: Bot) -> None:  # noqa: F811
    await bot.say("remediations")  # the demo policy's mode is off: nothing is "yet" to come, and it says so
    said = bot.connector.texts()[-1]
    assert "Remediation is off, so accessbot removes nothing" in said and "yet" not in said
    assert 'mode = "dry-run"' in said
    await bot.say("approve 12345678")
    assert "No single remediation matches" in bot.connector.texts()[-1]


async def test_watch_status_posts_a_live_card_in_the_channel_and_redraws_it_as_answers_arrive(bot: Bot) -> None:  # noqa: F811
    channel = {"conversationType": "channel", "id": "19:access-reviews@thread.tacv2", "tenantId": TENANT}
    status = await bot.post(bot.activity(type="message", text="<at>accessbot</at> watch status", conversation=channel,
                                         entities=[{"type": "mention", "text": "<at>accessbot</at>",
                                                    "mentioned": {"id": "28:accessbot", "name": "accessbot"}}]))
    assert status[0] == 201
    posted = bot.connector.received[-1]
    assert posted.conversation_id == channel["id"] and "Live: updated as answers arrive" in card_text(posted.cards[0])
    assert await bot.runtime.store.get_conversation(f"channel:{channel['id']}") is not None
    await bot.runtime.scheduler.run_once()
    before = [r for r in bot.connector.received if r.method == "PUT"]
    await bot.click(bot.item_id("Megan Bowen — Global Administrator"), "keep")
    await bot.runtime.scheduler.run_once()
    (redrawn,) = [r for r in bot.connector.received if r.method == "PUT"][len(before):]
    live = await bot.runtime.store.get_conversation("live-status-card")
    assert live is not None and live["activityId"].startswith("sent-")
    assert redrawn.conversation_id == channel["id"] and redrawn.activity_id == live["activityId"]
    assert "1 (1 kept, 0 revoked)" in card_text(redrawn.cards[0])
    await bot.runtime.scheduler.run_once()
    assert len([r for r in bot.connector.received if r.method == "PUT"]) == len(before) + 1  # nothing new, no redraw


async def test_findings_come_grouped_by_check_a_page_at_a_time(bot: Bot) -> None:  # noqa: F811
    await bot.say("findings")
    first = last_card_text(bot)
    assert re.search(r"\d+ finding\(s\) from \d+ check\(s\)", first) and "Page 1 of" in first
    assert "Say 'findings 2' for the next" in first
    await bot.say("findings 2")
    assert "Page 2 of" in last_card_text(bot) and last_card_text(bot) != first
    await bot.say("findings 99")
    assert "page(s) of findings: say 'findings 1' to" in bot.connector.texts()[-1]
    assert await bot.say("findings ²") == 201  # a digit int() refuses: page 1, not an error
    assert "Page 1 of" in last_card_text(bot)


async def test_after_sign_off_nothing_is_overdue_or_chased(bot: Bot) -> None:  # noqa: F811
    await bot.say("sign off confirm")
    bot.runtime.service.clock.advance(timedelta(days=6))  # type: ignore[attr-defined]
    assert await bot.runtime.service.tick() == 0
    await bot.say("overdue")
    assert bot.connector.texts()[-1] == "Nothing is overdue."
