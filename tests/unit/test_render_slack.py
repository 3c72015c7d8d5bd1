"""Every Block Kit message the dialogs produce, validated by slack_sdk's own models and held to Block Kit's
limits; and the renderer's paging and splitting on views larger than any demo produces.

The views come from the real dialogs answering real commands and clicks on the demo tenant, as the Teams
card tests do, so a message the bot can actually send cannot drift from what Slack accepts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View as SlackView

from bot.app import build_runtime, load_inputs
from bot.channels.teams import BotCredentials
from bot.clock import ManualClock
from bot.config import DEMO_POLICY, DEMO_SNAPSHOT
from dialogs import actions
from dialogs.conversation import respond
from dialogs.digest import digest_action
from dialogs.charts import Bar, Series, Slice, StackedBarChart
from dialogs.render import slack
from dialogs.review import card_action, item_view
from dialogs.views import (
    Actor,
    ChoiceView,
    DigestRow,
    DigestView,
    ItemView,
    PrivateReply,
    StatusRow,
    StatusView,
    TextView,
    View,
)

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
ALEX = Actor("8c3e2f7a-4b1d-4e6f-9a2b-1c3d5e7f9a01", "Alex Wilber")  # reviewer and security lead


def assert_valid(message: slack.SlackMessage) -> None:
    """What Slack itself would check: the models parse the JSON back and validate it again, 50 blocks at
    most, no section text over 3,000 characters, every button of ours readable back."""
    assert 0 < len(message.blocks) <= slack.MAX_BLOCKS
    assert message.text.strip()
    for block in Block.parse_all(message.blocks):
        assert block is not None
        assert block.to_dict()  # runs the models' validation again, on what would go over the wire
    action_ids = [element["action_id"] for raw in message.blocks
                  for element in [*raw.get("elements", []), raw.get("accessory") or {}] if "action_id" in element]
    assert len(action_ids) == len(set(action_ids)), "Slack refuses a message whose action ids repeat"
    for raw in message.blocks:
        text = raw.get("text") or {}
        assert len(text.get("text", "")) <= slack.MAX_SECTION_TEXT
        for element in raw.get("elements", []) if raw["type"] == "actions" else []:
            assert slack.read_click(element["action_id"], element.get("value")) is not None, element


async def demo_views(data_dir: Path) -> dict[str, View]:
    """Drive the demo tenant's review through the dialogs and keep every view they produce."""
    policy, snapshot = load_inputs(DEMO_POLICY, DEMO_SNAPSHOT)
    clock = ManualClock(MONDAY)
    runtime = await build_runtime(data_dir=data_dir, policy=policy, snapshot=snapshot, clock=clock, credentials=BotCredentials())
    service = runtime.service
    state, _ = await service.open_current_campaign()
    patti = Actor(service.resolve_person("pattif@contoso.com"), "Patti Fernandez")
    views: dict[str, View] = {}

    def item_id(title: str) -> str:
        return next(item.id for item in state.items.values() if item.subject.title == title)

    async def said(name: str, actor: Actor, text: str) -> None:
        reply = await respond(service, actor, text)
        views[name] = reply.content if isinstance(reply, PrivateReply) else reply

    for command in ("help", "status", "mine", "my reviews", "findings", "overdue", "history meganb@contoso.com", "export"):
        await said(f"{command} · lead", ALEX, command)
    await said("help · reviewer", patti, "help")
    await said("status · reviewer", patti, "status")
    await said("mine · reviewer", patti, "my reviews")
    await said("overdue · reviewer (refused)", patti, "overdue")
    for item in state.items.values():
        views[f"open · {item.subject.title}"] = item_view(service, item, state.campaign)
    clicks = [
        ("kept", "Megan Bowen — Global Administrator", "keep", {}),
        ("conflict", "Megan Bowen — Global Administrator", "revoke", {"justification": "Left in October"}),
        ("revoked", "Christie Cline — Global Administrator", "revoke", {"justification": "No longer in IT"}),
        ("reassigned", "Isaiah Langer — Privileged Role Administrator", "reassign", {"reassign_to": "leeg@contoso.com"}),
    ]
    for name, title, action, inputs in clicks:
        views[name] = await card_action(service, ALEX, {actions.ITEM: item_id(title), actions.ACTION: action, **inputs})
    views["digest · nothing chosen"] = await digest_action(service, ALEX, {actions.SUBMIT_DIGEST: True})
    views["digest · keep all not flagged"] = await digest_action(service, ALEX, {actions.KEEP_UNFLAGGED: True})
    clock.advance(timedelta(days=6))
    await service.tick()
    await said("overdue · after the deadline", ALEX, "overdue")
    await said("sign off · question", ALEX, "sign off")
    await said("sign off · done", ALEX, "sign off confirm")
    await runtime.store.close()
    return views


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[slack.SlackMessage]]:
    import asyncio

    views = asyncio.run(demo_views(tmp_path_factory.mktemp("slack") / "data"))
    return {name: slack.render(view) for name, view in views.items()}


