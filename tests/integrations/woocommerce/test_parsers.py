"""WooCommerce payloads -> domain events: the status machine as events, amounts, guests, refunds."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.loyalty.events import (
    CustomerUpserted, OrderCancelled, OrderPaid, OrderRefunded, OrderRefundsListed, OrderRestored,
)
from app.models import Shop
from integrations.base import MalformedPayload, UnknownTopic
from integrations.registry import adapter_for
from integrations.woocommerce import parsers
from integrations.woocommerce.parsers import PARSERS
from tests.integrations.woocommerce.samples import customer, guest_order, order

MODIFIED = datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)


def parse_event(*args) -> list:
    """The parser's events less the refund list every order payload ends with (tested on its own)."""
    return [event for event in parsers.parse_event(*args) if not isinstance(event, OrderRefundsListed)]


def shop(**settings) -> Shop:
    return Shop(platform="woocommerce", domain="https://shop.example.com", name="shop", currency="USD",
                settings=settings)


def kinds(events) -> list[type]:
    return [type(event) for event in events]


def test_the_adapter_is_registered_with_an_explicit_topic_table():
    assert adapter_for("woocommerce").name == "woocommerce"
    assert set(PARSERS) == {"order.created", "order.updated", "order.restored", "order.deleted",
                            "customer.created", "customer.updated"}


def test_a_completed_order_earns_with_amounts_as_decimals():
    [restored, paid] = parse_event(shop(), "order.updated", order("completed"), {})
    assert isinstance(restored, OrderRestored) and restored.occurred_at == MODIFIED
    assert isinstance(paid, OrderPaid) and paid.occurred_at == MODIFIED
    snap = paid.order
    assert snap.platform_order_id == "727" and snap.order_number == "727" and snap.currency == "USD"
    assert snap.subtotal == Decimal("90.00")  # line totals: after the coupon, before tax
    assert (snap.total, snap.total_tax, snap.total_shipping) == (Decimal("104.00"), Decimal("9.00"), Decimal("5.00"))
    assert snap.updated_at == MODIFIED and snap.placed_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert snap.customer.platform_customer_id == "26" and snap.customer.email is None  # billing is the order's
    assert snap.email == "ada@example.com"


def test_a_discount_given_as_a_negative_fee_comes_off_the_subtotal():
    # Cart-level discounts from plugins (a payment-method discount, bulk rules) are negative fee
    # lines, not coupon lines: the line totals do not hold them. A positive fee (gift wrap) is no goods.
    fees = [{"id": 320, "name": "Bank transfer discount", "tax_status": "none", "total": "-9.00", "total_tax": "0.00"},
            {"id": 321, "name": "Gift wrap", "tax_status": "none", "total": "3.00", "total_tax": "0.00"}]
    [_, paid] = parse_event(shop(), "order.updated", order("completed", fee_lines=fees, total="98.00"), {})
    assert paid.order.subtotal == Decimal("81.00")
    assert paid.order.total == Decimal("98.00")


def test_processing_earns_only_when_the_shop_earns_on_processing():
    assert parse_event(shop(), "order.created", order("processing"), {}) == []
    events = parse_event(shop(woocommerce_earn_status="processing"), "order.created", order("processing"), {})
    assert kinds(events) == [OrderRestored, OrderPaid]
    events = parse_event(shop(woocommerce_earn_status="processing"), "order.updated", order("completed"), {})
    assert kinds(events) == [OrderRestored, OrderPaid]


@pytest.mark.parametrize("status", ["pending", "on-hold", "checkout-draft"])
def test_statuses_before_payment_earn_nothing(status):
    assert parse_event(shop(woocommerce_earn_status="processing"), "order.updated", order(status), {}) == []


@pytest.mark.parametrize("status", ["cancelled", "failed", "trash", "refunded"])
def test_reversing_statuses_cancel(status):
    [event] = parse_event(shop(), "order.updated", order(status), {})
    assert isinstance(event, OrderCancelled)
    assert event.platform_order_id == "727" and event.occurred_at == MODIFIED and event.order.total == Decimal("104.00")


