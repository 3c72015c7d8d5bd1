"""What an operator sees when a command cannot do its job: one line on stderr and a documented exit code.

The locked store is tried with real processes: a running `accessbot serve` holds the data directory and
a second `accessbot` process is refused. The other cases run the real CLI in-process.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.operator_errors import ExitCode
from tests.integration.test_cli import LEDGER_KEY

runner = CliRunner()
ACCESSBOT = str(Path(sys.executable).parent / "accessbot")
DEMO = ["--policy", str(DEMO_POLICY), "--snapshot", str(DEMO_SNAPSHOT)]
CLEAN_ENV = {key: value for key, value in os.environ.items() if not key.startswith(("ACCESSBOT_", "MICROSOFT_APP"))}
CLEAN_ENV["ACCESSBOT_LEDGER_KEY"] = LEDGER_KEY  # a writer signs its ledger


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env={"ACCESSBOT_DEBUG": "", "ACCESSBOT_LEDGER_KEY": LEDGER_KEY}, catch_exceptions=False)


def one_line(stderr: str) -> str:
    """The error, asserting it is exactly one line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("accessbot: ") and "Traceback" not in stderr
    return lines[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    """A real `accessbot serve` holding ``tmp_path/data`` (its writer lock), answering /healthz."""
    data = tmp_path / "data"
    port = _free_port()
    server = subprocess.Popen(
        [ACCESSBOT, "serve", *DEMO, "--data-dir", str(data), "--no-auth", "--port", str(port)],
        env=CLEAN_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        give_up = time.monotonic() + 120  # a guard against a hang, not a speed requirement
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as health:
                    if health.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < give_up, "accessbot serve never became healthy"
            time.sleep(0.2)
        yield server, data, port
    finally:
        server.terminate()
        server.wait(30)


def test_a_second_serve_on_the_same_data_dir_is_refused_in_one_line_with_exit_code_4(serving) -> None:  # type: ignore[no-untyped-def]
    server, data, _ = serving
    second = subprocess.run(
        [ACCESSBOT, "serve", *DEMO, "--data-dir", str(data), "--no-auth", "--port", str(_free_port())],
        env=CLEAN_ENV, capture_output=True, text=True, timeout=120,
    )
    assert second.returncode == ExitCode.UNAVAILABLE == 4
    line = one_line(second.stderr)
    assert f"{data} is in use by another accessbot process (pid {server.pid})" in line
    assert "read-only commands" in line  # ... and what to do instead
    writer = run("campaign", "open", *DEMO, "--data-dir", str(data))  # any other writer too
    assert writer.exit_code == 4 and "in use by another accessbot process" in one_line(writer.stderr)
    reader = run("campaign", "status", "--data-dir", str(data))  # readers take no lock
    assert reader.exit_code == 0, reader.output


def test_a_serve_on_a_taken_port_says_so_in_one_line_with_exit_code_4(serving, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, port = serving
    second = subprocess.run(
        [ACCESSBOT, "serve", *DEMO, "--data-dir", str(tmp_path / "other"), "--no-auth", "--port", str(port)],
        env=CLEAN_ENV, capture_output=True, text=True, timeout=120,
    )
    assert second.returncode == 4
    assert f"cannot listen on 127.0.0.1:{port}: address already in use; stop what uses it" in one_line(second.stderr)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may write: a read-only tmpfs as root (who ignores file modes), else mode 0555."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = shutil.which("mount") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True
    ).returncode == 0
    if not mounted:
        pytest.skip("running as root without the right to mount a read-only tmpfs: root writes any mode-0555 folder")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_read_only_data_dir_is_said_in_one_line_with_exit_code_4(read_only_dir: Path) -> None:
    result = run("campaign", "open", *DEMO, "--data-dir", str(read_only_dir))
    assert result.exit_code == 4
    line = one_line(result.stderr)
    assert str(read_only_dir) in line and "must be a directory this user can write" in line


def test_a_data_dir_that_is_a_file_is_said_in_one_line_with_exit_code_4(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("oops")
    result = run("campaign", "open", *DEMO, "--data-dir", str(not_a_folder))
    assert result.exit_code == 4 and f"the data directory {not_a_folder}" in one_line(result.stderr)


@pytest.mark.parametrize("command", [["campaign", "status"], ["campaign", "export"]])
def test_reading_a_data_dir_that_does_not_exist_says_so_instead_of_reporting_nothing(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nowhere"
    result = run(*command, "--data-dir", str(missing))
    assert result.exit_code == 4
    assert f"no data directory at {missing}: pass --data-dir" in one_line(result.stderr)
    assert not missing.exists()  # a reader never creates it


def test_a_broken_policy_names_its_file_line_and_key_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(DEMO_POLICY.read_text().replace('mode = "off"', 'mode = "aply"'))
    result = run("campaign", "open", "--policy", str(policy), "--snapshot", str(DEMO_SNAPSHOT), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    line = one_line(result.stderr)
    number = next(n for n, text in enumerate(policy.read_text().splitlines(), 1) if "aply" in text)
    assert f"{policy}, line {number}: [remediation] mode" in line and "did you mean 'apply'?" in line
    assert "RemediationMode" not in line


def test_a_missing_snapshot_file_is_named_without_telling_to_pass_the_option_that_was_passed(tmp_path: Path) -> None:
    missing = tmp_path / "snapshot.json"
    result = run("campaign", "open", "--policy", str(DEMO_POLICY), "--snapshot", str(missing), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert f"{missing}: no such file" in line and "--snapshot FILE" not in line


def test_without_a_snapshot_or_graph_credentials_it_says_both_ways_out(tmp_path: Path) -> None:
    result = run("campaign", "open", "--policy", str(DEMO_POLICY), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "ACCESSBOT_GRAPH_CREDENTIAL" in line and "or pass --snapshot FILE" in line


def test_a_damaged_store_file_is_one_line_and_the_traceback_only_comes_with_debug(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("campaign", "open", *DEMO, "--data-dir", str(data)).exit_code == 0
    (data / "campaigns.json").write_text("{ not json")
    plain = subprocess.run([ACCESSBOT, "campaign", "status", "--data-dir", str(data)],
                           env=CLEAN_ENV, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 1
    assert "unexpected error" in one_line(plain.stderr) and "rerun with --debug" in plain.stderr
    debug = subprocess.run([ACCESSBOT, "--debug", "campaign", "status", "--data-dir", str(data)],
                           env=CLEAN_ENV, capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr


def test_help_lists_the_exit_codes() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for code in ("0 ok", "1 failed", "2 usage", "3 incomplete collection", "4 data directory unavailable"):
        assert code in text


def test_campaign_status_at_80_columns_shows_whole_ids_and_names(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("campaign", "open", *DEMO, "--data-dir", str(data)).exit_code == 0
    for extra in ([], ["--snapshot", str(DEMO_SNAPSHOT)]):
        shown = subprocess.run([ACCESSBOT, "campaign", "status", "--data-dir", str(data), *extra],
                               env={**CLEAN_ENV, "COLUMNS": "80"}, capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert "…" not in shown.stdout and all(len(line) <= 80 for line in shown.stdout.splitlines())
        assert "campaign 2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c:" in shown.stdout
        assert "31 items: 0 kept, 0 revoked, 29 open (0 overdue), 2 excepted" in shown.stdout
        assert ("Patti Fernandez" if extra else "f66eb8b7-79c8-407b-8b95-85a879f2381e") in shown.stdout


def test_a_broken_snapshot_file_is_named_in_one_line_without_telling_to_pass_it(tmp_path: Path) -> None:
    broken = tmp_path / "snapshot.json"
    broken.write_text('{"tenantId": 3}')
    result = run("campaign", "open", "--policy", str(DEMO_POLICY), "--snapshot", str(broken), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "--snapshot FILE" not in line and "tenantId" in line


def test_the_readme_documents_every_exit_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for code in ExitCode:
        assert f"\n| {code.value} | " in readme, code


@pytest.mark.parametrize("content", [b"garbage", b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"])
def test_a_bad_key_file_is_named_in_one_line_with_exit_code_2(tmp_path: Path, content: bytes) -> None:
    key = tmp_path / "graph.pem"
    key.write_bytes(content)
    env = {"ACCESSBOT_GRAPH_CREDENTIAL": "certificate", "ACCESSBOT_GRAPH_CLIENT_ID": "5b7d9f1a-2c4e-4a6b-8d0f-1e3a5c7e9b02",
           "ACCESSBOT_GRAPH_CERTIFICATE_PATH": str(key), "ACCESSBOT_DEBUG": ""}
    result = runner.invoke(app, ["collect", "--tenant", "2f4a9b6c-3d1e-4f5a-8b7c-9d0e1f2a3b4c", "--data-dir", str(tmp_path / "d")],
                           env=env, catch_exceptions=False)
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert f"ACCESSBOT_GRAPH_CERTIFICATE_PATH={key}" in line and "PEM or PKCS12" in line


def test_a_path_given_on_the_command_line_that_cannot_be_used_is_a_usage_error(tmp_path: Path) -> None:
    as_policy = run("campaign", "open", "--policy", str(tmp_path), "--snapshot", str(DEMO_SNAPSHOT), "--data-dir", str(tmp_path / "d"))
    assert as_policy.exit_code == 2 and f"cannot use {tmp_path}: is a directory" in one_line(as_policy.stderr)
    assert run("campaign", "open", *DEMO, "--data-dir", str(tmp_path / "d")).exit_code == 0
    nowhere = tmp_path / "no" / "such" / "folder" / "ledger.csv"
    export = run("ledger", "export", "--output", str(nowhere), "--data-dir", str(tmp_path / "d"))
    assert export.exit_code == 2 and f"{nowhere}: no such file or directory" in one_line(export.stderr)


def test_demo_as_someone_not_in_the_playground_is_a_usage_error_before_anything_starts(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    result = run("demo", "--as", "nobody@contoso.com", "--data-dir", str(data_dir))
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "--as: nobody@contoso.com is not one of the Playground's people" in line and "pattif@contoso.com" in line
    assert not data_dir.exists()  # refused before a campaign was opened or a port taken
