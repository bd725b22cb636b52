"""Orders placed in another currency than the shop's (multi-currency plugins) earn on their amounts
converted with the rate the plugin left in the order's meta_data, or not at all."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from responses import matchers

from app.loyalty.events import OrderCancelled, OrderPaid, OrderRefunded, OrderRefundsListed, OrderRestored
from app.models import Customer, Order, Shop
from integrations.base import MalformedPayload
from integrations.woocommerce import parsers, sync
from tests.integrations.woocommerce.samples import order
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop, wc_order


def parse_event(*args) -> list:
    """The parser's events less the refund list every order payload ends with (tested on its own)."""
    return [event for event in parsers.parse_event(*args) if not isinstance(event, OrderRefundsListed)]


def usd_shop(**settings) -> Shop:
    return Shop(platform="woocommerce", domain="https://shop.example.com", name="shop", currency="USD",
                settings=settings)


def meta(**values) -> list[dict]:
    return [{"id": 9000 + n, "key": key, "value": value} for n, (key, value) in enumerate(values.items())]


def eur_order(status: str = "completed", *, meta_data: list | None = None, **fields) -> dict:
    # The sample: lines 90.00 after the coupon, tax 9.00, shipping 5.00, total 104.00, here in EUR.
    return order(status, currency="EUR", meta_data=meta_data or [], **fields)


def amounts(snapshot) -> tuple:
    return snapshot.currency, snapshot.subtotal, snapshot.total, snapshot.total_tax, snapshot.total_shipping


# WOOCS: `_woocs_order_rate` is the order currency per 1 unit of `_woocs_order_base_currency`.
WOOCS = meta(_woocs_order_rate="0.8", _woocs_order_base_currency="USD")
# WooPayments Multi-Currency: the same direction, with the store's default currency named.
WCPAY = meta(_wcpay_multi_currency_order_exchange_rate=1.25, _wcpay_multi_currency_order_default_currency="USD")
# CURCY (VillaTheme): every currency's rate against the main one (`is_main`), at checkout.
CURCY = meta(wmc_order_info={"USD": {"rate": "1", "is_main": 1, "decimals": "2"},
                             "EUR": {"rate": "0.8", "decimals": "2"}})
# Aelia: the order's amounts already in the base currency.
AELIA = meta(_order_total_base_currency="83.20")


@pytest.mark.parametrize("meta_data,expected", [
    (WOOCS, ("USD", Decimal("112.50"), Decimal("130.00"), Decimal("11.25"), Decimal("6.25"))),
    (WCPAY, ("USD", Decimal("72.00"), Decimal("83.20"), Decimal("7.20"), Decimal("4.00"))),
    (CURCY, ("USD", Decimal("112.50"), Decimal("130.00"), Decimal("11.25"), Decimal("6.25"))),
    (AELIA, ("USD", Decimal("72.00"), Decimal("83.20"), Decimal("7.20"), Decimal("4.00"))),
], ids=["woocs", "woopayments", "curcy", "aelia"])
def test_a_foreign_currency_order_earns_on_its_amounts_in_the_shops_currency(meta_data, expected):
    [restored, paid] = parse_event(usd_shop(), "order.updated", eur_order(meta_data=meta_data), {})
    assert isinstance(restored, OrderRestored) and isinstance(paid, OrderPaid)
    assert amounts(paid.order) == expected
    assert restored.order == paid.order


def test_its_refunds_are_converted_at_the_orders_rate():
    payload = eur_order(meta_data=WOOCS, refunds=[(801, "-20.00"), (802, "-4.50")])
    events = parse_event(usd_shop(), "order.updated", payload, {})
    refunds = [e for e in events if isinstance(e, OrderRefunded)]
    assert [(e.platform_refund_id, e.amount) for e in refunds] == [("801", Decimal("25.00")), ("802", Decimal("5.63"))]


def test_a_cancelled_foreign_order_carries_its_converted_amounts():
    [cancelled] = parse_event(usd_shop(), "order.updated", eur_order("cancelled", meta_data=WCPAY), {})
    assert isinstance(cancelled, OrderCancelled) and amounts(cancelled.order)[:3] == (
        "USD", Decimal("72.00"), Decimal("83.20"))


