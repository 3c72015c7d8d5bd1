"""A forged Keep appended past the last signed checkpoint, by someone who can write the data directory but has
no key. It must never be counted (`campaign status`, the exports), and when the writer sets it aside at
start-up, `ledger verify`, `doctor` and /healthz must say so rather than let it vanish into a log line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.ledger import canonical_json, record_hash
from bot.ledger_signing import LedgerSigner, write_key_pair
from tests.reliability.served_bot import ServedBot

runner = CliRunner()
DEMO = ["--policy", str(DEMO_POLICY), "--snapshot", str(DEMO_SNAPSHOT)]


class Opened:
    """The demo campaign opened by `campaign open` with a signing key kept outside the data directory."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        (root / "keys").mkdir()
        self.key = root / "keys" / "ledger.key"
        self.public_key = write_key_pair(LedgerSigner.generate(), self.key)
        self.env = {"ACCESSBOT_LEDGER_KEY_FILE": str(self.key)}
        opened = self.run("campaign", "open", *DEMO)
        assert opened.exit_code == 0, opened.output

    def run(self, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, [*args, "--data-dir", str(self.data)], env=self.env if env is None else env,
                             catch_exceptions=False)

    def forge_keep(self, move_anchor: bool) -> str:
        """Append a Keep of an open item, chained and hashed as the bot would; returns the item's id."""
        ledger = self.data / "ledger.jsonl"
        last = json.loads(ledger.read_text(encoding="utf-8").splitlines()[-1])
        items = json.loads(next(self.data.glob("items-*.json")).read_text(encoding="utf-8"))["items"]
        item = next(value for value in items.values() if value["state"] == "open" and value["reviewers"])
        data = {"campaign_id": last["data"]["campaign_id"], "item_id": item["id"], "subject": item["subject"]["key"],
                "action": "keep", "actor_id": item["reviewers"][0], "actor": "Forger", "on_behalf_of": None,
                "justification": "", "reassign_to": None, "system": False, "at": "2026-12-01T00:00:00+00:00"}
        seq, at = last["seq"] + 1, "2026-12-01T01:00:00.000000Z"
        record = {"seq": seq, "at": at, "type": "decision", "data": data, "prev": last["hash"],
                  "hash": record_hash(seq, at, "decision", data, last["hash"])}
        with ledger.open("ab") as out:
            out.write(canonical_json(record) + b"\n")
        if move_anchor:
            (self.data / "ledger.head").write_bytes(canonical_json({"seq": seq, "hash": record["hash"]}))
        return str(item["id"])

    def kept(self, env: dict[str, str] | None = None) -> str:
        status = self.run("campaign", "status", env=env)
        assert status.exit_code == 0, status.output
        return status.output.split(" kept")[0].rsplit(" ", 1)[-1]


@pytest.fixture
def opened(tmp_path: Path) -> Opened:
    return Opened(tmp_path)


@pytest.mark.parametrize("with_key", [True, False], ids=["key configured", "no key"])
def test_campaign_status_and_exports_never_count_a_forged_keep_appended_past_the_checkpoint(
    opened: Opened, with_key: bool
) -> None:
    opened.forge_keep(move_anchor=True)
    env = opened.env if with_key else {}

    status = opened.run("campaign", "status", env=env)
    exported = opened.run("campaign", "export", "--format", "json", env=env)
    whole = opened.run("ledger", "export", "--format", "json", env=env)

    assert status.exit_code == 0, status.output
    assert "0 kept" in status.output and "record 2 is not covered by a signed checkpoint" in status.output
    assert exported.exit_code == whole.exit_code == 0
    assert "Forger" not in exported.output and "Forger" not in whole.output


def test_campaign_status_refuses_a_ledger_whose_forged_checkpoint_the_key_does_not_sign(opened: Opened) -> None:
    opened.forge_keep(move_anchor=True)
    checkpoints = opened.data / "ledger-checkpoints.jsonl"
    last = json.loads(checkpoints.read_text(encoding="utf-8").splitlines()[-1])
    head = json.loads((opened.data / "ledger.head").read_bytes())
    with checkpoints.open("ab") as out:  # a checkpoint line for the forged record, with a signature made up
        out.write(canonical_json({**last, "seq": head["seq"], "hash": head["hash"], "sig": "00" * 64}) + b"\n")

    status = opened.run("campaign", "status")

    assert status.exit_code == 1
    assert "ledger BROKEN" in status.output and "not signed by the configured ledger key" in status.output
    assert "kept" not in status.output


def test_a_forged_tail_the_writer_sets_aside_is_reported_by_verify_and_doctor(opened: Opened) -> None:
    opened.forge_keep(move_anchor=False)  # the anchor still names the signed head: the writer sets the tail aside
    reopened = opened.run("campaign", "open", *DEMO)
    assert reopened.exit_code == 0, reopened.output
    assert [path.name for path in opened.data.glob("ledger-unsigned-*.jsonl")] == ["ledger-unsigned-2-2.jsonl"]

    verified = opened.run("ledger", "verify", "--public-key", str(opened.public_key), env={})
    doctor = opened.run("doctor", *DEMO)

    assert verified.exit_code == 0, verified.output  # what was acknowledged is intact...
    assert "WARNING" in verified.output and "ledger-unsigned-2-2.jsonl (1 record(s))" in verified.output  # ...but say it
    assert "WARN ledger:" in doctor.output and "ledger-unsigned-2-2.jsonl" in doctor.output
    assert opened.kept() == "0"


def test_healthz_names_the_records_a_writer_set_aside(tmp_path: Path) -> None:
    (tmp_path / "ledger-unsigned-7-8.jsonl").write_bytes(b'{"seq": 7}\n{"seq": 8}\n')  # as a crashed writer leaves it
    bot = ServedBot(tmp_path).start()
    try:
        health = bot.request("GET", "/healthz")
    finally:
        bot.stop()

    assert health.status == 200  # the ledger itself is fine: answers are still recorded
    assert "ledger-unsigned-7-8.jsonl (2 record(s))" in json.loads(health.body)["warning"]
