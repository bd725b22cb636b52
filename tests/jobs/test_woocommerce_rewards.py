"""The issue_discount job against a (stubbed) WooCommerce store: one coupon however many retries,
points back on a refusal, and a revoked key (401) disconnects the store and gives the points back."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import responses

from app.loyalty.ledger import find_balance_drift
from app.models import Redemption, Shop
from integrations import registry
from jobs.dispatch import dispatch
from tests.factories import redeem_five_off, redemption_and_balance
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop
from tests.jobs.shopify_jobs import release_scheduled, scheduled_jobs

# The job reads the real clock: redemptions made now, so their codes have not expired.
NOW = datetime.now(UTC).replace(microsecond=0)


class _CouponsOnly:
    """Used only while the WooCommerce adapter is not registered yet: the same issue_coupon."""

    name = "woocommerce"

    def parse_event(self, shop, topic, payload, headers):
        return []

    def issue_discount(self, shop, redemption, customer):
        from integrations.woocommerce.coupons import issue_coupon

        return issue_coupon(shop, redemption, customer)


@pytest.fixture(autouse=True)
def woocommerce_adapter(monkeypatch):
    if "woocommerce" not in registry.ADAPTERS:
        monkeypatch.setitem(registry.ADAPTERS, "woocommerce", _CouponsOnly())


@pytest.fixture
def shop(wsession):
    shop = make_wc_shop(wsession)
    wsession.commit()
    return shop


def redeem(session, shop):
    customer, result = redeem_five_off(session, shop, "42", "checkout-1", NOW)
    session.commit()
    return customer, result



def test_a_retry_after_a_5xx_finds_the_coupon_instead_of_creating_another(wsession, run_jobs, worker_app, shop, store):
    customer, result = redeem(wsession, shop)
    store.get(api_url(shop, "coupons"), json=[])
    store.post(api_url(shop, "coupons"), status=500)  # created, but the answer was an error
    dispatch(result.intents)
    run_jobs()
    assert [job.get_status() for job in scheduled_jobs(worker_app, "rewards")] == ["scheduled"]  # RQ's back-off

    store.replace(responses.GET, api_url(shop, "coupons"), json=[{"id": 719, "code": result.redemption.code.lower()}])
    release_scheduled(worker_app, "rewards")
    run_jobs()
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "issued" and redemption.platform_discount_id == "719" and balance == 500
    assert sum(c.request.method == "POST" for c in store.calls) == 1


def test_a_refused_coupon_gives_the_points_back(wsession, run_jobs, shop, store):
    customer, result = redeem(wsession, shop)
    store.get(api_url(shop, "coupons"), json=[])
    store.post(api_url(shop, "coupons"), status=400, json={"code": "rest_invalid_param", "message": "Invalid email"})
    dispatch(result.intents)
    run_jobs()
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "failed" and "Invalid email" in redemption.failure_reason and balance == 1000
    assert status_of(wsession, shop) == "active"  # a refusal is not a disconnection


def test_a_revoked_key_disconnects_the_store_and_gives_the_points_back(wsession, run_jobs, worker_app, shop, store):
    customer, result = redeem(wsession, shop)
    store.get(api_url(shop, "coupons"), status=401, json={"code": "woocommerce_rest_cannot_view"})
    dispatch(result.intents)
    run_jobs()
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "failed" and "401" in redemption.failure_reason and balance == 1000
    assert status_of(wsession, shop) == "disconnected"
    assert scheduled_jobs(worker_app, "rewards") == []
    assert find_balance_drift(wsession, shop.id) == []


def test_a_coupon_that_would_be_born_expired_is_not_created_and_the_points_come_back(wsession, run_jobs, shop,
                                                                                   store):
    # Issued long after the redemption (the store was down past every retry, and the sweeper
    # retried a week later): WooCommerce would accept a coupon already past its expiry date and
    # the points would be spent on a code nobody can use.
    customer, result = redeem(wsession, shop)
    wsession.get(Redemption, result.redemption.id).expires_at = datetime.now(UTC) - timedelta(hours=1)
    wsession.commit()
    store.get(api_url(shop, "coupons"), json=[])  # no coupon from an earlier attempt
    dispatch(result.intents)
    run_jobs()
    assert [c.request.method for c in store.calls] == ["GET"]  # looked for one, created none
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "failed" and "expir" in redemption.failure_reason and balance == 1000


def status_of(session, shop):
    session.expire_all()
    return session.get(Shop, shop.id).status
