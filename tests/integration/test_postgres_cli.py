"""The PostgreSQL backend as an operator meets it: `accessbot db upgrade`, a server refusing a database
behind the code, and moving a TinyDB deployment with `accessbot db migrate-from-tinydb`, proven by
`accessbot ledger verify` against the database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import psycopg
from typer.testing import CliRunner

from bot.cli import app
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from bot.engine.model import LedgerEvent
from bot.ledger import LedgerRecord
from bot.ledger_signing import LedgerSigner
from bot.store.base import OUTBOX_LEASE, PostedCard
from bot.store.postgres_schema import head_revision
from bot.store.postgres_store import PostgresStore
from bot.store.tinydb_store import TinyDBStore
from tests.contract.samples import MONDAY, message

runner = CliRunner()
DEMO = ["--policy", str(DEMO_POLICY), "--snapshot", str(DEMO_SNAPSHOT)]


def run(*args: str, env: dict[str, str]):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def test_upgrade_makes_an_empty_database_usable_and_is_idempotent(empty_postgres_url: str, tmp_path: Path) -> None:
    env = {"ACCESSBOT_DATABASE_URL": empty_postgres_url}
    behind = run("campaign", "status", "--data-dir", str(tmp_path), env=env)
    assert behind.exit_code == 4, behind.output
    assert "run `accessbot db upgrade`" in behind.output and len(behind.output.strip().splitlines()) == 1

    for _ in range(2):
        upgraded = run("db", "upgrade", env=env)
        assert upgraded.exit_code == 0, upgraded.output
        assert f"database schema at revision {head_revision()}" in upgraded.output
    empty = run("campaign", "status", "--data-dir", str(tmp_path), env=env)
    assert empty.exit_code == 1 and "no campaign has been opened" in empty.output


def test_db_commands_need_a_postgresql_url(tmp_path: Path) -> None:
    unset = run("db", "upgrade", env={"ACCESSBOT_DATABASE_URL": ""})
    assert unset.exit_code == 2 and "ACCESSBOT_DATABASE_URL is not set" in unset.output
    wrong = run("db", "upgrade", env={"ACCESSBOT_DATABASE_URL": "mysql://root@127.0.0.1/accessbot"})
    assert wrong.exit_code == 2 and "must be empty" in wrong.output and "root" not in wrong.output


async def _tinydb_deployment(data: Path, key: Path) -> list[LedgerRecord]:
    """A data directory as `serve` leaves it: a campaign opened, decisions, a conversation, a card, a sent and a
    pending message — all through the store's own writes, signed with the deployment's key."""
    signer = LedgerSigner.from_file(key)
    store = TinyDBStore(data, signer=signer, clock=ManualClock(MONDAY))
    try:
        for n in range(5):
            await store.append_ledger([LedgerEvent("decision", {"campaign_id": "c", "item_id": f"i{n}", "action": "keep"})],
                                      MONDAY + timedelta(minutes=n))
        await store.save_conversation("admin-megan", {"conversation": {"id": "a:1"}, "serviceUrl": "https://smba/"})
        await store.save_card("i1", PostedCard("teams", "activity-1", {"conversation": {"id": "a:1"}}))
        await store.save_channel_setting("teams.service_url", "https://smba.trafficmanager.net/emea/")
        await store.enqueue([message("sent"), message("waiting", created_at=MONDAY + timedelta(seconds=1))])
        await store.claim_due("notifier", MONDAY, 1, OUTBOX_LEASE)
        await store.mark_sent("sent", MONDAY, worker="notifier")
        return await store.ledger_records()
    finally:
        await store.close()


async def _everything_arrived(url: str, key: Path, before: list[LedgerRecord]) -> None:
    store = PostgresStore(url, signer=LedgerSigner.from_file(key), clock=ManualClock(MONDAY))
    try:
        assert await store.ledger_records() == before
        assert await store.get_conversation("admin-megan") == {"conversation": {"id": "a:1"}, "serviceUrl": "https://smba/"}
        assert [card.message_id for card in await store.cards("i1")] == ["activity-1"]
        assert await store.channel_setting("teams.service_url") == "https://smba.trafficmanager.net/emea/"
        assert [m.key for m in await store.due_messages(MONDAY + timedelta(days=1), 10)] == ["waiting"]
        assert await store.enqueue([message("sent"), message("waiting")]) == 0
        after = await store.append_ledger([LedgerEvent("decision", {"item_id": "i9"})], MONDAY + timedelta(hours=1))
        assert after[0].seq == len(before) + 1 and after[0].prev == before[-1].hash
    finally:
        await store.close()


def test_migrating_a_tinydb_deployment_keeps_every_record_in_order_and_verifies(postgres_url: str, tmp_path: Path) -> None:
    """Synchronous like the CLI it drives (each command runs its own event loop)."""
    data, key = tmp_path / "data", tmp_path / "ledger.key"
    assert run("ledger", "keygen", "--out", str(key), env={}).exit_code == 0
    signed = {"ACCESSBOT_LEDGER_KEY_FILE": str(key)}
    assert run("campaign", "open", *DEMO, "--data-dir", str(data), env=signed).exit_code == 0
    before = asyncio.run(_tinydb_deployment(data, key))
    database = {**signed, "ACCESSBOT_DATABASE_URL": postgres_url}

    moved = run("db", "migrate-from-tinydb", str(data), env=database)

    assert moved.exit_code == 0, moved.output
    assert f"moved {len(before)} ledger records" in moved.output
    verified = run("ledger", "verify", env=database)
    assert verified.exit_code == 0, verified.output
    assert f"ledger OK: {len(before)} records, head {before[-1].hash}" in verified.output
    status = run("campaign", "status", env=database)
    assert status.exit_code == 0 and "31 items" in status.output, status.output

    asyncio.run(_everything_arrived(postgres_url, key, before))

    again = run("db", "migrate-from-tinydb", str(data), env=database)
    assert again.exit_code == 2 and "not empty" in again.output
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT count(*) FROM ledger_records").fetchone()
    assert row is not None and row[0] == len(before) + 1


def test_a_campaign_opened_on_the_database_verifies_and_survives_a_key_rotation(postgres_url: str, tmp_path: Path) -> None:
    """`campaign open` builds the same runtime as `serve`: with the URL set, nothing goes to the data directory's
    store, and every ledger command works on the database."""
    key = tmp_path / "old.key"
    assert run("ledger", "keygen", "--out", str(key), env={}).exit_code == 0
    data = ["--data-dir", str(tmp_path / "data")]
    env = {"ACCESSBOT_DATABASE_URL": postgres_url, "ACCESSBOT_LEDGER_KEY_FILE": str(key)}

    opened = run("campaign", "open", *DEMO, *data, env=env)
    assert opened.exit_code == 0 and "opened" in opened.output, opened.output
    assert not (tmp_path / "data" / "ledger.jsonl").exists()
    assert "already open" in run("campaign", "open", *DEMO, *data, env=env).output
    doctor = run("doctor", *DEMO, *data, env=env)
    assert "records verify, signed up to record" in doctor.output, doctor.output

    rotated = run("ledger", "rotate-key", "--new-key-out", str(tmp_path / "new.key"), *data, env=env)
    assert rotated.exit_code == 0, rotated.output
    for public in ("old.key.pub", "new.key.pub"):
        verified = run("ledger", "verify", "--public-key", str(tmp_path / public), *data, env=env)
        assert verified.exit_code == 0 and "ledger OK" in verified.output, verified.output
    assert run("ledger", "checkpoint", *data, env={**env, "ACCESSBOT_LEDGER_KEY_FILE": str(tmp_path / "new.key")}).exit_code == 0


def test_a_database_that_cannot_be_reached_is_one_line_naming_it(tmp_path: Path) -> None:
    refused = run("campaign", "status", "--data-dir", str(tmp_path),
                  env={"ACCESSBOT_DATABASE_URL": "postgresql://accessbot:hunter2@127.0.0.1:1/accessbot"})
    assert refused.exit_code == 4, refused.output
    assert refused.output.startswith("accessbot: cannot connect to the database: ")
    assert len(refused.output.strip().splitlines()) == 1 and "hunter2" not in refused.output
