"""The Slack decision benchmark's load generator signs every click as Slack does: a bare slack-bolt app with
its own request verification (the benchmark's Slack anchor, in its own process) acknowledges each one, and
refuses each one signed with another secret. Without this a benchmark whose requests were all refused would
measure the speed of a 401."""

from __future__ import annotations

import multiprocessing

from bench.load import drive_slack
from bench.servers import Server
from bench.slack_servers import serve_fake_slack, serve_slack_anchor
from bench.decision_path import get
from tests.fakes.fake_slack import SIGNING_SECRET
from tests.fakes.slack_payloads import Person, Workspace, block_actions_payload, interactive_form

START = 120.0  # seconds a spawned server may take to import and listen


def keep_click(n: int) -> str:
    """A Keep click on item n's card, as the form body Slack posts."""
    action = {"action_id": f"accessbot:decide::{n}", "block_id": f"b{n}", "type": "button",
              "text": {"type": "plain_text", "text": "Keep"}, "value": f'{{"item":"item-{n}","action":"keep"}}',
              "action_ts": "1764560000.000100"}
    payload = block_actions_payload(Workspace(), Person(f"U{n:09d}", f"person{n}"), action=action,
                                    trigger_id=f"{n}.1764560000.fa{n:030x}", response_url="http://127.0.0.1:9/response",
                                    channel={"id": f"D{n:09d}", "name": "directmessage"},
                                    message={"ts": f"1764560000.{n:06d}", "text": "card", "blocks": []})
    return interactive_form(payload)


def test_every_signed_click_is_acknowledged_by_bolt_and_clicks_signed_with_another_secret_are_refused() -> None:
    context = multiprocessing.get_context("spawn")
    with Server(context, serve_fake_slack, 3, start_timeout=START) as control:
        api_url = get(f"{control}/bench/info")["api_url"]
        with Server(context, serve_slack_anchor, api_url, start_timeout=START) as anchor:
            clicks = [keep_click(n) for n in range(20)]
            signed = drive_slack(f"{anchor}/slack/events", clicks, SIGNING_SECRET, 4, "")
            forged = drive_slack(f"{anchor}/slack/events", clicks[:5], "not-the-signing-secret", 2, "")

    assert signed.requests == 20 and signed.failures == []
    assert len(forged.failures) == 5 and all(failure.startswith("401") for failure in forged.failures)
