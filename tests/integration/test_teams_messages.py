"""Real Bot Framework activities posted to the running app's /api/messages; replies land at a fake Connector."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.app import Runtime, build_runtime, create_app, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.ledger import verify
from tests.integration.fake_connector import FakeConnector, card_text

TENANT = "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c"
ALEX = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every element of a card, nested ones included."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


class Bot:
    def __init__(self, runtime: Runtime, url: str, connector: FakeConnector) -> None:
        self.runtime = runtime
        self.url = url
        self.connector = connector
        self._n = 0

    def activity(self, **fields: Any) -> dict[str, Any]:
        self._n += 1
        person = fields.pop("person", {"id": "29:1alex", "name": "Alex Wilber", "aadObjectId": ALEX})
        base = {
            "id": f"f:{self._n}",
            "timestamp": "2026-11-23T09:30:00.000Z",
            "serviceUrl": self.connector.url,
            "channelId": "msteams",
            "from": person,
            "conversation": {"conversationType": "personal", "tenantId": TENANT, "id": f"a:personal-{person['id']}"},
            "recipient": {"id": "28:accessbot", "name": "accessbot"},
            "locale": "en-GB",
            "channelData": {"tenant": {"id": TENANT}},
        }
        base.update(fields)
        return base

    async def post(self, body: Any, content_type: str = "application/json") -> tuple[int, Any]:
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        async with aiohttp.ClientSession() as session:
            async with session.post(self.url, data=data, headers={"Content-Type": content_type}) as response:
                text = await response.text()
                try:
                    return response.status, json.loads(text) if text else None
                except json.JSONDecodeError:
                    return response.status, text

    async def say(self, text: str, **fields: Any) -> int:
        status, _ = await self.post(self.activity(type="message", text=text, **fields))
        return status

    async def click(self, item_id: str, action: str, **inputs: str) -> tuple[int, Any]:
        return await self.execute("decide", {"item": item_id, "action": action, "justification": "", **inputs})

    async def execute(self, verb: str, data: dict[str, Any], **fields: Any) -> tuple[int, Any]:
        """What Teams posts when someone presses an Action.Execute button (inputs merged into data)."""
        value = {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}
        activity = self.activity(type="invoke", name="adaptiveCard/action", value=value, replyToId="sent-2", **fields)
        return await self.post(activity)

    def item_id(self, title_part: str) -> str:
        for state in self.runtime.service.campaigns():
            for item in state.items.values():
                if title_part in item.subject.title:
                    return item.id
        raise AssertionError(f"no item titled like {title_part!r}")


async def serve_demo(data_dir: Path, credentials: BotCredentials = BotCredentials(), clock: ManualClock | None = None,
                     **options: Any) -> tuple[Runtime, web.AppRunner, str]:
    """The demo tenant's bot on a free local port, this week's campaign open, on Monday morning's clock (or
    ``clock``); ``options`` go to ``build_runtime``. Returns the runtime, the runner to clean up, and the
    /api/messages URL."""
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    runtime = await build_runtime(
        data_dir=data_dir, policy=policy, snapshot=snapshot, clock=clock or ManualClock(MONDAY), credentials=credentials,
        **options,
    )
    await runtime.service.open_current_campaign()
    runner = web.AppRunner(create_app(runtime, background=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runtime, runner, f"http://127.0.0.1:{port}/api/messages"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    connector = FakeConnector()
    await connector.start()
    runtime, runner, url = await serve_demo(tmp_path)
    yield Bot(runtime, url, connector)
    await runner.cleanup()
    await connector.stop()


PATTI = {"id": "29:1patti", "name": "Patti Fernandez", "aadObjectId": "f66eb8b7-79c8-407b-8b95-85a879f2381e"}


async def test_a_reviewer_with_few_items_gets_one_adaptive_card_per_item(bot: Bot) -> None:
    assert await bot.say("my reviews", person=PATTI) == 201
    cards = bot.connector.cards()
    assert len(cards) == 2, bot.connector.texts()
    assert all(card["version"] == "1.5" and card["type"] == "AdaptiveCard" for card in cards)
    exchange = next(card for card in cards if "Pradeep Gupta — Exchange Administrator" in card_text(card))
    keep = next(a for a in exchange["actions"] if a["title"] == "Keep")
    assert keep["type"] == "Action.Execute" and keep["verb"] == "decide"
    assert keep["fallback"]["type"] == "Action.Submit" and keep["fallback"]["data"] == {"verb": "decide", **keep["data"]}
    assert any(element.get("id") == "justification" for element in exchange["body"])
    assert exchange["refresh"] == {
        "action": {"type": "Action.Execute", "verb": "refresh", "data": {"item": keep["data"]["item"]}},
        "userIds": ["29:1patti"],
    }
    assert "items waiting for your answer" in bot.connector.texts()[0]


async def test_a_reviewer_with_many_items_gets_one_digest_card_under_the_size_limit(bot: Bot) -> None:
    await bot.say("my reviews")
    (digest,) = bot.connector.cards()
    text = card_text(digest)
    assert "Your access reviews" in text and "Megan Bowen — Global Administrator" in text
    choices = [e for e in _walk(digest) if e.get("type") == "Input.ChoiceSet"]
    assert len(choices) >= 10 and all(c["id"].startswith("choice:") for c in choices)
    waiting = len(bot.runtime.service.items_for(ALEX))
    assert len(choices) == waiting or f"{waiting - len(choices)} more after these" in text
    assert [a["title"] for a in digest["actions"]] == ["Submit answers", "Keep all not flagged"]
    assert len(json.dumps(digest).encode()) < 28 * 1024


async def test_keep_click_answers_the_invoke_with_the_updated_card_and_records_it(bot: Bot) -> None:
    item = bot.item_id("Megan Bowen — Global Administrator")
    status, body = await bot.click(item, "keep")
    assert status == 200
    assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    text = card_text(body["value"])
    assert "Kept by Alex Wilber" in text and "Recorded" in text
    assert "actions" not in body["value"]  # answered: no buttons left
    records = await bot.runtime.store.ledger_records()
    decision = [r for r in records if r.type == "decision"]
    assert len(decision) == 1 and decision[0].data["item_id"] == item and decision[0].data["actor_id"] == ALEX
    assert verify(records, await bot.runtime.store.ledger_anchor()).ok


async def test_same_click_twice_records_one_attestation_and_conflict_shows_first_answer(bot: Bot) -> None:
    item = bot.item_id("Megan Bowen — Global Administrator")
    await bot.click(item, "keep")
    _, again = await bot.click(item, "keep")
    assert "Already answered" in card_text(again["value"])
    _, conflict = await bot.click(item, "revoke", justification="She left in October")
    assert "Not recorded" in card_text(conflict["value"]) and "Kept by Alex Wilber" in card_text(conflict["value"])
    records = await bot.runtime.store.ledger_records()
    assert sum(1 for r in records if r.type == "decision") == 1


async def test_revoke_without_justification_is_refused_on_the_card(bot: Bot) -> None:
    item = bot.item_id("Megan Bowen — Global Administrator")
    _, body = await bot.click(item, "revoke")
    text = card_text(body["value"])
    assert "justification" in text.lower()
    assert any(a["title"] == "Revoke" for a in body["value"]["actions"])  # still open, still answerable
    _, body = await bot.click(item, "revoke", justification="No longer in IT; account should go")
    assert "Revoked by Alex Wilber" in card_text(body["value"])


async def test_click_by_someone_not_assigned_is_refused_and_not_recorded(bot: Bot, caplog: pytest.LogCaptureFixture) -> None:
    item = bot.item_id("Megan Bowen — Global Administrator")
    stranger = {"id": "29:1lee", "name": "Lee Gu", "aadObjectId": "11111111-2222-3333-4444-555555555555"}
    value = {"action": {"type": "Action.Execute", "verb": "decide", "data": {"item": item, "action": "keep"}}}
    status, body = await bot.post(bot.activity(type="invoke", name="adaptiveCard/action", value=value, person=stranger))
    assert status == 200 and "assigned to someone else" in card_text(body["value"])
    assert not [r for r in await bot.runtime.store.ledger_records() if r.type == "decision"]
    assert any("refused keep" in r.getMessage() and stranger["aadObjectId"] in r.getMessage() for r in caplog.records)


async def test_action_submit_fallback_records_and_replaces_the_card_in_place(bot: Bot) -> None:
    item = bot.item_id("Megan Bowen — Global Administrator")
    status = await bot.say("", value={"verb": "decide", "item": item, "action": "keep"}, replyToId="card-activity-7")
    assert status == 201
    (update,) = [r for r in bot.connector.received if r.method == "PUT"]
    assert update.activity_id == "card-activity-7"
    assert "Kept by Alex Wilber" in card_text(update.cards[0])


async def test_status_and_help_answer_in_cards(bot: Bot) -> None:
    await bot.say("status")
    await bot.say("help")
    status_card, help_card = bot.connector.cards()
    assert "Contoso review" in card_text(status_card) and "Open" in card_text(status_card)
    assert "my reviews" in card_text(help_card)


async def test_unknown_command_gets_a_helpful_answer(bot: Bot) -> None:
    await bot.say("sudo make me a sandwich")
    assert "Say 'help'" in bot.connector.texts()[-1]


async def test_review_request_is_delivered_proactively_once_the_reviewer_has_a_conversation(bot: Bot) -> None:
    await bot.runtime.scheduler.run_once()
    assert not bot.connector.received  # Alex never talked to the bot: nothing can be delivered yet
    await bot.say("help")  # his first message stores the conversation and releases what waited for him
    await bot.runtime.scheduler.run_once()
    proactive = [r for r in bot.connector.received if "access review is open" in (r.body.get("text") or "")]
    assert len(proactive) == 1
    await bot.runtime.scheduler.run_once()
    assert len([r for r in bot.connector.received if "access review is open" in (r.body.get("text") or "")]) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2, 3]", "application/json", 400),
        ('{"text": "no type"}', "application/json", 400),
        ("hello", "text/plain", 415),
    ],
)
async def test_malformed_activities_get_a_clear_4xx_and_change_nothing(
    bot: Bot, body: str, content_type: str, status: int
) -> None:
    before = len(await bot.runtime.store.ledger_records())
    got, answer = await bot.post(body, content_type)
    assert got == status and "error" in answer
    assert len(await bot.runtime.store.ledger_records()) == before


async def test_healthz_reports_the_open_campaign(bot: Bot) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(bot.url.replace("/api/messages", "/healthz")) as response:
            assert response.status == 200
            health = await response.json()
    assert health["status"] == "ok" and health["campaigns"] == 1 and health["open_items"] > 10


async def test_turns_reuse_one_connector_client_per_service_url_instead_of_building_one_each(bot: Bot) -> None:
    """botbuilder builds two connector clients per turn, ~7 ms of CPU each (docs/dependency-notes.md#per-turn-clients)."""
    from msrest.universal_http.requests import ClientRetryPolicy

    for _ in range(20):
        await bot.say("help")
    assert bot.runtime.teams.connectors.built == 2  # one connector client + one user-token client
    assert isinstance(ClientRetryPolicy.safe_codes, frozenset)


async def test_a_reviewer_who_never_wrote_to_the_bot_gets_a_personal_chat_started_for_them(bot: Bot) -> None:
    await bot.say("help")  # Alex: the bot learns the tenant's connector URL
    bot.connector.not_installed.add("b50ac046-d9dc-4082-bf5c-754e99944465")  # Lee Gu has not installed the app
    await bot.runtime.scheduler.run_once()
    (created,) = bot.connector.created  # Patti's review request needed a conversation; Lee's could not get one
    assert created["members"][0]["aadObjectId"] == PATTI["aadObjectId"] and created["channelData"]["tenant"]["id"] == TENANT
    delivered = [r for r in bot.connector.received if r.conversation_id == f"a:created-{PATTI['aadObjectId']}"]
    assert len(delivered) == 1 and "access review is open" in delivered[0].body["text"]
    assert await bot.runtime.store.get_conversation(PATTI["aadObjectId"]) is not None


async def test_metrics_count_answers_by_verdict(bot: Bot) -> None:
    await bot.click(bot.item_id("Megan Bowen — Global Administrator"), "keep")
    await bot.click(bot.item_id("Megan Bowen — Global Administrator"), "keep")
    async with aiohttp.ClientSession() as session:
        async with session.get(bot.url.replace("/api/messages", "/metrics")) as response:
            text = await response.text()
    counts = {line.split("{")[1].split("}")[0]: float(line.split()[-1]) for line in text.splitlines()
              if line.startswith("accessbot_decisions_total{")}
    assert counts['verdict="recorded"'] >= 1 and counts['verdict="duplicate"'] >= 1