def test_an_order_in_the_shops_currency_is_never_converted():
    # WOOCS writes its rate on every order, 1 for the base currency; a stray rate changes nothing.
    payload = order("completed", meta_data=meta(_woocs_order_rate="0.8", _woocs_order_base_currency="USD"))
    [_, paid] = parse_event(usd_shop(), "order.updated", payload, {})
    assert amounts(paid.order) == ("USD", Decimal("90.00"), Decimal("104.00"), Decimal("9.00"), Decimal("5.00"))


@pytest.mark.parametrize("meta_data", [
    [],                                                                          # no plugin left a rate (WPML, ...)
    meta(_woocs_order_rate="0.8", _woocs_order_base_currency="GBP"),             # a rate to another currency
    meta(_wcpay_multi_currency_order_exchange_rate=0, _wcpay_multi_currency_order_default_currency="USD"),
    meta(_woocs_order_rate="fast", _woocs_order_base_currency="USD"),
    meta(_woocs_order_rate="Infinity", _woocs_order_base_currency="USD"),
    meta(wmc_order_info={"GBP": {"rate": "1", "is_main": 1}, "EUR": {"rate": "0.9"}}),  # main is not the shop's
    meta(wmc_order_info={"USD": {"rate": "1", "is_main": 1}}),                   # no rate for the order's currency
    meta(wmc_order_info="a:2:{...}"),
    meta(_order_total_base_currency="-5"),
], ids=["none", "other-base", "zero", "text", "infinite", "curcy-other-main", "curcy-missing", "curcy-garbled",
        "aelia-negative"])
def test_without_a_usable_rate_the_order_is_refused_not_earned_unconverted(meta_data):
    with pytest.raises(MalformedPayload, match=r"EUR.*USD.*exchange rate"):
        parse_event(usd_shop(), "order.updated", eur_order(meta_data=meta_data), {})


def test_an_aelia_order_with_a_zero_total_has_no_rate_to_read():
    payload = eur_order(meta_data=meta(_order_total_base_currency="0.00"), total="0.00")
    with pytest.raises(MalformedPayload, match="exchange rate"):
        parse_event(usd_shop(), "order.updated", payload, {})


def test_a_foreign_order_without_a_rate_is_still_cancelled_in_full():
    # Taking back needs no amount (cancelling reverses everything it earned), so an order that
    # earned before this rule existed still gives its points back.
    [cancelled] = parse_event(usd_shop(), "order.updated", eur_order("refunded", refunds=[(801, "-104.00")]), {})
    assert cancelled == OrderCancelled("727", datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC))


# --- through the order sync, against a stubbed store -------------------------------------------

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(session):
    shop = make_wc_shop(session)
    shop.currency = "USD"
    shop.installed_at = datetime(2026, 1, 1, tzinfo=UTC)
    shop.orders_synced_at = NOW - timedelta(hours=1)
    session.commit()
    return shop


def test_reconcile_earns_a_converted_order_and_skips_one_it_cannot_convert(session, shop, store, caplog):
    converted = {**wc_order(700, customer_id=21, total="80.00", created="2026-03-10T11:00:00"), "currency": "EUR",
                 "meta_data": meta(_woocs_order_rate="0.8", _woocs_order_base_currency="USD")}
    unknown = {**wc_order(701, customer_id=22, total="80.00", created="2026-03-10T11:10:00"), "currency": "EUR",
               "meta_data": []}
    trash = matchers.query_param_matcher({"page": "1", "status": "trash"}, strict_match=False)
    store.get(api_url(shop, "orders"), json=[], match=[trash])
    store.get(api_url(shop, "orders"), json=[converted, unknown], headers={"X-WP-Total": "2"},
              match=[matchers.query_param_matcher({"page": "1"}, strict_match=False)])

    run = sync.start_reconcile(session.get(Shop, shop.id), NOW)
    with caplog.at_level("WARNING"):
        assert sync.sync_orders(session, shop, run) == "done"

    session.expire_all()
    balances = {c.platform_customer_id: c.points_balance for c in session.query(Customer).filter_by(shop_id=shop.id)}
    assert balances == {"21": 100}  # EUR 80 at 0.8 EUR per USD = USD 100; order 701 earned nothing
    assert session.query(Order).filter_by(shop_id=shop.id, platform_order_id="700").one().currency == "USD"
    assert session.query(Order).filter_by(shop_id=shop.id, platform_order_id="701").count() == 0
    assert run.skipped == 1
    [skipped] = [r for r in caplog.records if r.getMessage() == "order sync skipped a malformed order"]
    assert skipped.platform_order_id == "701" and "exchange rate" in skipped.error
