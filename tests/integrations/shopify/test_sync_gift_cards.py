"""Gift cards bought in an order that reaches us only through the GraphQL sync: read from its line
items (a second, batched query) so it earns as its webhook would have made it earn."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from app.loyalty.apply import apply_event
from app.models import Shop
from integrations.base import TransientPlatformError
from integrations.shopify import order_lines, sync
from integrations.shopify.parsers import parse_event
from tests.integrations.shopify.admin_api import (
    FakeAdminApi, line_item, money, no_lines, order_node, orders_page, throttled,
)
from tests.integrations.shopify.samples import sample
from tests.integrations.shopify.sync_support import NOW, SYNCED, answer_history, orders_by_id


def _lines_calls(api):
    return api.variables("LojalOrderLines")


# The sample order (a 89.99 and a 50.00 item, a WELCOME10 code spread over them, 5.00 shipping, 10.00
# tax) with two 25.00 gift cards added, 5.00 of another discount on them.
GIFT_CARD_LINE = {"id": 14800000000009, "gift_card": True, "name": "Gift Card - $25", "quantity": 2, "price": "25.00",
                  "price_set": {"shop_money": {"amount": "25.00", "currency_code": "USD"}}, "taxable": False,
                  "tax_lines": [], "discount_allocations": [
                      {"amount": "5.00", "amount_set": {"shop_money": {"amount": "5.00", "currency_code": "USD"}},
                       "discount_application_index": 0}]}


def _sample_with_gift_cards():
    payload = sample("order_paid")
    payload["line_items"].append(GIFT_CARD_LINE)
    payload.update(subtotal_price="174.99", subtotal_price_set={"shop_money": {"amount": "174.99", "currency_code": "USD"}},
                   total_price="189.99", total_price_set={"shop_money": {"amount": "189.99", "currency_code": "USD"}})
    return payload


def _the_same_order_in_graphql(order_id):
    node = order_node(order_id, customer_id=71, subtotal="174.99", total="189.99", created="2026-03-10T09:00:00Z")
    node.update(totalTaxSet=money("10.00"), totalShippingPriceSet=money("5.00"))
    lines = [line_item("89.99", discounts=("6.43",)), line_item("50.00", discounts=("3.57",)),
             line_item("25.00", 2, gift_card=True, discounts=("5.00",))]
    return node, lines


@pytest.mark.parametrize("basis", ["subtotal", "total"])
def test_an_order_only_the_reconciliation_sees_earns_on_its_goods_not_its_gift_cards_as_by_webhook(
        session, sync_shop, router, basis):
    by_webhook, by_sync = (sync_shop(earn_basis=basis, synced_at=SYNCED) for _ in range(2))
    for event in parse_event(by_webhook, "orders/paid", _sample_with_gift_cards(),
                             {"X-Shopify-Triggered-At": "2026-03-10T09:00:01Z"}):
        apply_event(session, by_webhook.id, event)
    session.commit()
    api = FakeAdminApi(by_sync.domain).install(router)
    node, api.lines[6401] = _the_same_order_in_graphql(6401)
    api.answer("LojalOrders", orders_page([node], next_cursor=None))

    assert sync.reconcile_orders(session, by_sync.id, now=NOW).status == "done"

    [webhook_order] = orders_by_id(session, by_webhook).values()
    synced = orders_by_id(session, by_sync)["6401"]
    assert synced.eligible_amount == webhook_order.eligible_amount  # 174.99 / 189.99 less the 45.00 of gift cards
    assert synced.eligible_amount == {"subtotal": Decimal("129.99"), "total": Decimal("144.99")}[basis]
    assert synced.points_earned == webhook_order.points_earned and synced.points_earned > 0
    assert _lines_calls(api) == [{"ids": ["gid://shopify/Order/6401"], "first": order_lines.LINES_PER_ORDER, "after": None}]


def test_an_order_already_earned_by_its_webhook_sends_no_lines_query(session, sync_shop, router):
    shop = sync_shop(synced_at=SYNCED)
    for event in parse_event(shop, "orders/paid", _sample_with_gift_cards(), {}):
        apply_event(session, shop.id, event)
    session.commit()
    api = FakeAdminApi(shop.domain).install(router)
    node, api.lines[5840000000001] = _the_same_order_in_graphql(5840000000001)
    api.answer("LojalOrders", orders_page([node], next_cursor=None))

    assert sync.reconcile_orders(session, shop.id, now=NOW).status == "done"

    assert api.operations() == ["LojalOrders"]
    assert orders_by_id(session, shop)["5840000000001"].eligible_amount == Decimal("129.99")  # the webhook's


def test_a_page_without_unknown_orders_that_could_earn_sends_no_lines_query(session, sync_shop, router):
    shop = sync_shop(synced_at=SYNCED)
    api = FakeAdminApi(shop.domain).install(router)
    api.answer("LojalOrders", orders_page([
        order_node(6501, customer_id=72, status="PENDING", created="2026-03-10T09:00:00Z"),   # not paid
        order_node(6502, customer_id=72, test=True, created="2026-03-10T09:00:00Z"),          # a test order
        order_node(6503, customer_id=72, created="2026-03-10T09:00:00Z", status="REFUNDED",
                   cancelled="2026-03-10T10:00:00Z"),                                         # cancelled
        order_node(6504, customer_id=72, created="2025-11-01T09:00:00Z",
                   updated="2026-03-10T09:00:00Z"),                                           # before the install
    ], next_cursor=None))

    assert sync.reconcile_orders(session, shop.id, now=NOW).status == "done"

    assert api.operations() == ["LojalOrders"]


def test_a_test_order_s_lines_are_read_when_the_shop_counts_testorders_by_id(session, sync_shop, router):
    shop = sync_shop(include_test_orders=True, synced_at=SYNCED)
    api = FakeAdminApi(shop.domain).install(router)
    api.lines[6505] = [line_item("40.00"), line_item("10.00", gift_card=True)]
    api.answer("LojalOrders", orders_page([order_node(6505, customer_id=72, subtotal="50.00", test=True,
                                                      created="2026-03-10T09:00:00Z")], next_cursor=None))
    sync.reconcile_orders(session, shop.id, now=NOW)
    assert orders_by_id(session, shop)["6505"].eligible_amount == Decimal("40.00")


def test_an_order_with_more_lines_than_a_page_of_them_is_read_to_its_last_line(session, sync_shop, router):
    shop = sync_shop(synced_at=SYNCED)
    api = FakeAdminApi(shop.domain).install(router)
    many = order_lines.LINES_PER_ORDER * 2 + 5
    api.lines[6601] = [line_item("1.00") for _ in range(many - 1)] + [line_item("30.00", gift_card=True)]
    api.lines[6602] = [line_item("20.00", gift_card=True), line_item("15.00")]
    api.answer("LojalOrders", orders_page([
        order_node(6601, customer_id=73, subtotal=f"{many - 1 + 30}.00", created="2026-03-10T09:00:00Z"),
        order_node(6602, customer_id=73, subtotal="35.00", created="2026-03-10T09:30:00Z"),
    ], next_cursor=None))

    sync.reconcile_orders(session, shop.id, now=NOW)

    orders = orders_by_id(session, shop)
    assert orders["6601"].eligible_amount == Decimal(many - 1)  # the gift card was on the last page of lines
    assert orders["6602"].eligible_amount == Decimal("15.00")
    first, second, third = _lines_calls(api)
    assert first["ids"] == ["gid://shopify/Order/6601", "gid://shopify/Order/6602"] and first["after"] is None
    # Only the order with more lines is read on, from where its lines stopped.
    assert second == {"ids": ["gid://shopify/Order/6601"], "first": order_lines.LINES_PER_ORDER,
                      "after": f"lines-{order_lines.LINES_PER_ORDER}"}
    assert third["ids"] == ["gid://shopify/Order/6601"] and third["after"] == f"lines-{order_lines.LINES_PER_ORDER * 2}"


def test_historical_orders_send_no_lines_query_unless_history_earns(session, sync_shop, router):
    quiet = sync_shop(synced_at=SYNCED)
    api = FakeAdminApi(quiet.domain).install(router)
    answer_history(api)
    assert sync.backfill_orders(session, quiet.id, now=NOW).status == "done"
    assert set(api.operations()) == {"LojalOrders"}

    earning = sync_shop(backfill_points=True, synced_at=SYNCED)
    api = FakeAdminApi(earning.domain).install(router)
    answer_history(api)
    assert sync.backfill_orders(session, earning.id, now=NOW).status == "done"
    # The paid orders that are not cancelled, a query per page (5005 was cancelled, 5006 never paid).
    assert [call["ids"] for call in _lines_calls(api)] == [
        ["gid://shopify/Order/5001", "gid://shopify/Order/5002", "gid://shopify/Order/5003"],
        ["gid://shopify/Order/5004"]]


def test_the_lines_of_a_full_page_are_read_in_batches_under_the_single_query_cost_limit(session, sync_shop, router):
    shop = sync_shop(synced_at=SYNCED)
    api = FakeAdminApi(shop.domain).install(router)
    nodes = [order_node(6700 + n, customer_id=74, created="2026-03-10T09:00:00Z") for n in range(sync.PAGE_SIZE)]
    api.answer("LojalOrders", orders_page(nodes, next_cursor=None))

    sync.reconcile_orders(session, shop.id, now=NOW)

    batches = [call["ids"] for call in _lines_calls(api)]
    assert [gid for batch in batches for gid in batch] == [node["id"] for node in nodes]
    assert max(len(batch) for batch in batches) == order_lines.ORDERS_PER_LINES_QUERY
    assert order_lines.LINES_QUERY_COST <= 500  # Shopify refuses a single query over 1,000 points


def test_the_wait_before_the_next_page_counts_what_the_lines_queries_took_from_the_bucket(session, sync_shop, router,
                                                                                          monkeypatch):
    shop = sync_shop(synced_at=SYNCED)
    api = FakeAdminApi(shop.domain).install(router)
    api.answer("LojalOrders", orders_page([order_node(6801, customer_id=75, created="2026-03-10T09:00:00Z")],
                                          next_cursor="cursor-1", requested=352, available=1500, restore=100))
    api.answer("LojalOrderLines", no_lines(6801, requested=200, available=52, restore=100))
    # The page arrives at t=100, its lines at t=100.5; applying the page takes until t=101.
    readings = iter([100.0, 100.5, 101.0])
    monkeypatch.setattr(sync, "time", SimpleNamespace(monotonic=lambda: next(readings)))

    paused = sync.reconcile_orders(session, shop.id, now=NOW)

    assert paused.status == "paused" and paused.run.cursor == "cursor-1" and paused.run.done == 1
    assert paused.wait_seconds == pytest.approx(3.0 - 0.5)  # (352 - 52) / 100 from the lines' bucket


def test_a_bucket_too_low_for_the_lines_pauses_before_the_page_is_applied(session, sync_shop, router, monkeypatch):
    shop = sync_shop(synced_at=SYNCED)
    api = FakeAdminApi(shop.domain).install(router)
    page = [order_node(6901, customer_id=76, subtotal="60.00", created="2026-03-10T09:00:00Z")]
    api.lines[6901] = [line_item("40.00"), line_item("20.00", gift_card=True)]
    api.answer("LojalOrders", orders_page(page, next_cursor=None, requested=352, available=100, restore=100))
    readings = iter([100.0, 100.0])
    monkeypatch.setattr(sync, "time", SimpleNamespace(monotonic=lambda: next(readings)))

    paused = sync.reconcile_orders(session, shop.id, now=NOW)

    # Resuming reads the page again, then its lines: wait until the bucket holds both.
    assert paused.status == "paused" and paused.run.cursor is None and paused.run.done == 0
    assert paused.wait_seconds == pytest.approx((352 + order_lines.LINES_QUERY_COST - 100) / 100)
    assert api.operations() == ["LojalOrders"] and orders_by_id(session, shop) == {}
    monkeypatch.undo()
    api.answer("LojalOrders", orders_page(page, next_cursor=None))
    assert sync.reconcile_orders(session, shop.id, now=NOW, run=paused.run).status == "done"
    assert orders_by_id(session, shop)["6901"].eligible_amount == Decimal("40.00")


def test_a_failed_lines_query_applies_nothing_of_its_page_and_the_page_is_read_again(session, sync_shop, router):
    shop = sync_shop(synced_at=SYNCED)
    api = FakeAdminApi(shop.domain).install(router)
    page = [order_node(7001, customer_id=77, subtotal="60.00", created="2026-03-10T09:00:00Z"),
            order_node(7002, customer_id=77, subtotal="10.00", created="2026-03-10T09:10:00Z")]
    api.lines[7001] = [line_item("40.00"), line_item("20.00", gift_card=True)]
    api.answer("LojalOrders", orders_page(page, next_cursor=None), orders_page(page, next_cursor=None))
    api.answer("LojalOrderLines", throttled(requested=120, available=20))
    run = sync.start_reconcile(session.get(Shop, shop.id), NOW)

    with pytest.raises(TransientPlatformError) as caught:
        sync.sync_orders(session, session.get(Shop, shop.id), run)

    assert caught.value.retry_after == pytest.approx(1.0)
    assert run.cursor is None and run.done == 0 and orders_by_id(session, shop) == {}
    assert sync.sync_orders(session, session.get(Shop, shop.id), run).status == "done"
    orders = orders_by_id(session, shop)
    assert (orders["7001"].eligible_amount, orders["7002"].eligible_amount) == (Decimal("40.00"), Decimal("10.00"))


def test_an_order_paid_by_webhook_but_not_yet_earned_keeps_its_gift_cards_off_when_reconciled(
        session, sync_shop, router):
    # With award_on = fulfilled a paid order's amounts are not frozen until it earns: the reconciliation's
    # snapshot replaces them, so it must carry the gift cards too.
    shop = sync_shop(award_on="fulfilled", synced_at=SYNCED)
    for event in parse_event(shop, "orders/paid", _sample_with_gift_cards(), {}):
        apply_event(session, shop.id, event)
    session.commit()
    api = FakeAdminApi(shop.domain).install(router)
    node, api.lines[5840000000001] = _the_same_order_in_graphql(5840000000001)
    # Updated after the webhook's payload (or the sync's snapshot would be the older, and ignored).
    node.update(displayFulfillmentStatus="FULFILLED", fulfillments=[{"createdAt": "2026-07-15T10:00:00Z"}],
                updatedAt="2026-07-15T10:00:00Z")
    api.answer("LojalOrders", orders_page([node], next_cursor=None))

    sync.reconcile_orders(session, shop.id, now=NOW + timedelta(hours=1))

    order = orders_by_id(session, shop)["5840000000001"]
    assert order.points_status == "awarded" and order.eligible_amount == Decimal("129.99")