def test_every_message_the_dialogs_produce_validates_and_stays_within_block_kits_limits(
    rendered: dict[str, list[slack.SlackMessage]],
) -> None:
    assert len(rendered) > 20
    for name, messages in rendered.items():
        assert messages, name
        for message in messages:
            assert_valid(message)


def test_an_open_item_offers_keep_revoke_dont_know_and_reassign_with_revoke_and_reassign_asking_first(
    rendered: dict[str, list[slack.SlackMessage]],
) -> None:
    (message,) = rendered["open · Christie Cline — Global Administrator"]
    (buttons,) = [block["elements"] for block in message.blocks if block["type"] == "actions"]
    clicks = {element["text"]["text"]: slack.read_click(element["action_id"], element["value"]) for element in buttons}
    # Christie's card lists her MFA devices, so it also offers to report one as unfamiliar
    assert set(clicks) == {"Keep", "Revoke…", "Don't know", "Reassign…", "Unfamiliar MFA method"}
    assert clicks["Revoke…"].ask == slack.ASK_JUSTIFICATION and clicks["Reassign…"].ask == slack.ASK_PERSON
    assert clicks["Keep"].ask == "" and clicks["Keep"].verb == actions.DECIDE
    assert clicks["Keep"].data == {actions.ITEM: message.item_id, actions.ACTION: "keep"}
    unfamiliar = clicks["Unfamiliar MFA method"]
    assert unfamiliar.ask == "" and unfamiliar.data == {actions.ITEM: message.item_id, actions.ACTION: "unfamiliar_method"}


def test_a_decided_item_shows_who_answered_and_offers_no_buttons(rendered: dict[str, list[slack.SlackMessage]]) -> None:
    (message,) = rendered["revoked"]
    text = str(message.blocks)
    assert "Alex Wilber" in text and "No longer in IT" in text
    assert not [block for block in message.blocks if block["type"] == "actions"]


def row(n: int, flags: int = 1, length: int = 40) -> DigestRow:
    return DigestRow(f"item{n:04d}", f"Person {n} — Role", "Role holding", "Active", tuple("⚑" * length for _ in range(flags)))


def test_a_digest_too_large_for_one_message_is_paged_and_every_row_keeps_its_choice() -> None:
    view = DigestView("Week 48", "Your access reviews", "Many items.", tuple(row(n, flags=3, length=1200) for n in range(25)))
    messages = slack.digest_messages(view)
    assert len(messages) > 1
    chosen = [block["block_id"] for message in messages for block in message.blocks if block.get("block_id", "").startswith("choice:")]
    assert chosen == [f"choice:item{n:04d}" for n in range(25)]
    for message in messages:
        assert_valid(message)
        assert message.blocks[-1]["type"] == "actions"  # each part submits its own choices


def test_text_longer_than_a_section_is_split_over_sections_not_cut() -> None:
    long = "word " * 2000
    item = ItemView("i1", "c1", "Week 48", "Title", "Role holding", (("Evidence", "x" * 1980),) * 12,
                    outcome=TextView(long), choices=(ChoiceView("keep", "Keep"),))
    message = slack.item_message(item)
    assert_valid(message)
    shown = " ".join(block["text"]["text"] for block in message.blocks if block["type"] == "section" and "text" in block)
    assert shown.split()[-2000:] == long.split()
    fields = [block for block in message.blocks if block.get("fields")]
    assert [len(block["fields"]) for block in fields] == [10, 2]
    wide = slack.item_message(ItemView("i1", "c1", "Week 48", "Title", "Role holding", (("Evidence", "y" * 2500),)))
    assert_valid(wide)
    assert "y" * 2500 in str(wide.blocks)


def test_what_people_and_tenants_named_is_escaped_never_a_mention_or_a_link() -> None:
    (message,) = slack.render(TextView("Ask <!channel> & <https://evil.example|here>"))
    assert message.blocks[0]["text"]["text"] == "Ask &lt;!channel&gt; &amp; &lt;https://evil.example|here&gt;"


def test_a_status_with_many_rows_keeps_ten_fields_to_a_section() -> None:
    view = StatusView("Week 48", tuple(StatusRow(f"row {n}", str(n)) for n in range(23)))
    (message,) = slack.render(view)
    assert_valid(message)
    assert [len(block["fields"]) for block in message.blocks if block.get("fields")] == [10, 10, 3]


