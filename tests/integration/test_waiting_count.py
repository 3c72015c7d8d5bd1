"""One meaning of "waiting" everywhere: the welcome, the digest, 'status', the review-open notice and the CLI
give a person the same number (accepted exceptions are listed apart and counted by none of them)."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone

from typer.testing import CliRunner

from bot.cli import app
from bot.config import DEMO_SNAPSHOT
from tests.integration.fake_connector import card_text
from tests.integration.test_teams_messages import ALEX, PATTI, Bot, bot  # noqa: F401  (the fixture)

ALEX_PERSON = {"id": "29:1alex", "name": "Alex Wilber", "aadObjectId": ALEX}


async def _welcome(bot: Bot, person: dict[str, str]) -> str:
    await bot.post(bot.activity(type="installationUpdate", action="add", person=person))
    return bot.connector.texts()[-1]


def _number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found, (pattern, text)
    return int(found.group(1))


async def test_welcome_digest_status_notice_and_cli_give_the_same_waiting_count_on_the_demo(bot: Bot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    service = bot.runtime.service
    notices = {m.recipient: m.payload["text"] for m in await bot.runtime.store.due_messages(datetime.now(timezone.utc), 100)}
    campaign = service.campaigns()[0]
    cli = (await asyncio.to_thread(  # the CLI runs its own event loop, as it does in a terminal
        CliRunner().invoke, app, ["campaign", "status", "--snapshot", str(DEMO_SNAPSHOT), "--data-dir", str(tmp_path)],
        env={"COLUMNS": "250"}, catch_exceptions=False,
    )).output
    for person in (ALEX_PERSON, PATTI):
        oid = person["aadObjectId"]
        welcome = _number(r"(\d+) items? (?:are|is) waiting for you", await _welcome(bot, person))
        before = len(bot.connector.received)
        await bot.say("my reviews", person=person)
        first = bot.connector.received[before]  # the digest card, or the text leading one card per item
        reviews = card_text(first.cards[0]) if first.cards else first.body["text"]
        listed = _number(r"(\d+) items? waiting for your answer", reviews)
        await bot.say("status", person=person)
        status_text = card_text(bot.connector.cards()[-1])
        notice = _number(r"open: (\d+) items? needs? your answer", notices[oid])
        owner = next(o for o in service.summary(campaign).by_owner if o.reviewer_id == oid)
        cli_open = _number(rf"{service.display_name(oid)}[\s│]+(\d+)", cli)
        assert welcome == listed == notice == owner.open == cli_open == len(service.waiting_for(oid)), person["name"]
        if oid != ALEX:  # a reviewer's own status card; a security lead's is the campaign's, by reviewer
            assert _number(r"Waiting for your answer\s*(\d+)", status_text) == welcome
        else:
            assert re.search(rf"Alex Wilber\s*{welcome} open", status_text), status_text
    # Alex's two accepted exceptions are shown to him, but counted apart, never as waiting.
    assert len(service.items_for(ALEX)) == len(service.waiting_for(ALEX)) + 2
    assert "2 accepted exceptions listed apart" in card_text(
        next(r for r in bot.connector.received if r.cards and "Your access reviews" in card_text(r.cards[0])).cards[0]
    )


async def test_a_delegate_is_never_counted_or_offered_their_own_access(bot: Bot) -> None:
    lynne = bot.runtime.service.resolve_person("lynner@contoso.com")
    assert lynne is not None
    offered = bot.runtime.service.items_for(lynne)
    assert offered, "Lynne answers for Alex while he is away"
    assert all(lynne not in item.subject.holder_ids for item, _ in offered)


async def test_a_delegates_status_counts_what_they_answer_for(bot: Bot) -> None:
    adele = {"id": "29:1adele", "name": "Adele Vance", "aadObjectId": "ba898b2a-9794-415b-a3df-cf7b824da266"}
    welcome = await _welcome(bot, adele)
    assert "2 items are waiting for you" in welcome  # Patti's, whom she answers for
    await bot.say("status", person=adele)
    text = card_text(bot.connector.cards()[-1])
    assert re.search(r"Assigned to you\s*2", text) and re.search(r"Waiting for your answer\s*2", text), text
