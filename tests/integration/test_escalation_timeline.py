"""A week of a campaign on a fake clock, through the running app: requests, reminders, escalation, expiry.

Reviewers have talked to the bot (their conversations are stored); the scheduler's rounds deliver each
message through the fake Bot Connector exactly once, on the day the policy says.
"""

from __future__ import annotations

from datetime import timedelta

from tests.integration.test_teams_messages import PATTI, Bot, bot  # noqa: F401 (pytest fixture)

LEE = {"id": "29:1lee", "name": "Lee Gu", "aadObjectId": "b50ac046-d9dc-4082-bf5c-754e99944465"}


def delivered(bot: Bot, conversation_of: str, containing: str) -> int:  # noqa: F811
    return sum(
        1 for r in bot.connector.received
        if r.method == "POST" and r.conversation_id == f"a:personal-{conversation_of}" and containing in (r.body.get("text") or "")
    )


async def at(bot: Bot, days: float) -> None:  # noqa: F811
    """Move the clock to ``days`` after the opening and run the scheduler round twice (a restart-like repeat)."""
    clock = bot.runtime.service.clock
    target = bot.runtime.service.campaigns()[0].campaign.opened_at + timedelta(days=days)
    clock.advance(target - clock.now())  # type: ignore[attr-defined]
    await bot.runtime.scheduler.run_once()
    await bot.runtime.scheduler.run_once()


async def test_a_week_of_reminders_escalation_and_expiry_reaches_each_person_once(bot: Bot) -> None:  # noqa: F811
    for person in (None, PATTI, LEE):
        await bot.say("help", **({"person": person} if person else {}))
    await bot.click(bot.item_id("Megan Bowen — Global Administrator"), "keep")  # Alex answers one item

    await at(bot, 0.1)
    assert delivered(bot, "29:1alex", "access review is open") == 1
    assert delivered(bot, "29:1patti", "access review is open") == 1
    assert delivered(bot, "29:1lee", "access review is open") == 0  # the fallback owns nothing yet

    await at(bot, 1.01)
    assert delivered(bot, "29:1patti", "Reminder: 2 access review item(s)") == 1

    await at(bot, 3.01)  # escalation to the fallback reviewer
    assert delivered(bot, "29:1lee", "escalated to you") == 1
    (state,) = bot.runtime.service.campaigns()
    pradeep = state.items[bot.item_id("Pradeep Gupta — Exchange Administrator")]
    assert "b50ac046-d9dc-4082-bf5c-754e99944465" in pradeep.reviewers

    await at(bot, 4.01)  # to the security leads (Alex is one)
    assert delivered(bot, "29:1alex", "still unanswered") == 1

    await at(bot, 5.01)  # the deadline: the policy says escalate, so items stay open and are marked overdue
    assert delivered(bot, "29:1alex", "past their deadline") == 1
    assert pradeep.id in {i.id for i, _ in bot.runtime.service.overdue()}
    megan = state.items[bot.item_id("Megan Bowen — Global Administrator")]
    assert not megan.is_open and not megan.overdue  # answered items are never chased

    await at(bot, 6)
    for person, text in (("29:1alex", "past their deadline"), ("29:1lee", "escalated to you"), ("29:1patti", "access review is open")):
        assert delivered(bot, person, text) == 1, (person, text)
