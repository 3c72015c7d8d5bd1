"""Run Microsoft 365 Agents Playground and drive its web UI from Python end-to-end tests.

The Playground is the only offline Teams-like client: it renders the bot's Adaptive Cards with the official
renderer and turns ``Action.Execute`` clicks into ``adaptiveCard/action`` invokes, so a test that goes through
it checks what a Teams user would see. These helpers keep tests free of process plumbing: start the
Playground against a bot URL, hand the driver a list of steps, stop it. No pytest import, so scripts can use
them too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.playground import PLAYGROUND_BIN

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO_ROOT / "node_modules"
PLAYWRIGHT_CORE = NODE_MODULES / "playwright-core"
DRIVER = Path(__file__).with_name("drive_playground.mjs")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

_DRIVE_TIMEOUT_S = 120.0


def chromium_path() -> str | None:
    """Debian's chromium, which the driver launches (Playwright's own browser downloads need the internet)."""
    configured = os.environ.get("CHROMIUM_PATH")
    candidates = (configured,) if configured else CHROMIUM_CANDIDATES
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_tools() -> list[str]:
    """What this machine lacks to run the Playground end to end; empty when everything is there."""
    missing = []
    if chromium_path() is None:
        missing.append("chromium (apt-get install -y chromium)")
    if shutil.which("node") is None:
        missing.append("node")
    if not PLAYGROUND_BIN.exists():
        missing.append(f"{PLAYGROUND_BIN.relative_to(REPO_ROOT)} (npm ci)")
    if not PLAYWRIGHT_CORE.exists():
        missing.append(f"{PLAYWRIGHT_CORE.relative_to(REPO_ROOT)} (npm ci)")
    return missing


def drive(
    url: str, steps: Sequence[dict[str, Any]], shots_dir: Path
) -> list[dict[str, Any]]:
    """Runs the steps (see drive_playground.mjs) in headless Chromium and returns one result per step.

    Raises AssertionError carrying the driver's whole output (the failed step, the page's visible text, the
    activities the bot refused) when a step fails; ``shots_dir/failure.png`` shows the page at that moment.
    """
    shots_dir.mkdir(parents=True, exist_ok=True)
    script = shots_dir / "steps.json"
    script.write_text(json.dumps(list(steps), indent=1), encoding="utf-8")
    env = dict(os.environ)
    chromium = chromium_path()
    if chromium is not None:
        env["CHROMIUM_PATH"] = chromium
    completed = subprocess.run(
        ["node", str(DRIVER), url, str(script), str(shots_dir)],
        check=False,
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=_DRIVE_TIMEOUT_S,
    )
    results = [
        json.loads(line)
        for line in completed.stdout.splitlines()
        if line.startswith("{")
    ]
    if completed.returncode != 0:
        failed = next((result for result in results if not result.get("ok")), None)
        summary = (
            failed["error"]
            if failed
            else "the driver stopped without reporting a failed step"
        )
        passed = "".join(
            f"{json.dumps(result)}\n" for result in results if result.get("ok")
        )
        raise AssertionError(
            f"Playground driver failed (exit {completed.returncode}): {summary}\n"
            f"--- steps that passed ---\n{passed}--- driver stderr ---\n{completed.stderr}"
        )
    return results
