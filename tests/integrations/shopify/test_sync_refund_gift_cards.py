"""Refunds that first reach us through the GraphQL sync: their gift-card lines, read apart (the
orders page carries only a refund's transactions), take no points back, as refunds/create's do."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from app.loyalty.apply import apply_event
from app.models import Customer, Order, OrderRefund
from integrations.shopify import order_lines, sync
from tests.factories import customer_info, paid, refunded
from tests.integrations.shopify.admin_api import (
    line_item, make_shopify_shop, ok, order_node, orders_page, refund_line, refund_node,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
INSTALLED = datetime(2026, 1, 1, tzinfo=UTC)
SYNCED = datetime(2026, 3, 9, 12, tzinfo=UTC)
PLACED = "2026-03-10T09:00:00Z"


@pytest.fixture
def shop(session):
    shop = make_shopify_shop(session)
    shop.installed_at = INSTALLED
    shop.orders_synced_at = SYNCED
    session.commit()
    return shop


def _order(session, shop, order_id):
    session.expire_all()
    return session.query(Order).filter_by(shop_id=shop.id, platform_order_id=str(order_id)).one()


def _balance(session, shop, customer_id):
    session.expire_all()
    customer = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id=str(customer_id)).one()
    return customer.points_balance


def _refund_lines_calls(api):
    return api.variables("LojalRefundLines")


def _shirt_and_gift_card(order_id, *refunds):
    """A 100.00 shirt and a 50.00 gift card (total 150.00, 50.00 of it earning nothing): 100 points."""
    return order_node(order_id, customer_id=81, subtotal="150.00", created=PLACED, status="PARTIALLY_REFUNDED",
                      refunds=list(refunds))


@pytest.mark.parametrize("amount, lines, points_left", [
    ("50.00", [refund_line("50.00", gift_card=True)], 100),                              # the gift card only
    ("100.00", [refund_line("100.00")], 0),                                              # the shirt only
    ("150.00", [refund_line("100.00"), refund_line("50.00", gift_card=True)], 0),        # both
])
def test_a_refund_first_seen_by_the_reconciliation_takes_back_only_what_earned(session, shop, api, amount, lines,
                                                                               points_left):
    api.lines[7101] = [line_item("100.00"), line_item("50.00", gift_card=True)]
    api.refund_lines[9501] = lines
    refund = refund_node(9501, amount, "2026-03-10T10:00:00Z")
    api.answer("LojalOrders", orders_page([_shirt_and_gift_card(7101, refund)], next_cursor=None))

    assert sync.reconcile_orders(session, shop.id, now=NOW).status == "done"

    order = _order(session, shop, 7101)
    assert order.points_earned == 100 and order.non_earning_amount == Decimal("50.00")
    assert _balance(session, shop, 81) == points_left
    assert _refund_lines_calls(api) == [{"ids": ["gid://shopify/Refund/9501"], "first": order_lines.LINES_PER_REFUND,
                                         "after": None}]


def test_a_gift_card_refund_of_an_order_earned_by_webhook_takes_nothing_back_when_only_reconciled(session, shop, api):
    apply_event(session, shop.id, paid(7201, customer=customer_info(platform_customer_id="81"), subtotal="150.00",
                                       gift_cards=Decimal("50.00"), placed_at=datetime(2026, 3, 10, 9, tzinfo=UTC)))
    session.commit()
    api.refund_lines[9502] = [refund_line("45.00", "5.00", gift_card=True)]  # with its tax, as refunds/create counts it
    refund = refund_node(9502, "50.00", "2026-03-10T10:00:00Z")
    api.answer("LojalOrders", orders_page([_shirt_and_gift_card(7201, refund)], next_cursor=None))

    sync.reconcile_orders(session, shop.id, now=NOW)

    order = _order(session, shop, 7201)
    assert (order.refunded_amount, order.refunded_non_earning, order.points_reversed) == (
        Decimal("50.00"), Decimal("50.00"), 0)
    assert _balance(session, shop, 81) == 100
    assert api.operations() == ["LojalOrders", "LojalRefundLines"]  # a settled order's own lines are not read again


def test_a_refund_its_webhook_already_delivered_sends_no_refund_lines_query(session, shop, api):
    apply_event(session, shop.id, paid(7301, customer=customer_info(platform_customer_id="81"), subtotal="150.00",
                                       gift_cards=Decimal("50.00"), placed_at=datetime(2026, 3, 10, 9, tzinfo=UTC)))
    apply_event(session, shop.id, refunded(7301, 9503, "50.00", non_earning="50.00"))
    session.commit()
    refund = refund_node(9503, "50.00", "2026-03-10T10:00:00Z")
    api.answer("LojalOrders", orders_page([_shirt_and_gift_card(7301, refund)], next_cursor=None))

    sync.reconcile_orders(session, shop.id, now=NOW)

    assert api.operations() == ["LojalOrders"]
    assert _balance(session, shop, 81) == 100


def test_refunds_of_orders_without_gift_cards_send_no_refund_lines_query(session, shop, api):
    apply_event(session, shop.id, paid(7401, customer=customer_info(platform_customer_id="82"), subtotal="90.00",
                                       placed_at=datetime(2026, 3, 10, 9, tzinfo=UTC)))
    session.commit()
    api.answer("LojalOrders", orders_page([
        order_node(7401, customer_id=82, subtotal="90.00", created=PLACED,       # earned by webhook, no gift cards
                   refunds=[refund_node(9504, "30.00", "2026-03-10T10:00:00Z")]),
        order_node(7402, customer_id=82, subtotal="60.00", created=PLACED,       # first seen now, no gift cards
                   refunds=[refund_node(9505, "30.00", "2026-03-10T10:00:00Z")]),
    ], next_cursor=None))

    sync.reconcile_orders(session, shop.id, now=NOW)

    assert "LojalRefundLines" not in api.operations()
    assert _balance(session, shop, 82) == (90 - 30) + (60 - 30)


def test_the_refunds_of_a_cancelled_order_send_no_refund_lines_query(session, shop, api):
    apply_event(session, shop.id, paid(7801, customer=customer_info(platform_customer_id="81"), subtotal="150.00",
                                       gift_cards=Decimal("50.00"), placed_at=datetime(2026, 3, 10, 9, tzinfo=UTC)))
    session.commit()
    node = _shirt_and_gift_card(7801, refund_node(9801, "150.00", "2026-03-10T10:00:00Z"))
    node.update(cancelledAt="2026-03-10T10:00:00Z", displayFinancialStatus="REFUNDED")
    api.answer("LojalOrders", orders_page([node], next_cursor=None))

    sync.reconcile_orders(session, shop.id, now=NOW)

    assert api.operations() == ["LojalOrders"]
    assert _balance(session, shop, 81) == 0  # the cancellation took back everything


def test_a_refund_with_more_lines_than_a_page_of_them_is_read_to_its_last_line(session, shop, api):
    many = order_lines.LINES_PER_REFUND * 2 + 3
    api.lines[7501] = [line_item("100.00"), line_item("50.00", gift_card=True)]
    api.refund_lines[9506] = [refund_line("0.00") for _ in range(many - 1)] + [refund_line("50.00", gift_card=True)]
    refund = refund_node(9506, "50.00", "2026-03-10T10:00:00Z")
    api.answer("LojalOrders", orders_page([_shirt_and_gift_card(7501, refund)], next_cursor=None))

    sync.reconcile_orders(session, shop.id, now=NOW)

    assert _balance(session, shop, 81) == 100
    assert [call["after"] for call in _refund_lines_calls(api)] == [
        None, f"lines-{order_lines.LINES_PER_REFUND}", f"lines-{order_lines.LINES_PER_REFUND * 2}"]


def test_refund_lines_are_read_in_batches_under_the_single_query_cost_limit(session, shop, api):
    refunds = [refund_node(9600 + n, "5.00", f"2026-03-10T10:0{n}:00Z") for n in range(6)]
    api.lines[7601] = [line_item("100.00"), line_item("50.00", gift_card=True)]
    api.answer("LojalOrders", orders_page([_shirt_and_gift_card(7601, *refunds)], next_cursor=None))

    sync.reconcile_orders(session, shop.id, now=NOW)

    batches = [call["ids"] for call in _refund_lines_calls(api)]
    assert [gid for batch in batches for gid in batch] == [r["id"] for r in refunds]
    assert max(len(batch) for batch in batches) == order_lines.REFUNDS_PER_LINES_QUERY
    assert order_lines.REFUND_LINES_QUERY_COST <= 500  # Shopify refuses a single query over 1,000 points
    assert _balance(session, shop, 81) == 100 - 30  # no line marked: each 5.00 of what earned


def test_a_bucket_too_low_for_the_refund_lines_pauses_before_the_page_is_applied(session, shop, api, monkeypatch):
    page = [_shirt_and_gift_card(7701, refund_node(9701, "50.00", "2026-03-10T10:00:00Z"))]
    api.lines[7701] = [line_item("100.00"), line_item("50.00", gift_card=True)]
    api.refund_lines[9701] = [refund_line("50.00", gift_card=True)]
    api.answer("LojalOrders", orders_page(page, next_cursor=None, requested=352, available=1000, restore=100))
    # The order's lines query leaves the bucket too low for the refund's lines.
    api.answer("LojalOrderLines", ok({"nodes": [{"id": "gid://shopify/Order/7701", "lineItems": {
        "pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": api.lines[7701]}}]},
        requested=200, available=50, restore=100))
    monkeypatch.setattr(sync, "time", SimpleNamespace(monotonic=lambda: 100.0))

    paused = sync.reconcile_orders(session, shop.id, now=NOW)

    assert paused.status == "paused" and paused.run.done == 0
    assert paused.wait_seconds == pytest.approx((352 + order_lines.REFUND_LINES_QUERY_COST - 50) / 100)
    assert session.query(Order).filter_by(shop_id=shop.id).count() == 0
    api.answer("LojalOrders", orders_page(page, next_cursor=None))
    assert sync.reconcile_orders(session, shop.id, now=NOW, run=paused.run).status == "done"
    assert api.operations() == ["LojalOrders", "LojalOrderLines", "LojalOrders", "LojalRefundLines"]
    assert _balance(session, shop, 81) == 100
    assert session.query(OrderRefund).filter_by(shop_id=shop.id).one().non_earning == Decimal("50.00")
