"""The fake Slack against the real clients: slack_sdk's AsyncWebClient, slack-bolt's AsyncApp over HTTP (Bolt's
aiohttp adapter, verifying our v0 signatures) and Bolt's Socket Mode handler. If these pass, a test of the Slack
channel that uses the fake exercises the same client code a real workspace would."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler, AsyncServerErrorRetryHandler
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, SectionBlock
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.ratelimit import Window
from tests.fakes.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.fakes.slack_signing import signature, signed_headers

WAIT = 10.0  # real seconds: a hang guard for every wait, never a measure of speed


class Clock:
    """The fake's time, moved by hand."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def slack(clock: Clock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(clock=clock) as fake:
        yield fake


def client_of(fake: FakeSlack, token: str = BOT_TOKEN, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.api_url, **kwargs)


def review_blocks() -> list[dict[str, Any]]:
    """A small item message built with slack_sdk's models, as the renderer will."""
    return [
        SectionBlock(block_id="item", text="*Global Administrator* held by Adele Vance").to_dict(),
        ActionsBlock(block_id="answer", elements=[
            ButtonElement(action_id="keep", text="Keep", value="item-1", style="primary"),
            ButtonElement(action_id="revoke", text="Revoke", value="item-1", style="danger"),
        ]).to_dict(),
    ]


# ---- Web API ----------------------------------------------------------------------------------------


async def test_auth_test_names_the_bot_user_and_team(slack: FakeSlack) -> None:
    answer = await client_of(slack).auth_test()
    assert answer["ok"] is True
    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == ("T0ACCESS01", "U0ACCESSBOT", "B0ACCESS01")


