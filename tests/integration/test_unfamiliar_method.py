"""A reviewer who does not recognise one of an admin's MFA devices says so from the card; the security
leads are told at once, get the item, and see the count in 'status'. Driven through /api/messages."""

from __future__ import annotations

from tests.integration.fake_connector import card_text
from tests.integration.test_teams_messages import ALEX, Bot, bot  # noqa: F401 (pytest fixture)

PATTI = {"id": "29:1patti", "name": "Patti Fernandez", "aadObjectId": "f66eb8b7-79c8-407b-8b95-85a879f2381e"}
LYNNE = "0352574e-9ccb-4a60-b927-66c30c6c9a04"
PRADEEP = "Pradeep Gupta — Exchange Administrator"


async def report(bot: Bot, note: str) -> tuple[int, dict]:  # noqa: F811
    return await bot.execute("decide", {"item": bot.item_id(PRADEEP), "action": "unfamiliar_method",
                                        "justification": note}, person=PATTI)


async def test_the_reviewer_reports_an_unfamiliar_mfa_method_and_the_security_leads_see_it(bot: Bot) -> None:  # noqa: F811
    await bot.say("my reviews", person=PATTI)
    card = next(c for c in bot.connector.cards() if PRADEEP in card_text(c))
    assert "Authenticator “SM-A546B” (2026-11-21)" in card_text(card)
    button = next(a for a in card["actions"] if a["title"] == "Unfamiliar MFA method")
    assert button["data"]["action"] == "unfamiliar_method"

    status, answer = await report(bot, "He only has the Galaxy")
    assert status == 200
    replaced = card_text(answer["value"])
    assert "Recorded in the attestation ledger." in replaced
    assert "Unfamiliar MFA method reported by Patti Fernandez" in replaced

    due = await bot.runtime.store.due_messages(bot.runtime.service.clock.now(), 100)
    alerts = [m for m in due if m.kind == "method_alert"]
    assert {m.recipient for m in alerts} == {ALEX, LYNNE}
    assert all("Patti Fernandez does not recognise an MFA method of Pradeep Gupta" in m.payload["text"]
               and "“He only has the Galaxy”" in m.payload["text"] for m in alerts)
    records = [r for r in await bot.runtime.store.ledger_records() if r.type == "decision"]
    assert records[-1].data["action"] == "unfamiliar_method" and records[-1].data["stage"] == "security_leads"

    _, answer = await report(bot, "")
    assert "You already reported an unfamiliar method on this item." in card_text(answer["value"])
    assert len([r for r in await bot.runtime.store.ledger_records() if r.type == "decision"]) == len(records)

    await bot.say("status")  # Alex leads security
    assert "Unfamiliar MFA methods reported" in card_text(bot.connector.cards()[-1])
    await bot.say("my reviews")
    assert any(PRADEEP in card_text(c) for c in bot.connector.cards())
