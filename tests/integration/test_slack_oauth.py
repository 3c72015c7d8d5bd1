"""Several Slack workspaces installing accessbot through OAuth, end to end: the install dance through the running
app's /slack/install and /slack/oauth_redirect against the local fake Slack's consent page and oauth.v2.access,
installations kept sealed on TinyDB and on PostgreSQL, each workspace's reviews sent with its own token, and
uninstalls."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiohttp
import psycopg
import pytest

from bot.channels.slack import SlackSettings
from bot.channels.slack_installations import SealedInstallationStore, TokenSeal
from bot.store.installations import INSTALLATIONS_FILE, installation_records
from bot.store.postgres_store import PostgresStore
from bot.store.tinydb_to_postgres import migrate_from_tinydb
from bot.channels.slack_oauth import SlackOAuth
from bot.cli import _slack
from bot.config import Settings
from bot.notifier import DeliveryError
from bot.operator_errors import OperatorError
from bot.store.base import OutboxMessage
from tests.fakes.fake_slack import SIGNING_SECRET
from tests.fakes.fake_slack_oauth import CLIENT_ID, CLIENT_SECRET
from tests.integration.slack_oauth_app import (
    IN_A,
    IN_B,
    MONDAY,
    TEAM_A,
    TEAM_B,
    TEAM_OUTSIDE,
    OAuthBot,
    serve_oauth_demo,
)
from tests.integration.slack_app import WAIT
from tests.postgres import empty_postgres_url, postgres_url  # noqa: F401  (fixtures for the PostgreSQL tests)

ALEX, PATTI = IN_A[0], IN_B[0]


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[OAuthBot]:
    served = await serve_oauth_demo(tmp_path)
    yield served
    await served.close()


def raw_tinydb(data_dir: Path) -> str:
    return (data_dir / INSTALLATIONS_FILE).read_text(encoding="utf-8")


async def until(what: Callable[[], Any], timeout: float = WAIT) -> Any:
    """Wait for the work Bolt runs after ack(): ``what`` returns something truthy (or awaits to it) once done."""
    async with asyncio.timeout(timeout):
        while True:
            found = what()
            if inspect.isawaitable(found):
                found = await found
            if found:
                return found
            await asyncio.sleep(0.01)


# ---- the install dance ----------------------------------------------------------------------------------------

async def test_an_allowed_workspace_installs_and_its_token_is_kept_only_sealed_on_tinydb(bot: OAuthBot, tmp_path: Path) -> None:
    installed = await bot.install(TEAM_A)
    assert installed.status == 200 and "installed in Contoso Security" in installed.page
    token = bot.workspace(TEAM_A).bot_token
    assert bot.runtime.slack is not None and bot.runtime.slack.installations is not None
    assert await bot.runtime.slack.installations.bot_token(TEAM_A) == token
    stored = raw_tinydb(tmp_path)
    assert TEAM_A in stored and token not in stored and "xoxb-" not in stored
    (sealed,) = [entry["sealed"] for entry in json.loads(stored)["installations"].values()]
    assert TokenSeal(bot.token_key).open(sealed, TEAM_A)["bot_token"] == token  # sealed with the configured key


async def test_an_allowed_workspace_installs_and_its_token_is_kept_only_sealed_on_postgresql(
        tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    bot = await serve_oauth_demo(tmp_path, database_url=postgres_url)
    try:
        installed = await bot.install(TEAM_B)
        assert installed.status == 200 and "Contoso Operations" in installed.page
        token = bot.workspace(TEAM_B).bot_token
        async with await psycopg.AsyncConnection.connect(postgres_url) as conn:
            rows = await (await conn.execute("SELECT team_id, enterprise_id, sealed FROM slack_installations")).fetchall()
            states = await (await conn.execute("SELECT count(*) FROM slack_oauth_states")).fetchone()
        assert [(team, enterprise) for team, enterprise, _ in rows] == [(TEAM_B, "E0CONTOSO")]
        assert token not in rows[0][2] and "xoxb-" not in rows[0][2]
        assert TokenSeal(bot.token_key).open(rows[0][2], TEAM_B)["bot_token"] == token
        assert states == (0,)  # the state was consumed
        assert not (tmp_path / "slack-installations.json").exists()  # on PostgreSQL, nothing beside the database
    finally:
        await bot.close()


async def test_a_tinydb_deployments_installations_move_to_postgresql_still_sealed_and_still_serving(
        tmp_path: Path, postgres_url: str) -> None:  # noqa: F811
    tiny = await serve_oauth_demo(tmp_path / "data")
    assert (await tiny.install(TEAM_A)).status == 200
    token, key = tiny.workspace(TEAM_A).bot_token, tiny.token_key
    await tiny.close()
    moved = await migrate_from_tinydb(tmp_path / "data", postgres_url)
    assert moved.slack_installations == 1
    store = PostgresStore(postgres_url)
    try:
        installations = SealedInstallationStore(installation_records(store, tmp_path / "unused"), TokenSeal(key))
        assert await installations.team_ids() == [TEAM_A] and await installations.bot_token(TEAM_A) == token
    finally:
        await store.close()


async def test_a_replayed_state_is_refused_and_a_forged_one_too(bot: OAuthBot) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as browser:
        consent_page, cookie = await bot.start_install(browser)
        redirect = await bot.consent(browser, consent_page, TEAM_A)
        assert (await bot.come_back(browser, redirect, cookie)).status == 200
        # The same return again (a replay: same state, same cookie, a fresh code so only the state can refuse it)
        replay = await bot.consent(browser, consent_page, TEAM_B)
        replayed = await bot.come_back(browser, replay, cookie)
        assert replayed.status == 401 and "already used" in replayed.page
        # A state accessbot never issued, with a cookie to match it: not in the store, refused
        forged = replay.replace(f"state={cookie}", "state=forged-state-value")
        assert (await bot.come_back(browser, forged, "forged-state-value")).status == 401
        # A real state without this browser's cookie (someone else's install link): refused
        consent_page, _ = await bot.start_install(browser)
        assert (await bot.come_back(browser, await bot.consent(browser, consent_page, TEAM_B), None)).status == 400
    assert bot.runtime.slack is not None and bot.runtime.slack.installations is not None
    assert await bot.runtime.slack.installations.team_ids() == [TEAM_A]


async def test_a_workspace_not_allowed_is_refused_uninstalled_again_and_nothing_of_it_is_kept(bot: OAuthBot, tmp_path: Path) -> None:
    refused = await bot.install(TEAM_OUTSIDE)
    assert refused.status == 403 and TEAM_OUTSIDE in refused.page and "ACCESSBOT_SLACK_ALLOWED_TEAMS" in refused.page
    assert bot.slack.uninstalled == [TEAM_OUTSIDE]  # apps.uninstall with its token: the app is not left behind
    assert bot.runtime.slack is not None and bot.runtime.slack.installations is not None
    assert await bot.runtime.slack.installations.team_ids() == []
    assert TEAM_OUTSIDE not in raw_tinydb(tmp_path)


async def test_an_enterprise_grid_org_wide_install_is_refused_with_a_clear_message(bot: OAuthBot) -> None:
    refused = await bot.install(TEAM_B, org="1")
    assert refused.status == 403 and "whole Enterprise Grid org" in refused.page and "Contoso" in refused.page
    assert bot.runtime.slack is not None and bot.runtime.slack.installations is not None
    assert await bot.runtime.slack.installations.team_ids() == []


async def test_an_install_cancelled_in_slack_installs_nothing(bot: OAuthBot) -> None:
    cancelled = await bot.install(TEAM_A, deny="1")
    assert cancelled.status == 200 and "cancelled" in cancelled.page
    assert bot.runtime.slack is not None and bot.runtime.slack.installations is not None
    assert await bot.runtime.slack.installations.team_ids() == []


# ---- two workspaces, each with its own token -----------------------------------------------------------------------

async def test_with_two_workspaces_each_reviewers_review_is_sent_with_their_own_workspaces_token(bot: OAuthBot) -> None:
    assert (await bot.install(TEAM_A)).status == 200 and (await bot.install(TEAM_B)).status == 200
    a, b = bot.workspace(TEAM_A), bot.workspace(TEAM_B)
    await bot.runtime.notifier.drain()
    alex_dm, patti_dm = a.dm_of(bot.members[ALEX]), b.dm_of(bot.members[PATTI])
    assert a.posted(alex_dm) and b.posted(patti_dm)
    # every call reached the workspace of the token it carried, and each posted only to its own members
    for ws in (a, b):
        posts = ws.calls_to("chat.postMessage")
        assert posts and all(call.token == ws.bot_token and call.ok for call in posts)
    assert {m.channel for m in b.posted()} <= {b.dm_of(b_id) for b_id in (bot.members[e] for e in IN_B)}
    assert {m.channel for m in a.posted()} <= {a.dm_of(a_id) for a_id in (bot.members[e] for e in IN_A)}
    stored = await bot.runtime.store.get_conversation("slack:" + bot.runtime.service.resolve_person(PATTI))
    assert stored is not None and stored["team"] == TEAM_B


async def test_an_address_kept_before_the_oauth_install_is_looked_up_again_in_the_installed_workspaces(bot: OAuthBot) -> None:
    assert (await bot.install(TEAM_B)).status == 200
    patti = bot.runtime.service.resolve_person(PATTI)
    await bot.runtime.store.save_conversation("slack:" + patti, {"user": "U0OLDTOKEN", "channel": "D0OLDTOKEN"})
    reached = await bot.runtime.channels.reach(patti)
    assert reached is not None and reached["address"]["team"] == TEAM_B
    assert reached["address"]["channel"] == bot.workspace(TEAM_B).dm_of(bot.members[PATTI])


async def test_a_command_from_a_workspace_is_answered_with_that_workspaces_token(bot: OAuthBot) -> None:
    assert (await bot.install(TEAM_A)).status == 200 and (await bot.install(TEAM_B)).status == 200
    b = bot.workspace(TEAM_B)
    status, _ = await b.post_to_app(bot.events_url, b.slash_command(bot.members[PATTI], "mine"))
    assert status == 200
    dm = b.dm_of(bot.members[PATTI])
    await until(lambda: b.posted(dm))
    assert all(call.token == b.bot_token for call in b.calls if call.method != "auth.test")
    assert bot.workspace(TEAM_A).calls_to("chat.postMessage") == []


async def test_a_token_of_one_workspace_cannot_post_into_another(bot: OAuthBot) -> None:
    a, b = bot.workspace(TEAM_A), bot.workspace(TEAM_B)
    patti_dm = b.dm_of(bot.members[PATTI])
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{bot.slack.api_url}chat.postMessage", headers={"Authorization": f"Bearer {a.bot_token}"},
                             data={"channel": patti_dm, "text": "hello"}) as answer:
            assert (await answer.json())["error"] == "channel_not_found"
        async with http.post(f"{bot.slack.api_url}auth.test", headers={"Authorization": f"Bearer {b.bot_token}"}) as who:
            assert (await who.json())["team_id"] == TEAM_B
    assert b.posted(patti_dm) == []


async def test_in_socket_mode_one_socket_serves_every_installed_workspace_each_with_its_token(tmp_path: Path) -> None:
    bot = await serve_oauth_demo(tmp_path, socket_mode=True)
    try:
        assert (await bot.install(TEAM_A)).status == 200 and (await bot.install(TEAM_B)).status == 200
        a, b = bot.workspace(TEAM_A), bot.workspace(TEAM_B)
        await a.wait_connected()
        envelope = await a.push("slash_commands", b.slash_command(bot.members[PATTI], "mine"))
        await a.wait_ack(envelope)
        await until(lambda: b.posted(b.dm_of(bot.members[PATTI])))
        assert all(call.token == b.bot_token for call in b.calls if call.method != "apps.connections.open")
        assert a.calls_to("chat.postMessage") == []
    finally:
        await bot.close()


# ---- uninstall --------------------------------------------------------------------------------------------------------

async def test_an_uninstall_deletes_the_installation_and_what_is_sent_there_is_reported_undeliverable(bot: OAuthBot) -> None:
    assert (await bot.install(TEAM_A)).status == 200 and (await bot.install(TEAM_B)).status == 200
    await bot.runtime.notifier.drain()
    patti = bot.runtime.service.resolve_person(PATTI)
    address = await bot.runtime.channels.reach(patti)
    assert address is not None and address["address"]["team"] == TEAM_B

    b = bot.workspace(TEAM_B)
    bot.slack.uninstall(TEAM_B)
    status, _ = await b.post_to_app(bot.events_url, bot.slack.event(TEAM_B, {"type": "app_uninstalled"}))
    assert status == 200
    slack = bot.runtime.slack
    assert slack is not None and slack.installations is not None
    installed = slack.installations
    await until(lambda: _only(installed.team_ids(), [TEAM_A]))
    with pytest.raises(DeliveryError) as refused:
        await bot.runtime.channels.send_text(address, "a reminder")
    assert refused.value.permanent and "no longer installed" in str(refused.value)

    # through the outbox: undeliverable, and the security leads (in the workspace still installed) are told
    await bot.runtime.store.enqueue([OutboxMessage(key="test:patti:after-uninstall", recipient=patti, kind="reminder",
                                                   payload={"text": "Your review waits."}, created_at=MONDAY,
                                                   next_attempt_at=MONDAY)])
    await bot.runtime.notifier.drain()
    await bot.runtime.notifier.drain()
    a = bot.workspace(TEAM_A)
    told = [m.text for m in a.posted(a.dm_of(bot.members[ALEX]))]
    assert any("Could not reach Patti Fernandez" in text and "no longer installed" in text for text in told)


async def test_an_installation_the_configured_key_cannot_open_is_never_used_and_sending_there_is_refused_for_good(
        tmp_path: Path) -> None:
    first = await serve_oauth_demo(tmp_path)
    assert (await first.install(TEAM_B)).status == 200
    await first.close()
    restarted = await serve_oauth_demo(tmp_path)  # the key was changed, and the old one not kept beside it
    try:
        assert restarted.token_key != first.token_key
        with pytest.raises(DeliveryError) as refused:
            await restarted.runtime.channels.send_text({"channel": "slack", "address": {"channel": "D1", "team": TEAM_B}},
                                                       "hello")
        assert refused.value.permanent and "ACCESSBOT_SLACK_TOKEN_KEY" in str(refused.value)
        assert restarted.workspace(TEAM_B).calls_to("chat.postMessage") == []
    finally:
        await restarted.close()


async def test_revoked_bot_tokens_end_the_installation_too(bot: OAuthBot) -> None:
    assert (await bot.install(TEAM_A)).status == 200
    a = bot.workspace(TEAM_A)
    event = bot.slack.event(TEAM_A, {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [a.ws.bot_user_id]}})
    assert (await a.post_to_app(bot.events_url, event))[0] == 200
    slack = bot.runtime.slack
    assert slack is not None and slack.installations is not None
    installed = slack.installations
    await until(lambda: _only(installed.team_ids(), []))


# ---- secrets ------------------------------------------------------------------------------------------------------------

async def test_no_token_is_ever_logged_during_installs_sends_and_uninstalls(bot: OAuthBot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert (await bot.install(TEAM_A)).status == 200 and (await bot.install(TEAM_B)).status == 200
    assert (await bot.install(TEAM_OUTSIDE)).status == 403
    await bot.runtime.notifier.drain()
    b = bot.workspace(TEAM_B)
    await b.post_to_app(bot.events_url, b.slash_command(bot.members[PATTI], "mine"))
    await until(lambda: b.posted(b.dm_of(bot.members[PATTI])))
    logged = caplog.text
    assert "oauth.v2.access" in logged  # slack_sdk's DEBUG log of the exchange was captured, its token blotted out
    for ws in bot.slack.workspaces.values():
        assert ws.bot_token not in logged
    assert not re.search(r"xox[a-z]-(?!\(redacted\))", logged)
    assert CLIENT_SECRET not in logged and bot.token_key not in logged


async def _only(found: Any, expected: list[str]) -> bool:
    return await found == expected


def test_oauth_mode_refuses_to_start_without_the_token_key_in_one_line() -> None:
    settings = Settings(slack_install="oauth", slack_client_id=CLIENT_ID, slack_client_secret=CLIENT_SECRET,  # type: ignore[arg-type]
                        slack_signing_secret=SIGNING_SECRET, slack_allowed_teams=TEAM_A, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(OperatorError) as refused:
        _slack(settings)
    said = str(refused.value)
    assert "ACCESSBOT_SLACK_TOKEN_KEY" in said and "\n" not in said


def test_oauth_mode_refuses_an_empty_allow_list_and_a_bot_token_beside_it() -> None:
    key = "bm90LWEtZmVybmV0LWtleQ=="
    assert "Fernet key" in (SlackOAuth(CLIENT_ID, CLIENT_SECRET, key, frozenset({TEAM_A})).problem() or "")
    from cryptography.fernet import Fernet

    good = Fernet.generate_key().decode()
    assert "ACCESSBOT_SLACK_ALLOWED_TEAMS" in (SlackOAuth(CLIENT_ID, CLIENT_SECRET, good).problem() or "")
    both = SlackSettings(bot_token="xoxb-1", signing_secret=SIGNING_SECRET,
                         oauth=SlackOAuth(CLIENT_ID, CLIENT_SECRET, good, frozenset({TEAM_A})))
    assert "exclude each other" in (both.problem() or "")
