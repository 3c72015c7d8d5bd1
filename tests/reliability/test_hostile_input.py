"""Each hostile input found against the HTTP edge, as a regression test: the fitting 4xx (or a card saying
what is wrong), never a 5xx, and nothing recorded or remembered."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from bot.app import build_runtime, create_app, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.store.base import StoreUnavailable
from tests.integration.fake_connector import FakeConnector, card_text
from tests.integration.test_teams_auth import (
    invoke,
    megan,
    openid_metadata_url,  # noqa: F401 (fixture)
    post,
    secured_bot,  # noqa: F401 (fixture)
    token,
)
from tests.integration.test_teams_messages import MONDAY, TENANT, Bot, bot  # noqa: F401 (fixture)

OTHER_TENANT = "0b0e0c0d-0000-4000-8000-00000000beef"
MEGAN_GA = "Megan Bowen — Global Administrator"

STATE_FILES = ("ledger.jsonl", "ledger.head", "outbox.jsonl", "conversations.jsonl", "cards.jsonl", "channel-settings.json")


def state(bot: Bot) -> dict[str, bytes]:
    data_dir = bot.runtime.store.data_dir
    return {name: (data_dir / name).read_bytes() if (data_dir / name).exists() else b"" for name in STATE_FILES}


async def decisions(bot: Bot) -> list[Any]:
    return [r for r in await bot.runtime.store.ledger_records() if r.type == "decision"]


async def get(bot: Bot, path: str) -> tuple[int, str]:
    base = bot.url.replace("/api/messages", "")
    async with aiohttp.ClientSession() as session:
        async with session.get(URL(base + path, encoded=True)) as response:
            return response.status, await response.text()


# ---- before the activity is even read ----------------------------------------------------------------


async def test_an_unknown_charset_gets_415_not_a_lookup_error(bot: Bot) -> None:
    before = state(bot)
    status, answer = await bot.post(json.dumps(bot.activity(type="message", text="help")), "application/json; charset=bogus")
    assert status == 415 and "UTF-8" in answer["error"]
    assert state(bot) == before


@pytest.mark.parametrize("content_type", ['application/json; charset="', "application/json; charset=utf-16", ";", ""])
async def test_malformed_or_unsupported_content_types_get_415(bot: Bot, content_type: str) -> None:
    status, answer = await bot.post(json.dumps(bot.activity(type="message", text="help")), content_type)
    assert status == 415 and "error" in answer


async def test_100000_nested_brackets_get_400_before_any_parser_recurses(bot: Bot) -> None:
    before = state(bot)
    status, answer = await bot.post("[" * 100_000 + "]" * 100_000)
    assert status == 400 and "nests deeper" in answer["error"]
    status, _ = await bot.post('{"type": "message", "value": ' + '{"a": ' * 50 + "1" + "}" * 51)
    assert status == 400
    assert state(bot) == before


async def test_a_body_over_the_limit_gets_413(bot: Bot) -> None:
    status, answer = await bot.post(json.dumps(bot.activity(type="message", text="x" * 300_000)))
    assert status == 413 and "larger than" in answer["error"]


@pytest.mark.parametrize("body", ['{"type": "message", "n": NaN}', '{"type": "message", "n": 1' + "0" * 5000 + "}", b"\xff\xfe{}"])
async def test_json_python_would_mangle_gets_400(bot: Bot, body: str | bytes) -> None:
    status, answer = await bot.post(body)
    assert status == 400 and "error" in answer


# ---- the activity's shape ------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["conversation", "from", "recipient", "serviceUrl"])
async def test_an_activity_without_a_required_field_gets_400_not_an_attribute_error(bot: Bot, missing: str) -> None:
    item = bot.item_id(MEGAN_GA)
    for activity in (
        bot.activity(type="message", text="my reviews"),
        bot.activity(type="invoke", name="adaptiveCard/action",
                     value={"action": {"verb": "decide", "data": {"item": item, "action": "keep"}}}),
    ):
        del activity[missing]
        before = state(bot)
        status, answer = await bot.post(activity)
        assert status == 400 and missing in answer["error"], (status, answer)
        assert state(bot) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("conversation", "a:string"), ("from", {"name": "no id"}), ("serviceUrl", "file:///etc/passwd"),
     ("entities", {"type": "mention"}), ("channelData", [1]), ("text", 42)],
)
async def test_fields_of_the_wrong_type_get_400(bot: Bot, field: str, value: Any) -> None:
    status, answer = await bot.post(bot.activity(type="message", **{"text": "help", field: value}))
    assert status == 400 and "error" in answer


async def test_a_lone_surrogate_in_a_name_the_client_sends_gets_400(bot: Bot) -> None:
    person = {"id": "29:1alex", "name": "Alex \ud800", "aadObjectId": "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"}
    status, answer = await bot.post(bot.activity(type="message", text="help", person=person))
    assert status == 400 and "surrogate" in answer["error"]


# ---- invokes accessbot does not handle --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "key"),
    [
        ("task/fetch", 200, "task"),
        ("composeExtension/query", 200, "composeExtension"),
        ("composeExtension/fetchTask", 200, "task"),
        ("config/fetch", 200, "config"),
        ("tab/fetch", 200, "tab"),
        ("signin/verifyState", 400, "error"),
        ("healthCheck", 400, "error"),
        ("something/else", 400, "error"),
    ],
)
async def test_other_invoke_names_get_their_fitting_answer_never_501_null(bot: Bot, name: str, status: int, key: str) -> None:
    before = state(bot)
    got, answer = await bot.post(bot.activity(type="invoke", name=name, value={"anything": 1}))
    assert got == status and isinstance(answer, dict) and key in answer, (got, answer)
    assert state(bot) == before


async def test_a_task_module_request_is_told_it_is_not_supported(bot: Bot) -> None:
    _, answer = await bot.post(bot.activity(type="invoke", name="task/fetch", value={}))
    assert answer["task"]["type"] == "message" and "does not support" in answer["task"]["value"]


# ---- export links with any bytes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/exports/abc.%C3%A9", "/exports/%ED%A0%80.%ED%A0%80", "/exports/%00.%00", "/exports/..%2F..%2Fetc%2Fpasswd",
     "/exports/" + "a" * 6000 + "." + "b" * 100, "/exports/abc.def", "/exports/%FF%FE.x"],
)
async def test_export_paths_with_any_bytes_get_403_never_a_type_error(bot: Bot, path: str) -> None:
    status, text = await get(bot, path)
    assert status in (403, 404), (status, text)


# ---- what a person types ----------------------------------------------------------------------------------


async def test_a_100_kb_justification_is_refused_on_the_card_with_the_limit(bot: Bot) -> None:
    item = bot.item_id(MEGAN_GA)
    status, body = await bot.click(item, "revoke", justification="Gone. " * 17_000)
    text = card_text(body["value"])
    assert status == 200 and "limit is 2,000" in text and "Not recorded" in text
    assert any(a["title"] == "Revoke" for a in body["value"]["actions"])  # still open: shorten and answer again
    assert not await decisions(bot)


async def test_a_justification_at_the_limit_is_recorded(bot: Bot) -> None:
    item = bot.item_id(MEGAN_GA)
    status, body = await bot.click(item, "revoke", justification="x" * 2000)
    assert status == 200 and "Revoked by Alex Wilber" in card_text(body["value"])
    assert len(await decisions(bot)) == 1


@pytest.mark.parametrize(
    ("justification", "said"),
    [("She left \ud800 in October", "not valid Unicode"), ("She left\x07 in October", "U+0007"),
     ("She left\r in October", "U+000D")],
)
async def test_unstorable_text_in_a_justification_is_refused_on_the_card_and_nothing_is_kept(
    bot: Bot, justification: str, said: str
) -> None:
    item = bot.item_id(MEGAN_GA)
    before = state(bot)
    status, body = await bot.click(item, "revoke", justification=justification)
    text = card_text(body["value"])
    assert status == 200 and said in text and "Not recorded" in text and "justification" in text
    assert "Megan Bowen" in text and any(a["title"] == "Revoke" for a in body["value"]["actions"])
    assert state(bot) == before  # not even the conversation reference


async def test_line_breaks_and_tabs_in_a_justification_are_fine(bot: Bot) -> None:
    item = bot.item_id(MEGAN_GA)
    _, body = await bot.click(item, "revoke", justification="Left in October.\r\nAccount\tunused.")
    assert "Revoked by Alex Wilber" in card_text(body["value"])


async def test_a_control_character_in_a_message_gets_a_reply_and_nothing_is_kept(bot: Bot) -> None:
    before = state(bot)
    status, _ = await bot.post(bot.activity(type="message", text="history \x1b[31mmeganb@contoso.com"))
    assert status == 201
    assert "U+001B" in bot.connector.texts()[-1] and "Nothing was done" in bot.connector.texts()[-1]
    assert state(bot) == before


async def test_a_lone_surrogate_in_a_digest_submission_is_refused_on_the_digest(bot: Bot) -> None:
    item = bot.item_id(MEGAN_GA)
    status, body = await bot.execute("digest", {f"choice:{item}": "revoke", "justification": "\udfff"})
    assert status == 200 and "not valid Unicode" in card_text(body["value"])
    assert "Your access reviews" in card_text(body["value"])
    assert not await decisions(bot)


# ---- tenants --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where", ["conversation", "channelData", "both", "conversation-empty", "channelData-only-other", "neither"]
)
async def test_an_activity_from_another_tenant_is_refused_and_logged_with_auth_off(
    bot: Bot, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    item = bot.item_id(MEGAN_GA)
    activity = bot.activity(type="invoke", name="adaptiveCard/action",
                            value={"action": {"verb": "decide", "data": {"item": item, "action": "keep"}}})
    if where in ("conversation", "both"):
        activity["conversation"]["tenantId"] = OTHER_TENANT
    if where in ("channelData", "both", "channelData-only-other"):
        activity["channelData"]["tenant"]["id"] = OTHER_TENANT
    if where == "channelData-only-other":
        del activity["conversation"]["tenantId"]
    if where == "conversation-empty":
        activity["conversation"]["tenantId"] = ""
    if where == "neither":
        del activity["conversation"]["tenantId"]
        del activity["channelData"]
    before = state(bot)
    with caplog.at_level(logging.WARNING):
        status, answer = await bot.post(activity)
    assert status == 403 and "tenant" in answer["error"]
    assert state(bot) == before and not await decisions(bot)
    assert any("refused" in r.getMessage() and "tenant" in r.getMessage() for r in caplog.records)


async def test_the_tenant_id_is_compared_without_regard_to_case(bot: Bot) -> None:
    item = bot.item_id(MEGAN_GA)
    status, body = await bot.execute("decide", {"item": item, "action": "keep"}, channelData={"tenant": {"id": TENANT.upper()}})
    assert status == 200 and "Kept by Alex Wilber" in card_text(body["value"])


async def test_an_activity_from_another_tenant_is_refused_with_auth_on(
    secured_bot: tuple[str, Any], caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    url, runtime = secured_bot
    activity = invoke(megan(runtime))
    activity["conversation"]["tenantId"] = OTHER_TENANT
    activity["from"]["aadObjectId"] = "8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01"  # a reviewer's object id, all the same
    with caplog.at_level(logging.WARNING):
        assert await post(url, activity, f"Bearer {token()}") == 403
    assert not [r for r in await runtime.store.ledger_records() if r.type == "decision"]
    assert any(OTHER_TENANT in r.getMessage() for r in caplog.records)


async def test_with_auth_on_a_token_is_checked_before_the_tenant(secured_bot: tuple[str, Any]) -> None:  # noqa: F811
    url, runtime = secured_bot
    activity = invoke(megan(runtime))
    activity["conversation"]["tenantId"] = OTHER_TENANT
    assert await post(url, activity, None) == 401


async def test_a_tenant_the_policy_lists_as_a_chat_tenant_is_served(tmp_path: Path) -> None:
    """A CSP partner's staff chat from their own tenant while reviewing a customer's."""
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    runtime = await build_runtime(
        data_dir=tmp_path, policy=replace(policy, teams_tenant_ids=(OTHER_TENANT,)), snapshot=snapshot,
        clock=ManualClock(MONDAY), credentials=BotCredentials(),
    )
    await runtime.service.open_current_campaign()
    runner = web.AppRunner(create_app(runtime, background=False))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    connector = FakeConnector()
    await connector.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        partner = Bot(runtime, f"http://127.0.0.1:{port}/api/messages", connector)
        tenant = {"conversation": {"conversationType": "personal", "tenantId": OTHER_TENANT, "id": "a:p"},
                  "channelData": {"tenant": {"id": OTHER_TENANT}}}
        keep = {"item": partner.item_id(MEGAN_GA), "action": "keep"}
        status, body = await partner.execute("decide", keep, **tenant)
        assert status == 200 and "Kept by Alex Wilber" in card_text(body["value"])
        third = {"conversation": {"tenantId": "11111111-0000-4000-8000-000000000000", "id": "a:x"}}
        assert (await partner.execute("decide", keep, **third))[0] == 403
    finally:
        await runner.cleanup()
        await connector.stop()


async def test_every_route_answers_an_unexpected_failure_in_json_and_logs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The last line of defence behind the checks: a bug is a logged JSON 500, a store that cannot write
    a 503 with Retry-After, never aiohttp's bare HTML error page."""
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    runtime = await build_runtime(data_dir=tmp_path, policy=policy, snapshot=snapshot, clock=ManualClock(MONDAY),
                                  credentials=BotCredentials())
    app = create_app(runtime, background=False)

    async def bug(_: web.Request) -> web.Response:
        raise KeyError("a bug")

    async def full(_: web.Request) -> web.Response:
        raise StoreUnavailable("No space left on device")

    app.router.add_get("/bug", bug)
    app.router.add_get("/full", full)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            with caplog.at_level(logging.ERROR):
                async with session.get(base + "/bug") as response:
                    assert response.status == 500 and (await response.json())["error"]
            assert any("GET '/bug' failed" in r.getMessage() and r.exc_info for r in caplog.records)
            async with session.get(base + "/full") as response:
                assert response.status == 503 and response.headers["Retry-After"] and (await response.json())["error"]
            async with session.get(base + "/no-such-route") as response:
                assert response.status == 404
    finally:
        await runner.cleanup()


async def _post_chunked(bot: Bot, body: bytes) -> tuple[int, str]:
    """A body sent in small pieces with no Content-Length, as a slow or hostile client would."""

    async def pieces() -> Any:
        for start in range(0, len(body), 1000):
            yield body[start:start + 1000]
            await asyncio.sleep(0)

    async with aiohttp.ClientSession() as session:
        async with session.post(bot.url, data=pieces(), headers={"Content-Type": "application/json"}) as response:
            return response.status, await response.text()


async def test_a_chunked_body_is_read_whole_and_still_limited(bot: Bot) -> None:
    status, _ = await _post_chunked(bot, json.dumps(bot.activity(type="message", text="help " + " " * 20_000)).encode())
    assert status == 201 and "my reviews" in card_text(bot.connector.cards()[-1])
    status, text = await _post_chunked(bot, json.dumps(bot.activity(type="message", text="x" * 300_000)).encode())
    assert status == 413 and "larger than" in text
