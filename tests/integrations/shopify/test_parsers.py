"""Shopify payloads become the domain's events: shop money, consent, referral attribute, compliance."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.loyalty.events import (
    AppUninstalled, CustomerDataRequest, CustomerRedact, CustomerUpserted, OrderCancelled, OrderFulfilled,
    OrderPaid, OrderRefunded, ShopRedact,
)
from app.loyalty.orders import eligible_amount
from app.models import Shop
from integrations.base import MalformedPayload, UnknownTopic
from integrations.registry import adapter_for
from integrations.shopify.parsers import PARSERS, OrderEditNotice, parse_event
from tests.integrations.shopify.samples import sample

TRIGGERED = {"X-Shopify-Triggered-At": "2026-07-14T14:02:15.123456789Z"}
TRIGGERED_AT = datetime(2026, 7, 14, 14, 2, 15, 123456, tzinfo=UTC)


def _shop(**settings) -> Shop:
    return Shop(platform="shopify", domain="lojal-test.myshopify.com", name="Lojal Test", currency="USD",
                settings=settings)


def _parse(topic, payload, headers=TRIGGERED, **settings):
    return parse_event(_shop(**settings), topic, payload, headers)


def test_every_topic_has_an_explicit_parser():
    assert set(PARSERS) == {
        "orders/paid", "orders/create", "orders/fulfilled", "orders/cancelled", "orders/edited", "refunds/create",
        "customers/create", "customers/update", "app/uninstalled",
        "customers/data_request", "customers/redact", "shop/redact",
    }


def test_the_registry_routes_shopify_to_these_parsers():
    [event] = adapter_for("shopify").parse_event(_shop(), "orders/paid", sample("order_paid"), TRIGGERED)
    assert isinstance(event, OrderPaid)


def test_paid_order_uses_shop_money_not_the_presentment_currency():
    [event] = _parse("orders/paid", sample("order_paid"))
    order = event.order
    assert (order.subtotal, order.total, order.total_tax, order.total_shipping) == (
        Decimal("129.99"), Decimal("144.99"), Decimal("10.00"), Decimal("5.00"))
    assert order.currency == "USD"
    assert order.platform_order_id == "5840000000001" and order.order_number == "#1042"
    assert order.updated_at == datetime(2026, 7, 14, 14, 2, 14, tzinfo=UTC)
    assert order.placed_at == datetime(2026, 7, 14, 14, 2, 10, tzinfo=UTC)
    assert event.occurred_at == TRIGGERED_AT
    assert order.is_test is False


def test_shop_money_wins_over_the_plain_field_and_the_plain_field_is_the_fallback():
    payload = sample("order_paid", total_price="999.00")
    assert _parse("orders/paid", payload)[0].order.total == Decimal("144.99")
    del payload["total_price_set"]
    assert _parse("orders/paid", payload)[0].order.total == Decimal("999.00")


def _money_set(amount: str) -> dict:
    return {"shop_money": {"amount": amount, "currency_code": "USD"}, "presentment_money": {"amount": amount, "currency_code": "USD"}}


def test_a_tax_inclusive_order_s_subtotal_earns_without_its_tax():
    # With "prices include tax" Shopify's subtotal_price (and shipping) include the tax; the
    # `subtotal` earn basis is "after discounts, without shipping and tax" (README).
    payload = sample(
        "order_paid", taxes_included=True,
        subtotal_price="120.00", subtotal_price_set=_money_set("120.00"),
        total_price="126.00", total_price_set=_money_set("126.00"),
        total_tax="21.00", total_tax_set=_money_set("21.00"),
        total_shipping_price_set=_money_set("6.00"),
        shipping_lines=[{"id": 1, "title": "Standard", "price": "6.00", "price_set": _money_set("6.00"),
                         "tax_lines": [{"price": "1.00", "rate": 0.2, "title": "VAT", "price_set": _money_set("1.00")}]}],
    )
    order = _parse("orders/paid", payload)[0].order
    assert order.subtotal == Decimal("100.00")  # 120.00 less the 20.00 VAT on the goods
    assert (order.total, order.total_tax, order.total_shipping) == (Decimal("126.00"), Decimal("21.00"), Decimal("6.00"))


def test_a_free_shipping_discount_is_not_taken_off_the_total_as_shipping_paid():
    # total_shipping_price_set is the shipping *before* discounts; the shopper paid none of it
    # here, so total_excl_shipping must not drop 10.00 of goods they did pay for.
    payload = sample(
        "order_paid", subtotal_price="100.00", subtotal_price_set=_money_set("100.00"),
        total_price="100.00", total_price_set=_money_set("100.00"), total_tax="0.00", total_tax_set=_money_set("0.00"),
        total_shipping_price_set=_money_set("10.00"),
        shipping_lines=[{"id": 1, "title": "Standard", "price": "10.00", "price_set": _money_set("10.00"),
                         "discounted_price": "10.00", "discounted_price_set": _money_set("10.00"), "tax_lines": [],
                         "discount_allocations": [{"amount": "10.00", "amount_set": _money_set("10.00"),
                                                   "discount_application_index": 1}]}],
    )
    order = _parse("orders/paid", payload)[0].order
    assert order.total_shipping == Decimal("0.00")
    assert eligible_amount(order, "total_excl_shipping") == Decimal("100.00")


def test_a_gift_card_bought_in_the_order_earns_nothing_on_any_basis():
    # A gift card earns when it is spent on a later order; earning on its purchase too would pay twice.
    payload = sample("order_paid")
    payload["line_items"].append({
        "id": 14800000000009, "gift_card": True, "name": "Gift Card - $50", "quantity": 2, "price": "25.00",
        "price_set": _money_set("25.00"), "taxable": False, "tax_lines": [], "total_discount": "0.00",
        "discount_allocations": [{"amount": "5.00", "amount_set": _money_set("5.00"), "discount_application_index": 0}],
    })
    payload.update(subtotal_price="174.99", subtotal_price_set=_money_set("174.99"),
                   total_price="189.99", total_price_set=_money_set("189.99"))
    order = _parse("orders/paid", payload)[0].order
    assert order.total == Decimal("189.99")  # still what the shopper paid (refund shares are of it)
    assert order.gift_cards == Decimal("45.00")  # 2 x 25.00 less its 5.00 discount
    assert eligible_amount(order, "subtotal") == Decimal("129.99")
    assert eligible_amount(order, "total") == Decimal("144.99")


def test_a_tip_is_not_a_purchase_and_earns_on_no_basis():
    # total_price includes the tip (total_tip_received, shop currency).
    payload = sample("order_paid", total_price="164.99", total_price_set=_money_set("164.99"), total_tip_received="20.00")
    order = _parse("orders/paid", payload)[0].order
    assert (order.total, order.tips) == (Decimal("164.99"), Decimal("20.00"))
    assert eligible_amount(order, "total") == Decimal("144.99")
    assert eligible_amount(order, "total_excl_tax") == Decimal("134.99")
    assert eligible_amount(order, "subtotal") == Decimal("129.99")  # the subtotal never held it


def test_import_duties_are_left_out_with_the_tax_on_total_excl_tax():
    # A Markets order with duties collected at checkout (DDP): total_price includes them; they
    # are a levy like the tax, not a purchase.
    payload = sample("order_paid", total_price="174.99", total_price_set=_money_set("174.99"),
                     original_total_duties_set=_money_set("30.00"), current_total_duties_set=_money_set("30.00"))
    order = _parse("orders/paid", payload)[0].order
    assert order.total == Decimal("174.99")
    assert eligible_amount(order, "total_excl_tax") == Decimal("134.99")  # less 10.00 tax and 30.00 duties
    assert _parse("orders/paid", sample("order_paid", original_total_duties_set=None))[0].order.total_tax == Decimal("10.00")


def test_order_customer_carries_consent_and_update_time():
    customer = _parse("orders/paid", sample("order_paid"))[0].order.customer
    assert customer.platform_customer_id == "7390000000001"
    assert (customer.email, customer.first_name, customer.last_name, customer.phone) == (
        "ana.silva@example.com", "Ana", "Silva", "+351912345678")
    assert customer.accepts_marketing is True
    assert customer.updated_at == datetime(2026, 7, 14, 14, 2, 12, tzinfo=UTC)


def test_referral_code_comes_from_the_lojal_ref_note_attribute():
    assert _parse("orders/paid", sample("order_paid"))[0].order.referral_code == "ABCDEFGH2345"
    assert _parse("orders/paid", sample("order_paid", note_attributes=[]))[0].order.referral_code is None
    junk = sample("order_paid", note_attributes=[{"name": "lojal_ref", "value": "<script>alert(1)</script>"}])
    assert _parse("orders/paid", junk)[0].order.referral_code is None


def test_event_time_falls_back_to_the_payload_without_the_trigger_header():
    [event] = _parse("orders/paid", sample("order_paid"), headers={})
    assert event.occurred_at == datetime(2026, 7, 14, 14, 2, 14, tzinfo=UTC)


def test_guest_order_has_no_customer_but_keeps_the_email():
    order = _parse("orders/paid", sample("order_guest"))[0].order
    assert order.customer is None and order.email == "Guest.Buyer@Example.com"
    assert order.total_shipping == Decimal("6.00")


def test_test_orders_are_flagged_for_the_domain_to_decide():
    assert _parse("orders/paid", sample("order_test"))[0].order.is_test is True


def test_orders_create_counts_only_when_the_shop_chose_it_and_the_order_is_paid():
    paid_at_creation = sample("order_paid")
    assert _parse("orders/create", paid_at_creation) == []  # default: orders/paid is the sale
    [event] = _parse("orders/create", paid_at_creation, shopify_order_topic="orders/create")
    assert isinstance(event, OrderPaid)
    pending = sample("order_paid", financial_status="pending")
    assert _parse("orders/create", pending, shopify_order_topic="orders/create") == []
    # ...and then orders/paid is the ignored one, so the sale is not counted twice.
    assert _parse("orders/paid", paid_at_creation, shopify_order_topic="orders/create") == []


def test_fulfilled_and_cancelled_orders():
    [fulfilled] = _parse("orders/fulfilled", sample("order_paid", fulfillment_status="fulfilled"))
    assert isinstance(fulfilled, OrderFulfilled) and fulfilled.order.platform_order_id == "5840000000001"
    cancelled = sample("order_paid", cancelled_at="2026-07-15T09:00:00-04:00", cancel_reason="customer")
    [event] = _parse("orders/cancelled", cancelled)
    assert isinstance(event, OrderCancelled)
    assert event.platform_order_id == "5840000000001"
    assert event.occurred_at == datetime(2026, 7, 15, 13, 0, tzinfo=UTC)
    assert event.order.total == Decimal("144.99")


def test_an_order_body_that_was_never_cancelled_is_no_cancellation():
    # The HMAC covers the body, not the topic: a signed orders/paid body replayed under
    # orders/cancelled (with a fresh event id) must not take the shopper's points back.
    with pytest.raises(MalformedPayload, match="cancelled_at"):
        _parse("orders/cancelled", sample("order_paid"))


def test_an_order_time_outside_any_stores_lifetime_is_malformed():
    # Year 1 at +05:00 is a time PostgreSQL stores but psycopg cannot read back: the customer's
    # later orders would then fail on it.
    for stamp in ("0001-01-01T00:00:00+05:00", "1900-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00"):
        with pytest.raises(MalformedPayload, match="outside"):
            _parse("orders/paid", {**sample("order_paid"), "processed_at": stamp, "created_at": stamp})


def test_an_order_body_under_a_customer_topic_is_no_customer():
    # Replayed (the HMAC does not cover the topic): the order's id and email would make a customer
    # that claims every guest order of that email.
    for topic in ("customers/create", "customers/update"):
        with pytest.raises(MalformedPayload, match="order"):
            _parse(topic, sample("order_guest"))


def test_an_order_body_that_is_not_fulfilled_is_no_fulfilment():
    # A signed orders/paid body replayed under orders/fulfilled would award a shop that awards on
    # fulfilment before anything shipped.
    with pytest.raises(MalformedPayload, match="fulfillment_status"):
        _parse("orders/fulfilled", sample("order_paid", fulfillment_status=None))


def test_an_order_edit_names_the_order_and_the_edit_and_carries_no_amounts():
    # The payload is the edit (line item ids and quantity deltas), not the order: the adapter
    # reads the order's state after it through the Admin API (tests/app/web/test_shopify_order_edits.py).
    [notice] = _parse("orders/edited", sample("order_edited"))
    assert notice == OrderEditNotice(platform_order_id="5840000000001", edit_id="7710000000001",
                                     occurred_at=datetime(2026, 7, 16, 13, 31, 40, tzinfo=UTC))
    # Before 2024-07 there is no committed_at: the trigger time, else the edit's creation.
    edit = sample("order_edited")["order_edit"]
    del edit["committed_at"]
    [notice] = _parse("orders/edited", {"order_edit": edit})
    assert notice.occurred_at == TRIGGERED_AT
    [notice] = _parse("orders/edited", {"order_edit": edit}, headers={})
    assert notice.occurred_at == datetime(2026, 7, 16, 13, 30, 2, tzinfo=UTC)


def test_an_order_edit_without_its_order_or_edit_id_is_malformed():
    for field in ("order_id", "id"):
        edit = sample("order_edited")["order_edit"]
        del edit[field]
        with pytest.raises(MalformedPayload):
            _parse("orders/edited", {"order_edit": edit})
    with pytest.raises(MalformedPayload):
        _parse("orders/edited", sample("order_paid"))  # an order body replayed under this topic


def test_wrong_typed_text_and_ids_no_platform_uses_are_malformed_not_left_for_the_database():
    customer = sample("order_paid")["customer"]
    garbled = [
        sample("order_paid", email=True), sample("order_paid", currency={"code": "USD"}),
        sample("order_paid", currency="DOLLARS"), sample("order_paid", id="9" * 65),
        sample("order_paid", customer={**customer, "first_name": ["Ana"]}),
        sample("order_paid", customer={**customer, "id": "7" * 65}),
    ]
    for payload in garbled:
        with pytest.raises(MalformedPayload):
            _parse("orders/paid", payload)
    with pytest.raises(MalformedPayload):
        _parse("customers/update", sample("customer_update", phone=15551234567))
    with pytest.raises(MalformedPayload):
        _parse("refunds/create", sample("refund", id="1" * 65))


def test_text_too_long_to_keep_is_left_out_of_the_customer():
    [event] = _parse("customers/update", sample("customer_update", first_name="A" * 256, email="a" * 310 + "@example.com"))
    assert (event.customer.first_name, event.customer.email) == (None, None)


def test_refund_sums_successful_refund_transactions_in_shop_money():
    [event] = _parse("refunds/create", sample("refund"))
    assert event == OrderRefunded("5840000000001", "9600000000001", Decimal("30.00"), TRIGGERED_AT)


def test_refund_without_a_money_set_uses_the_amount_when_it_is_in_shop_currency():
    refund = sample("refund")
    for transaction in refund["transactions"]:
        del transaction["amount_set"]
        transaction.update(currency="USD", amount="12.50")
    refund["transactions"].append({"kind": "refund", "status": "success", "amount": "7.50", "currency": "USD"})
    refund["transactions"].append({"kind": "sale", "status": "success", "amount": "100.00", "currency": "USD"})
    assert _parse("refunds/create", refund)[0].amount == Decimal("20.00")


def test_a_presentment_currency_refund_is_converted_at_the_refunds_own_rate():
    # Shopify's refund transactions carry only `amount` + `currency` (the shopper's): a Markets
    # order refunded in EUR in a USD shop. Its line items say what 27.60 EUR is in shop money.
    refund = sample("refund")
    for transaction in refund["transactions"]:
        del transaction["amount_set"]
    [event] = _parse("refunds/create", refund)
    assert event.amount == Decimal("30.00")  # 25.09 + 2.51 EUR = 27.27 + 2.73 USD
    # A shipping refund or a discrepancy (order adjustments, shop and presentment) gives the rate too.
    refund["refund_line_items"] = []
    refund["order_adjustments"] = [{"id": 1, "kind": "refund_discrepancy", "amount": "-13.80", "tax_amount": "0.00",
                                    "amount_set": {"shop_money": {"amount": "-15.00", "currency_code": "USD"},
                                                   "presentment_money": {"amount": "-13.80", "currency_code": "EUR"}},
                                    "tax_amount_set": {"shop_money": {"amount": "0.00", "currency_code": "USD"},
                                                       "presentment_money": {"amount": "0.00", "currency_code": "EUR"}}}]
    refund["transactions"][0]["amount"] = "13.80"
    assert _parse("refunds/create", refund)[0].amount == Decimal("15.00")


def test_refund_in_a_foreign_currency_with_nothing_to_convert_it_by_is_refused_not_guessed():
    refund = sample("refund", refund_line_items=[], order_adjustments=[])
    del refund["transactions"][0]["amount_set"]
    with pytest.raises(MalformedPayload, match="EUR"):
        _parse("refunds/create", refund)


def test_refund_that_moved_no_money_yields_nothing():
    refund = sample("refund")
    refund["transactions"] = [t for t in refund["transactions"] if t["status"] != "success"]
    assert _parse("refunds/create", refund) == []


def test_customer_create_and_update():
    [created] = _parse("customers/create", sample("customer_create"), headers={})
    assert isinstance(created, CustomerUpserted) and created.account_created is True
    assert created.customer.accepts_marketing is False  # "not_subscribed"
    assert created.occurred_at == datetime(2026, 5, 2, 13, 0, tzinfo=UTC)
    [updated] = _parse("customers/update", sample("customer_update"))
    assert updated.account_created is False
    assert updated.customer.accepts_marketing is True
    assert updated.customer.email == "ana.m.silva@example.com" and updated.customer.first_name == "Ana Maria"
    assert updated.customer.updated_at == datetime(2026, 7, 1, 15, 30, tzinfo=UTC)


def test_a_guest_checkout_customer_record_is_not_a_new_account():
    [guest] = _parse("customers/create", sample("customer_create", state="disabled"), headers={})
    assert guest.account_created is False  # no signup bonus for a record Shopify made at checkout


def test_the_removed_accepts_marketing_field_is_not_read():
    payload = sample("customer_update", accepts_marketing=True)
    del payload["email_marketing_consent"]
    assert _parse("customers/update", payload)[0].customer.accepts_marketing is None


def test_app_uninstalled():
    assert _parse("app/uninstalled", sample("app_uninstalled")) == [AppUninstalled(TRIGGERED_AT)]


@pytest.mark.parametrize("payload", [
    sample("app_uninstalled", myshopify_domain="other-shop.myshopify.com"),
    sample("order_paid"),  # any other signed body replayed under app/uninstalled names no shop
])
def test_an_uninstall_payload_that_is_not_this_shops_is_refused(payload):
    # The HMAC covers the body, not the topic or shop headers; an uninstall drops the tokens.
    with pytest.raises(MalformedPayload, match="not this shop"):
        _parse("app/uninstalled", payload)


def test_compliance_topics():
    [request] = _parse("customers/data_request", sample("customers_data_request"))
    assert request == CustomerDataRequest("7390000000001", "ana.silva@example.com", "9999", TRIGGERED_AT,
                                          ("5840000000001", "5840000000002"))
    [redact] = _parse("customers/redact", sample("customers_redact"))
    assert redact == CustomerRedact("7390000000001", "ana.silva@example.com", TRIGGERED_AT, "+351912345678",
                                    ("5840000000001",))
    assert _parse("shop/redact", sample("shop_redact")) == [ShopRedact(TRIGGERED_AT)]


def test_a_compliance_payload_naming_another_shop_is_refused():
    with pytest.raises(MalformedPayload, match="other-shop"):
        _parse("shop/redact", sample("shop_redact", shop_domain="other-shop.myshopify.com"))


@pytest.mark.parametrize("topic,name", [("shop/redact", "shop_redact"), ("customers/redact", "customers_redact"),
                                        ("customers/data_request", "customers_data_request")])
def test_a_compliance_payload_that_names_no_shop_is_refused(topic, name):
    # e.g. a signed app/uninstalled body (no shop_domain) replayed under a compliance topic
    payload = sample(name)
    payload.pop("shop_domain", None)
    with pytest.raises(MalformedPayload, match="not this shop"):
        _parse(topic, payload)


def test_unknown_topic_and_malformed_payloads_are_permanent_errors():
    with pytest.raises(UnknownTopic):
        _parse("products/update", {"id": 1})
    with pytest.raises(MalformedPayload):
        _parse("orders/paid", sample("order_paid", subtotal_price_set=None, subtotal_price="lots"))
    with pytest.raises(MalformedPayload):
        _parse("orders/paid", {k: v for k, v in sample("order_paid").items() if k != "id"})
    with pytest.raises(MalformedPayload):
        _parse("customers/update", sample("customer_update", id=None))
    with pytest.raises(MalformedPayload):
        _parse("customers/data_request", sample("customers_data_request", data_request={}))
    with pytest.raises(MalformedPayload):
        _parse("orders/paid", ["not", "an", "object"])


def _refund_line(line_item: dict, subtotal: str, tax: str = "0.00", presentment_rate: str = "0.92") -> dict:
    """A refund_line_items entry for `line_item`, in shop money and the shopper's EUR."""
    def money_set(amount: str) -> dict:
        presentment = (Decimal(amount) * Decimal(presentment_rate)).quantize(Decimal("0.01"))
        return {"shop_money": {"amount": amount, "currency_code": "USD"},
                "presentment_money": {"amount": str(presentment), "currency_code": "EUR"}}
    return {"id": 6100000000009, "line_item_id": line_item["id"], "quantity": line_item["quantity"],
            "restock_type": "no_restock", "subtotal": subtotal, "subtotal_set": money_set(subtotal),
            "total_tax": tax, "total_tax_set": money_set(tax), "line_item": line_item}


