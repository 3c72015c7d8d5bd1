"""Every Adaptive Card accessbot sends, parsed and rendered by Microsoft's official renderer in Chromium.

The cards come from the real code — the dialogs answering real commands and clicks on the demo tenant,
rendered by ``dialogs/render/teams.py`` — not from hand-written samples, so a card the bot can actually send
cannot drift from what Teams' renderer accepts. ``render_cards.mjs`` parses each one against Adaptive Cards
1.5 and reports every event the renderer logs; a single event fails the test. A screenshot of all of them
lands in ``test-artifacts/cards/cards.png`` for a person to look at.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT, REPO_ROOT
from bot.ledger_signing import LedgerSigner
from dialogs.conversation import respond
from dialogs.digest import digest_action
from dialogs.notices import witness_view
from dialogs.partner_status import rollup_view
from dialogs.render.teams import card_for, item_card, render, rollup_card, witness_card
from dialogs.review import card_action, item_view
from dialogs.status import campaign_status
from dialogs.views import Actor, View
from tests.e2e.playground import chromium_path
from tests.integration.test_partner_campaigns import thousand_customers

pytestmark = pytest.mark.e2e

RENDERER = Path(__file__).with_name("render_cards.mjs")
NODE_MODULES = REPO_ROOT / "node_modules"
SCREENSHOT = REPO_ROOT / "test-artifacts" / "cards" / "cards.png"
MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
ALEX = Actor("8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01", "Alex Wilber")  # reviewer and security lead
ALEX_TEAMS_ID = "29:1alex"  # his Teams user id, which card refresh lists
VIEWERS = (ALEX_TEAMS_ID,)


@dataclass(frozen=True)
class Rendered:
    cards: list[dict[str, Any]]  # what was sent to the renderer: {"name", "card"}
    results: dict[str, dict[str, Any]]  # by name: what the renderer reported


def _missing_tools() -> list[str]:
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    for package in ("playwright-core", "adaptivecards"):
        if not (NODE_MODULES / package).exists():
            missing.append(f"node_modules/{package} (npm ci)")
    if chromium_path() is None:
        missing.append("chromium (apt-get install -y chromium)")
    return missing


class Catalogue:
    """Collects named cards, refusing duplicates so every card in the screenshot is told apart."""

    def __init__(self) -> None:
        self.cards: list[dict[str, Any]] = []

    def add(self, name: str, card: dict[str, Any]) -> None:
        assert name not in {entry["name"] for entry in self.cards}, name
        self.cards.append({"name": name, "card": card})

    def add_view(self, name: str, view: View) -> None:
        """Every card ``render`` makes of a reply to a typed command (text-only replies carry none)."""
        cards = [message.card for message in render(view, VIEWERS) if message.card is not None]
        for n, card in enumerate(cards):
            self.add(name if len(cards) == 1 else f"{name} #{n + 1}", card)


async def collect_cards(data_dir: Path) -> list[dict[str, Any]]:
    """Drive the demo tenant's review through the dialogs and keep every card they produce."""
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    clock = ManualClock(MONDAY)
    runtime = await build_runtime(
        data_dir=data_dir, policy=policy, snapshot=snapshot, clock=clock, credentials=BotCredentials()
    )
    service = runtime.service
    state, _ = await service.open_current_campaign()
    patti_id = service.resolve_person("pattif@contoso.com")
    assert patti_id is not None
    patti = Actor(patti_id, "Patti Fernandez")
    catalogue = Catalogue()

    def item_id(title: str) -> str:
        return next(item.id for item in state.items.values() if item.subject.title == title)

    async def click(name: str, title: str, action: str, **inputs: str) -> None:
        view = await card_action(service, ALEX, {"item": item_id(title), "action": action, **inputs})
        catalogue.add(name, card_for(view, VIEWERS))  # what the invoke answers with, replacing the card

    catalogue.add_view("help · security lead", await respond(service, ALEX, "help"))
    catalogue.add_view("help · reviewer", await respond(service, patti, "help"))
    catalogue.add_view("status · reviewer", await respond(service, patti, "status"))
    catalogue.add_view("my reviews · digest (security lead)", await respond(service, ALEX, "my reviews"))
    catalogue.add_view("my reviews · cards (reviewer)", await respond(service, patti, "my reviews"))
    adele = Actor(service.resolve_person("adelev@contoso.com"), "Adele Vance")  # Patti's delegate
    catalogue.add_view("my reviews · cards (delegate)", await respond(service, adele, "my reviews"))
    for item in sorted(state.items.values(), key=lambda i: (i.subject.kind, i.subject.title)):
        tags = "".join(
            tag for tag, present in ((" · break-glass", item.subject.break_glass), (" · excepted", item.exception is not None))
            if present
        )
        catalogue.add(f"open{tags} · {item.subject.title}", item_card(item_view(service, item, state.campaign), VIEWERS))

    await click("kept", "Megan Bowen — Global Administrator", "keep")
    await click("conflict notice", "Megan Bowen — Global Administrator", "revoke", justification="Left in October")
    await click("refused notice (no justification)", "Christie Cline — Global Administrator", "revoke")
    await click("revoked", "Christie Cline — Global Administrator", "revoke", justification="No longer in IT")
    await click("passed on (don't know)", "Nestor Wilke — Application Administrator", "dont_know")
    await click("reassigned", "Isaiah Langer — Privileged Role Administrator", "reassign", reassign_to="leeg@contoso.com")
    await click("reassign refused (unknown person)", "Lynne Robbins — Security Administrator", "reassign",
                reassign_to="nobody@example.org")
    catalogue.add("digest · submit with nothing chosen", card_for(await digest_action(service, ALEX, {"digest": True})))
    catalogue.add("digest · after keep all not flagged", card_for(await digest_action(service, ALEX, {"keep_unflagged": True})))
    catalogue.add_view("status · security lead", await respond(service, ALEX, "status"))
    catalogue.add_view("live status · security leads", campaign_status(service, live=True))
    catalogue.add_view("history · security lead", await respond(service, ALEX, "history meganb@contoso.com"))
    catalogue.add_view("findings · security lead", await respond(service, ALEX, "findings"))

    clock.advance(timedelta(days=6))  # past the deadline: reminders, escalations, overdue items
    await service.tick()
    catalogue.add_view("overdue · security lead", await respond(service, ALEX, "overdue"))
    catalogue.add_view("status · security lead, after the deadline", await respond(service, ALEX, "status"))
    for item in state.items.values():
        if item.overdue and item.is_open:
            catalogue.add(f"overdue · {item.subject.title}", item_card(item_view(service, item, state.campaign), VIEWERS))
            break
    catalogue.add("partner status · 1,000 customers, page 1", rollup_card(rollup_view(thousand_customers(), 1, MONDAY)))
    catalogue.add("partner status · 1,000 customers, last page", rollup_card(rollup_view(thousand_customers(), 40, MONDAY)))
    catalogue.add_view("sign off · confirmation", await respond(service, ALEX, "sign off"))
    catalogue.add_view("sign off · done", await respond(service, ALEX, "sign off confirm"))
    locked = next(item for item in state.items.values() if item.is_open)
    catalogue.add(f"locked · {locked.subject.title}", item_card(item_view(service, locked, state.campaign), VIEWERS))
    records = await runtime.store.ledger_records()  # this ledger is unsigned: a witness as a signed one posts it
    checkpoint = LedgerSigner.generate().checkpoint(records[0].hash, records[-1].head, "2026-11-23T09:30:00+00:00")
    catalogue.add("ledger witness · security leads", witness_card(witness_view(checkpoint)))
    return catalogue.cards


