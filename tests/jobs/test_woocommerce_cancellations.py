"""Cancelling a redemption against a (stubbed, `responses`) WooCommerce store: the coupon is
deleted for good exactly once, then the points come back once; a used coupon is refused; a
store that keeps failing ends in a failed cancellation with the points not given back."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.loyalty.ledger import find_balance_drift
from app.loyalty.redemption_cancel import request_cancellation
from app.loyalty.redemptions import mark_issued
from app.models import LedgerEntry, Shop
from jobs.dispatch import dispatch
from tests.factories import redeem_five_off, redemption_and_balance
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop
from tests.jobs.shopify_jobs import release_scheduled, scheduled_jobs

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def shop(wsession):
    shop = make_wc_shop(wsession)
    wsession.commit()
    return shop


def redeemed(session, shop):
    customer, result = redeem_five_off(session, shop, "42", "checkout-1", NOW)
    mark_issued(session, shop.id, result.redemption.id, "719", NOW)
    session.commit()
    asked = request_cancellation(session, shop.id, result.redemption.id, "staff:1:ann", "wrong reward", NOW)
    session.commit()
    return customer, result.redemption, asked.intents


def coupon(redemption, uses=0):
    return [{"id": 719, "code": redemption.code.lower(), "usage_count": uses}]



def deletes(store):
    return [c for c in store.calls if c.request.method == "DELETE"]


def test_cancel_deletes_the_coupon_for_good_once_then_gives_the_points_back_once(wsession, run_jobs, shop, store):
    customer, redemption, intents = redeemed(wsession, shop)
    store.get(api_url(shop, "coupons"), json=coupon(redemption))
    store.delete(api_url(shop, "coupons/719"), json={"id": 719})
    dispatch(intents)
    dispatch(intents)  # a double click's duplicate
    run_jobs()
    [delete] = deletes(store)
    assert "force=true" in delete.request.url
    redemption, balance = redemption_and_balance(wsession, customer, redemption)
    assert (redemption.status, redemption.cancel_state, balance) == ("cancelled", "cancelled", 1000)
    assert wsession.query(LedgerEntry).filter_by(shop_id=shop.id, kind="redeem_reversal").count() == 1
    assert find_balance_drift(wsession, shop.id) == []


def test_a_used_coupon_is_refused_and_not_deleted(wsession, run_jobs, shop, store):
    customer, redemption, intents = redeemed(wsession, shop)
    store.get(api_url(shop, "coupons"), json=coupon(redemption, uses=1))
    dispatch(intents)
    run_jobs()
    assert deletes(store) == []
    redemption, balance = redemption_and_balance(wsession, customer, redemption)
    assert (redemption.status, redemption.cancel_state, balance) == ("issued", "refused", 500)
    assert "already used" in redemption.cancel_detail


def test_a_store_that_keeps_failing_ends_failed_with_no_points_back(wsession, run_jobs, worker_app, shop, store):
    customer, redemption, intents = redeemed(wsession, shop)
    store.get(api_url(shop, "coupons"), json=coupon(redemption))
    store.delete(api_url(shop, "coupons/719"), status=502, body="Bad gateway")
    dispatch(intents)
    run_jobs()
    for _ in range(worker_app.config["JOB_RETRIES"]):
        assert redemption_and_balance(wsession, customer, redemption)[1] == 500
        release_scheduled(worker_app, "rewards")
        run_jobs()
    assert scheduled_jobs(worker_app, "rewards") == []
    assert len(deletes(store)) == worker_app.config["JOB_RETRIES"] + 1
    redemption, balance = redemption_and_balance(wsession, customer, redemption)
    assert (redemption.status, redemption.cancel_state, balance) == ("issued", "failed", 500)
    assert "502" in redemption.cancel_detail


def test_a_revoked_key_fails_the_cancellation_and_disconnects_the_store(wsession, run_jobs, shop, store):
    customer, redemption, intents = redeemed(wsession, shop)
    store.get(api_url(shop, "coupons"), status=401, json={"code": "woocommerce_rest_cannot_view"})
    dispatch(intents)
    run_jobs()
    redemption, balance = redemption_and_balance(wsession, customer, redemption)
    assert (redemption.cancel_state, balance) == ("failed", 500)
    assert wsession.get(Shop, shop.id).status == "disconnected"