async def test_wrong_missing_and_revoked_tokens_are_refused_as_slack_does(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as wrong:
        await client_of(slack, "xoxb-someone-else").auth_test()
    assert wrong.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as app_token_for_a_message:
        await client_of(slack, APP_TOKEN).chat_postMessage(channel="C1", text="hi")
    assert app_token_for_a_message.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as none:
        await AsyncWebClient(base_url=slack.api_url).auth_test()
    assert none.value.response["error"] == "not_authed"
    slack.revoke()
    with pytest.raises(SlackApiError) as revoked:
        await client_of(slack).auth_test()
    assert revoked.value.response["error"] == "token_revoked"
    assert [c.error for c in slack.calls] == ["invalid_auth", "not_allowed_token_type", "not_authed", "token_revoked"]


async def test_people_are_found_by_email_and_an_unknown_address_is_users_not_found(slack: FakeSlack) -> None:
    adele = slack.add_user("AdeleV@contoso.com", real_name="Adele Vance")
    client = client_of(slack)
    found = await client.users_lookupByEmail(email="adelev@contoso.com")
    assert found["user"]["id"] == adele["id"]
    assert found["user"]["profile"]["email"] == "AdeleV@contoso.com"
    info = await client.users_info(user=adele["id"])
    assert info["user"]["real_name"] == "Adele Vance"
    with pytest.raises(SlackApiError) as unknown:
        await client.users_lookupByEmail(email="nobody@contoso.com")
    assert unknown.value.response["error"] == "users_not_found"
    with pytest.raises(SlackApiError) as no_user:
        await client.users_info(user="U404")
    assert no_user.value.response["error"] == "user_not_found"
    assert slack.calls_to("users.lookupByEmail")[0].params == {"email": "adelev@contoso.com"}


async def test_a_dm_posted_to_a_user_id_is_updated_through_the_dm_id_not_the_user_id(slack: FakeSlack) -> None:
    adele = slack.add_user("adelev@contoso.com")
    client = client_of(slack)
    opened = await client.conversations_open(users=adele["id"])
    dm = opened["channel"]["id"]
    assert dm.startswith("D")
    sent = await client.chat_postMessage(channel=adele["id"], text="Your review", blocks=review_blocks())
    assert sent["channel"] == dm and sent["ts"] and sent["message"]["blocks"][0]["block_id"] == "item"
    with pytest.raises(SlackApiError) as by_user:
        await client.chat_update(channel=adele["id"], ts=sent["ts"], text="answered")
    assert by_user.value.response["error"] == "channel_not_found"
    updated = await client.chat_update(channel=dm, ts=sent["ts"], text="Kept by Adele", blocks=[])
    assert updated["ts"] == sent["ts"]
    shown = slack.message(dm, sent["ts"])
    assert (shown.text, shown.edits) == ("Kept by Adele", 1)
    with pytest.raises(SlackApiError) as missing:
        await client.chat_update(channel=dm, ts="1.000001", text="x")
    assert missing.value.response["error"] == "message_not_found"
    await client.chat_delete(channel=dm, ts=sent["ts"])
    assert slack.posted(dm) == []


async def test_ephemeral_goes_to_a_member_of_the_channel_only(slack: FakeSlack) -> None:
    adele = slack.add_user("adelev@contoso.com")
    megan = slack.add_user("meganb@contoso.com")
    leads = slack.add_channel("security-leads", [adele["id"]])
    outside = slack.add_channel("random", [adele["id"]], bot_member=False)
    client = client_of(slack)
    answer = await client.chat_postEphemeral(channel=leads, user=adele["id"], text="your 3 items")
    assert answer["message_ts"]
    with pytest.raises(SlackApiError) as not_member:
        await client.chat_postEphemeral(channel=leads, user=megan["id"], text="x")
    assert not_member.value.response["error"] == "user_not_in_channel"
    with pytest.raises(SlackApiError) as not_in:
        await client.chat_postMessage(channel=outside, text="x")
    assert not_in.value.response["error"] == "not_in_channel"
    by_name = await client.chat_postMessage(channel="#security-leads", text="status")
    assert by_name["channel"] == leads
    assert [(e.user, e.text) for e in slack.ephemerals] == [(adele["id"], "your 3 items")]
    assert [m.text for m in slack.posted(leads)] == ["status"]


async def test_block_kit_limits_refuse_a_message_as_invalid_blocks(slack: FakeSlack) -> None:
    adele = slack.add_user("adelev@contoso.com")
    client = client_of(slack)
    too_many = [{"type": "divider"}] * 51
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    for blocks in (too_many, too_long):
        with pytest.raises(SlackApiError) as refused:
            await client.chat_postMessage(channel=adele["id"], text="t", blocks=blocks)
        assert refused.value.response["error"] == "invalid_blocks"
        assert refused.value.response["response_metadata"]["messages"][0].startswith("[ERROR]")
    with pytest.raises(SlackApiError) as empty, pytest.warns(UserWarning, match="text"):  # slack_sdk warns too
        await client.chat_postMessage(channel=adele["id"], text="")
    assert empty.value.response["error"] == "no_text"
    at_the_limit = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}}] * 50
    assert (await client.chat_postMessage(channel=adele["id"], text="t", blocks=at_the_limit))["ok"]


async def test_a_form_encoded_call_reads_like_a_json_one(slack: FakeSlack) -> None:
    """slack_sdk sends some methods as forms; the structured fields arrive as JSON text and are decoded."""
    adele = slack.add_user("adelev@contoso.com")
    client = client_of(slack)
    answer = await client.api_call("chat.postMessage", data={"channel": adele["id"], "text": "t",
                                                             "blocks": json.dumps(review_blocks())})
    assert answer["message"]["blocks"] == review_blocks()
    assert slack.calls_to("chat.postMessage")[0].token == BOT_TOKEN


async def test_a_missing_scope_names_what_was_needed(clock: Clock) -> None:
    async with FakeSlack(clock=clock, scopes=frozenset({"chat:write", "users:read"})) as slack:
        with pytest.raises(SlackApiError) as refused:
            await client_of(slack).users_lookupByEmail(email="a@contoso.com")
        assert refused.value.response["error"] == "missing_scope"
        assert refused.value.response["needed"] == "users:read.email"


# ---- throttling and outages ----------------------------------------------------------------------------


async def test_429_with_retry_after_is_retried_by_slack_sdks_own_rate_limit_handler(slack: FakeSlack) -> None:
    adele = slack.add_user("adelev@contoso.com")
    slack.throttle("chat.postMessage", times=1, retry_after=1)
    client = client_of(slack, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)])
    sent = await client.chat_postMessage(channel=adele["id"], text="Your review")
    assert sent["ok"]
    attempts = slack.calls_to("chat.postMessage")
    assert [(c.status, c.error) for c in attempts] == [(429, "ratelimited"), (200, None)]
    assert [m.text for m in slack.posted()] == ["Your review"]


