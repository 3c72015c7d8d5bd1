"""The Teams app package: built from a bot app id, checked with Microsoft's own validator, icons Teams accepts."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import subprocess
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from bot.config import REPO_ROOT
from bot.manifest import MANIFEST_DIR, build_manifest, teams_app_id_for, write_package
from dialogs.conversation import parse
from dialogs.help import REVIEWER_COMMANDS

BOT_APP_ID = "3f2a6c1e-9b4d-4e7a-8c5f-1d2e3f4a5b6c"
VALIDATOR = REPO_ROOT / "tests" / "e2e" / "validate_manifest.mjs"
APP_MANIFEST_PACKAGE = REPO_ROOT / "node_modules" / "@microsoft" / "app-manifest"


def _manifest(app_id: str = BOT_APP_ID, **overrides: Any) -> dict[str, Any]:
    return build_manifest(app_id, **{"version": "1.4.2", "domain": "accessbot.contoso.com", **overrides})


def _unzip(package: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(package) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _ihdr(png: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type), read straight from the IHDR chunk."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height, depth, colour_type = struct.unpack(">IIBB", png[16:26])
    return width, height, depth, colour_type


def _rgba_pixels(png: bytes) -> list[tuple[int, ...]]:
    """Every pixel of an 8-bit RGBA PNG whose rows use filter 0, as make_icons.py writes them."""
    width, height, _, _ = _ihdr(png)
    data, offset = b"", 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        if kind == b"IDAT":
            data += png[offset + 8 : offset + 8 + length]
        offset += 12 + length
    raw = zlib.decompress(data)
    stride = width * 4 + 1
    pixels = []
    for y in range(height):
        row = raw[y * stride : (y + 1) * stride]
        assert row[0] == 0, "unfiltered rows expected"
        pixels.extend(tuple(row[1 + x * 4 : 5 + x * 4]) for x in range(width))
    return pixels


def _validate(manifest: dict[str, Any], tmp_path: Path) -> tuple[int, dict[str, Any]]:
    if shutil.which("node") is None or not APP_MANIFEST_PACKAGE.exists():
        reason = "the manifest validator needs node and node_modules/@microsoft/app-manifest (npm ci)"
        if os.environ.get("ACCESSBOT_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + ", and ACCESSBOT_REQUIRE_BROWSER=1 forbids skipping it")
        pytest.skip(reason)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    done = subprocess.run(
        ["node", str(VALIDATOR), str(path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


# ---- the package --------------------------------------------------------------------------------------------


def test_package_holds_the_manifest_and_both_icons_at_its_root(tmp_path: Path) -> None:
    package = write_package(_manifest(), tmp_path / "out" / "accessbot.zip")
    files = _unzip(package)
    assert sorted(files) == ["color.png", "manifest.json", "outline.png"]
    manifest = json.loads(files["manifest.json"])
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert _ihdr(files["color.png"])[:2] == (192, 192)
    assert _ihdr(files["outline.png"])[:2] == (32, 32)


def test_built_package_passes_microsofts_manifest_validator(tmp_path: Path) -> None:
    files = _unzip(write_package(_manifest(), tmp_path))
    status, result = _validate(json.loads(files["manifest.json"]), tmp_path)
    assert (status, result["ok"], result["errors"]) == (0, True, [])
    assert result["schema"].endswith("/teams/v1.30/MicrosoftTeams.schema.json")


def test_validator_reports_a_broken_manifest(tmp_path: Path) -> None:
    manifest = _manifest()
    manifest["accentColor"] = "navy"
    manifest["bots"][0]["scopes"].append("meeting")
    status, result = _validate(manifest, tmp_path)
    assert status == 1 and result["ok"] is False
    assert any(error.startswith("/accentColor") for error in result["errors"]), result["errors"]
    assert any(error.startswith("/bots/0/scopes") for error in result["errors"]), result["errors"]


def test_validator_refuses_a_schema_it_would_have_to_download(tmp_path: Path) -> None:
    manifest = {**_manifest(), "$schema": "https://example.org/not-a-teams-schema.json"}
    status, result = _validate(manifest, tmp_path)
    assert status == 2 and result["ok"] is False and "not bundled" in result["errors"][0]


def test_same_inputs_give_the_same_package_bytes(tmp_path: Path) -> None:
    first = write_package(_manifest(), tmp_path / "a.zip").read_bytes()
    second = write_package(_manifest(), tmp_path / "b.zip").read_bytes()
    assert first == second


def test_package_into_a_directory_is_named_after_the_version(tmp_path: Path) -> None:
    assert write_package(_manifest(), tmp_path) == tmp_path / "accessbot-1.4.2.zip"


# ---- the icons ----------------------------------------------------------------------------------------------


def test_outline_icon_is_white_on_transparent() -> None:
    pixels = _rgba_pixels((MANIFEST_DIR / "outline.png").read_bytes())
    assert _ihdr((MANIFEST_DIR / "outline.png").read_bytes())[2:] == (8, 6)  # 8-bit RGBA: it has transparency
    drawn = [p for p in pixels if p[3] > 0]
    assert all(p[:3] == (255, 255, 255) for p in drawn)
    assert 0.15 < len(drawn) / len(pixels) < 0.7  # a symbol, neither empty nor a filled square
    assert pixels[0][3] == 0  # the corner is see-through


def test_colour_icon_is_opaque_and_in_colour() -> None:
    pixels = _rgba_pixels((MANIFEST_DIR / "color.png").read_bytes())
    assert all(p[3] == 255 for p in pixels)
    colours = {p[:3] for p in pixels}
    assert (0x1E, 0x4E, 0x8C) in colours and (255, 255, 255) in colours  # accent background, white shield
    assert any(g > r + 60 and g > b + 30 for r, g, b in colours)  # the green check mark


def test_committed_icons_are_what_make_icons_draws() -> None:
    spec = importlib.util.spec_from_file_location("make_icons", MANIFEST_DIR / "make_icons.py")
    assert spec is not None and spec.loader is not None
    make_icons = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icons)
    assert make_icons.color_icon() == (MANIFEST_DIR / "color.png").read_bytes()
    assert make_icons.outline_icon() == (MANIFEST_DIR / "outline.png").read_bytes()


def test_accent_colour_matches_the_icon_background() -> None:
    assert _manifest()["accentColor"].lower() == "#1e4e8c"


# ---- ids, domain and developer --------------------------------------------------------------------------------


def test_bot_app_id_fills_bot_and_web_application_info_and_derives_a_stable_teams_app_id() -> None:
    manifest = _manifest()
    assert manifest["bots"][0]["botId"] == BOT_APP_ID
    assert manifest["webApplicationInfo"] == {"id": BOT_APP_ID, "resource": f"api://botid-{BOT_APP_ID}"}
    assert manifest["id"] == teams_app_id_for(BOT_APP_ID) == _manifest(version="2.0.0", domain="x.contoso.com")["id"]
    assert manifest["id"] != BOT_APP_ID and uuid.UUID(manifest["id"]).version == 5
    other = _manifest(app_id="9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d")
    assert other["id"] != manifest["id"]


def test_given_teams_app_id_is_used_and_ids_are_normalised_to_lower_case() -> None:
    manifest = _manifest(app_id=BOT_APP_ID.upper(), teams_app_id="0C1D2E3F-4A5B-4C6D-8E7F-9A0B1C2D3E4F")
    assert manifest["id"] == "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
    assert manifest["bots"][0]["botId"] == BOT_APP_ID


@pytest.mark.parametrize(
    "bad", ["", "accessbot", "3f2a6c1e9b4d4e7a8c5f1d2e3f4a5b6c", "{3f2a6c1e-9b4d-4e7a-8c5f-1d2e3f4a5b6c}",
            "00000000-0000-0000-0000-000000000000"],
)
def test_bot_app_id_that_is_not_a_guid_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ValueError, match="MICROSOFT_APP_ID"):
        _manifest(app_id=bad)


def test_bad_teams_app_id_is_refused() -> None:
    with pytest.raises(ValueError, match="Teams app id"):
        _manifest(teams_app_id="my-app")


@pytest.mark.parametrize("bad", ["https://bot.contoso.com", "bot.contoso.com:443", "bot.contoso.com/api", "localhost", "bot_1.contoso.com"])
def test_domain_must_be_a_bare_host_name(bad: str) -> None:
    with pytest.raises(ValueError, match="domain"):
        _manifest(domain=bad)


@pytest.mark.parametrize("bad", ["1.0", "0.1.0.dev1", "v1.0.0", "01.2.3"])
def test_version_must_be_major_minor_patch(bad: str) -> None:
    with pytest.raises(ValueError, match="MAJOR.MINOR.PATCH"):
        _manifest(version=bad)


def test_name_longer_than_teams_allows_is_refused() -> None:
    assert _manifest(name="Contoso access reviews")["name"] == {
        "short": "Contoso access reviews",
        "full": "Contoso access reviews: weekly access reviews for Microsoft 365 and Entra ID",
    }
    with pytest.raises(ValueError, match="30"):
        _manifest(name="Contoso quarterly privileged access reviews")


def test_domain_becomes_the_valid_domain_and_the_developer_links() -> None:
    manifest = _manifest(domain="Accessbot.Contoso.com")
    assert manifest["validDomains"] == ["accessbot.contoso.com"]
    assert manifest["developer"] == {
        "name": "accessbot",
        "websiteUrl": "https://accessbot.contoso.com/",
        "privacyUrl": "https://accessbot.contoso.com/",
        "termsOfUseUrl": "https://accessbot.contoso.com/",
    }


def test_without_a_domain_the_developer_links_must_be_given() -> None:
    with pytest.raises(ValueError, match="developer links"):
        _manifest(domain=None)
    manifest = _manifest(domain=None, website_url="https://it.contoso.com/accessbot",
                         privacy_url="https://it.contoso.com/privacy")
    assert manifest["validDomains"] == []
    assert manifest["developer"]["privacyUrl"] == "https://it.contoso.com/privacy"
    assert manifest["developer"]["termsOfUseUrl"] == "https://it.contoso.com/accessbot"
    with pytest.raises(ValueError, match="https"):
        _manifest(website_url="http://it.contoso.com/")


def test_building_never_changes_the_template() -> None:
    first = _manifest(name="First")
    second = _manifest(name="Second")
    assert first["name"]["short"] == "First" and second["name"]["short"] == "Second"
    assert "botId" not in json.loads((MANIFEST_DIR / "manifest.template.json").read_text())["bots"][0]


# ---- what the bot offers in Teams ------------------------------------------------------------------------------


def test_one_conversational_bot_in_personal_team_and_group_chat() -> None:
    (bot,) = _manifest()["bots"]
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    assert bot["supportsFiles"] is False and bot["isNotificationOnly"] is False


def test_every_bot_scope_has_a_command_menu_with_the_reviewer_commands_from_help() -> None:
    (bot,) = _manifest()["bots"]
    lists = bot["commandLists"]
    covered = [scope for command_list in lists for scope in command_list["scopes"]]
    assert sorted(covered) == sorted(bot["scopes"])  # one menu per scope, none twice
    for command_list in lists:
        titles = [command["title"] for command in command_list["commands"]]
        assert [title for title, _ in REVIEWER_COMMANDS] == titles[: len(REVIEWER_COMMANDS)]


def test_team_menu_adds_the_security_lead_commands_and_says_who_they_are_for() -> None:
    (bot,) = _manifest()["bots"]
    (team,) = [command_list for command_list in bot["commandLists"] if "team" in command_list["scopes"]]
    (personal,) = [command_list for command_list in bot["commandLists"] if "personal" in command_list["scopes"]]
    everyone = {command["title"] for command in personal["commands"]}
    lead = {c["title"]: c["description"] for c in team["commands"] if c["title"] not in everyone}
    assert set(lead) >= {"overdue", "findings", "history", "export", "start review", "remind"}
    assert all(description.startswith("For security leads") for description in lead.values())


def test_commands_fit_teams_menu_limits() -> None:
    """Teams shows at most 10 commands per menu, titles up to 32 characters and descriptions up to 128."""
    (bot,) = _manifest()["bots"]
    for command_list in bot["commandLists"]:
        assert len(command_list["commands"]) <= 10
        for command in command_list["commands"]:
            assert len(command["title"]) <= 32 and 0 < len(command["description"]) <= 128


def test_every_menu_command_is_one_the_bot_understands() -> None:
    """A command picked from the menu is sent as typed: the bot must recognise each title as that command."""
    (bot,) = _manifest()["bots"]
    for command_list in bot["commandLists"]:
        for command in command_list["commands"]:
            assert parse(command["title"])[0] == command["title"], command["title"]