GIFT_CARD_LINE = {"id": 14800000000003, "name": "Gift Card - $50", "price": "50.00", "quantity": 1, "gift_card": True}
# A tip is a line item of its own; Shopify gives `tip_payment_gateway` (null or not) on tips only.
TIP_LINE = {"id": 14800000000004, "name": "Tip", "title": "Tip", "price": "5.00", "quantity": 1, "gift_card": False,
            "product_id": None, "tip_payment_gateway": None, "tip_payment_method": None}


def _with_transaction(refund: dict, shop_amount: str) -> dict:
    refund["transactions"][0]["amount_set"]["shop_money"]["amount"] = shop_amount
    return refund


def test_a_refund_of_gift_card_lines_says_that_part_earns_nothing():
    refund = _with_transaction(sample("refund"), "80.00")  # the tote (27.27 + 2.73 tax) and a 50 gift card
    refund["refund_line_items"].append(_refund_line(GIFT_CARD_LINE, "50.00"))
    [event] = _parse("refunds/create", refund)
    assert (event.amount, event.non_earning) == (Decimal("80.00"), Decimal("50.00"))


def test_a_refund_of_ordinary_lines_has_no_non_earning_part():
    [event] = _parse("refunds/create", sample("refund"))  # the tote: no `gift_card`, no tip field
    assert event.non_earning == 0
    refund = sample("refund")
    refund["refund_line_items"][0]["line_item"]["gift_card"] = False
    assert _parse("refunds/create", refund)[0].non_earning == 0


