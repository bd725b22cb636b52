"""Order edits whose orders/edited delivery is lost for good: the reconciliation sees the edited
order (GraphQL `Order.edited`) and applies the edit through the domain function the webhook uses,
so it earns as the webhook would have made it earn, once."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.loyalty.apply import apply_event
from app.models import LedgerEntry
from integrations.shopify import sync
from integrations.shopify.order_edits import with_edited_orders
from integrations.shopify.parsers import parse_event
from tests.factories import customer_info, paid
from tests.integrations.shopify.admin_api import FakeAdminApi, line_item, money, no_lines, ok, order_node, orders_page
from tests.integrations.shopify.samples import sample
from tests.integrations.shopify.sync_support import SYNCED, customers, orders_by_id

ORDER_ID = 5840000000001  # the sample order: 129.99 of goods after a 10.00 code, 5.00 shipping, 10.00 tax
CUSTOMER_ID = 7390000000001
RUN_AT = datetime(2026, 7, 17, 12, tzinfo=UTC)  # the day after the edit
SAMPLE_LINES = [line_item("89.99", discounts=("6.43",)), line_item("50.00", discounts=("3.57",))]
# What an edit left: the order's lines (a removed line stays, Shopify keeps its quantity), subtotal, total.
EDITS = {
    "an item added": ([*SAMPLE_LINES, line_item("50.00")], "179.99", "194.99"),
    "gift cards added": ([*SAMPLE_LINES, line_item("25.00", 2, gift_card=True)], "179.99", "194.99"),
    "an item removed": (SAMPLE_LINES, "83.56", "98.56"),
}
EARNED = [("earn", 129, 0)]  # floor(129.99), by the orders/paid webhook


def _paid_by_webhook(session, shop):
    for event in parse_event(shop, "orders/paid", sample("order_paid"), {}):
        apply_event(session, shop.id, event)
    session.commit()


def _edited_node(*, subtotal: str, total: str, edited: bool = True) -> dict:
    """The sample order as the Admin API reads it after the edit."""
    node = order_node(ORDER_ID, customer_id=CUSTOMER_ID, email="ana.silva@example.com", subtotal=subtotal, total=total,
                      created="2026-07-14T14:02:10Z", updated="2026-07-16T13:31:41Z", edited=edited)
    node.update(totalTaxSet=money("10.00"), totalShippingPriceSet=money("5.00"))
    return node


def _edited_by_webhook(session, shop, api, node):
    """The orders/edited delivery as the worker handles it: the order read, then the domain."""
    api.answer("LojalOrder", ok({"order": node}))
    notices = parse_event(shop, "orders/edited", sample("order_edited"), {})
    for event in with_edited_orders(shop, notices):
        apply_event(session, shop.id, event)
    session.commit()


def _reconcile(session, shop, api, *nodes):
    api.answer("LojalOrders", orders_page(list(nodes), next_cursor=None))
    assert sync.reconcile_orders(session, shop.id, now=RUN_AT).status == "done"


def _entries(session, shop) -> list[tuple[str, int, int]]:
    session.expire_all()
    rows = session.query(LedgerEntry).filter_by(shop_id=shop.id).order_by(LedgerEntry.id)
    return [(e.kind, e.points, e.pending_delta) for e in rows]


def _state(session, shop) -> dict:
    order = orders_by_id(session, shop)[str(ORDER_ID)]
    customer = customers(session, shop)[str(CUSTOMER_ID)]
    return {"amounts": (order.subtotal, order.total, order.eligible_amount, order.non_earning_amount),
            "points": order.points_earned, "spent": customer.total_spent,
            "balance": (customer.points_balance, customer.pending_points), "ledger": _entries(session, shop)}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edit_whose_webhook_never_came_is_applied_by_the_reconciliation_as_its_webhook_applies_it(
        session, sync_shop, router, edit):
    lines, subtotal, total = EDITS[edit]
    by_webhook, by_sync = (sync_shop(synced_at=SYNCED) for _ in range(2))
    for shop in (by_webhook, by_sync):
        _paid_by_webhook(session, shop)
    webhook_api, sync_api = (FakeAdminApi(shop.domain).install(router) for shop in (by_webhook, by_sync))
    webhook_api.lines[ORDER_ID] = sync_api.lines[ORDER_ID] = lines

    _edited_by_webhook(session, by_webhook, webhook_api, _edited_node(subtotal=subtotal, total=total))
    _reconcile(session, by_sync, sync_api, _edited_node(subtotal=subtotal, total=total))

    assert _state(session, by_sync) == _state(session, by_webhook)
    assert _entries(session, by_sync) == {"an item added": [*EARNED, ("earn", 50, 0)]}.get(edit, EARNED)
    assert "edited" in sync.ORDERS_QUERY.split()
    # A removal leaves the amounts as they were: nothing to apply, so the order's lines are not read.
    read_lines = edit != "an item removed"
    assert sync_api.operations() == ["LojalOrders", "LojalOrderLines"][:1 + read_lines]


def test_the_reconciliation_again_or_the_edit_s_late_webhook_earns_nothing_more(session, sync_shop, router):
    shop = sync_shop(synced_at=SYNCED)
    _paid_by_webhook(session, shop)
    api = FakeAdminApi(shop.domain).install(router)
    api.lines[ORDER_ID], subtotal, total = EDITS["an item added"]
    node = _edited_node(subtotal=subtotal, total=total)
    _reconcile(session, shop, api, node)
    after = _state(session, shop)

    _reconcile(session, shop, api, node)
    _edited_by_webhook(session, shop, api, node)

    assert _state(session, shop) == after and after["ledger"] == [*EARNED, ("earn", 50, 0)]
    # The second run finds the order's amounts already grown: it reads no lines for it.
    assert api.operations() == ["LojalOrders", "LojalOrderLines", "LojalOrders", "LojalOrder", "LojalOrderLines"]


@pytest.mark.parametrize("edit", ["an item added", "gift cards added"])
def test_an_edit_its_webhook_applied_is_left_alone_by_the_reconciliation(session, sync_shop, router, edit):
    shop = sync_shop(synced_at=SYNCED)
    _paid_by_webhook(session, shop)
    api = FakeAdminApi(shop.domain).install(router)
    api.lines[ORDER_ID], subtotal, total = EDITS[edit]
    node = _edited_node(subtotal=subtotal, total=total)
    _edited_by_webhook(session, shop, api, node)
    before = _state(session, shop)

    _reconcile(session, shop, api, node)

    assert _state(session, shop) == before and before["amounts"][1] == Decimal("194.99")
    # The page's amounts less gift cards it cannot see are above what the order earns on when the
    # edit added gift cards: its lines are read again, to find nothing to apply.
    assert api.operations()[2:] == ["LojalOrders", "LojalOrderLines"][:1 + (edit == "gift cards added")]


def test_an_earned_order_that_was_not_edited_keeps_the_amounts_it_earned_on(session, sync_shop, router):
    # Whatever else makes its amounts as GraphQL reads them differ from the webhook's, only an edit grows them.
    shop = sync_shop(synced_at=SYNCED)
    _paid_by_webhook(session, shop)
    api = FakeAdminApi(shop.domain).install(router)
    _reconcile(session, shop, api, _edited_node(subtotal="179.99", total="194.99", edited=False))
    assert _entries(session, shop) == EARNED and api.operations() == ["LojalOrders"]
    assert orders_by_id(session, shop)[str(ORDER_ID)].total == Decimal("144.99")


def test_an_edit_during_the_return_window_grows_the_points_it_holds(session, sync_shop, router):
    shop = sync_shop(synced_at=SYNCED, pending_days=14)
    _paid_by_webhook(session, shop)
    api = FakeAdminApi(shop.domain).install(router)
    api.lines[ORDER_ID], subtotal, total = EDITS["an item added"]
    _reconcile(session, shop, api, _edited_node(subtotal=subtotal, total=total))
    assert _entries(session, shop) == [("earn", 0, 129), ("earn", 0, 50)]


def test_edits_whose_lines_were_read_before_a_pause_are_applied_when_the_run_resumes(session, sync_shop, router):
    shop = sync_shop(synced_at=SYNCED)
    buyer = customer_info(platform_customer_id="81", email="shopper81@example.com")
    order_ids = range(8101, 8106)  # one more than a lines query reads
    for order_id in order_ids:
        apply_event(session, shop.id, paid(order_id, customer=buyer, subtotal="40.00", at=SYNCED))
    session.commit()
    api = FakeAdminApi(shop.domain).install(router)
    page = [order_node(order_id, customer_id=81, subtotal="60.00", created="2026-03-09T13:00:00Z",
                       updated="2026-03-10T09:00:00Z", edited=True) for order_id in order_ids]
    api.answer("LojalOrders", orders_page(page, next_cursor=None, requested=352, available=1500),
               orders_page(page, next_cursor=None))
    # The first lines query leaves too little in the bucket for the second: the run pauses.
    api.answer("LojalOrderLines", no_lines(*order_ids[:4], requested=200, available=52, restore=100))

    paused = sync.reconcile_orders(session, shop.id, now=RUN_AT)
    assert paused.status == "paused" and paused.run.done == 0
    resumed = sync.SyncRun.from_json(paused.run.to_json())  # as the job layer carries it to the next job
    assert sync.reconcile_orders(session, shop.id, now=RUN_AT, run=resumed).status == "done"

    assert {o.eligible_amount for o in orders_by_id(session, shop).values()} == {Decimal("60.00")}
    assert customers(session, shop)["81"].points_balance == 5 * 60
    assert [call["ids"] for call in api.variables("LojalOrderLines")] == [
        [f"gid://shopify/Order/{order_id}" for order_id in order_ids[:4]], ["gid://shopify/Order/8105"]]