async def test_without_a_retry_handler_a_429_reaches_the_caller_with_its_retry_after(slack: FakeSlack) -> None:
    adele = slack.add_user("adelev@contoso.com")
    dm = slack.dm_of(adele["id"])
    slack.throttle(channel=dm, times=1, retry_after=7)
    client = client_of(slack)
    with pytest.raises(SlackApiError) as throttled:
        await client.chat_postMessage(channel=dm, text="x")
    assert throttled.value.response.status_code == 429
    assert throttled.value.response["error"] == "ratelimited"
    assert throttled.value.response.headers["Retry-After"] == "7"
    assert (await client.chat_postMessage(channel=dm, text="x"))["ok"]  # only that one time, only that channel
    slack.throttle(channel=dm, times=1, retry_after=2)
    with pytest.raises(SlackApiError) as by_user_id:  # a post to the user id lands in the same DM
        await client.chat_postMessage(channel=adele["id"], text="x")
    assert by_user_id.value.response.headers["Retry-After"] == "2"
    assert slack.refused[429] == 2


async def test_a_body_that_is_not_json_is_invalid_json_and_recorded(slack: FakeSlack) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{slack.api_url}chat.postMessage", data=b"{not json",
                             headers={"Content-Type": "application/json", "Authorization": f"Bearer {BOT_TOKEN}"}) as answer:
            assert (answer.status, await answer.json()) == (200, {"ok": False, "error": "invalid_json"})
    assert [c.error for c in slack.calls] == ["invalid_json"]


async def test_a_5xx_fails_the_call_and_slack_sdks_server_error_handler_retries_it(slack: FakeSlack) -> None:
    slack.fail("auth.test", status=503, times=1)
    with pytest.raises(SlackApiError) as outage:
        await client_of(slack).auth_test()
    assert outage.value.response.status_code == 503
    slack.fail("auth.test", status=500, times=1)
    retried = await client_of(slack, retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1)]).auth_test()
    assert retried["ok"]
    assert [c.status for c in slack.calls_to("auth.test")] == [503, 500, 200]


async def test_more_than_one_message_a_second_in_one_channel_is_ratelimited(clock: Clock) -> None:
    async with FakeSlack(clock=clock, channel_pace=Window(1, 1.0)) as slack:
        adele = slack.add_user("adelev@contoso.com")
        megan = slack.add_user("meganb@contoso.com")
        client = client_of(slack)
        await client.chat_postMessage(channel=adele["id"], text="1")
        await client.chat_postMessage(channel=megan["id"], text="another channel is another budget")
        with pytest.raises(SlackApiError) as too_soon:
            await client.chat_postMessage(channel=adele["id"], text="2")
        assert too_soon.value.response.status_code == 429
        assert too_soon.value.response.headers["Retry-After"] == "1"
        clock.now += 1.0
        await client.chat_postMessage(channel=adele["id"], text="2")
        assert [m.text for m in slack.posted(slack.dm_of(adele["id"]))] == ["1", "2"]
        assert slack.over_pace == 1


# ---- modals and App Home ---------------------------------------------------------------------------------

REVOKE_MODAL = {
    "type": "modal", "callback_id": "revoke", "private_metadata": "item-1",
    "title": {"type": "plain_text", "text": "Revoke access"},
    "submit": {"type": "plain_text", "text": "Revoke"},
    "blocks": [{"type": "input", "block_id": "why", "label": {"type": "plain_text", "text": "Justification"},
                "element": {"type": "plain_text_input", "action_id": "justification", "multiline": True}}],
}


