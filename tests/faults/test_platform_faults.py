"""The platforms misbehave while a reward is being issued: Shopify throttles (THROTTLED with its
bucket), answers 503/429 with Retry-After and times out after creating the code; WooCommerce
answers 429/503 with Retry-After and times out after creating the coupon. Each wait is the one
the platform asked for (checked in RQ's schedule, nothing sleeps), a timeout falls back to RQ's
back-off, and in the end exactly one code exists and the points were taken once."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import requests
import respx
import responses

from app.loyalty.adjustments import adjust_points
from app.loyalty.ledger import find_balance_drift
from app.loyalty.redemptions import redeem_reward
from app.models import Reward
from jobs.dispatch import dispatch
from jobs.queues import RETRY_INTERVALS
from tests.factories import make_customer, redemption_and_balance
from tests.integrations.shopify.admin_api import FakeAdminApi, make_shopify_shop, ok, throttled
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop
from tests.faults.conftest import assert_parked_for
from tests.jobs.shopify_jobs import release_scheduled, scheduled_jobs

# The jobs read the real clock: redemptions made now, so their codes have not expired.
NOW = datetime.now(UTC).replace(microsecond=0)
NODE_ID = "gid://shopify/DiscountCodeNode/3003"


def _redeem(session, shop):
    """A customer with 1000 points redeems a $5-off reward costing 500."""
    reward = Reward(shop_id=shop.id, name="$5 off", kind="fixed_amount", points_cost=500, value=5, code_expiry_days=30)
    session.add(reward)
    session.flush()
    customer = make_customer(session, shop, platform_customer_id="7390001")
    adjust_points(session, shop.id, customer.id, 1000, reason="seed", actor="staff:test", now=NOW)
    result = redeem_reward(session, shop.id, customer.id, reward.id, "checkout-1", NOW)
    session.commit()
    return customer, result


def _next_attempt(app, drain, expected_delay: float) -> None:
    """The job is parked in RQ's schedule for `expected_delay` seconds; let its time come and run it."""
    assert len(scheduled_jobs(app, "rewards")) == 1
    assert_parked_for(app, "rewards", expected_delay, drain.window)
    release_scheduled(app, "rewards")
    drain()



def test_shopify_throttle_429_503_and_a_timeout_after_creating_end_in_one_code(fault_app, fsession, drain):
    shop = make_shopify_shop(fsession)
    customer, result = _redeem(fsession, shop)
    not_found = ok({"codeDiscountNodeByCode": None})
    with respx.mock(assert_all_called=False) as router:
        api = FakeAdminApi(shop.domain).install(router)
        api.answer("LojalDiscountByCode", not_found)
        api.answer("LojalDiscountCreate", throttled(requested=10, available=4, restore=2))  # (10 - 4) / 2 = 3 s
        dispatch(result.intents)
        drain()
        api.answer("LojalDiscountByCode", httpx.Response(503, headers={"Retry-After": "7"}))
        _next_attempt(fault_app, drain, 3.0)
        api.answer("LojalDiscountByCode", httpx.Response(429, headers={"Retry-After": "12"}))
        _next_attempt(fault_app, drain, 7.0)
        api.answer("LojalDiscountByCode", not_found)
        api.answer("LojalDiscountCreate", httpx.ReadTimeout("Shopify created it; the answer was lost"))
        _next_attempt(fault_app, drain, 12.0)
        api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": {"id": NODE_ID}}))
        _next_attempt(fault_app, drain, RETRY_INTERVALS[0])  # no hint with a timeout: RQ's own back-off

    redemption, balance = redemption_and_balance(fsession, customer, result.redemption)
    assert redemption.status == "issued" and redemption.platform_discount_id == NODE_ID
    assert api.operations().count("LojalDiscountCreate") == 2  # the throttled one (refused) and the timed-out one
    assert balance == 500 and find_balance_drift(fsession, shop.id) == []
    assert scheduled_jobs(fault_app, "rewards") == []


class _Store:
    """A WooCommerce store that keeps the coupons it creates, even when the answer is lost."""

    def __init__(self):
        self.coupons: list[dict] = []
        self.posts = 0
        self.refuse_next = None            # (status, headers, body) for the next request
        self.lose_next_post_answer = False  # create the coupon, then time out

    def handle(self, request):
        if self.refuse_next is not None:
            answer, self.refuse_next = self.refuse_next, None
            return answer
        if request.method == "POST":
            self.posts += 1
            coupon = {"id": 700 + len(self.coupons), "code": json.loads(request.body)["code"].lower()}
            self.coupons.append(coupon)
            if self.lose_next_post_answer:
                self.lose_next_post_answer = False
                raise requests.ReadTimeout("the coupon was created; its answer never came")
            return 201, {}, json.dumps(coupon)
        code = request.params.get("code", "").lower()
        return 200, {}, json.dumps([c for c in self.coupons if c["code"] == code])


def test_woocommerce_429_503_and_a_timeout_after_creating_end_in_one_coupon(fault_app, fsession, drain):
    shop = make_wc_shop(fsession)
    customer, result = _redeem(fsession, shop)
    store = _Store()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        for method in (responses.GET, responses.POST):
            mock.add_callback(method, api_url(shop, "coupons"), callback=store.handle)
        store.refuse_next = (429, {"Retry-After": "30"}, "{}")
        dispatch(result.intents)
        drain()
        store.refuse_next = (503, {"Retry-After": "5"}, "{}")
        _next_attempt(fault_app, drain, 30.0)
        store.lose_next_post_answer = True
        _next_attempt(fault_app, drain, 5.0)
        _next_attempt(fault_app, drain, RETRY_INTERVALS[0])  # no hint with a timeout: RQ's own back-off

    redemption, balance = redemption_and_balance(fsession, customer, result.redemption)
    assert redemption.status == "issued" and redemption.platform_discount_id == "700"
    assert store.posts == 1 and len(store.coupons) == 1
    assert balance == 500 and find_balance_drift(fsession, shop.id) == []
