"""The demo with and without a Slack workspace: it says how to attach one, runs Teams alone unchanged without
one, and refuses an incomplete Slack configuration, naming the setting that is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bot.config import REPO_ROOT
from bot.playground import free_port

ACCESSBOT = Path(sys.executable).parent / "accessbot"
START = 30.0  # seconds: reached only when the demo never starts; never a measure of speed


def run_demo(tmp_path: Path, **env: str) -> tuple[dict, str]:
    """Start `accessbot demo --no-playground`, read /healthz once it answers, stop it; its health and output."""
    port = free_port()
    log_path = tmp_path / "demo.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ACCESSBOT_SLACK_")}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(ACCESSBOT), "demo", "--no-playground", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env={**clean, **env},
        )
        try:
            deadline = time.monotonic() + START
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                        health = json.loads(response.read())
                        break
                except OSError:
                    assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.2)
        finally:
            process.terminate()
            process.wait(timeout=10)
    return health, log_path.read_text()


def test_the_demo_without_slack_serves_teams_alone_and_says_how_to_attach_a_workspace(tmp_path: Path) -> None:
    health, said = run_demo(tmp_path)
    assert health["status"] == "ok" and "slack" not in health
    for name in ("ACCESSBOT_SLACK_BOT_TOKEN", "ACCESSBOT_SLACK_SIGNING_SECRET", "ACCESSBOT_SLACK_MODE=socket",
                 "ACCESSBOT_SLACK_APP_TOKEN", "docs/slack-app.md"):
        assert name in " ".join(said.split()), name


def test_a_slack_token_without_its_signing_secret_is_refused_naming_the_missing_setting(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(ACCESSBOT), "demo", "--no-playground", "--port", str(free_port()), "--data-dir", str(tmp_path / "data")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "ACCESSBOT_SLACK_BOT_TOKEN": "xoxb-1-2-test", "ACCESSBOT_SLACK_SIGNING_SECRET": ""},
    )
    assert done.returncode != 0 and "ACCESSBOT_SLACK_SIGNING_SECRET" in done.stdout + done.stderr