async def test_a_trigger_id_opens_one_modal_within_three_seconds(slack: FakeSlack, clock: Clock) -> None:
    adele = slack.add_user("adelev@contoso.com")
    client = client_of(slack)
    trigger = slack.slash_command(adele["id"], "mine")["trigger_id"]
    clock.now += 2.9
    opened = await client.views_open(trigger_id=trigger, view=REVOKE_MODAL)
    assert opened["view"]["id"].startswith("V") and opened["view"]["callback_id"] == "revoke"
    with pytest.raises(SlackApiError) as reused:
        await client.views_open(trigger_id=trigger, view=REVOKE_MODAL)
    assert reused.value.response["error"] == "exchanged_trigger_id"
    late = slack.new_trigger()
    clock.now += 3.1
    with pytest.raises(SlackApiError) as expired:
        await client.views_open(trigger_id=late, view=REVOKE_MODAL)
    assert expired.value.response["error"] == "expired_trigger_id"
    with pytest.raises(SlackApiError) as invented:
        await client.views_open(trigger_id="1.2.nothing", view=REVOKE_MODAL)
    assert invented.value.response["error"] == "invalid_trigger_id"


async def test_a_modal_without_submit_or_with_a_long_title_is_invalid_arguments(slack: FakeSlack) -> None:
    client = client_of(slack)
    for broken in ({**REVOKE_MODAL, "submit": None}, {**REVOKE_MODAL, "title": {"type": "plain_text", "text": "x" * 25}}):
        with pytest.raises(SlackApiError) as refused:
            await client.views_open(trigger_id=slack.new_trigger(), view=broken)
        assert refused.value.response["error"] == "invalid_arguments"


async def test_views_update_refuses_a_stale_hash(slack: FakeSlack) -> None:
    client = client_of(slack)
    view = (await client.views_open(trigger_id=slack.new_trigger(), view=REVOKE_MODAL))["view"]
    first = await client.views_update(view_id=view["id"], hash=view["hash"], view=REVOKE_MODAL)
    with pytest.raises(SlackApiError) as stale:
        await client.views_update(view_id=view["id"], hash=view["hash"], view=REVOKE_MODAL)
    assert stale.value.response["error"] == "hash_conflict"
    assert first["view"]["hash"] != view["hash"]
    with pytest.raises(SlackApiError) as unknown:
        await client.views_update(view_id="V404", view=REVOKE_MODAL)
    assert unknown.value.response["error"] == "not_found"


async def test_a_published_home_tab_comes_back_in_app_home_opened(slack: FakeSlack) -> None:
    adele = slack.add_user("adelev@contoso.com")
    assert "view" not in slack.app_home_opened(adele["id"])["event"]
    home = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "2 open items"}}]}
    await client_of(slack).views_publish(user_id=adele["id"], view=home)
    event = slack.app_home_opened(adele["id"])
    assert event["type"] == "event_callback"
    assert event["event"]["type"] == "app_home_opened" and event["event"]["tab"] == "home"
    assert event["event"]["channel"] == slack.dm_of(adele["id"])
    assert event["event"]["view"]["blocks"] == home["blocks"]


# ---- inbound over HTTP, verified by Bolt --------------------------------------------------------------


def test_our_signature_is_the_one_slack_sdks_verifier_accepts() -> None:
    body = "token=x&command=%2Faccess-review&text=mine"
    now = int(time.time())
    headers = signed_headers(SIGNING_SECRET, body, timestamp=now)
    verifier = SignatureVerifier(SIGNING_SECRET)
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + "&text=status", headers)
    assert not verifier.is_valid(body, str(now - 301), signature(SIGNING_SECRET, now - 301, body))


