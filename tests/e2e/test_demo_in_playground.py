"""The demo as a person uses it: accessbot on the demo tenant, Microsoft's Agents Playground, a real browser.

Starts `accessbot demo` as its own process, points the Playground at it, and with playwright-core in
Chromium asks for `my reviews` (a digest), presses Submit with nothing chosen and is told so, opens items
from it, clicks Keep on one and Revoke (with a justification) on another and sees each card updated in
place; checks the answers are in `status`, drawn as charts, and that `export` offers the PDF report; signs the review off (confirming, with items still open),
sees the ledger witness it posts fit its bubble, and `my reviews` say it is closed; then checks the answers are in
`accessbot ledger export`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from bot.config import REPO_ROOT
from bot.playground import PLAYGROUND_CONFIG, free_port, playground_config_as, start_playground
from tests.e2e.playground import drive, missing_tools

pytestmark = pytest.mark.e2e

ACCESSBOT = Path(sys.executable).parent / "accessbot"


def _skip_or_fail_without_tools() -> None:
    missing = missing_tools()
    if missing:
        reason = "end-to-end test needs " + ", ".join(missing)
        if os.environ.get("ACCESSBOT_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (ACCESSBOT_REQUIRE_BROWSER=1: CI must run it)")
        pytest.skip(reason)


@pytest.fixture
def demo_bot(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    _skip_or_fail_without_tools()
    port = free_port()
    data_dir = tmp_path / "data"
    log = (tmp_path / "accessbot.log").open("w")
    process = subprocess.Popen(
        [str(ACCESSBOT), "demo", "--no-playground", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    health = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(health, timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail("accessbot demo did not start:\n" + (tmp_path / "accessbot.log").read_text())
            time.sleep(0.2)
    try:
        yield f"http://127.0.0.1:{port}/api/messages", data_dir
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_reviewer_keeps_and_revokes_in_the_playground_and_sees_the_cards_update(demo_bot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bot_url, data_dir = demo_bot
    shots = REPO_ROOT / "test-artifacts" / "e2e-demo"
    with start_playground(bot_url) as playground:
        drive(
            playground.url,
            [
                {"waitText": "waiting for you: say 'my reviews'"},
                {"send": "my reviews"},
                {"waitText": "Megan Bowen — Global Administrator"},
                {"screenshot": "01-digest"},
                {"click": "Submit answers", "card": 0},  # nothing chosen: the card must say so
                {"waitText": "Nothing chosen, so nothing was recorded"},
                {"click": "Details", "nth": 0, "card": 0},
                {"waitText": "Justification (required to revoke)"},
                {"click": "Keep"},
                {"waitText": "Kept by Alex Wilber"},
                {"screenshot": "02-kept"},
                {"click": "Details", "nth": 1, "card": 0},
                {"waitText": "MFA devices none registered"},
                {"fill": {"Justification (required to revoke)": "No MFA on a permanent Global Administrator"}},
                {"click": "Revoke"},
                {"waitText": "Revoked by Alex Wilber"},
                {"screenshot": "03-revoked"},
                {"send": "status"},
                {"waitText": "1 kept, 1 revoked"},
                # Teams' charts drawn, not their fallbacks: the donut's figures line, the per-reviewer list.
                {"waitCharts": 1, "without": ["Progress:", "open, "]},
                {"screenshot": "04-status"},
                {"send": "export"},
                {"waitText": "evidence report (PDF)"},
                {"send": "sign off"},  # items are still open: it asks first
                {"waitText": "still waiting for an answer"},
                {"click": "Sign off"},
                {"waitText": "recorded as unanswered at sign-off"},
                {"screenshot": "05-signed-off"},
                # The sign-off's ledger witness: its signed JSON wraps inside the bubble instead of running out.
                # It is a proactive message from the outbox, sent by the next delivery round, not a reply: on a
                # loaded machine that round can come later than a reply would (a hang guard, not a speed limit).
                {"fits": "Ledger checkpoint: record", "timeoutMs": 60000},
                {"screenshot": "06-witness"},
                {"send": "my reviews"},
                {"waitText": "Review closed, signed off by Alex Wilber"},
            ],
            shots,
        )
    exported = subprocess.run(
        [str(ACCESSBOT), "ledger", "export", "--format", "json", "--data-dir", str(data_dir)],
        check=True, capture_output=True, text=True, cwd=REPO_ROOT,
    ).stdout
    decisions = [r["data"] for r in json.loads(exported) if r["type"] == "decision"]
    assert [(d["action"], d["actor"]) for d in decisions] == [("keep", "Alex Wilber"), ("revoke", "Alex Wilber")]
    assert decisions[1]["justification"] == "No MFA on a permanent Global Administrator"
    verified = subprocess.run(
        [str(ACCESSBOT), "ledger", "verify", "--data-dir", str(data_dir),
         "--public-key", str(data_dir.parent / "data-ledger-key" / "ledger.key.pub")],  # the demo's own key
        capture_output=True, text=True, cwd=REPO_ROOT,
    )
    assert verified.returncode == 0 and "ledger OK" in verified.stdout


def test_demo_as_patti_puts_her_in_the_playground_with_her_own_two_items(demo_bot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The Playground cannot switch user: `accessbot demo --as` hands it a config with Patti as its user."""
    bot_url, _ = demo_bot
    config = playground_config_as((REPO_ROOT / PLAYGROUND_CONFIG).read_text(encoding="utf-8"), "pattif@contoso.com")
    (tmp_path / PLAYGROUND_CONFIG).write_text(config, encoding="utf-8")
    with start_playground(bot_url, tmp_path) as playground:
        drive(
            playground.url,
            [
                {"waitText": "2 items are waiting for you: say 'my reviews'"},
                {"send": "my reviews"},
                {"waitText": "Pradeep Gupta — Exchange Administrator"},
                {"waitText": "Reviewer Patti Fernandez"},
                {"send": "status"},
                {"waitText": "Your part of the Contoso review"},
            ],
            REPO_ROOT / "test-artifacts" / "e2e-demo-as-patti",
        )
