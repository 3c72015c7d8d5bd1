"""The daily ledger witness as the security leads receive it: a short line a person reads (record, hash prefix,
time, key id) and the signed checkpoint in a block that wraps — a monospace TextBlock with wrap in Teams, a code
block in Slack — never one long line of JSON in a bubble. What `accessbot ledger verify --witness` reads is
still there, whole: the block's text, or all the text of the message, pasted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.ledger_signing import LedgerSigner, parse_witness
from tests.integration.fake_connector import FakeConnector, card_text
from tests.integration.slack_app import serve_slack_demo
from tests.integration.test_teams_messages import ALEX, Bot, serve_demo


def _blocks_of_type(card: dict[str, Any], wanted: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == wanted:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


async def test_the_witness_reaches_a_teams_lead_as_a_card_whose_checkpoint_text_wraps_and_still_verifies(
    tmp_path: Path,
) -> None:
    connector = FakeConnector()
    await connector.start()
    runtime, runner, url = await serve_demo(tmp_path, ledger_signer=LedgerSigner.generate())
    try:
        bot = Bot(runtime, url, connector)
        await bot.say("help")  # Alex's conversation, where the notices go
        await runtime.service.sign_off(ALEX, "Alex Wilber", confirmed=True)  # posts the latest checkpoint
        await runtime.scheduler.deliver()
        checkpoint = await runtime.store.latest_checkpoint()
        assert checkpoint is not None
        (witness,) = [r for r in connector.received if r.conversation_id == "a:personal-29:1alex"
                      and r.cards and "Ledger checkpoint" in card_text(r.cards[0])]
        card = witness.cards[0]
        assert not witness.body.get("text")  # the JSON is not also sent as a line of text beside the card
        assert f"Ledger checkpoint: record {checkpoint.seq}" in card_text(card)
        assert f"hash {checkpoint.hash[:12]}… · signed {checkpoint.at} · key {checkpoint.key[:12]}…" in card_text(card)
        (code,) = [block for block in _blocks_of_type(card, "TextBlock") if block.get("fontType") == "Monospace"]
        assert code["wrap"] is True
        assert parse_witness(code["text"]) == checkpoint == parse_witness(card_text(card))
    finally:
        await runner.cleanup()
        await connector.stop()


async def test_the_witness_reaches_a_slack_lead_with_the_checkpoint_in_a_code_block_that_still_verifies(
    tmp_path: Path,
) -> None:
    slack = await serve_slack_demo(tmp_path / "slack")
    try:
        runtime = slack.runtime
        assert runtime.slack is not None
        # The Slack demo's ledger is unsigned: the text sent is the witness a signed one posts of its head.
        records = await runtime.store.ledger_records()
        checkpoint = LedgerSigner.generate().checkpoint(records[0].hash, records[-1].head, "2026-11-23T09:30:00+00:00")
        dm = slack.slack.dm_of(slack.member("alexw@contoso.com"))
        await runtime.slack.send_text({"channel": dm}, checkpoint.witness_text())
        (message,) = slack.slack.posted(dm)
        shown = json.dumps(message.blocks, ensure_ascii=False)
        assert f"Ledger checkpoint: record {checkpoint.seq}" in shown and f"key {checkpoint.key[:12]}…" in shown
        (code,) = [block["text"]["text"] for block in message.blocks
                   if block["type"] == "section" and block["text"]["text"].startswith("```")]
        assert code.endswith("```") and parse_witness(code.strip("`")) == checkpoint
        assert "{" not in message.text  # the notification reads as a sentence, not as JSON
    finally:
        await slack.close()
