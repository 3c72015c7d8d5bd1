"""``mine`` for a partner staffer waiting in a thousand customers' campaigns: worst first, a page at a time, every
page within an Adaptive Card's and a Block Kit message's limits, and every customer on exactly one page."""

from __future__ import annotations

import json

from dialogs.customer_reviews import CustomerQueue, customers_page
from dialogs.partner_status import BLOCK_KIT_BLOCKS, PAGE_SIZE
from dialogs.render import slack
from dialogs.render.teams import CARD_BUDGET_BYTES, rollup_card
from tests.unit.test_render_slack import assert_valid

LONG_NAME = "Contoso Pharmaceuticals and Life Sciences Holding International (Europe, Middle East & Africa) " * 2


def test_mine_across_a_thousand_customers_pages_within_card_and_block_kit_limits() -> None:
    waiting = [CustomerQueue(f"tenant-{n:04}", f"{LONG_NAME} {n:04}", waiting=400 - n % 400, overdue=n % 3)
               for n in range(1000)]

    first = customers_page(waiting, 1)
    pages = [customers_page(waiting, n) for n in range(1, first.pages + 1)]

    assert first.pages == 40 and first.next_hint == "mine 2" and pages[-1].next_hint == ""
    assert customers_page(waiting, 99) == pages[-1]  # past the last page shows the last
    assert [row.key for page in pages for row in page.rows] == [q.tenant_id for q in waiting]
    assert first.totals[0].value == str(sum(q.waiting for q in waiting))
    for page in pages:
        assert len(page.rows) <= PAGE_SIZE and len(page.rows) + 3 <= BLOCK_KIT_BLOCKS
        assert len(json.dumps(rollup_card(page)).encode()) <= CARD_BUDGET_BYTES
        (message,) = slack.render(page)
        assert_valid(message)
        assert "not shown" not in json.dumps(message.blocks)
