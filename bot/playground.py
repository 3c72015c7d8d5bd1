"""Microsoft 365 Agents Playground, Microsoft's local Teams-like client, started for `accessbot demo`.

It renders the bot's Adaptive Cards with the official renderer and turns Action.Execute clicks into
``adaptiveCard/action`` invokes, offline. Traps (docs/dependency-notes.md#agents-playground): headless, it exits opening a
browser unless TEAMSAPPTESTER_BROWSER=none; if its port is taken it silently picks another, so the port is
read from its "Listening on N" line; its console must be drained or it blocks.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from bot.config import REPO_ROOT

PLAYGROUND_BIN = REPO_ROOT / "node_modules" / ".bin" / "agentsplayground"

PLAYGROUND_CONFIG = ".m365agentsplayground.yml"

_LISTENING = re.compile(r"Listening on (\d+)")
_START_TIMEOUT_S = 30.0
# One person's fields in the config: `currentUser:` then indented `key: value` lines, or `  - id: …` then more.
_PERSON_START = re.compile(r"^(currentUser:|  - id: )")
_PERSON_FIELD = re.compile(r"^(\s+(?:- )?)(\w+): (.*)$")


class UnknownPlaygroundUser(ValueError):
    """The e-mail address given to `demo --as` is none of the Playground config's people."""


def playground_config_as(config: str, email: str) -> str:
    """The Playground config with the person whose e-mail is ``email`` as its user, and Alex among the others.

    The Playground has no switch-user button: its user is always the config's ``currentUser`` (``users`` are
    only the other members it reports). So `accessbot demo --as EMAIL` swaps that person's fields with
    currentUser's, and gives them a personal chat of their own, so notices meant for Alex never land in it.
    The file is plain two-level YAML: its lines are rewritten in place, comments kept.
    """
    lines = config.splitlines()
    people: list[dict[str, int]] = []  # per person: field name -> its line number
    person: dict[str, int] | None = None
    for number, line in enumerate(lines):
        if line.lstrip().startswith("#"):
            continue
        if _PERSON_START.match(line):
            person = {}
            people.append(person)
        elif not line.startswith(" "):
            person = None
        if person is not None and (found := _PERSON_FIELD.match(line)):
            person[found.group(2)] = number

    def value(number: int) -> str:
        found = _PERSON_FIELD.match(lines[number])
        assert found is not None
        return found.group(3).strip()

    emails = [value(person["email"]).lower() for person in people if "email" in person]
    if email.strip().lower() not in emails:
        raise UnknownPlaygroundUser(f"{email} is not one of the Playground's people: {', '.join(emails)}")
    current, chosen = people[0], people[emails.index(email.strip().lower())]
    for key in set(current) & set(chosen) if chosen is not current else ():
        mine, theirs = _PERSON_FIELD.match(lines[current[key]]), _PERSON_FIELD.match(lines[chosen[key]])
        assert mine is not None and theirs is not None
        lines[current[key]] = f"{mine.group(1)}{key}: {theirs.group(3)}"
        lines[chosen[key]] = f"{theirs.group(1)}{key}: {mine.group(3)}"
    for number, line in enumerate(lines[:-1]):
        if line.startswith("personalChat:") and (chat := _PERSON_FIELD.match(lines[number + 1])):
            lines[number + 1] = f"{chat.group(1)}id: a:accessbot-personal-{email.strip().lower().split('@')[0]}"
    return "\n".join(lines) + "\n"


def free_port() -> int:
    """A port nobody listens on right now: the Playground silently moves elsewhere when -p is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PlaygroundProcess:
    """A running Playground: its web UI at ``url``, its console and log file kept for failure reports."""

    url: str
    port: int
    process: subprocess.Popen[str]
    log_file: Path
    console_lines: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        """Everything the Playground said: its console, then its log file (where most of its messages go)."""
        console = "".join(self.console_lines)
        try:
            written = self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            written = ""
        return f"{console}--- {self.log_file} ---\n{written}"

    def stop(self) -> None:
        """Ends the Playground (only the process this object started) and removes its log file."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log_file.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_playground(bot_url: str, cwd: Path = REPO_ROOT, port: int | None = None) -> PlaygroundProcess:
    """Starts the Playground in Teams mode against ``bot_url`` and returns once its web UI listens.

    ``cwd`` is where it reads ``.m365agentsplayground.yml`` (the mock tenant, user and bot); the repository
    root holds ours. Its log file goes to a temporary file instead of ``cwd/devTools``. The conversation only
    starts when a page loads, so nothing reaches the bot until :func:`drive` runs.
    """
    log_fd, log_name = tempfile.mkstemp(prefix="agentsplayground-", suffix=".log")
    os.close(log_fd)
    port = port or free_port()
    env = {
        **os.environ,
        "TEAMSAPPTESTER_BROWSER": "none",
        "M365_AGENTS_PLAYGROUND_LOGFILE": log_name,
    }
    command = [
        str(PLAYGROUND_BIN),
        "start",
        "-e",
        bot_url,
        "-c",
        "msteams",
        "-p",
        str(port),
        "--disable-telemetry",
    ]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    playground = PlaygroundProcess(
        url="", port=port, process=process, log_file=Path(log_name)
    )
    listening = threading.Event()

    def read_console() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            playground.console_lines.append(line)
            found = _LISTENING.search(line)
            if found and not listening.is_set():
                playground.port = int(found.group(1))
                listening.set()

    threading.Thread(
        target=read_console, name="agentsplayground-console", daemon=True
    ).start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not listening.wait(timeout=0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            log = playground.log
            playground.stop()
            raise RuntimeError(
                f"Agents Playground did not start ({' '.join(command)}):\n{log}"
            )
    playground.url = f"http://localhost:{playground.port}"
    return playground