def _require_tools() -> None:
    missing = _missing_tools()
    if missing:
        reason = "rendering cards needs " + ", ".join(missing)
        if os.environ.get("ACCESSBOT_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + ", and ACCESSBOT_REQUIRE_BROWSER=1 forbids skipping it")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    _require_tools()
    tmp = tmp_path_factory.mktemp("cards")
    cards = asyncio.run(collect_cards(tmp / "data"))
    cards_file = tmp / "cards.json"
    cards_file.write_text(json.dumps(cards, ensure_ascii=False, indent=1), encoding="utf-8")
    env = {**os.environ, "CHROMIUM_PATH": chromium_path() or ""}
    done = subprocess.run(
        ["node", str(RENDERER), str(cards_file), str(SCREENSHOT)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.stdout, f"render_cards.mjs printed nothing (status {done.returncode}):\n{done.stderr}"
    report = json.loads(done.stdout)
    assert "error" not in report, report.get("error")
    return Rendered(cards, {result["name"]: result for result in report["cards"]})


def _card(rendered: Rendered, name: str) -> dict[str, Any]:
    return next(entry["card"] for entry in rendered.cards if entry["name"] == name)


# Teams draws these; Microsoft's renderer (like any host without charts) does not know them and must use their
# fallback. Its "unknown element" event for exactly these types is the fallback path, not a fault.
TEAMS_CHARTS = ("Chart.Donut", "Chart.HorizontalBar.Stacked")


def _is_chart_fallback(event: dict[str, Any]) -> bool:
    return event["event"] == "UnknownElementType" and any(f'"{chart}"' in event["message"] for chart in TEAMS_CHARTS)


def test_every_card_parses_and_validates_without_a_single_renderer_event(rendered: Rendered) -> None:
    events = {
        name: [event for event in result["parseEvents"] + result["validationEvents"] if not _is_chart_fallback(event)]
        for name, result in rendered.results.items()
    }
    assert {name: found for name, found in events.items() if found} == {}
    assert len(rendered.results) == len(rendered.cards)


def test_status_charts_fall_back_to_their_text_where_charts_are_not_drawn(rendered: Rendered) -> None:
    """The leads' status cards carry a donut and a stacked bar chart, each with a fallback the renderer shows."""
    for name in ("status · security lead", "status · security lead, after the deadline", "live status · security leads"):
        card, result = _card(rendered, name), rendered.results[name]
        charts = [node for node in _walk(card) if node.get("type") in TEAMS_CHARTS]
        assert sorted(node["type"] for node in charts) == sorted(TEAMS_CHARTS), name
        assert all(node.get("fallback", {}).get("type") in ("TextBlock", "FactSet") for node in charts), name
        fell_back = [event for event in result["parseEvents"] if _is_chart_fallback(event)]
        assert len(fell_back) == len(charts), name  # each chart fell back, and nothing else went wrong
        donut = next(node for node in charts if node["type"] == "Chart.Donut")
        answered = next(point["value"] for point in donut["data"] if point["legend"] == "Answered")
        assert f"Progress: {answered} answered" in result["text"], name  # the donut's figures, as text
        assert "Alex Wilber" in result["text"] and "answered" in result["text"], name  # the reviewers, as today
    after = _card(rendered, "status · security lead, after the deadline")
    donut = next(node for node in _walk(after) if node.get("type") == "Chart.Donut")
    assert {point["legend"]: point["color"] for point in donut["data"]}["Overdue"] == "attention"
    assert next(point["value"] for point in donut["data"] if point["legend"] == "Overdue") > 0


def test_every_card_renders_visible_content(rendered: Rendered) -> None:
    blank = [name for name, result in rendered.results.items() if not result["rendered"] or not result["text"].strip()]
    assert blank == []


def test_item_buttons_are_universal_actions_the_renderer_knows_with_card_refresh(rendered: Rendered) -> None:
    opened = {name: result for name, result in rendered.results.items() if name.startswith("open")}
    assert opened
    for name, result in opened.items():
        # Parsed as Action.Execute itself: had the renderer not known it, it would have fallen back to Submit.
        assert "Action.Execute" in result["actions"] and "Action.Submit" not in result["actions"], name
        assert result["refresh"] == "Action.Execute", name


def test_every_demo_item_has_an_open_card(rendered: Rendered) -> None:
    opened = [name for name in rendered.results if name.startswith("open")]
    assert len(opened) >= 20  # the demo tenant's roles, partners and recovery contacts
    assert any("Global Administrator" in name for name in opened)
    assert any("Partner" in result["text"] for name, result in rendered.results.items() if name.startswith("open"))


def test_answers_show_on_the_rendered_cards(rendered: Rendered) -> None:
    text = {name: result["text"] for name, result in rendered.results.items()}
    assert "Kept by Alex Wilber" in text["kept"]
    assert "Revoked by Alex Wilber" in text["revoked"] and "No longer in IT" in text["revoked"]
    assert "justification" in text["refused notice (no justification)"].lower()
    assert "Not recorded" in text["conflict notice"] and "Kept by Alex Wilber" in text["conflict notice"]
    assert "actions" not in _card(rendered, "kept") and "actions" not in _card(rendered, "revoked")


def test_break_glass_and_excepted_cards_warn_and_offer_no_revoke(rendered: Rendered) -> None:
    break_glass = [name for name in rendered.results if name.startswith("open · break-glass")]
    excepted = [name for name in rendered.results if "· excepted ·" in name]
    assert break_glass and excepted
    for name in break_glass:
        assert "break-glass account" in rendered.results[name]["text"]
        assert "Revoke" not in [action.get("title") for action in _card(rendered, name).get("actions", [])]
    for name in excepted:
        assert "Accepted exception until" in rendered.results[name]["text"]


def test_status_and_help_differ_for_security_leads_and_reviewers(rendered: Rendered) -> None:
    text = {name: result["text"] for name, result in rendered.results.items()}
    assert "By reviewer" in text["status · security lead"]
    assert "Waiting for your answer" in text["status · reviewer"] and "By reviewer" not in text["status · reviewer"]
    assert "my reviews" in text["help · reviewer"]
    assert "security lead" in text["help · security lead"]


def test_screenshot_of_all_cards_is_saved(rendered: Rendered) -> None:
    data = SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1440 and height > 900


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every JSON object inside a card, the card itself and nested Action.ShowCard cards included."""
    found = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def test_cards_stay_within_what_teams_renders_and_accepts(rendered: Rendered) -> None:
    """Adaptive Cards 1.5 at most, every Action.Execute with an Action.Submit fallback, well under 80 KB."""
    for entry in rendered.cards:
        name, card = entry["name"], entry["card"]
        objects = _walk(card)
        versions = {node["version"] for node in objects if node.get("type") == "AdaptiveCard"}
        assert versions <= {"1.0", "1.1", "1.2", "1.3", "1.4", "1.5"}, name
        for node in objects:
            if node.get("type") == "Action.Execute" and "title" in node:  # a button, not the refresh action
                assert node.get("fallback", {}).get("type") == "Action.Submit", (name, node.get("title"))
        # Teams counts the message in UTF-16 and asks bots to stay within 80 KB (413 MessageSizeTooBig above ~100 KB).
        assert len(json.dumps(card, ensure_ascii=False).encode("utf-16-le")) < 80 * 1024, name


def test_renderer_reports_what_it_does_not_accept(tmp_path: Path) -> None:
    """The canary: a card Teams would not show properly is reported, so zero events above means something."""
    _require_tools()
    broken = {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [
            {"type": "Media.Hologram"},
            {"type": "TextBlock", "text": "x", "color": "Purple"},
            {"type": "Input.Text", "id": "same", "label": "One"},
            {"type": "Input.Text", "id": "same", "label": "Two"},
        ],
        "actions": [{"type": "Action.Teleport", "title": "Go"}],
    }
    cards_file = tmp_path / "broken.json"
    cards_file.write_text(json.dumps([{"name": "broken", "card": broken}]), encoding="utf-8")
    done = subprocess.run(
        ["node", str(RENDERER), str(cards_file), str(tmp_path / "broken.png")],
        cwd=REPO_ROOT, env={**os.environ, "CHROMIUM_PATH": chromium_path() or ""},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1, done.stderr
    (result,) = json.loads(done.stdout)["cards"]
    events = {event["event"] for event in result["parseEvents"] + result["validationEvents"]}
    assert events == {"UnknownElementType", "InvalidPropertyValue", "UnknownActionType", "DuplicateId"}


def test_every_text_is_readable_on_its_background(rendered: Rendered) -> None:
    """WCAG AA (4.5:1) for every piece of text, measured in the renderer: no amber text on white."""
    unreadable = {
        name: result["contrast"] for name, result in rendered.results.items() if result["contrast"]["ratio"] < 4.5
    }
    assert unreadable == {}
    for entry in rendered.cards:
        # Teams' own light theme draws "Warning" amber and "Good" light green, paler than this renderer's.
        colours = {node.get("color") for node in _walk(entry["card"]) if node.get("type") == "TextBlock"}
        assert colours <= {None, "Default", "Attention"}, (entry["name"], colours)


def test_findings_card_leads_with_counts_and_groups_by_check(rendered: Rendered) -> None:
    result = rendered.results["findings · security lead"]
    lines = [line for line in result["text"].splitlines() if line.strip()]
    assert "finding(s) from" in lines[0] and "critical" in lines[1] and "high" in lines[1]
    card = _card(rendered, "findings · security lead")
    groups = [node for node in card["body"] if node.get("type") == "Container"]
    assert len(groups) >= 4 and "CRITICAL" in card_text_of(groups[0])
    assert result["height"] < 1200, result["height"]  # it was about 2,700 px, one name squeezed per row


def test_digest_answers_are_labelled_inputs(rendered: Rendered) -> None:
    card = _card(rendered, "my reviews · digest (security lead)")
    choices = [node for node in _walk(card) if node.get("type") == "Input.ChoiceSet"]
    assert choices and all(node.get("label") == "Your answer" for node in choices)


def test_sign_off_asks_first_and_leaves_the_cards_locked(rendered: Rendered) -> None:
    question = _card(rendered, "sign off · confirmation")
    assert [a["title"] for a in question["actions"]] == ["Sign off", "Cancel"]
    assert "still waiting" in rendered.results["sign off · confirmation"]["text"]
    locked = next(name for name in rendered.results if name.startswith("locked · "))
    assert "Review closed, signed off by Alex Wilber" in rendered.results[locked]["text"]
    assert "actions" not in _card(rendered, locked)


def card_text_of(node: dict[str, Any]) -> str:
    return " ".join(str(n.get("text", "")) for n in _walk(node))
