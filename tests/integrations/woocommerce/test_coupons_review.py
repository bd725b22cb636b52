"""Review finding: the coupon's expiry must be sent in a field WooCommerce writes.

WooCommerce's coupons controller (wc/v3 inherits WC_REST_Coupons_V2_Controller's
prepare_object_for_database) sets each writable field through `set_{field}` when WC_Coupon has
one. WC_Coupon has `set_date_expires` but no `set_date_expires_gmt`, so a POST carrying only
`date_expires_gmt` is stored with no expiry: the code never expires in the store. `date_expires`
is read in the site's timezone unless it carries an offset (WC_Coupon::set_date_expires), so the
instant must travel with one (or as a UTC timestamp)."""
from __future__ import annotations

from datetime import UTC, datetime

from integrations.woocommerce.coupons import issue_coupon
from tests.integrations.woocommerce.test_coupons import NOW, lookup, redeem, shop  # noqa: F401
from tests.integrations.woocommerce.wc_support import api_url, sent_json


def _instant(value) -> datetime | None:
    if isinstance(value, int):
        return datetime.fromtimestamp(value, UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else None  # no offset: the store's timezone, not UTC


def test_the_coupon_expiry_goes_in_date_expires_which_woocommerce_stores_with_its_offset(session, shop, store):  # noqa: F811
    _, redemption = redeem(session, shop, kind="fixed_amount", value="5.00", name="$5 off")
    lookup(store, shop, redemption.code)
    store.post(api_url(shop, "coupons"), json={"id": 719}, status=201)
    issue_coupon(shop, redemption, now=NOW)
    sent = sent_json(store.calls[1])
    assert "date_expires" in sent, f"only {sorted(k for k in sent if 'expire' in k)} sent: WooCommerce keeps no expiry"
    assert _instant(sent["date_expires"]) == datetime(2026, 4, 9, 12, 0, tzinfo=UTC)


def test_a_registered_shopper_known_from_their_orders_can_get_a_coupon(session, shop, store):  # noqa: F811
    """A shopper whose account predates the connect reaches Lojal only through orders (the
    backfill, or a webhook): the order's `customer_id` makes the customer, but the billing email is
    kept off the account (parsers: billing is the order's). Nothing reads the WooCommerce customer,
    so the account has no email, and every coupon for it is refused for good (points given back):
    such shoppers can earn but never redeem until their WordPress profile happens to be saved."""
    from app.loyalty.adjustments import adjust_points
    from app.loyalty.apply import apply_event
    from app.loyalty.redemptions import redeem_reward
    from app.models import Customer, Reward
    from decimal import Decimal
    from integrations.woocommerce.parsers import parse_event
    from tests.integrations.woocommerce.samples import customer as customer_json
    from tests.integrations.woocommerce.samples import order

    for event in parse_event(shop, "order.updated", order("completed"), {}):
        apply_event(session, shop.id, event)
    session.commit()
    customer = session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="26").one()
    adjust_points(session, shop.id, customer.id, 1000, reason="seed", actor="staff:test", now=NOW)
    reward = Reward(shop_id=shop.id, name="$5 off", kind="fixed_amount", points_cost=500, value=Decimal("5"))
    session.add(reward)
    session.flush()
    redemption = redeem_reward(session, shop.id, customer.id, reward.id, "checkout-1", NOW).redemption
    session.commit()

    store.get(api_url(shop, "customers/26"), json=customer_json())  # the account, should it be read
    lookup(store, shop, redemption.code)
    store.post(api_url(shop, "coupons"), json={"id": 723}, status=201)
    assert issue_coupon(shop, redemption, now=NOW) == "723"