def test_each_refund_is_one_positive_refund_event():
    payload = order("completed", refunds=[(801, "-20.00"), (802, "-4.50")])
    events = parse_event(shop(), "order.updated", payload, {})
    assert kinds(events) == [OrderRestored, OrderPaid, OrderRefunded, OrderRefunded]
    assert [(e.platform_refund_id, e.amount) for e in events[2:]] == [("801", Decimal("20.00")), ("802", Decimal("4.50"))]
    assert all(e.platform_order_id == "727" for e in events[2:])


def test_every_order_state_ends_with_the_whole_list_of_its_refunds():
    # A refund the merchant deleted is only seen missing from this list (no webhook says so).
    payload = order("completed", refunds=[(801, "-20.00"), (802, "-0.00")])
    events = parsers.parse_event(shop(), "order.updated", payload, {})
    assert kinds(events) == [OrderRestored, OrderPaid, OrderRefunded, OrderRefundsListed]
    assert events[-1] == OrderRefundsListed("727", ("801", "802"), MODIFIED)
    [listed] = parsers.parse_event(shop(), "order.updated", order("pending"), {})
    assert listed == OrderRefundsListed("727", (), MODIFIED)  # none left: every recorded one was deleted


def test_a_payload_without_a_refunds_field_lists_nothing():
    payload = order("pending")
    del payload["refunds"]
    assert parsers.parse_event(shop(), "order.updated", payload, {}) == []


def test_a_refund_on_an_order_not_yet_earning_is_still_reported():
    events = parse_event(shop(), "order.updated", order("processing", refunds=[(801, "-20.00")]), {})
    assert kinds(events) == [OrderRefunded]


def test_a_refunded_order_reverses_all_and_records_its_refunds():
    events = parse_event(shop(), "order.updated", order("refunded", refunds=[(801, "-104.00")]), {})
    assert kinds(events) == [OrderCancelled, OrderRefunded]


def test_a_guest_order_is_matched_by_billing_email():
    [_, paid] = parse_event(shop(), "order.created", guest_order("Guest@Example.com", status="completed"), {})
    assert paid.order.customer is None and paid.order.email == "Guest@Example.com"


def test_the_referral_code_comes_from_order_meta():
    payload = order("completed", meta_data=[{"id": 1, "key": "lojal_ref", "value": "ABCD2345EFGH"}])
    assert parse_event(shop(), "order.created", payload, {})[1].order.referral_code == "ABCD2345EFGH"
    noisy = order("completed", meta_data=[{"id": 1, "key": "lojal_ref", "value": "<script>"}])
    assert parse_event(shop(), "order.created", noisy, {})[1].order.referral_code is None


def test_order_deleted_carries_only_the_id_and_no_time_of_its_own():
    headers = {"X-Lojal-Received-At": "2026-03-05T08:00:00+00:00"}
    [event] = parse_event(shop(), "order.deleted", {"id": 727}, headers)
    # The receipt time dates its ledger entries; it does not order it against the order's states.
    assert event == OrderCancelled("727", datetime(2026, 3, 5, 8, 0, tzinfo=UTC), time_known=False)


def test_a_resource_body_under_order_deleted_is_no_deletion():
    # The signature covers the body, not the topic header: a signed order (or customer) body
    # replayed as order.deleted must not cancel the order with that id. WooCommerce sends only the id.
    for body in (order("completed"), customer()):
        with pytest.raises(MalformedPayload, match="only the id"):
            parse_event(shop(), "order.deleted", body, {})


def test_order_restored_reads_the_restored_state():
    assert kinds(parse_event(shop(), "order.restored", order("completed"), {})) == [OrderRestored, OrderPaid]
    assert parse_event(shop(), "order.restored", order("on-hold"), {}) == []


