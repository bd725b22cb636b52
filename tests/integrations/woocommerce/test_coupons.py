"""Redemptions become WooCommerce coupons: for that shopper's email only, single use, expiring,
and never twice (looked up by code before creating)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import responses
from responses import matchers

from app.loyalty.adjustments import adjust_points
from app.loyalty.redemptions import redeem_reward
from app.models import Reward
from integrations.base import PermanentPlatformError, TransientPlatformError
from integrations.woocommerce.client import StoreDisconnected
from integrations.woocommerce.coupons import issue_coupon
from tests.factories import make_customer
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop, sent_json

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def redeem(session, shop, *, kind, value=None, minimum=None, expiry_days=30, product_ref=None, name="Reward",
           email="ada@example.com"):
    customer = make_customer(session, shop, platform_customer_id="42", email=email)
    adjust_points(session, shop.id, customer.id, 1000, reason="seed", actor="staff:test", now=NOW)
    reward = Reward(shop_id=shop.id, name=name, kind=kind, points_cost=500,
                    value=None if value is None else Decimal(value),
                    minimum_order=None if minimum is None else Decimal(minimum),
                    code_expiry_days=expiry_days, product_ref=product_ref)
    session.add(reward)
    session.flush()
    result = redeem_reward(session, shop.id, customer.id, reward.id, "checkout-1", NOW)
    session.commit()
    return customer, result.redemption


@pytest.fixture
def shop(session):
    shop = make_wc_shop(session)
    session.commit()
    return shop


def lookup(store, shop, code, found=()):
    store.get(api_url(shop, "coupons"), json=list(found), match=[matchers.query_param_matcher({"code": code})])


def test_fixed_amount_coupon_is_for_that_email_single_use_and_expires(session, shop, store):
    _, redemption = redeem(session, shop, kind="fixed_amount", value="5.00", minimum="20.00", name="$5 off")
    lookup(store, shop, redemption.code)
    store.post(api_url(shop, "coupons"), json={"id": 719, "code": redemption.code.lower()}, status=201)

    assert issue_coupon(shop, redemption, now=NOW) == "719"

    assert [c.request.method for c in store.calls] == ["GET", "POST"]
    assert store.calls[0].request.headers["Authorization"].startswith("Basic ")  # HTTPS: basic auth
    assert sent_json(store.calls[1]) == {
        "code": redemption.code,
        "description": f"Lojal reward: $5 off (redemption {redemption.id})",
        "discount_type": "fixed_cart",
        "amount": "5",
        "individual_use": True,
        "usage_limit": 1,
        "usage_limit_per_user": 1,
        "email_restrictions": ["ada@example.com"],
        "date_expires": "2026-04-09T12:00:00+00:00",  # 30 days, as an instant (WC_Data::set_date_prop's form)
        "minimum_amount": "20",
    }


def test_percentage_amount_is_the_percent_as_a_string(session, shop, store):
    _, redemption = redeem(session, shop, kind="percentage", value="12.5", expiry_days=None)
    lookup(store, shop, redemption.code)
    store.post(api_url(shop, "coupons"), json={"id": 720}, status=201)
    issue_coupon(shop, redemption, now=NOW)
    sent = sent_json(store.calls[1])
    assert sent["discount_type"] == "percent" and sent["amount"] == "12.5"
    assert "date_expires" not in sent and "date_expires_gmt" not in sent and "minimum_amount" not in sent


def test_free_shipping_is_a_zero_cart_discount_with_free_shipping(session, shop, store):
    _, redemption = redeem(session, shop, kind="free_shipping", minimum="30")
    lookup(store, shop, redemption.code)
    store.post(api_url(shop, "coupons"), json={"id": 721}, status=201)
    issue_coupon(shop, redemption, now=NOW)
    sent = sent_json(store.calls[1])
    assert (sent["discount_type"], sent["amount"], sent["free_shipping"]) == ("fixed_cart", "0", True)
    assert sent["minimum_amount"] == "30" and sent["usage_limit"] == 1


def test_free_product_is_that_products_price_off_one_item(session, shop, store):
    _, redemption = redeem(session, shop, kind="free_product", product_ref="93")
    lookup(store, shop, redemption.code)
    store.get(api_url(shop, "products/93"), json={"id": 93, "price": "18.50"})
    store.post(api_url(shop, "coupons"), json={"id": 722}, status=201)
    issue_coupon(shop, redemption, now=NOW)
    sent = sent_json(store.calls[2])
    assert sent["discount_type"] == "fixed_product" and sent["amount"] == "18.5"
    assert sent["product_ids"] == [93] and sent["limit_usage_to_x_items"] == 1


def test_free_product_without_a_price_is_permanent(session, shop, store):
    _, redemption = redeem(session, shop, kind="free_product", product_ref="93")
    lookup(store, shop, redemption.code)
    store.get(api_url(shop, "products/93"), json={"id": 93, "price": ""})
    with pytest.raises(PermanentPlatformError, match="no price"):
        issue_coupon(shop, redemption, now=NOW)
    assert [c.request.method for c in store.calls] == ["GET", "GET"]


def test_an_existing_coupon_is_returned_not_created_again(session, shop, store):
    _, redemption = redeem(session, shop, kind="fixed_amount", value="5")
    lookup(store, shop, redemption.code, found=[{"id": 719, "code": redemption.code.lower()}])
    assert issue_coupon(shop, redemption, now=NOW) == "719"
    assert [c.request.method for c in store.calls] == ["GET"]


def test_a_retry_after_a_5xx_finds_the_coupon_instead_of_creating_another(session, shop, store):
    _, redemption = redeem(session, shop, kind="fixed_amount", value="5")
    lookup(store, shop, redemption.code)
    store.post(api_url(shop, "coupons"), status=502)  # the store did create it, then failed to answer
    with pytest.raises(TransientPlatformError):
        issue_coupon(shop, redemption, now=NOW)

    store.replace(responses.GET, api_url(shop, "coupons"), json=[{"id": 719, "code": redemption.code.lower()}])
    assert issue_coupon(shop, redemption, now=NOW) == "719"
    assert [c.request.method for c in store.calls] == ["GET", "POST", "GET"]


def test_code_taken_by_a_concurrent_attempt_is_ours(session, shop, store):
    _, redemption = redeem(session, shop, kind="fixed_amount", value="5")
    store.get(api_url(shop, "coupons"), json=[])
    store.get(api_url(shop, "coupons"), json=[{"id": 719, "code": redemption.code.lower()}])
    store.post(api_url(shop, "coupons"), status=400,
               json={"code": "woocommerce_rest_coupon_code_already_exists", "message": "The coupon code already exists"})
    assert issue_coupon(shop, redemption, now=NOW) == "719"


def test_a_refusal_is_permanent_with_the_stores_message(session, shop, store):
    _, redemption = redeem(session, shop, kind="fixed_amount", value="5")
    store.get(api_url(shop, "coupons"), json=[])
    store.post(api_url(shop, "coupons"), status=400, json={"code": "rest_invalid_param", "message": "Invalid amount"})
    with pytest.raises(PermanentPlatformError, match="Invalid amount"):
        issue_coupon(shop, redemption, now=NOW)


def test_429_is_transient_with_the_stores_retry_after(session, shop, store):
    _, redemption = redeem(session, shop, kind="fixed_amount", value="5")
    store.get(api_url(shop, "coupons"), status=429, headers={"Retry-After": "7"})
    with pytest.raises(TransientPlatformError) as caught:
        issue_coupon(shop, redemption, now=NOW)
    assert caught.value.retry_after == 7.0
    assert [c.request.method for c in store.calls] == ["GET"]


def test_401_is_store_disconnected(session, shop, store):
    _, redemption = redeem(session, shop, kind="fixed_amount", value="5")
    store.get(api_url(shop, "coupons"), status=401, json={"code": "woocommerce_rest_authentication_error"})
    with pytest.raises(StoreDisconnected):
        issue_coupon(shop, redemption, now=NOW)


def test_a_customer_without_an_email_cannot_get_a_coupon(session, shop, store):
    customer, redemption = redeem(session, shop, kind="fixed_amount", value="5")
    customer.email = None
    session.commit()
    lookup(store, shop, redemption.code)
    store.get(api_url(shop, "customers/42"), json={"id": 42, "email": ""})  # nor does the account say
    with pytest.raises(PermanentPlatformError, match="no email"):
        issue_coupon(shop, redemption, now=NOW)
    assert [c.request.method for c in store.calls] == ["GET", "GET"]  # no coupon is created


def test_a_registered_shopper_without_an_email_gets_the_coupon_for_their_account_s_email(session, shop, store):
    customer, redemption = redeem(session, shop, kind="fixed_amount", value="5")
    customer.email = None
    session.commit()
    lookup(store, shop, redemption.code)
    store.get(api_url(shop, "customers/42"), json={"id": 42, "email": "ada@example.org"})
    store.post(api_url(shop, "coupons"), json={"id": 724}, status=201)
    assert issue_coupon(shop, redemption, now=NOW) == "724"
    assert sent_json(store.calls[2])["email_restrictions"] == ["ada@example.org"]
    session.refresh(customer)
    assert customer.email is None  # read for the coupon, not stored: the customer topics own the profile


def test_a_guest_without_an_email_is_never_looked_up_as_an_account(session, shop, store):
    customer, redemption = redeem(session, shop, kind="fixed_amount", value="5")
    customer.email, customer.platform_customer_id = None, None
    session.commit()
    lookup(store, shop, redemption.code)
    with pytest.raises(PermanentPlatformError, match="no email"):
        issue_coupon(shop, redemption, now=NOW)
    assert [c.request.method for c in store.calls] == ["GET"]


def test_past_its_expiry_a_coupon_is_not_created_but_one_an_earlier_attempt_made_is_found(session, shop, store):
    _, redemption = redeem(session, shop, kind="fixed_amount", value="5.00")
    late = redemption.expires_at + timedelta(seconds=1)
    lookup(store, shop, redemption.code)
    with pytest.raises(PermanentPlatformError, match="expiry"):
        issue_coupon(shop, redemption, now=late)
    assert [c.request.method for c in store.calls] == ["GET"]
    store.replace(responses.GET, api_url(shop, "coupons"), json=[{"id": 719, "code": redemption.code.lower()}])
    assert issue_coupon(shop, redemption, now=late) == "719"
