"""Orders pulled through Admin GraphQL: the install backfill and the reconciliation."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from app.loyalty.apply import apply_event
from app.loyalty.events import OrderCancelled, OrderFulfilled, OrderPaid, OrderRefunded
from app.loyalty.ledger import find_balance_drift
from app.models import Order, Shop
from integrations.base import TransientPlatformError
from integrations.shopify import sync
from tests.factories import customer_info, snapshot
from tests.integrations.shopify.admin_api import FakeAdminApi, money, order_node, orders_page, refund_node, throttled
from tests.integrations.shopify.sync_support import (
    NOW, SYNCED, answer_history, customers, history, ledger, orders_by_id,
)


def test_backfill_pages_through_12_months_and_builds_customers_and_stats(session, sync_shop, router):
    shop = sync_shop()
    api = FakeAdminApi(shop.domain).install(router)
    answer_history(api)

    result = sync.backfill_orders(session, shop.id, now=NOW)

    assert result.status == "done" and result.run.done == 6 and result.run.total_estimate == 6
    first, second = api.variables("LojalOrders")
    assert first == {"first": 50, "after": None, "sortKey": "CREATED_AT",
                     "query": "created_at:>='2025-03-10T12:00:00Z'"}
    assert second["after"] == "cursor-1" and second["query"] == first["query"]
    people = customers(session, shop)
    assert set(people) == {"11", "12", "13"}  # 14's order was never paid: nothing to count yet
    ana, ben, cy = people["11"], people["12"], people["13"]
    assert (ana.orders_count, ana.total_spent) == (2, Decimal("220.00"))
    assert ana.email == "shopper11@example.com" and ana.first_name == "Ana"
    assert ana.first_order_at == datetime(2025, 6, 1, 10, tzinfo=UTC)
    assert (ben.orders_count, ben.total_spent) == (1, Decimal("40.00"))  # the failed refund took nothing back
    assert (cy.orders_count, cy.total_spent) == (0, Decimal("0"))
    orders = orders_by_id(session, shop)
    assert set(orders) == {"5001", "5002", "5003", "5004", "5005"}
    assert orders["5003"].customer_id is None and orders["5003"].email_normalized == "guest@example.com"
    assert orders["5005"].status == "cancelled"
    # backfill_points is off: history counts, earns nothing.
    assert ledger(session, shop) == []
    assert {o.points_status for o in orders.values()} == {"void"}
    assert session.get(Shop, shop.id).orders_synced_at == NOW


def test_backfill_with_backfill_points_earns_for_history(session, sync_shop, router):
    shop = sync_shop(backfill_points=True)
    answer_history(FakeAdminApi(shop.domain).install(router))
    sync.backfill_orders(session, shop.id, now=NOW)
    people = customers(session, shop)
    assert people["11"].points_balance == 220  # 100 + 120 at 1 point per unit
    assert people["12"].points_balance == 40   # 80 earned, half refunded
    assert people["13"].points_balance == 0    # cancelled
    assert find_balance_drift(session, shop.id) == []


def test_backfill_twice_leaves_the_same_ledger(session, sync_shop, router):
    shop = sync_shop(backfill_points=True)
    api = FakeAdminApi(shop.domain).install(router)
    answer_history(api)
    sync.backfill_orders(session, shop.id, now=NOW)
    first = (ledger(session, shop), {k: (c.points_balance, c.orders_count, c.total_spent)
                                     for k, c in customers(session, shop).items()})
    answer_history(api)
    sync.backfill_orders(session, shop.id, now=NOW + timedelta(hours=1))
    second = (ledger(session, shop), {k: (c.points_balance, c.orders_count, c.total_spent)
                                      for k, c in customers(session, shop).items()})
    assert first == second and first[0]


def test_a_low_bucket_pauses_the_run_with_the_wait_and_the_cursor(session, sync_shop, router, monkeypatch):
    shop = sync_shop()
    api = FakeAdminApi(shop.domain).install(router)
    page1, page2 = history()
    api.answer("LojalOrders", orders_page(page1, next_cursor="cursor-1", requested=352, available=20, restore=100))
    # The sync's own clock: the page is received at t=100 and applying it takes 1.2 s.
    readings = iter([100.0, 101.2])
    monkeypatch.setattr(sync, "time", SimpleNamespace(monotonic=lambda: next(readings)))

    paused = sync.backfill_orders(session, shop.id, now=NOW)

    assert paused.status == "paused" and paused.run.cursor == "cursor-1" and paused.run.done == 3
    assert paused.wait_seconds == pytest.approx(3.32 - 1.2)  # (352 - 20) / 100, less the time spent applying
    monkeypatch.undo()
    assert session.get(Shop, shop.id).orders_synced_at is None
    api.answer("LojalOrders", orders_page(page2, next_cursor=None))
    done = sync.backfill_orders(session, shop.id, now=NOW + timedelta(seconds=4), run=paused.run)
    assert done.status == "done" and done.run.done == 6
    assert api.variables("LojalOrders")[1]["after"] == "cursor-1"
    assert session.get(Shop, shop.id).orders_synced_at == NOW  # when the run started


def test_throttled_mid_run_keeps_the_pages_done_and_the_resume_point(session, sync_shop, router):
    shop = sync_shop()
    api = FakeAdminApi(shop.domain).install(router)
    page1, _ = history()
    api.answer("LojalOrders", orders_page(page1, next_cursor="cursor-1"), throttled(requested=352, available=52))
    run = sync.start_backfill(shop, NOW)
    with pytest.raises(TransientPlatformError) as caught:
        sync.sync_orders(session, session.get(Shop, shop.id), run)
    assert caught.value.retry_after == pytest.approx(3.0)
    assert run.cursor == "cursor-1" and run.done == 3
    assert session.query(Order).filter_by(shop_id=shop.id).count() == 3


def test_max_pages_pauses_without_waiting(session, sync_shop, router):
    shop = sync_shop()
    api = FakeAdminApi(shop.domain).install(router)
    answer_history(api)
    result = sync.backfill_orders(session, shop.id, now=NOW, max_pages=1)
    assert (result.status, result.wait_seconds, result.run.cursor) == ("paused", 0.0, "cursor-1")


@pytest.mark.parametrize("status", ["uninstalled", "disconnected"])
def test_shops_that_are_not_active_are_skipped(session, sync_shop, router, status):
    shop = sync_shop()
    shop.status = status
    session.commit()
    api = FakeAdminApi(shop.domain).install(router)
    assert sync.backfill_orders(session, shop.id, now=NOW).status == "skipped"
    assert sync.reconcile_orders(session, shop.id, now=NOW).status == "skipped"
    assert api.calls == []


def _webhook_paid(session, shop, order_id, customer_id, subtotal, at):
    """What the webhook path would have applied for an order."""
    event = OrderPaid(snapshot(order_id, customer=customer_info(platform_customer_id=str(customer_id),
                                                                email=f"shopper{customer_id}@example.com"),
                               subtotal=subtotal, placed_at=at), at)
    apply_event(session, shop.id, event)
    session.commit()


def test_reconciliation_credits_an_order_whose_webhook_never_came_once(session, sync_shop, router):
    shop = sync_shop(synced_at=SYNCED)
    _webhook_paid(session, shop, 6001, 21, "70.00", datetime(2026, 3, 9, 13, tzinfo=UTC))
    api = FakeAdminApi(shop.domain).install(router)
    updated = [
        order_node(6001, customer_id=21, subtotal="70.00", created="2026-03-09T13:00:00Z"),  # the webhook came
        order_node(6002, customer_id=21, subtotal="45.00", created="2026-03-10T09:00:00Z"),  # it never did
        order_node(6003, customer_id=22, subtotal="90.00", created="2026-03-10T10:00:00Z",
                   updated="2026-03-10T11:00:00Z", status="PARTIALLY_REFUNDED",
                   refunds=[refund_node(9101, "30.00", created="2026-03-10T11:00:00Z")]),
    ]
    api.answer("LojalOrders", orders_page(updated, next_cursor=None), orders_page(updated, next_cursor=None))

    assert sync.reconcile_orders(session, shop.id, now=NOW).status == "done"
    after_first = ledger(session, shop)
    sync.reconcile_orders(session, shop.id, now=NOW + timedelta(minutes=30))

    assert ledger(session, shop) == after_first
    people = customers(session, shop)
    assert people["21"].points_balance == 115 and people["21"].orders_count == 2  # 70 by webhook + 45 caught up
    assert people["22"].points_balance == 60   # 90 earned, a third refunded
    first, second = api.variables("LojalOrders")
    assert first["query"] == "updated_at:>='2026-03-09T11:50:00Z'" and first["sortKey"] == "UPDATED_AT"
    assert second["query"] == "updated_at:>='2026-03-10T11:50:00Z'"  # the cursor moved to the first run's start
    assert session.get(Shop, shop.id).orders_synced_at == NOW + timedelta(minutes=30)
    assert find_balance_drift(session, shop.id) == []


def test_reconciliation_treats_orders_from_before_the_install_as_history(session, sync_shop, router):
    shop = sync_shop(synced_at=SYNCED)
    api = FakeAdminApi(shop.domain).install(router)
    old = order_node(6101, customer_id=31, subtotal="200.00", created="2024-05-01T10:00:00Z",
                     updated="2026-03-10T10:00:00Z", status="PARTIALLY_REFUNDED",
                     refunds=[refund_node(9201, "20.00", created="2026-03-10T10:00:00Z")])
    api.answer("LojalOrders", orders_page([old], next_cursor=None))
    sync.reconcile_orders(session, shop.id, now=NOW)
    assert customers(session, shop)["31"].points_balance == 0
    assert ledger(session, shop) == []


def test_reconciliation_waits_for_the_backfill_to_set_a_cursor(session, sync_shop, router):
    shop = sync_shop()
    api = FakeAdminApi(shop.domain).install(router)
    assert sync.reconcile_orders(session, shop.id, now=NOW).status == "skipped"
    assert api.calls == []


def test_an_order_maps_to_paid_refunds_and_cancellation_in_order():
    node = order_node(7001, customer_id=41, subtotal="90.00", total="99.50", created="2025-05-01T10:00:00Z",
                      cancelled="2025-05-03T10:00:00Z", status="REFUNDED",
                      refunds=[refund_node(2, "20.00", created="2025-05-02T12:00:00Z"),
                               refund_node(1, "30.00", created="2025-05-02T10:00:00Z")])
    node["refunds"][0]["transactions"]["nodes"].append(
        {"kind": "REFUND", "status": "SUCCESS", "amountSet": {"shopMoney": {"amount": "5.00"}}})
    paid, first, second, cancelled = sync.order_events(node, historical=True, shop_currency="USD")
    assert isinstance(paid, OrderPaid) and paid.historical
    assert paid.order.platform_order_id == "7001" and paid.order.customer.platform_customer_id == "41"
    assert (paid.order.subtotal, paid.order.total, paid.order.order_number) == (Decimal("90.00"), Decimal("99.50"),
                                                                                  "#7001")
    assert isinstance(first, OrderRefunded) and (first.platform_refund_id, first.amount) == ("1", Decimal("30.00"))
    assert (second.platform_refund_id, second.amount) == ("2", Decimal("25.00"))  # both transactions
    assert isinstance(cancelled, OrderCancelled) and cancelled.occurred_at == datetime(2025, 5, 3, 10, tzinfo=UTC)


def test_an_unpaid_order_yields_nothing():
    assert sync.order_events(order_node(7002, status="PENDING"), historical=False, shop_currency="USD") == []
    assert sync.order_events(order_node(7003, status="AUTHORIZED"), historical=False, shop_currency="USD") == []


def test_a_tax_inclusive_order_s_subtotal_is_read_without_its_tax_as_its_webhook_is():
    node = order_node(7004, customer_id=41, subtotal="120.00", total="126.00")
    node.update(taxesIncluded=True, totalTaxSet=money("21.00"), totalShippingPriceSet=money("6.00"),
                shippingLine={"taxLines": [{"priceSet": money("1.00")}]})
    [paid] = sync.order_events(node, historical=False, shop_currency="USD")
    assert paid.order.subtotal == Decimal("100.00")  # 120.00 less the 20.00 VAT on the goods
    assert "taxesIncluded" in sync.ORDERS_QUERY and "shippingLine " in sync.ORDERS_QUERY


def test_a_reconciled_order_takes_its_shipping_discount_off_its_shipping_as_its_webhook_does():
    node = order_node(7005, customer_id=41, subtotal="100.00", total="100.00")
    node.update(totalShippingPriceSet=money("10.00"),
                shippingLine={"taxLines": [], "discountAllocations": [{"allocatedAmountSet": money("10.00")}]})
    [paid] = sync.order_events(node, historical=False, shop_currency="USD")
    assert paid.order.total_shipping == Decimal("0.00")  # shipping before discounts, less its discount
    assert "discountAllocations" in sync.ORDERS_QUERY


def test_a_reconciled_order_reads_its_tip_as_its_webhook_does():
    node = order_node(7006, customer_id=41, subtotal="100.00", total="115.00")
    node.update(totalTipReceivedSet=money("15.00"))
    [paid] = sync.order_events(node, historical=False, shop_currency="USD")
    assert paid.order.tips == Decimal("15.00")
    assert "totalTipReceivedSet" in sync.ORDERS_QUERY


def test_a_reconciled_order_s_duties_are_left_out_with_the_tax_as_its_webhook_s_are():
    node = order_node(7007, customer_id=41, subtotal="100.00", total="140.00")
    node.update(totalTaxSet=money("10.00"), originalTotalDutiesSet=money("30.00"))
    [paid] = sync.order_events(node, historical=False, shop_currency="USD")
    assert paid.order.total_tax == Decimal("40.00")
    assert "originalTotalDutiesSet" in sync.ORDERS_QUERY
    node["originalTotalDutiesSet"] = None  # no duties collected
    assert sync.order_events(node, historical=False, shop_currency="USD")[0].order.total_tax == Decimal("10.00")


def test_a_backfill_credits_an_order_placed_after_the_install_that_no_webhook_applied(session, sync_shop, router):
    # The backfill reaches orders placed since the install too (a long history, a late webhook, or
    # `lojal backfill` run later): those are live sales, not history, whatever backfill_points says.
    shop = sync_shop()
    api = FakeAdminApi(shop.domain).install(router)
    api.answer("LojalOrders", orders_page([
        order_node(6201, customer_id=51, subtotal="80.00", created="2025-12-01T10:00:00Z"),  # before the install
        order_node(6202, customer_id=51, subtotal="45.00", created="2026-03-09T10:00:00Z"),  # after it
    ], next_cursor=None))
    assert sync.backfill_orders(session, shop.id, now=NOW).status == "done"
    assert customers(session, shop)["51"].points_balance == 45
    # The webhook that comes late changes nothing.
    _webhook_paid(session, shop, 6202, 51, "45.00", datetime(2026, 3, 9, 10, tzinfo=UTC))
    assert customers(session, shop)["51"].points_balance == 45
    assert find_balance_drift(session, shop.id) == []


def test_a_reconciled_order_keeps_its_referral_code_as_its_webhook_does():
    # The storefront's `lojal_ref` cart attribute is the order's customAttributes in GraphQL
    # (note_attributes in the webhook): without it a referred friend's missed order credits no advocate.
    node = order_node(7005, customer_id=41)
    node["customAttributes"] = [{"key": "gift_note", "value": "hi"}, {"key": "lojal_ref", "value": "ADV0CATE1234"}]
    [paid] = sync.order_events(node, historical=False, shop_currency="USD")
    assert paid.order.referral_code == "ADV0CATE1234"
    assert "customAttributes { key value }" in sync.ORDERS_QUERY
    node["customAttributes"] = [{"key": "lojal_ref", "value": "<script>"}]  # noise, as the webhook parser drops it
    assert sync.order_events(node, historical=False, shop_currency="USD")[0].order.referral_code is None


def test_reconciliation_awards_a_fulfilled_order_when_the_shop_awards_on_fulfilment(session, sync_shop, router):
    # With award_on = fulfilled only a fulfilment earns: an orders/fulfilled webhook that never came
    # must be caught up like a missed orders/paid, at the fulfilment's time.
    shop = sync_shop(award_on="fulfilled", pending_days=14, synced_at=SYNCED)
    api = FakeAdminApi(shop.domain).install(router)
    shipped = order_node(6301, customer_id=61, subtotal="40.00", created="2026-03-09T13:00:00Z",
                         updated="2026-03-10T09:00:00Z")
    shipped.update(displayFulfillmentStatus="FULFILLED",
                   fulfillments=[{"createdAt": "2026-03-10T08:00:00Z"}, {"createdAt": "2026-03-09T20:00:00Z"}])
    waiting = order_node(6302, customer_id=61, subtotal="25.00", created="2026-03-10T10:00:00Z")
    waiting.update(displayFulfillmentStatus="UNFULFILLED", fulfillments=[])
    api.answer("LojalOrders", orders_page([shipped, waiting], next_cursor=None))

    sync.reconcile_orders(session, shop.id, now=NOW)

    assert customers(session, shop)["61"].pending_points == 40  # the shipped one only
    order = session.query(Order).filter_by(shop_id=shop.id, platform_order_id="6301").one()
    assert order.fulfilled_at == datetime(2026, 3, 10, 8, tzinfo=UTC)  # the last fulfilment
    assert order.pending_until == datetime(2026, 3, 24, 8, tzinfo=UTC)
    assert "displayFulfillmentStatus" in sync.ORDERS_QUERY


def test_a_fulfilled_order_of_imported_history_earns_only_with_backfill_points():
    node = order_node(7006, customer_id=41, status="PENDING")  # cash on delivery: shipped, not yet paid
    node.update(displayFulfillmentStatus="FULFILLED", fulfillments=[{"createdAt": "2025-05-02T10:00:00Z"}])
    assert sync.order_events(node, historical=True, shop_currency="USD") == []  # nothing to mark it history
    node["displayFinancialStatus"] = "PAID"
    paid, fulfilled = sync.order_events(node, historical=True, shop_currency="USD")
    assert isinstance(paid, OrderPaid) and paid.historical and isinstance(fulfilled, OrderFulfilled)


def test_a_malformed_order_is_skipped_and_logged_so_it_does_not_block_the_orders_after_it(session, sync_shop, router,
                                                                                          caplog):
    shop = sync_shop(synced_at=SYNCED)
    broken = order_node(6101, customer_id=31, subtotal="70.00", created="2026-03-10T08:00:00Z")
    broken["totalPriceSet"] = None  # a field the order cannot be read without
    after = order_node(6102, customer_id=32, subtotal="45.00", created="2026-03-10T09:00:00Z")
    FakeAdminApi(shop.domain).install(router).answer("LojalOrders", orders_page([broken, after], next_cursor=None))

    with caplog.at_level("WARNING"):
        result = sync.reconcile_orders(session, shop.id, now=NOW)

    assert result.status == "done" and (result.run.done, result.run.skipped) == (1, 1)
    assert {ref: c.points_balance for ref, c in customers(session, shop).items()} == {"32": 45}
    skipped = [r for r in caplog.records if r.getMessage() == "order sync skipped a malformed order"]
    assert len(skipped) == 1 and skipped[0].platform_order_id.endswith("6101")
