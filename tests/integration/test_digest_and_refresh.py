"""The digest card and Universal Actions refresh, through /api/messages like Teams sends them."""

from __future__ import annotations

from dataclasses import replace

from bot.engine.model import Finding
from tests.integration.fake_connector import card_text
from tests.integration.test_teams_messages import PATTI, Bot, bot  # noqa: F401 (pytest fixture)


def decisions(records):  # type: ignore[no-untyped-def]
    return [r for r in records if r.type == "decision"]


async def test_digest_submit_records_each_chosen_answer_and_shows_it(bot: Bot) -> None:  # noqa: F811
    megan = bot.item_id("Megan Bowen — Global Administrator")
    christie = bot.item_id("Christie Cline — Global Administrator")
    status, body = await bot.execute(
        "digest",
        {"digest": True, f"choice:{megan}": "keep", f"choice:{christie}": "revoke", "justification": "No sign-in for 95 days"},
    )
    assert status == 200
    text = card_text(body["value"])
    assert "Recorded 2 answer(s)" in text and "Kept by Alex Wilber" in text and "Revoked by Alex Wilber" in text
    recorded = {r.data["item_id"]: r.data for r in decisions(await bot.runtime.store.ledger_records())}
    assert recorded[megan]["action"] == "keep" and recorded[megan]["justification"] == ""
    assert recorded[christie]["action"] == "revoke" and recorded[christie]["justification"] == "No sign-in for 95 days"


async def test_digest_revoke_without_justification_is_refused_per_item(bot: Bot) -> None:  # noqa: F811
    megan = bot.item_id("Megan Bowen — Global Administrator")
    _, body = await bot.execute("digest", {"digest": True, f"choice:{megan}": "revoke"})
    assert "Revoke needs a justification" in card_text(body["value"])
    assert not decisions(await bot.runtime.store.ledger_records())


async def test_keep_all_not_flagged_keeps_only_items_no_check_flagged(bot: Bot) -> None:  # noqa: F811
    service = bot.runtime.service
    (state,) = service.campaigns()
    megan = bot.item_id("Megan Bowen — Global Administrator")
    flagged = Finding("admin_mfa_missing", "Admin without MFA", "high", "recommended: require MFA")
    item = state.items[megan]
    state.items[megan] = replace(item, subject=replace(item.subject, findings=(flagged,)))
    _, body = await bot.execute("digest", {"keep_unflagged": True})
    kept = {r.data["item_id"] for r in decisions(await bot.runtime.store.ledger_records())}
    mine = {i.id for i, _ in service.items_for("8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01")}
    assert megan not in kept and kept and megan in mine
    assert all(not state.items[i].subject.findings and state.items[i].exception is None for i in kept)
    assert any(i.exception is not None for i, _ in service.items_for("8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"))
    assert "HIGH: Admin without MFA" in card_text(body["value"])
    _, again = await bot.execute("digest", {"keep_unflagged": True})
    assert "Nothing chosen" in card_text(again["value"])


async def test_details_sends_the_items_own_card_and_keeps_the_digest(bot: Bot) -> None:  # noqa: F811
    megan = bot.item_id("Megan Bowen — Global Administrator")
    _, body = await bot.execute("details", {"item": megan})
    assert "Your access reviews" in card_text(body["value"])
    (sent,) = bot.connector.cards()
    assert "Megan Bowen — Global Administrator" in card_text(sent) and any(a["title"] == "Keep" for a in sent["actions"])


async def test_refresh_shows_whoever_opens_the_card_the_item_as_it_stands(bot: Bot) -> None:  # noqa: F811
    exchange = bot.item_id("Pradeep Gupta — Exchange Administrator")
    _, before = await bot.execute("refresh", {"item": exchange}, person=PATTI)
    assert any(a["title"] == "Keep" for a in before["value"]["actions"])
    await bot.execute("decide", {"item": exchange, "action": "keep"}, person=PATTI)
    _, after = await bot.execute("refresh", {"item": exchange}, person=PATTI)
    assert "Kept by Patti Fernandez" in card_text(after["value"]) and "actions" not in after["value"]
    assert after["value"]["refresh"]["userIds"] == ["29:1patti"]
    assert len(decisions(await bot.runtime.store.ledger_records())) == 1  # a refresh records nothing


async def test_someone_who_may_not_answer_sees_the_card_without_buttons(bot: Bot) -> None:  # noqa: F811
    megan = bot.item_id("Megan Bowen — Global Administrator")
    lee = {"id": "29:1lee", "name": "Lee Gu", "aadObjectId": "b50ac046-d9dc-4082-bf5c-754e99944465"}
    _, card = await bot.execute("refresh", {"item": megan}, person=lee)
    assert "Megan Bowen — Global Administrator" in card_text(card["value"]) and "actions" not in card["value"]
    _, own = await bot.execute("refresh", {"item": megan})
    assert [a["title"] for a in own["value"]["actions"]][:2] == ["Keep", "Revoke"]


async def test_a_card_is_updated_in_place_when_its_item_is_answered_elsewhere(bot: Bot) -> None:  # noqa: F811
    from bot.engine.decisions import DecisionRequest
    from bot.engine.model import Action

    await bot.say("my reviews", person=PATTI)
    exchange = bot.item_id("Pradeep Gupta — Exchange Administrator")
    (sent,) = await bot.runtime.store.cards(exchange)
    # answered somewhere else (another device, the digest, another channel): not through this card
    await bot.runtime.service.decide(DecisionRequest(exchange, Action.KEEP, PATTI["aadObjectId"], "Patti Fernandez"))
    await bot.runtime.scheduler.run_once()
    (update,) = [r for r in bot.connector.received if r.method == "PUT"]
    assert update.activity_id == sent.message_id and update.conversation_id == "a:personal-29:1patti"
    assert "Kept by Patti Fernandez" in card_text(update.cards[0]) and "actions" not in update.cards[0]
    await bot.runtime.scheduler.run_once()
    assert len([r for r in bot.connector.received if r.method == "PUT"]) == 1  # redrawn once, not every round


async def test_submit_with_nothing_chosen_says_so_beside_the_buttons(bot: Bot) -> None:  # noqa: F811
    """The digest is long: the answer to "Submit answers" must be where the button is, not at the top."""
    status, body = await bot.execute("digest", {"digest": True, "justification": ""})
    assert status == 200
    card = body["value"]
    *_, last_row, notice, justification = card["body"]
    assert justification["id"] == "justification" and [a["title"] for a in card["actions"]][0] == "Submit answers"
    assert notice["type"] == "Container" and notice["style"] == "warning"
    assert "Nothing chosen" in card_text({"body": [notice]}) and "Nothing chosen" not in card_text({"body": card["body"][:3]})
    assert not decisions(await bot.runtime.store.ledger_records())


async def test_a_digest_row_says_which_recovery_contact_is_missing(bot: Bot) -> None:  # noqa: F811
    """Megan's row read "m•••@gmail.com — free-mail domain · none registered": none of what?"""
    await bot.say("my reviews")
    digest = card_text(bot.connector.cards()[-1])
    assert "m•••@gmail.com — free-mail domain · Phone: none registered" in digest
