"""The Slack app manifest an admin pastes into "Create an app from a manifest" holds what the bot needs: the
command, one request URL for everything at /slack/events, the App Home, the events, and a scope for every
Web API method the Slack channel calls (the scopes each method needs are the fake Slack's ``SCOPE_NEEDED``,
which refuses a call without its scope as Slack does)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.fakes.fake_slack import BOT_SCOPES, SCOPE_NEEDED

MANIFEST = Path(__file__).resolve().parents[2] / "manifest" / "slack" / "manifest.yaml"
PLACEHOLDER_HOST = "accessbot.example.com"
# Methods the Slack channel uses (issue 11): send and update reviews, ephemerals, DMs, map people, modals, Home.
METHODS_USED = ("chat.postMessage", "chat.update", "chat.postEphemeral", "chat.delete", "conversations.open",
                "users.lookupByEmail", "users.info", "views.open", "views.update", "views.publish")
# The scope each subscribed event needs (Slack's event reference); app_home_opened needs none.
EVENT_SCOPE = {"app_mention": "app_mentions:read", "message.im": "im:history"}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def test_the_slash_command_is_access_review_with_every_subcommand_in_its_hint(manifest: dict[str, Any]) -> None:
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/access-review"
    for word in ("mine", "status", "overdue", "findings", "history", "export", "remind", "sign off", "help"):
        assert word in command["usage_hint"]
    assert command["should_escape"] is False  # the bot reads plain text, not escaped <@U…> mentions


def test_commands_interactions_and_events_all_go_to_slack_events_on_one_host(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    urls = [manifest["features"]["slash_commands"][0]["url"], settings["interactivity"]["request_url"],
            settings["event_subscriptions"]["request_url"]]
    assert settings["interactivity"]["is_enabled"] is True
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == ("https", PLACEHOLDER_HOST, "/slack/events")
    # the header tells the admin how many times to replace the placeholder: keep it true
    text = MANIFEST.read_text(encoding="utf-8")
    said = re.search(r"replace \S+ \((\w+) times below\)", text)
    assert said and {"three": 3}[said.group(1)] == len(urls) == text.count(f"https://{PLACEHOLDER_HOST}/")


def test_http_mode_by_default_with_home_tab_and_messages_tab(manifest: dict[str, Any]) -> None:
    assert manifest["settings"]["socket_mode_enabled"] is False
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True and home["messages_tab_enabled"] is True
    assert home["messages_tab_read_only_enabled"] is False
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]


def test_the_bot_scopes_cover_every_method_and_event_and_nothing_more(manifest: dict[str, Any]) -> None:
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = {SCOPE_NEEDED[m] for m in METHODS_USED if m in SCOPE_NEEDED}
    needed |= {EVENT_SCOPE[e] for e in manifest["settings"]["event_subscriptions"]["bot_events"] if e in EVENT_SCOPE}
    needed.add("commands")  # the slash command
    assert granted == needed
    assert granted == BOT_SCOPES  # the fake grants the bot exactly what the manifest asks for
    assert "user" not in manifest["oauth_config"]["scopes"]  # the app never acts as a person


def test_display_information_fits_slacks_limits(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert 0 < len(info["name"]) <= 35
    assert 0 < len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", info["background_color"])
    assert 0 < len(manifest["features"]["bot_user"]["display_name"]) <= 80