def test_a_refunded_tip_line_earns_nothing_either():
    refund = _with_transaction(sample("refund"), "35.00")
    refund["refund_line_items"].append(_refund_line(TIP_LINE, "5.00"))
    [event] = _parse("refunds/create", refund)
    assert (event.amount, event.non_earning) == (Decimal("35.00"), Decimal("5.00"))


def test_the_non_earning_part_is_at_most_the_money_refunded():
    # A gift card refunded for less than its lines (the merchant kept part of it).
    refund = _with_transaction(sample("refund", refund_line_items=[_refund_line(GIFT_CARD_LINE, "50.00")]), "20.00")
    [event] = _parse("refunds/create", refund)
    assert (event.amount, event.non_earning) == (Decimal("20.00"), Decimal("20.00"))


def test_a_presentment_currency_gift_card_refund_is_in_shop_money_throughout():
    refund = sample("refund")
    refund["refund_line_items"].append(_refund_line(GIFT_CARD_LINE, "50.00"))  # 46.00 EUR
    del refund["transactions"][0]["amount_set"]
    refund["transactions"][0]["amount"] = "73.60"  # 25.09 + 2.51 + 46.00 EUR
    [event] = _parse("refunds/create", refund)
    assert (event.amount, event.non_earning) == (Decimal("80.00"), Decimal("50.00"))