def test_a_leads_status_shows_the_chart_image_beside_the_text_with_the_figures_as_its_alt_text(
    rendered: dict[str, list[slack.SlackMessage]],
) -> None:
    (message,) = rendered["status · lead"]
    (image,) = [block for block in message.blocks if block["type"] == "image"]
    assert "/exports/" in image["image_url"]
    fields = " ".join(field["text"] for block in message.blocks for field in block.get("fields", []))
    assert "*Answered*" in fields and "*Open*" in fields  # the text stays beside the picture
    items = next(int(f["text"].split("\n")[1]) for b in message.blocks for f in b.get("fields", []) if f["text"].startswith("*Items*"))
    # the alt text carries every slice of the progress chart, and those add up to the campaign's items
    progress = image["alt_text"].split("Progress: ", 1)[1].split(".", 1)[0]
    assert sum(int(part.split()[0]) for part in progress.split(" · ")) == items
    assert "By reviewer: " in image["alt_text"]
    (mine,) = rendered["status · reviewer"]  # a reviewer's own part: no campaign chart
    assert not [block for block in mine.blocks if block["type"] == "image"]


def test_a_status_without_a_chart_link_has_no_image_and_a_long_alt_text_is_clipped() -> None:
    (plain,) = slack.render(StatusView("Week 48", (StatusRow("Items", "3"),)))
    assert not [block for block in plain.blocks if block["type"] == "image"]
    bars = StackedBarChart("By reviewer", tuple(Bar("Reviewer " + "x" * 60 + str(n), (Slice("Answered", n, Series.ANSWERED),))
                                               for n in range(60)))
    view = StatusView("Week 48", (StatusRow("Items", "3"),), charts=(bars,), chart_image="https://bot.example/exports/t.s")
    (message,) = slack.render(view)
    assert_valid(message)
    (image,) = [block for block in message.blocks if block["type"] == "image"]
    assert len(image["alt_text"]) == slack.MAX_ALT_TEXT and image["alt_text"].startswith("By reviewer: Reviewer")


def test_the_revoke_modal_asks_for_a_justification_and_hands_back_its_metadata() -> None:
    modal = slack.ask_modal(slack.ASK_JUSTIFICATION, "Christie Cline — Global Administrator", '{"item":"i1"}')
    assert SlackView(**modal).to_dict() == modal
    assert modal["type"] == "modal" and modal["callback_id"] == slack.MODAL_CALLBACK
    assert modal["private_metadata"] == '{"item":"i1"}'
    values = {actions.JUSTIFICATION: {actions.JUSTIFICATION: {"type": "plain_text_input", "value": "Left"}}}
    assert slack.modal_inputs(values) == {actions.JUSTIFICATION: "Left"}


def test_digest_choices_are_read_from_the_message_state() -> None:
    values: dict[str, Any] = {
        "choice:item0001": {f"{slack.CHOOSE_ACTION}item0001": {"type": "static_select", "selected_option": {"value": "keep"}}},
        "choice:item0002": {f"{slack.CHOOSE_ACTION}item0002": {"type": "static_select", "selected_option": None}},
        "other": {"x": {"value": "y"}},
    }
    assert slack.digest_choices(values) == {"choice:item0001": "keep"}


def test_a_click_that_is_not_ours_or_carries_no_object_is_not_read() -> None:
    assert slack.read_click("someone-else:decide::0", "{}") is None
    assert slack.read_click("accessbot:decide::0", "[1]") is None
    assert slack.read_click("accessbot:decide::0", "not json") is None


def test_the_app_home_stays_within_a_views_hundred_blocks() -> None:
    digest = DigestView("Week 48", "Your access reviews", "Many items.", tuple(row(n, flags=3, length=1200) for n in range(25)))
    status = StatusView("Week 48", tuple(StatusRow(f"row {n}", str(n)) for n in range(5)))
    home = slack.home_view([digest, status])
    assert home["type"] == "home" and len(home["blocks"]) <= slack.MAX_VIEW_BLOCKS
    item = ItemView("i1", "c1", "Week 48", "Title", "Role holding", (), choices=(ChoiceView("keep", "Keep"),))
    two = slack.home_view([item, ItemView(**{**item.__dict__, "item_id": "i2"})])
    ids = [e["action_id"] for b in two["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert len(ids) == 2 == len(set(ids)), "a view's action ids are unique across it"
    assert SlackView(**home).to_dict() == home


def test_a_view_larger_than_a_message_keeps_its_buttons_and_says_what_was_left_out() -> None:
    item = ItemView("i1", "c1", "Week 48", "Title", "Role holding", (("Evidence", "z" * 2500),) * 60,
                    choices=(ChoiceView("keep", "Keep"),))
    message = slack.item_message(item)
    assert_valid(message)
    assert message.blocks[-1]["type"] == "actions" and "not shown" in str(message.blocks[-2])
