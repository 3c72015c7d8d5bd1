"""A "your review is open" that has not gone yet is dropped once the person is already in the review, so it
never arrives after they started answering (it used to, some seconds later)."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.test_teams_messages import PATTI, Bot, bot  # noqa: F401  (the fixture)

OPEN_NOTICE = "access review is open"


def _later(bot: Bot) -> None:
    """The person turns up a little after the opening (the report: 16 s), before their notice went."""
    bot.runtime.service.clock.advance(timedelta(seconds=16))  # type: ignore[attr-defined]


def _open_notices(bot: Bot, person: dict[str, str]) -> list[str]:
    return [t for t in bot.connector.texts_in(f"a:personal-{person['id']}") if OPEN_NOTICE in t]


async def test_the_review_open_notice_is_dropped_when_the_person_already_said_my_reviews(bot: Bot) -> None:
    await bot.runtime.scheduler.run_once()  # no conversation with Patti yet: her notice waits in the outbox
    _later(bot)
    await bot.say("my reviews", person=PATTI)  # her first message: she is in the review, and now reachable
    result = await bot.runtime.notifier.drain()
    assert _open_notices(bot, PATTI) == [] and result.obsolete == 1
    assert not [m for m in await bot.runtime.store.due_messages(bot.runtime.service.clock.now() + timedelta(days=1), 100)
                if m.recipient == PATTI["aadObjectId"]]


async def test_the_review_open_notice_is_dropped_when_the_person_already_answered_an_item(bot: Bot) -> None:
    await bot.runtime.scheduler.run_once()
    _later(bot)
    item = bot.item_id("Pradeep Gupta — Exchange Administrator")
    status, body = await bot.execute("decide", {"item": item, "action": "keep"}, person=PATTI)  # her first contact
    assert status == 200 and "Kept by Patti Fernandez" in str(body)
    assert await bot.runtime.store.get_conversation(PATTI["aadObjectId"]) is not None  # reachable now
    await bot.runtime.scheduler.run_once()
    assert _open_notices(bot, PATTI) == []


async def test_the_review_open_notice_still_reaches_someone_who_only_said_hello(bot: Bot) -> None:
    await bot.runtime.scheduler.run_once()
    _later(bot)
    await bot.say("help", person=PATTI)
    await bot.runtime.scheduler.run_once()
    assert len(_open_notices(bot, PATTI)) == 1


async def test_a_notice_queued_after_the_person_looked_is_not_stale(bot: Bot) -> None:
    _later(bot)
    await bot.say("my reviews", person=PATTI)
    bot.runtime.service.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    await bot.say("remind pattif@contoso.com")  # a lead's nudge, queued after she looked
    await bot.runtime.scheduler.run_once()
    texts = bot.connector.texts_in(f"a:personal-{PATTI['id']}")
    assert any("asks you to finish" in t for t in texts) and not any(OPEN_NOTICE in t for t in texts)