def test_a_gift_card_refund_line_without_its_amount_is_refused_not_guessed():
    line = _refund_line(GIFT_CARD_LINE, "50.00")
    del line["subtotal"], line["subtotal_set"]
    refund = _with_transaction(sample("refund", refund_line_items=[line]), "50.00")
    with pytest.raises(MalformedPayload, match="subtotal"):
        _parse("refunds/create", refund)


def test_an_amount_past_what_the_money_columns_hold_is_malformed():
    for payload in (sample("order_paid", total_price_set={"shop_money": {"amount": "1" + "0" * 14}}),
                    sample("order_paid", subtotal_price_set={"shop_money": {"amount": "-1" + "0" * 20}})):
        with pytest.raises(MalformedPayload, match="out of range"):
            _parse("orders/paid", payload)
    _parse("orders/paid", sample("order_paid", total_price_set={"shop_money": {"amount": "99999999999999.9999"}}))


def test_an_order_created_before_the_install_is_history_on_its_webhooks_too():
    installed = Shop(platform="shopify", domain="lojal-test.myshopify.com", name="Lojal Test", currency="USD",
                     settings={}, installed_at=datetime(2026, 8, 1, tzinfo=UTC))  # after the sample's July order
    [paid] = parse_event(installed, "orders/paid", sample("order_paid"), TRIGGERED)
    assert paid.historical is True  # as the backfill and the reconciliation read it
    # A fulfilment alone would make it a live sale: it is recorded as history first...
    fulfilled = parse_event(installed, "orders/fulfilled", sample("order_paid", fulfillment_status="fulfilled"),
                            TRIGGERED)
    assert [type(e) for e in fulfilled] == [OrderPaid, OrderFulfilled] and fulfilled[0].historical is True
    # ...and an unpaid one yields nothing, as in the sync.
    unpaid = sample("order_paid", fulfillment_status="fulfilled", financial_status="pending")
    assert parse_event(installed, "orders/fulfilled", unpaid, TRIGGERED) == []
    [live] = _parse("orders/paid", sample("order_paid"))  # no install time: nothing is history
    assert live.historical is False
