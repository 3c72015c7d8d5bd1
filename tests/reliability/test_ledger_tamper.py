"""Someone who can write the data directory tampers with the ledger; `accessbot ledger verify` must say so.

Every case the issue found `verify` calling OK is run here through the real command line, as an auditor
would run it: with only the public key, and (for a thief of the signing key) with a witness that was
posted to the security leads before the theft.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.engine.model import LedgerEvent
from bot.ledger import LedgerHead, canonical_json, record_hash
from bot.ledger_signing import LedgerSigner, entry_to_line, public_key_pem, write_key_pair
from bot.store.tinydb_store import TinyDBStore

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
runner = CliRunner()


def keep(n: int) -> LedgerEvent:
    return LedgerEvent("decision", {"campaign_id": "c1", "item_id": f"item-{n}", "action": "keep", "actor": "Alex Wilber",
                                    "actor_id": "owner-alex", "justification": ""})


class Deployment:
    """A data directory written by a signed store, the key kept beside it (outside), and the auditor's .pub."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.key_file = root / "keys" / "ledger.key"
        self.key_file.parent.mkdir()
        self.signer = LedgerSigner.generate()
        self.public_key = write_key_pair(self.signer, self.key_file)

    def write(self, count: int, first: int = 1, signed: bool = True) -> None:
        """``count`` decisions, one group commit (and one checkpoint) each, as the running bot writes them."""

        async def append() -> None:
            store = TinyDBStore(self.data, signer=self.signer if signed else None)
            for n in range(first, first + count):
                await store.append_ledger([keep(n)], MONDAY + timedelta(seconds=n))
            await store.close()

        asyncio.run(append())

    def verify(self, *extra: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["ledger", "verify", "--data-dir", str(self.data), "--public-key", str(self.public_key),
                                   *extra], env={}, catch_exceptions=False)

    def lines(self) -> list[str]:
        return (self.data / "ledger.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)

    def rewrite(self, lines: list[str]) -> None:
        (self.data / "ledger.jsonl").write_text("".join(lines), encoding="utf-8")

    def witness(self) -> str:
        """The latest checkpoint as the security leads received it (the chat message text)."""
        posted = runner.invoke(app, ["ledger", "checkpoint", "--data-dir", str(self.data)], env={})
        assert posted.exit_code == 0, posted.output
        return posted.output


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    written = Deployment(tmp_path)
    written.write(10)
    return written


def forged(seq: int, prev: str, data: dict) -> str:  # type: ignore[type-arg]
    at = "2026-11-23T09:00:59.000000Z"
    record = {"seq": seq, "at": at, "type": "decision", "data": data, "prev": prev,
              "hash": record_hash(seq, at, "decision", data, prev)}
    return canonical_json(record).decode() + "\n"


def rehashed_from(lines: list[str], index: int) -> list[str]:
    """Every record from ``index`` on re-chained after an edit, as a forger with a text editor would."""
    out = lines[:index]
    prev = json.loads(lines[index - 1])["hash"] if index else "0" * 64
    for line in lines[index:]:
        raw = json.loads(line)
        raw["prev"] = prev
        raw["hash"] = record_hash(raw["seq"], raw["at"], raw["type"], raw["data"], prev)
        prev = raw["hash"]
        out.append(canonical_json(raw).decode() + "\n")
    return out


def anchor_at_end(deployment: Deployment) -> None:
    last = json.loads(deployment.lines()[-1])
    (deployment.data / "ledger.head").write_bytes(canonical_json({"seq": last["seq"], "hash": last["hash"]}))


def test_an_untouched_ledger_verifies_with_only_the_public_key(deployment: Deployment) -> None:
    result = deployment.verify()
    assert result.exit_code == 0, result.output
    assert "ledger OK: 10 records" in result.output and "checkpoint of record 10" in result.output


def test_a_forged_keep_appended_with_a_recomputed_hash_is_caught(deployment: Deployment) -> None:
    lines = deployment.lines()
    last = json.loads(lines[-1])
    lines.append(forged(11, last["hash"], {**keep(11).data, "item_id": "item-megan-ga"}))
    deployment.rewrite(lines)
    anchor_at_end(deployment)

    result = deployment.verify()

    assert result.exit_code == 1
    assert "record 11 is not covered by a signed checkpoint" in result.output


@pytest.mark.parametrize("respelled", ["duplicate data key", "spaces", "escaped letters"])
def test_a_line_respelled_so_it_still_parses_to_the_signed_record_is_caught(deployment: Deployment, respelled: str) -> None:
    """The hash covers the parsed record, not the bytes: a line must be the canonical bytes the bot wrote, or a
    parser that reads the first of two "data" keys would see a Revoke where verify sees the signed Keep."""
    lines = deployment.lines()
    line = lines[2]
    original = json.loads(line)
    if respelled == "duplicate data key":
        revoke = canonical_json({**original["data"], "action": "revoke"}).decode()
        line = line.replace('"data":', f'"data":{revoke},"data":', 1)
    elif respelled == "spaces":
        line = line.replace(",", ", ")
    else:
        line = line.replace("Alex", "\\u0041lex")
    assert json.loads(line) == original  # to Python's parser, still the very record that was signed
    lines[2] = line
    deployment.rewrite(lines)

    result = deployment.verify()

    assert result.exit_code == 1
    assert "ledger BROKEN at line 3" in result.output and "not in the canonical form" in result.output


def end_checkpoints_with_an_older_one(deployment: Deployment, seq: int) -> None:
    """Copy the genuine checkpoint of record ``seq`` to the end of the file, and point the anchor at it."""
    checkpoints = deployment.data / "ledger-checkpoints.jsonl"
    lines = checkpoints.read_text(encoding="utf-8").splitlines(keepends=True)
    older = next(line for line in lines if json.loads(line)["seq"] == seq)
    checkpoints.write_text("".join(lines) + older, encoding="utf-8")
    record = json.loads(deployment.lines()[seq - 1])
    (deployment.data / "ledger.head").write_bytes(canonical_json({"seq": seq, "hash": record["hash"]}))


def test_the_writer_never_sets_aside_signed_records_when_the_checkpoints_end_with_an_older_one(
    deployment: Deployment,
) -> None:
    end_checkpoints_with_an_older_one(deployment, 3)
    ledger = deployment.lines()

    async def start_writer() -> str | None:
        store = TinyDBStore(deployment.data, signer=deployment.signer)
        problem = store.write_problem()
        await store.close()
        return problem

    problem = asyncio.run(start_writer())

    assert problem is not None and "an earlier line signed record 10" in problem
    assert deployment.lines() == ledger and not list(deployment.data.glob("ledger-unsigned-*.jsonl"))
    assert deployment.verify().exit_code == 1


def test_records_cut_back_to_an_older_checkpoint_are_caught_by_the_later_ones_still_signed(
    deployment: Deployment,
) -> None:
    end_checkpoints_with_an_older_one(deployment, 3)
    deployment.rewrite(deployment.lines()[:3])

    result = deployment.verify()

    assert result.exit_code == 1
    assert "checkpoint line 4 signed record 4 but the ledger ends at record 3: records were cut off" in result.output


def test_a_public_key_kept_in_the_data_dir_is_not_trusted(deployment: Deployment) -> None:
    """A forger who re-signs the rewritten ledger with a key of their own and puts its .pub where verify is told
    to look (inside the data dir) must not get an OK."""
    forger = LedgerSigner.generate()
    swapped = deployment.data / "ledger-public-key.pem"
    swapped.write_bytes(public_key_pem(forger.public_key))

    result = runner.invoke(app, ["ledger", "verify", "--data-dir", str(deployment.data), "--public-key", str(swapped)],
                           env={})

    assert result.exit_code == 2 and "is inside the data directory" in result.output


def test_a_deleted_anchor_while_records_remain_is_caught(deployment: Deployment) -> None:
    (deployment.data / "ledger.head").unlink()

    result = deployment.verify()

    assert result.exit_code == 1 and "ledger.head is missing while the ledger holds records" in result.output


def test_a_garbage_anchor_is_caught(deployment: Deployment) -> None:
    (deployment.data / "ledger.head").write_bytes(b"\x00garbage{")

    result = deployment.verify()

    assert result.exit_code == 1 and "ledger.head cannot be read" in result.output


def test_the_last_record_and_the_anchor_removed_together_are_caught(deployment: Deployment) -> None:
    deployment.rewrite(deployment.lines()[:-1])
    (deployment.data / "ledger.head").unlink()

    result = deployment.verify()

    assert result.exit_code == 1
    assert "ends at record 9 but the signed checkpoint covers record 10: records were cut off" in result.output


def test_a_chain_rehashed_to_the_end_after_an_edit_is_caught(deployment: Deployment) -> None:
    lines = deployment.lines()
    edited = json.loads(lines[2])
    edited["data"]["action"] = "revoke"
    lines[2] = canonical_json(edited).decode() + "\n"
    deployment.rewrite(rehashed_from(lines, 2))
    anchor_at_end(deployment)

    result = deployment.verify()

    assert result.exit_code == 1
    assert "record 3 is not the record that checkpoint line 3 signed: the ledger was rewritten" in result.output


def test_checkpoints_resigned_with_the_forgers_own_key_are_caught(deployment: Deployment) -> None:
    lines = deployment.lines()
    lines[4] = lines[4].replace('"action":"keep"', '"action":"revoke"')
    deployment.rewrite(rehashed_from(lines, 4))
    anchor_at_end(deployment)
    forger = LedgerSigner.generate()
    records = [json.loads(line) for line in deployment.lines()]
    resigned = [forger.checkpoint(records[0]["hash"], _head(r), r["at"]) for r in records]
    (deployment.data / "ledger-checkpoints.jsonl").write_bytes(b"".join(entry_to_line(c) for c in resigned))

    result = deployment.verify()

    assert result.exit_code == 1
    assert f"the latest checkpoint is signed by key {forger.fingerprint[:16]}…, not by the key you trust" in result.output


def test_an_edited_checkpoint_signature_is_caught(deployment: Deployment) -> None:
    path = deployment.data / "ledger-checkpoints.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])
    last["sig"] = ("0" if last["sig"][0] != "0" else "1") + last["sig"][1:]
    path.write_text("".join(lines[:-1]) + json.dumps(last) + "\n")

    result = deployment.verify()

    assert result.exit_code == 1 and "the latest checkpoint's signature does not verify" in result.output


def test_a_data_dir_that_does_not_exist_is_a_failure_not_an_empty_ok(deployment: Deployment, tmp_path: Path) -> None:
    deployment.data = tmp_path / "no-such-folder"

    result = deployment.verify()

    assert result.exit_code == 1 and "there is no data directory" in result.output and "ledger OK" not in result.output


def test_an_unsigned_ledger_is_never_ok(tmp_path: Path) -> None:
    deployment = Deployment(tmp_path)
    deployment.write(1, signed=False)

    result = deployment.verify()

    assert result.exit_code == 1 and "no signed checkpoint covers the 1 records" in result.output


def test_a_thief_of_the_key_who_rewrites_and_resigns_the_ledger_is_caught_by_a_witness(
    deployment: Deployment, tmp_path: Path
) -> None:
    posted = deployment.witness()  # the security leads got this at sign-off, before the key was stolen
    deployment.write(5, first=11)
    lines = deployment.lines()
    lines[4] = lines[4].replace('"action":"keep"', '"action":"revoke"')
    deployment.rewrite(rehashed_from(lines, 4))
    anchor_at_end(deployment)
    records = [json.loads(line) for line in deployment.lines()]
    stolen = deployment.signer
    resigned = [stolen.checkpoint(records[0]["hash"], _head(r), r["at"]) for r in records]
    (deployment.data / "ledger-checkpoints.jsonl").write_bytes(b"".join(entry_to_line(c) for c in resigned))

    assert deployment.verify().exit_code == 0  # the key alone cannot tell: this is what witnesses are for
    as_text = deployment.verify("--witness", posted)
    saved = tmp_path / "witness.txt"
    saved.write_text(posted)
    as_file = deployment.verify("--witness", str(saved))

    for result in (as_text, as_file):
        assert result.exit_code == 1
        assert "record 10 is not the record the witness of record 10" in result.output
        assert "the ledger was rewritten at or before it" in result.output


def test_a_thief_of_the_key_who_cuts_off_witnessed_records_is_caught(deployment: Deployment) -> None:
    posted = deployment.witness()
    deployment.rewrite(deployment.lines()[:7])
    anchor_at_end(deployment)
    records = [json.loads(line) for line in deployment.lines()]
    resigned = [deployment.signer.checkpoint(records[0]["hash"], _head(r), r["at"]) for r in records]
    (deployment.data / "ledger-checkpoints.jsonl").write_bytes(b"".join(entry_to_line(c) for c in resigned))

    result = deployment.verify("--witness", posted)

    assert result.exit_code == 1 and "ledger ends at record 7 but the witness of record 10" in result.output


def test_a_witness_of_an_honest_ledger_that_grew_since_still_verifies(deployment: Deployment) -> None:
    posted = deployment.witness()
    deployment.write(3, first=11)

    result = deployment.verify("--witness", posted)

    assert result.exit_code == 0, result.output
    assert "nothing up to record 10 was removed or rewritten" in result.output


def test_a_mistyped_witness_is_refused_rather_than_trusted(deployment: Deployment) -> None:
    posted = deployment.witness()
    hash_start = posted.index('"hash":"') + len('"hash":"')
    typo = posted[:hash_start] + ("a" if posted[hash_start] != "a" else "b") + posted[hash_start + 1 :]

    result = deployment.verify("--witness", typo)

    assert result.exit_code == 1 and "does not match its own signature" in result.output


def _head(raw: dict) -> LedgerHead:  # type: ignore[type-arg]
    return LedgerHead(raw["seq"], raw["hash"])
