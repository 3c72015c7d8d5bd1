"""The contract every store backend keeps: what the service, the notifier and the CLI rely on."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from bot.engine.model import LedgerEvent
from bot.engine.signoff import SIGNED_OFF
from bot.ledger import GENESIS, LedgerHead, verify
from bot.ratelimit import TEAMS_CONVERSATION, TEAMS_TENANT
from bot.store.base import PostedCard, Store
from bot.store.concurrency import expectations

from tests.contract.conftest import OpenStore
from tests.contract.samples import MONDAY, campaign, items, message

LATER = MONDAY + timedelta(days=7)
LEASE = timedelta(minutes=5)
WORKER = "notifier-a"


async def claim(store: Store, now: datetime = MONDAY, worker: str = WORKER, limit: int = 1000) -> list[str]:
    """What ``worker`` claims now, by key."""
    return [m.key for m in await store.claim_due(worker, now, limit, LEASE)]


# ---- campaigns ----------------------------------------------------------------------------------


async def test_saving_a_campaign_twice_keeps_the_first(store: Store) -> None:
    first = campaign()
    assert await store.save_campaign(first, items(first)) is True

    second = replace(first, tenant_name="Someone else", item_count=1)
    assert await store.save_campaign(second, items(first)[:1]) is False

    assert await store.get_campaign(first.id) == first
    assert await store.campaign_items(first.id) == items(first)
    assert await store.list_campaigns() == [first]


async def test_items_come_back_exactly_as_opened(store: Store) -> None:
    opened = campaign()
    await store.save_campaign(opened, items(opened))

    back = await store.campaign_items(opened.id)

    assert back == items(opened)
    assert [item.id for item in back] == [item.id for item in items(opened)]


async def test_campaigns_are_listed_newest_first(store: Store) -> None:
    old = campaign("2026-11-16T09:00", opened_at=MONDAY - timedelta(days=7))
    new = campaign("2026-11-23T09:00", opened_at=MONDAY)
    newest = campaign("2026-11-30T09:00", opened_at=LATER)
    for each in (new, old, newest):
        await store.save_campaign(each, items(each))

    assert [c.id for c in await store.list_campaigns()] == [newest.id, new.id, old.id]


async def test_an_unknown_campaign_is_none_and_has_no_items(store: Store) -> None:
    assert await store.get_campaign("tenant-contoso:1999-01-01T09:00") is None
    assert await store.campaign_items("tenant-contoso:1999-01-01T09:00") == []
    assert await store.list_campaigns() == []


async def test_a_campaign_without_items_is_kept(store: Store) -> None:
    empty = campaign(items=0)
    assert await store.save_campaign(empty, [])
    assert await store.campaign_items(empty.id) == []
    assert await store.get_campaign(empty.id) == empty


# ---- conversations ------------------------------------------------------------------------------


async def test_saving_a_conversation_again_replaces_it(store: Store) -> None:
    await store.save_conversation("admin-megan", {"conversation": {"id": "a:1"}, "serviceUrl": "https://one/"})
    await store.save_conversation("owner-alex", {"conversation": {"id": "a:2"}})
    await store.save_conversation("admin-megan", {"conversation": {"id": "a:3"}, "serviceUrl": "https://two/"})

    assert await store.get_conversation("admin-megan") == {"conversation": {"id": "a:3"}, "serviceUrl": "https://two/"}
    assert await store.get_conversation("owner-alex") == {"conversation": {"id": "a:2"}}
    assert await store.get_conversation("nobody") is None


async def test_saving_a_conversation_says_whether_it_was_new_or_changed(store: Store) -> None:
    assert await store.save_conversation("owner-alex", {"conversation": {"id": "a:2"}}) is True
    assert await store.save_conversation("owner-alex", {"conversation": {"id": "a:2"}}) is False
    assert await store.save_conversation("owner-alex", {"conversation": {"id": "a:9"}}) is True


async def test_changing_a_returned_conversation_does_not_change_the_store(store: Store) -> None:
    await store.save_conversation("owner-alex", {"conversation": {"id": "a:2"}})
    returned = await store.get_conversation("owner-alex")
    assert returned is not None
    returned["conversation"]["id"] = "forged"

    assert await store.get_conversation("owner-alex") == {"conversation": {"id": "a:2"}}


# ---- outbox -------------------------------------------------------------------------------------


async def test_a_twin_is_refused_while_pending_and_after_it_was_sent(store: Store) -> None:
    assert await store.enqueue([message("a"), message("b"), message("a")]) == 2
    assert await store.enqueue([message("a"), message("c")]) == 1

    await claim(store)
    assert await store.mark_sent("a", MONDAY, worker=WORKER) is True

    assert await store.enqueue([message("a")]) == 0
    assert [m.key for m in await store.due_messages(LATER, 10)] == ["b", "c"]


async def test_due_messages_come_oldest_first_up_to_the_limit(store: Store) -> None:
    await store.enqueue(
        [
            message("third", created_at=MONDAY + timedelta(minutes=3)),
            message("first", created_at=MONDAY + timedelta(minutes=1)),
            message("not-yet", created_at=MONDAY, next_attempt_at=MONDAY + timedelta(hours=1)),
            message("second", created_at=MONDAY + timedelta(minutes=2)),
        ]
    )
    now = MONDAY + timedelta(minutes=10)

    assert [m.key for m in await store.due_messages(now, 10)] == ["first", "second", "third"]
    assert [m.key for m in await store.due_messages(now, 2)] == ["first", "second"]
    assert await store.due_messages(MONDAY, 10) == []


async def test_a_message_comes_back_as_it_was_queued(store: Store) -> None:
    queued = message("a")
    await store.enqueue([queued])

    assert await store.due_messages(MONDAY, 1) == [queued]


async def test_a_retried_message_waits_for_its_next_attempt(store: Store) -> None:
    await store.enqueue([message("a"), message("b", created_at=MONDAY + timedelta(seconds=1))])
    retry_at = MONDAY + timedelta(minutes=5)

    await claim(store, MONDAY + timedelta(seconds=1))
    assert await store.mark_retry("a", "429 Too Many Requests", retry_at, worker=WORKER) is True

    assert [m.key for m in await store.due_messages(MONDAY + timedelta(minutes=1), 10)] == ["b"]
    (again,) = [m for m in await store.due_messages(retry_at, 10) if m.key == "a"]
    assert (again.attempts, again.last_error, again.next_attempt_at) == (1, "429 Too Many Requests", retry_at)

    assert await claim(store, retry_at) == ["a"]
    await store.mark_retry("a", "503", retry_at, worker=WORKER)
    (twice,) = [m for m in await store.due_messages(retry_at, 10) if m.key == "a"]
    assert (twice.attempts, twice.last_error) == (2, "503")


async def test_releasing_a_recipient_makes_only_their_deferred_messages_due_without_an_attempt(store: Store) -> None:
    later = MONDAY + timedelta(minutes=5)
    await store.enqueue([message("for-alex"), message("for-megan", created_at=MONDAY + timedelta(seconds=1))])
    await claim(store, MONDAY + timedelta(seconds=1))
    await store.mark_retry("for-alex", "no conversation with this person yet", later, worker=WORKER)
    await store.mark_retry("for-megan", "no conversation with this person yet", later, worker=WORKER)
    (alex,) = [m for m in await store.due_messages(later, 10) if m.key == "for-alex"]

    assert await store.release_recipient(alex.recipient, MONDAY) == 1
    assert await store.release_recipient(alex.recipient, MONDAY) == 0
    (released,) = await store.due_messages(MONDAY, 10)
    assert released.key == "for-alex" and released.attempts == 1 and released.next_attempt_at == MONDAY


async def test_a_sent_message_is_never_due_again(store: Store) -> None:
    await store.enqueue([message("a")])
    await claim(store)
    assert await store.mark_sent("a", MONDAY, worker=WORKER) is True
    assert await store.mark_sent("a", MONDAY, worker=WORKER) is False  # a second confirmation is harmless
    assert await store.mark_retry("a", "late failure report", MONDAY, worker=WORKER) is False

    assert await store.due_messages(LATER, 10) == []


async def test_marking_an_unknown_message_is_an_error(store: Store) -> None:
    with pytest.raises(KeyError):
        await store.mark_sent("never-queued", MONDAY, worker=WORKER)
    with pytest.raises(KeyError):
        await store.mark_retry("never-queued", "x", MONDAY, worker=WORKER)
    with pytest.raises(KeyError):
        await store.mark_undeliverable("never-queued", "x", MONDAY, worker=WORKER)


async def test_an_undeliverable_message_is_never_due_again_and_its_twin_is_refused_after_a_restart(
    open_store: OpenStore,
) -> None:
    store = open_store()
    await store.enqueue([message("blocked"), message("other", created_at=MONDAY + timedelta(seconds=1))])
    await claim(store, MONDAY, limit=1)
    assert await store.mark_undeliverable("blocked", "the app is blocked or not installed", MONDAY, worker=WORKER)
    assert not await store.mark_undeliverable("blocked", "again", MONDAY, worker=WORKER)  # a second report is harmless
    assert not await store.mark_retry("blocked", "late failure report", MONDAY, worker=WORKER)
    assert not await store.mark_sent("blocked", MONDAY, worker=WORKER)
    assert [m.key for m in await store.due_messages(LATER, 10)] == ["other"]
    await store.close()

    reopened = open_store()
    assert [m.key for m in await reopened.due_messages(LATER, 10)] == ["other"]
    assert await reopened.enqueue([message("blocked")]) == 0


async def test_changing_a_returned_payload_does_not_change_the_queue(store: Store) -> None:
    await store.enqueue([message("a")])
    (due,) = await store.due_messages(MONDAY, 1)
    due.payload["text"] = "forged"

    (again,) = await store.due_messages(MONDAY, 1)
    assert again.payload["text"] == "Please review (a)"


async def test_many_sends_leave_nothing_due_after_a_restart(open_store: OpenStore) -> None:
    store = open_store()
    keys = [f"m{n:04}" for n in range(600)]
    await store.enqueue([message(key, created_at=MONDAY + timedelta(seconds=n)) for n, key in enumerate(keys)])
    assert await claim(store, LATER) == keys
    for key in keys[:-1]:
        await store.mark_sent(key, MONDAY, worker=WORKER)
    await store.close()

    reopened = open_store()
    assert [m.key for m in await reopened.due_messages(LATER, 1000)] == [keys[-1]]
    assert await reopened.enqueue([message(key) for key in keys]) == 0


# ---- outbox claims ------------------------------------------------------------------------------


async def test_a_claimed_message_is_not_claimed_again_by_anyone_while_its_lease_runs(store: Store) -> None:
    await store.enqueue([message("a"), message("b", created_at=MONDAY + timedelta(seconds=1))])

    assert await claim(store, MONDAY + timedelta(seconds=1), "notifier-a", limit=1) == ["a"]
    assert await claim(store, MONDAY + timedelta(seconds=1), "notifier-b") == ["b"]
    assert await claim(store, MONDAY + timedelta(minutes=4), "notifier-b") == []
    assert await claim(store, MONDAY + timedelta(minutes=4), "notifier-a") == []


async def test_an_expired_lease_makes_the_message_claimable_and_the_first_holder_can_no_longer_record_it(
    store: Store,
) -> None:
    await store.enqueue([message("a")])
    assert await claim(store, MONDAY, "notifier-a") == ["a"]

    after_the_lease = MONDAY + LEASE + timedelta(seconds=1)
    assert await claim(store, after_the_lease, "notifier-b") == ["a"]

    assert await store.mark_sent("a", after_the_lease, worker="notifier-a") is False
    assert await store.mark_retry("a", "late", LATER, worker="notifier-a") is False
    assert await store.mark_undeliverable("a", "late", after_the_lease, worker="notifier-a") is False
    assert [m.key for m in await store.due_messages(LATER, 10)] == ["a"]
    assert await store.mark_sent("a", after_the_lease, worker="notifier-b") is True
    assert await store.due_messages(LATER, 10) == []


async def test_a_holder_whose_lease_expired_unclaimed_still_records_its_outcome(store: Store) -> None:
    await store.enqueue([message("a")])
    await claim(store)

    assert await store.mark_sent("a", MONDAY + LEASE * 3, worker=WORKER) is True


async def test_a_message_nobody_claimed_cannot_be_marked(store: Store) -> None:
    await store.enqueue([message("a")])

    assert await store.mark_sent("a", MONDAY, worker=WORKER) is False
    assert await store.mark_retry("a", "x", LATER, worker=WORKER) is False
    assert [m.key for m in await store.due_messages(MONDAY, 10)] == ["a"]


async def test_a_retry_gives_up_the_claim_and_the_message_is_claimable_when_due(store: Store) -> None:
    await store.enqueue([message("a")])
    await claim(store, MONDAY, "notifier-a")
    retry_at = MONDAY + timedelta(seconds=30)
    await store.mark_retry("a", "503", retry_at, worker="notifier-a")

    assert await claim(store, MONDAY + timedelta(seconds=10), "notifier-b") == []
    assert await claim(store, retry_at, "notifier-b") == ["a"]


async def test_only_the_oldest_pending_message_of_a_person_is_claimable_so_their_messages_go_in_order(
    store: Store,
) -> None:
    await store.enqueue([
        message("request", recipient="alex"),
        message("reminder", recipient="alex", created_at=MONDAY + timedelta(seconds=1)),
        message("other", recipient="megan", created_at=MONDAY + timedelta(seconds=2)),
    ])
    now = MONDAY + timedelta(seconds=2)

    assert await claim(store, now, "notifier-a") == ["request", "other"]
    assert await claim(store, now, "notifier-b") == []  # alex's reminder waits behind the request in flight

    await store.mark_retry("request", "503", now + timedelta(minutes=1), worker="notifier-a")
    assert await claim(store, now, "notifier-b") == []  # ... and behind it while it is deferred

    assert await claim(store, now + timedelta(minutes=1), "notifier-b") == ["request"]
    await store.mark_sent("request", now, worker="notifier-b")
    assert await claim(store, now + timedelta(minutes=1), "notifier-b") == ["reminder"]


async def test_claims_come_oldest_first_up_to_the_limit(store: Store) -> None:
    await store.enqueue([message(f"m{n}", created_at=MONDAY + timedelta(seconds=9 - n)) for n in range(10)])

    assert await claim(store, LATER, limit=3) == ["m9", "m8", "m7"]
    assert await claim(store, LATER, "notifier-b", limit=100) == [f"m{n}" for n in range(6, -1, -1)]
    assert await claim(store, LATER, limit=0) == []


async def test_concurrent_claimers_never_share_a_message(store: Store) -> None:
    keys = [f"m{n:03}" for n in range(200)]
    await store.enqueue([message(key, created_at=MONDAY + timedelta(milliseconds=n)) for n, key in enumerate(keys)])

    batches = await asyncio.gather(*(claim(store, LATER, f"notifier-{n}", limit=15) for n in range(20)))

    claimed = [key for batch in batches for key in batch]
    assert len(claimed) == len(set(claimed)) == 200


async def test_a_restarted_store_keeps_the_queue_and_claims_of_the_dead_expire(open_store: OpenStore) -> None:
    store = open_store()
    await store.enqueue([message("a"), message("b")])
    await claim(store, MONDAY, "notifier-dead")
    await store.close()

    reopened = open_store()
    assert sorted(await claim(reopened, MONDAY + LEASE + timedelta(seconds=1), "notifier-b")) == ["a", "b"]


# ---- channel settings and the sending budget ----------------------------------------------------


async def test_a_channel_setting_is_kept_says_when_it_changed_and_survives_a_restart(open_store: OpenStore) -> None:
    store = open_store()
    assert await store.channel_setting("teams.service_url") is None
    assert await store.save_channel_setting("teams.service_url", "https://smba.trafficmanager.net/emea/") is True
    assert await store.save_channel_setting("teams.service_url", "https://smba.trafficmanager.net/emea/") is False
    assert await store.save_channel_setting("teams.service_url", "https://smba.trafficmanager.net/amer/") is True
    await store.close()

    assert await open_store().channel_setting("teams.service_url") == "https://smba.trafficmanager.net/amer/"


async def test_the_sending_budget_admits_a_burst_then_names_a_wait_and_never_counts_a_refusal(store: Store) -> None:
    budget = store.send_budget()
    charges = ((TEAMS_CONVERSATION, "a:alex"), (TEAMS_TENANT, "bot|contoso"))

    admitted = 0
    while (wait := await budget.admit(charges)) == 0.0:
        await budget.finished(charges)
        admitted += 1
        assert admitted < 8, "a conversation takes at most 7 in a second"
    assert admitted >= 1 and 0 < wait <= 1.0
    assert await budget.admit(((TEAMS_CONVERSATION, "a:megan"), (TEAMS_TENANT, "bot|contoso"))) == 0.0


# ---- ledger -------------------------------------------------------------------------------------


async def test_appended_records_are_read_back_in_order_and_anchored(store: Store) -> None:
    assert await store.ledger_anchor() is None
    assert await store.ledger_records() == []

    first = await store.append_ledger([LedgerEvent("campaign_opened", {"campaign_id": "c1"})], MONDAY)
    batch = await store.append_ledger(
        [LedgerEvent("decision", {"item_id": "i1", "action": "keep"}), LedgerEvent("reminded", {"round": 1})],
        MONDAY + timedelta(minutes=1),
    )

    records = await store.ledger_records()
    assert records == first + batch
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev == GENESIS
    assert records[1].at == records[2].at == "2026-11-23T09:01:00.000000Z"
    assert await store.ledger_anchor() == LedgerHead(3, records[-1].hash)
    assert verify(records, await store.ledger_anchor()).ok


async def test_an_empty_batch_appends_nothing(store: Store) -> None:
    assert await store.append_ledger([], MONDAY) == []
    assert await store.ledger_records() == []


async def test_a_reopened_store_sees_everything(open_store: OpenStore) -> None:
    store = open_store()
    opened = campaign()
    await store.save_campaign(opened, items(opened))
    await store.save_conversation("owner-alex", {"conversation": {"id": "a:2"}})
    await store.enqueue([message("sent"), message("retried"), message("waiting")])
    await claim(store)
    await store.mark_sent("sent", MONDAY, worker=WORKER)
    await store.mark_retry("retried", "403 blocked", LATER, worker=WORKER)
    written = await store.append_ledger([LedgerEvent("campaign_opened", {"campaign_id": opened.id})], MONDAY)
    await store.close()

    reopened = open_store()
    assert await reopened.list_campaigns() == [opened]
    assert await reopened.campaign_items(opened.id) == items(opened)
    assert await reopened.save_campaign(opened, items(opened)) is False
    assert await reopened.get_conversation("owner-alex") == {"conversation": {"id": "a:2"}}
    assert await reopened.enqueue([message("sent"), message("retried"), message("waiting")]) == 0
    due = {m.key: m for m in await reopened.due_messages(LATER, 10)}
    assert set(due) == {"retried", "waiting"}
    assert (due["retried"].attempts, due["retried"].last_error) == (1, "403 blocked")
    assert await reopened.ledger_records() == written
    assert await reopened.ledger_anchor() == written[-1].head

    more = await reopened.append_ledger([LedgerEvent("decision", {"item_id": "i1"})], LATER)
    assert more[0].seq == 2 and more[0].prev == written[-1].hash
    assert verify(await reopened.ledger_records(), await reopened.ledger_anchor()).ok


async def test_a_campaigns_records_are_read_alone_in_order_and_after_a_restart(open_store: OpenStore) -> None:
    store = open_store()
    assert await store.ledger_records_of("c1") == []
    first = await store.append_ledger([LedgerEvent("campaign_opened", {"campaign_id": "c1"}),
                                       LedgerEvent("campaign_opened", {"campaign_id": "c2"})], MONDAY)
    # Read once before more is appended: what a backend indexed must catch up with later appends.
    assert await store.ledger_records_of("c1") == first[:1]
    second = await store.append_ledger([
        LedgerEvent("decision", {"campaign_id": "c1", "item_id": "i1", "action": "keep"}),
        LedgerEvent("reminded", {"round": 1}),  # no campaign: never one campaign's record
        LedgerEvent("decision", {"campaign_id": "c2", "item_id": "i2", "action": "revoke"}),
        LedgerEvent("decision", {"campaign_id": 7, "item_id": "i3"}),  # not a campaign id
        LedgerEvent("decision", {"campaign_id": "c1", "item_id": "i4", "action": "keep"}),
    ], LATER)

    of_c1 = [first[0], second[0], second[4]]
    assert await store.ledger_records_of("c1") == of_c1
    assert [r.seq for r in await store.ledger_records_of("c2")] == [2, 5]
    assert await store.ledger_records_of("c3") == []
    assert await store.ledger_records_of("") == []
    await store.close()

    reopened = open_store()
    assert await reopened.ledger_records_of("c1") == of_c1
    assert await reopened.ledger_records_of("c2") == [first[1], second[2]]
    assert await reopened.ledger_records_of("c1") == [r for r in await reopened.ledger_records()
                                                       if r.data.get("campaign_id") == "c1"]


async def test_cards_sent_for_an_item_are_remembered_once_each_and_survive_a_restart(open_store: OpenStore) -> None:
    store = open_store()
    reference = {"conversation": {"id": "a:alex"}, "serviceUrl": "https://smba.example/"}
    await store.save_card("item-1", PostedCard("teams", "activity-1", reference))
    await store.save_card("item-1", PostedCard("teams", "activity-1", reference))
    await store.save_card("item-1", PostedCard("teams", "activity-2", {"conversation": {"id": "a:lynne"}}))
    assert [c.message_id for c in await store.cards("item-1")] == ["activity-1", "activity-2"]
    assert await store.cards("item-2") == []
    await store.close()
    reopened = open_store()
    assert (await reopened.cards("item-1"))[0] == PostedCard("teams", "activity-1", reference)


# ---- conditional appends and following the ledger -----------------------------------------------


def keep(item_id: str, actor: str, campaign_id: str = "c1") -> LedgerEvent:
    return LedgerEvent("decision", {"campaign_id": campaign_id, "item_id": item_id, "action": "keep", "actor_id": actor})


async def test_a_second_answer_decided_on_a_stale_view_is_refused_and_told_the_answer_that_stands(store: Store) -> None:
    opened = await store.append_if_current([LedgerEvent("campaign_opened", {"campaign_id": "c1"})], {}, MONDAY)
    seen = expectations([keep("i1", "alex")], {})  # both instances saw item i1 unanswered
    assert seen == {"item:i1": 0, "signed:c1": 0}

    first = await store.append_if_current([keep("i1", "alex")], seen, MONDAY)
    second = await store.append_if_current([keep("i1", "lynne")], seen, MONDAY)

    assert not first.refused and [r.seq for r in first.records] == [2]
    assert second.refused and second.records == ()
    assert second.standing == first.records  # the answer that stands, for the loser to show
    assert await store.ledger_records() == [*opened.records, *first.records]


async def test_answers_on_different_items_of_one_campaign_never_conflict(store: Store) -> None:
    await store.append_if_current([LedgerEvent("campaign_opened", {"campaign_id": "c1"})], {}, MONDAY)
    seen = {"campaign:c1": 1}  # versions as of the opening
    answers = await asyncio.gather(*(store.append_if_current([keep(f"i{n}", "alex")],
                                                             expectations([keep(f"i{n}", "alex")], seen), MONDAY)
                                     for n in range(6)))
    assert not any(answer.refused for answer in answers)
    assert sorted(r.data["item_id"] for r in await store.ledger_records() if r.type == "decision") == \
        [f"i{n}" for n in range(6)]


async def test_a_caller_that_caught_up_is_accepted_again(store: Store) -> None:
    first = await store.append_if_current([keep("i1", "alex")], {"item:i1": 0}, MONDAY)
    revoke = LedgerEvent("decision", {"campaign_id": "c1", "item_id": "i1", "action": "revoke"})
    assert (await store.append_if_current([revoke], {"item:i1": 0}, MONDAY)).refused
    caught_up = await store.append_if_current([revoke], {"item:i1": first.records[0].seq}, LATER)
    assert [r.type for r in caught_up.records] == ["decision"] and caught_up.records[0].seq == 2


async def test_a_sign_off_refuses_answers_decided_before_it_and_is_itself_refused_by_an_answer_it_missed(
    store: Store
) -> None:
    await store.append_if_current([LedgerEvent("campaign_opened", {"campaign_id": "c1"})], {}, MONDAY)
    versions = {"campaign:c1": 1}
    sign_off = LedgerEvent(SIGNED_OFF, {"campaign_id": "c1", "by": "alex", "at": MONDAY.isoformat()})
    late_answer = keep("i1", "lynne")

    answered = await store.append_if_current([late_answer], expectations([late_answer], versions), MONDAY)
    stale_sign_off = await store.append_if_current([sign_off], expectations([sign_off], versions), MONDAY)
    assert not answered.refused
    assert stale_sign_off.refused and stale_sign_off.standing == answered.records

    versions["campaign:c1"] = versions["item:i1"] = answered.records[0].seq
    signed = await store.append_if_current([sign_off], expectations([sign_off], versions), MONDAY)
    assert not signed.refused
    after = keep("i2", "patti")
    locked = await store.append_if_current([after], expectations([after], versions), LATER)
    assert locked.refused and locked.standing == signed.records


async def test_a_scheduled_step_is_recorded_once_whoever_records_it_again(open_store: OpenStore) -> None:
    store = open_store()
    reminded = LedgerEvent("reminded", {"campaign_id": "c1", "round": 3})
    first = await store.append_if_current([reminded], {}, MONDAY)
    again = await store.append_if_current([reminded], {}, MONDAY)  # a second leader that had not caught up
    both = await asyncio.gather(store.append_if_current([LedgerEvent("reminded", {"campaign_id": "c1", "round": 4})], {}, LATER),
                                store.append_if_current([LedgerEvent("reminded", {"campaign_id": "c1", "round": 4})], {}, LATER))
    assert not first.refused and again.refused and again.standing == first.records
    assert sorted(answer.refused for answer in both) == [False, True]
    won, lost = sorted(both, key=lambda answer: answer.refused)
    assert lost.standing == won.records  # what stands may have been written in the very same commit
    await store.close()

    reopened = open_store()  # the index of event keys is rebuilt from what was stored
    assert (await reopened.append_if_current([reminded], {}, LATER)).refused
    assert [r.data["round"] for r in await reopened.ledger_records()] == [3, 4]
    assert not (await reopened.append_if_current([LedgerEvent("reminded", {"campaign_id": "c1", "round": 5})],
                                                 {}, LATER)).refused


async def test_a_refused_append_leaves_the_ledger_verifiable_and_unchanged(open_store: OpenStore) -> None:
    store = open_store()
    written = await store.append_if_current([keep("i1", "alex")], {"item:i1": 0}, MONDAY)
    assert (await store.append_if_current([keep("i1", "lynne"), keep("i2", "lynne")], {"item:i1": 0, "item:i2": 0},
                                          MONDAY)).refused  # all or nothing: i2 is not recorded either
    assert await store.ledger_records() == list(written.records)
    await store.close()
    reopened = open_store()
    records = await reopened.ledger_records()
    assert records == list(written.records) and verify(records, await reopened.ledger_anchor()).ok
    # versions survive a restart: the stale view is still refused, the current one accepted
    assert (await reopened.append_if_current([keep("i1", "patti")], {"item:i1": 0}, LATER)).refused
    assert not (await reopened.append_if_current([keep("i2", "patti")], {"item:i2": 0}, LATER)).refused


async def test_the_ledger_is_followed_page_by_page_after_any_seq(store: Store) -> None:
    assert await store.ledger_records_after(0, 10) == []
    await store.append_ledger([keep(f"i{n}", "alex") for n in range(5)], MONDAY)
    await store.append_if_current([keep("i5", "alex")], {"item:i5": 0}, MONDAY)
    every = await store.ledger_records()
    pages, after = [], 0
    while page := await store.ledger_records_after(after, 2):
        pages.append([r.seq for r in page])
        after = page[-1].seq
    assert pages == [[1, 2], [3, 4], [5, 6]]
    assert await store.ledger_records_after(4, 100) == every[4:]
    assert await store.ledger_records_after(6, 100) == []


async def test_cards_are_told_apart_by_channel_so_one_item_holds_its_teams_and_slack_messages(open_store: OpenStore) -> None:
    store = open_store()
    await store.save_card("item-1", PostedCard("teams", "1700000000.000100", {"conversation": {"id": "a:alex"}}))
    await store.save_card("item-1", PostedCard("slack", "1700000000.000100", {"channel": "D0ALEX"}))
    await store.save_card("item-1", PostedCard("slack", "1700000000.000100", {"channel": "D0ALEX"}))
    await store.close()
    reopened = open_store()
    assert [(c.channel, c.address) for c in await reopened.cards("item-1")] == [
        ("teams", {"conversation": {"id": "a:alex"}}), ("slack", {"channel": "D0ALEX"})]
