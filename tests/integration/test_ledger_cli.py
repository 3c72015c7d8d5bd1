"""The ledger's key handling as an operator and an auditor use it: keygen, writers that refuse to run
unsigned, the demo's own key, doctor's fingerprint, and a rotation verified from either public key."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import _demo_signer, app
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT, Settings

runner = CliRunner()
DEMO = ["--policy", str(DEMO_POLICY), "--snapshot", str(DEMO_SNAPSHOT)]


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env or {}, catch_exceptions=False)


def keygen(path: Path) -> dict[str, str]:
    made = run("ledger", "keygen", "--out", str(path))
    assert made.exit_code == 0, made.output
    return {"ACCESSBOT_LEDGER_KEY_FILE": str(path)}


def test_keygen_prints_the_public_key_and_its_fingerprint_and_doctor_shows_the_same(tmp_path: Path) -> None:
    made = run("ledger", "keygen", "--out", str(tmp_path / "ledger.key"))

    assert made.exit_code == 0, made.output
    assert "-----BEGIN PUBLIC KEY-----" in made.output
    assert stat.S_IMODE((tmp_path / "ledger.key").stat().st_mode) == 0o600
    fingerprint = made.output.split("fingerprint ")[1].split()[0]
    doctor = run("doctor", *DEMO, "--data-dir", str(tmp_path / "data"),
                 env={"ACCESSBOT_LEDGER_KEY_FILE": str(tmp_path / "ledger.key")})
    assert f"ledger key: signing with public key fingerprint {fingerprint}" in doctor.output
    again = run("ledger", "keygen", "--out", str(tmp_path / "ledger.key"))
    assert again.exit_code == 2 and "refusing to overwrite" in again.output


def test_keygen_refuses_to_put_the_key_in_the_data_dir(tmp_path: Path) -> None:
    result = run("ledger", "keygen", "--out", str(tmp_path / "data" / "ledger.key"), "--data-dir", str(tmp_path / "data"))
    assert result.exit_code == 2 and "inside the data directory" in result.output


def test_serve_and_campaign_open_refuse_to_write_an_unsigned_ledger_unless_told(tmp_path: Path) -> None:
    serve = run("serve", *DEMO, "--no-auth", "--data-dir", str(tmp_path))
    opened = run("campaign", "open", *DEMO, "--data-dir", str(tmp_path))

    for refused in (serve, opened):
        assert refused.exit_code == 2 and "No ledger signing key" in refused.output and "--unsigned-ledger" in refused.output
    assert not (tmp_path / "ledger.jsonl").exists()
    unsigned = run("campaign", "open", *DEMO, "--unsigned-ledger", "--data-dir", str(tmp_path))
    assert unsigned.exit_code == 0, unsigned.output


def test_a_bad_key_file_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "bad.key").write_text("not a key")
    result = run("serve", *DEMO, "--no-auth", "--data-dir", str(tmp_path / "data"),
                 env={"ACCESSBOT_LEDGER_KEY_FILE": str(tmp_path / "bad.key")})
    assert result.exit_code == 2 and "neither a PEM private key" in result.output and "Traceback" not in result.output


def test_the_demo_makes_its_own_key_beside_its_data_dir_and_keeps_using_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "demo-data")

    signer, key_file = _demo_signer(settings)
    again, same_file = _demo_signer(settings)

    assert key_file == same_file == (tmp_path / "demo-data-ledger-key" / "ledger.key").resolve()
    assert not key_file.resolve().is_relative_to((tmp_path / "demo-data").resolve())
    assert again.fingerprint == signer.fingerprint


def test_rotate_key_hands_over_and_verify_follows_from_either_public_key(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    old = keygen(tmp_path / "old.key")
    assert run("campaign", "open", *DEMO, *data, env=old).exit_code == 0

    rotated = run("ledger", "rotate-key", "--new-key-out", str(tmp_path / "new.key"), *data, env=old)

    assert rotated.exit_code == 0, rotated.output
    assert "handed the ledger to" in rotated.output
    for public in ("old.key.pub", "new.key.pub"):
        result = run("ledger", "verify", *data, "--public-key", str(tmp_path / public))
        assert result.exit_code == 0, result.output
    new = {"ACCESSBOT_LEDGER_KEY_FILE": str(tmp_path / "new.key")}
    assert "already open" in run("campaign", "open", *DEMO, *data, env=new).output


def test_a_ledger_opened_unsigned_is_never_ok_until_adopted_with_a_key(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    assert run("campaign", "open", *DEMO, "--unsigned-ledger", *data).exit_code == 0
    key = keygen(tmp_path / "ledger.key")
    public = ["--public-key", str(tmp_path / "ledger.key.pub")]

    unsigned = run("ledger", "verify", *data, *public)
    adopted = run("ledger", "adopt", *data, env=key)
    verified = run("ledger", "verify", *data, *public)

    assert unsigned.exit_code == 1 and "no signed checkpoint covers the 1 records" in unsigned.output
    assert adopted.exit_code == 0 and "signed record 1" in adopted.output
    assert verified.exit_code == 0, verified.output