def test_customers():
    [created] = parse_event(shop(), "customer.created", customer(), {})
    assert isinstance(created, CustomerUpserted) and created.account_created
    assert created.customer.platform_customer_id == "26" and created.customer.email == "ada@example.com"
    assert created.customer.phone == "+44 20 7946 0000"
    assert created.occurred_at == datetime(2026, 2, 20, 8, 0, tzinfo=UTC)
    [updated] = parse_event(shop(), "customer.updated", customer(email="new@example.com"), {})
    assert not updated.account_created and updated.customer.email == "new@example.com"


@pytest.mark.parametrize("payload", [
    {"status": "completed"},                                   # no id
    order("completed", total="lots"),                           # not a number
    order("completed", total="NaN"),
    order("completed", date_modified_gmt=None, date_created_gmt=None),
    order("completed", refunds=[{"id": None, "total": "-1.00"}]),
    # A time no store's order has: stored, it could not be read back, and the customer's later
    # orders would fail with it.
    order("completed", date_created_gmt="0001-01-01T00:00:00", date_modified_gmt="0001-01-01T00:00:00"),
    order("completed", date_modified_gmt="9999-12-31T23:59:59"),
])
def test_malformed_payloads_are_permanent_errors(payload):
    with pytest.raises(MalformedPayload):
        parse_event(shop(), "order.updated", payload, {})


def test_unknown_topics_are_refused():
    with pytest.raises(UnknownTopic):
        parse_event(shop(), "product.updated", {"id": 1}, {})


def test_customer_text_fields_too_long_to_keep_are_left_out_and_non_text_is_malformed():
    long_phone = customer(billing={"phone": "0" * 65, "email": "ada@example.com"}, first_name="A" * 256)
    [event] = parse_event(shop(), "customer.updated", long_phone, {})
    assert (event.customer.phone, event.customer.first_name, event.customer.email) == (None, None, "ada@example.com")
    with pytest.raises(MalformedPayload):
        parse_event(shop(), "customer.updated", customer(first_name=["Ada"]), {})


def test_an_order_or_refund_id_longer_than_any_store_uses_is_malformed():
    for payload in (order("completed", id="7" * 65), order("completed", refunds=[("8" * 65, "-5.00")])):
        with pytest.raises(MalformedPayload):
            parse_event(shop(), "order.updated", payload, {})


def test_an_amount_past_what_the_money_columns_hold_is_malformed():
    for payload in (order("completed", total="1" + "0" * 14), order("completed", refunds=[(9, "-1" + "0" * 20)])):
        with pytest.raises(MalformedPayload, match="out of range"):
            parse_event(shop(), "order.updated", payload, {})


def test_an_order_number_too_long_to_keep_is_left_out():
    [_, paid] = parse_event(shop(), "order.updated", order("completed", number="N" * 65), {})
    assert paid.order.order_number is None


def test_an_order_body_under_a_customer_topic_is_no_customer():
    # Replayed (the signature does not cover the topic): the order's id and billing email would
    # make a customer that claims every guest order of that email.
    for topic in ("customer.created", "customer.updated"):
        with pytest.raises(MalformedPayload, match="order"):
            parse_event(shop(), topic, guest_order("ana@example.com", status="completed"), {})


def test_an_order_placed_before_the_connect_is_history_on_its_webhook_too():
    connected = Shop(platform="woocommerce", domain="https://shop.example.com", name="shop", currency="USD",
                     settings={}, installed_at=datetime(2026, 1, 1, tzinfo=UTC))
    old = order("completed", date_created_gmt="2024-06-01T10:00:00")
    [_, paid] = parse_event(connected, "order.updated", old, {})
    assert paid.historical is True  # as the backfill and the reconciliation read it
    [_, live] = parse_event(connected, "order.updated", order("completed", date_created_gmt="2026-02-01T10:00:00"), {})
    assert live.historical is False
    [_, unconnected] = parse_event(shop(), "order.updated", old, {})  # no connect time: nothing is history
    assert unconnected.historical is False