class BoltOverHttp:
    """A Bolt app on an aiohttp route at /slack/events, its listeners recording what reached them."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.seen: list[tuple[str, Any]] = []
        self.app = AsyncApp(client=client_of(fake), signing_secret=SIGNING_SECRET)
        self.app.command("/access-review")(self._command)
        self.app.action("revoke")(self._revoke)
        self.app.view("revoke")(self._submitted)
        self.app.event("app_home_opened")(self._home)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _command(self, ack: Any, command: dict[str, Any]) -> None:
        await ack()
        self.seen.append(("command", command["text"]))

    async def _revoke(self, ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        self.seen.append(("action", body["actions"][0]["value"]))
        await client.views_open(trigger_id=body["trigger_id"], view=REVOKE_MODAL)

    async def _submitted(self, ack: Any, view: dict[str, Any]) -> None:
        await ack()
        self.seen.append(("submitted", view["state"]["values"]["why"]["justification"]["value"]))

    async def _home(self, event: dict[str, Any], client: AsyncWebClient) -> None:
        self.seen.append(("home", event["user"]))
        await client.views_publish(user_id=event["user"], view={"type": "home", "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "Nothing to review"}}]})

    async def __aenter__(self) -> "BoltOverHttp":
        async def events(request: web.Request) -> web.Response:
            return await to_aiohttp_response(await self.app.async_dispatch(await to_bolt_request(request)))

        web_app = web.Application()
        web_app.router.add_post("/slack/events", events)
        self.runner = web.AppRunner(web_app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/slack/events"  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    async def seen_soon(self, count: int) -> list[tuple[str, Any]]:
        """Bolt runs event listeners after answering; wait (bounded) until ``count`` things were seen."""
        async with asyncio.timeout(WAIT):
            while len(self.seen) < count:
                await asyncio.sleep(0.01)
        return self.seen


async def test_bolt_accepts_our_signed_slash_command_and_refuses_a_forged_or_replayed_one(slack: FakeSlack) -> None:
    adele = slack.add_user("adelev@contoso.com")
    async with BoltOverHttp(slack) as bolt:
        status, _ = await slack.post_to_app(bolt.url, slack.slash_command(adele["id"], "mine"))
        assert status == 200
        forged, _ = await slack.post_to_app(bolt.url, slack.slash_command(adele["id"], "export"), secret="guess")
        replayed, _ = await slack.post_to_app(bolt.url, slack.slash_command(adele["id"], "status"),
                                              timestamp=int(time.time()) - 6 * 60)
        assert (forged, replayed) == (401, 401)
        assert bolt.seen == [("command", "mine")]


async def test_a_button_opens_the_modal_inside_its_trigger_window_and_the_submission_reaches_bolt(
        slack: FakeSlack) -> None:
    adele = slack.add_user("adelev@contoso.com")
    sent = await client_of(slack).chat_postMessage(channel=adele["id"], text="Your review", blocks=review_blocks())
    async with BoltOverHttp(slack) as bolt:
        click = slack.block_actions(adele["id"], "revoke", channel=sent["channel"], ts=sent["ts"])
        assert click["container"] == {"type": "message", "message_ts": sent["ts"], "channel_id": sent["channel"],
                                      "is_ephemeral": False}
        assert click["actions"][0]["text"]["text"] == "Revoke"
        assert (await slack.post_to_app(bolt.url, click))[0] == 200
        (modal,) = slack.views.values()
        assert modal["private_metadata"] == "item-1"
        submission = slack.view_submission(adele["id"], modal["id"], {"justification": "left the company"})
        assert (await slack.post_to_app(bolt.url, submission))[0] == 200
        assert await bolt.seen_soon(2) == [("action", "item-1"), ("submitted", "left the company")]


async def test_app_home_opened_reaches_bolt_which_publishes_the_home_tab(slack: FakeSlack) -> None:
    adele = slack.add_user("adelev@contoso.com")
    async with BoltOverHttp(slack) as bolt:
        assert (await slack.post_to_app(bolt.url, slack.app_home_opened(adele["id"])))[0] == 200
        assert await bolt.seen_soon(1) == [("home", adele["id"])]
        async with asyncio.timeout(WAIT):
            while slack.home_of(adele["id"]) is None:
                await asyncio.sleep(0.01)
    assert slack.home_of(adele["id"])["blocks"][0]["text"]["text"] == "Nothing to review"  # type: ignore[index]


async def test_bolt_answers_the_url_verification_challenge(slack: FakeSlack) -> None:
    async with BoltOverHttp(slack) as bolt:
        challenge = slack.url_verification()
        status, body = await slack.post_to_app(bolt.url, challenge)
    assert status == 200 and json.loads(body)["challenge"] == challenge["challenge"]


async def test_a_response_url_takes_five_answers_private_to_the_person_unless_in_channel(slack: FakeSlack) -> None:
    adele = slack.add_user("adelev@contoso.com")
    leads = slack.add_channel("security-leads", [adele["id"]])
    async with BoltOverHttp(slack) as bolt:

        @bolt.app.command("/access-review-twice")
        async def twice(ack: Any, respond: Any) -> None:
            await ack()
            await respond("your 3 open items")
            await respond(text="status: 40% answered", response_type="in_channel")

        command = slack.slash_command(adele["id"], "mine", command="/access-review-twice", channel_id=leads)
        assert (await slack.post_to_app(bolt.url, command))[0] == 200
        async with asyncio.timeout(WAIT):
            while len(slack.responses) < 2:
                await asyncio.sleep(0.01)
    assert [(r.user, r.channel, r.response_type, r.body["text"]) for r in slack.responses] == [
        (adele["id"], leads, "ephemeral", "your 3 open items"),
        (adele["id"], leads, "in_channel", "status: 40% answered")]
    statuses: list[tuple[int, Any]] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(4):
            async with http.post(command["response_url"], json={"text": "again"}) as answer:
                statuses.append((answer.status, (await answer.json())["ok"]))
    assert statuses == [(200, True)] * 3 + [(404, False)]  # five in all, then used_url


# ---- Socket Mode ---------------------------------------------------------------------------------------


async def test_socket_mode_connects_with_the_app_token_receives_envelopes_acks_and_reconnects(
        slack: FakeSlack) -> None:
    adele = slack.add_user("adelev@contoso.com")
    seen: list[str] = []
    app = AsyncApp(client=client_of(slack), signing_secret=SIGNING_SECRET)

    @app.command("/access-review")
    async def command(ack: Any, command: dict[str, Any]) -> None:
        await ack()
        seen.append(command["text"])

    @app.event("app_home_opened")
    async def home(event: dict[str, Any]) -> None:
        seen.append(f"home:{event['user']}")

    @app.action("keep")
    async def keep(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        seen.append(f"keep:{body['actions'][0]['value']}")

    handler = AsyncSocketModeHandler(app, APP_TOKEN)
    try:
        await handler.connect_async()
        await slack.wait_connected(WAIT)
        (opened,) = slack.calls_to("apps.connections.open")
        assert opened.token == APP_TOKEN and opened.ok
        first = await slack.push("slash_commands", slack.slash_command(adele["id"], "status"))
        assert (await slack.wait_ack(first, WAIT))["envelope_id"] == first
        event = await slack.push("events_api", slack.app_home_opened(adele["id"]))
        await slack.wait_ack(event, WAIT)
        sent = await client_of(slack).chat_postMessage(channel=adele["id"], text="review", blocks=review_blocks())
        click = await slack.push("interactive", slack.block_actions(adele["id"], "keep", channel=sent["channel"],
                                                                    ts=sent["ts"]))
        await slack.wait_ack(click, WAIT)
        assert [e["type"] for e in slack.envelopes] == ["slash_commands", "events_api", "interactive"]

        await slack.disconnect()  # Slack's periodic refresh: the client moves to a new URL
        async with asyncio.timeout(WAIT):
            while slack.connections_opened < 2:
                await asyncio.sleep(0.01)
        await slack.wait_connected(WAIT)
        second = await slack.push("slash_commands", slack.slash_command(adele["id"], "mine"))
        assert (await slack.wait_ack(second, WAIT))["envelope_id"] == second
        assert len(slack.calls_to("apps.connections.open")) == 2

        await slack.drop()  # the socket closes without warning: the client reconnects on its own
        async with asyncio.timeout(WAIT):
            while slack.connections_opened < 3:
                await asyncio.sleep(0.01)
        await slack.wait_connected(WAIT)
        third = await slack.push("slash_commands", slack.slash_command(adele["id"], "help"))
        await slack.wait_ack(third, WAIT)
        async with asyncio.timeout(WAIT):  # Bolt runs event listeners after the ack
            while len(seen) < 5:
                await asyncio.sleep(0.01)
        assert sorted(seen) == sorted(["status", f"home:{adele['id']}", "keep:item-1", "mine", "help"])
    finally:
        await handler.close_async()


async def test_apps_connections_open_refuses_the_bot_token(slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client_of(slack).apps_connections_open(app_token=BOT_TOKEN)
    assert refused.value.response["error"] == "not_allowed_token_type"
