"""The issue_discount job against a (stubbed) Shopify: waits when throttled, never creates a code
twice, gives the points back when Shopify refuses, and runs at most 2 calls per shop at once."""
from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from rq.job import Job

from app.extensions import redis_connection
from app.loyalty.ledger import find_balance_drift
from app.models import LedgerEntry, Redemption, Reward
from integrations import registry
from jobs.dispatch import dispatch
from jobs.queues import queue
from tests.factories import redeem_five_off, redemption_and_balance
from tests.integrations.shopify.admin_api import make_shopify_shop, ok, throttled, user_errors
from tests.jobs.shopify_jobs import assert_delay, release_scheduled, scheduled_jobs

# The jobs read the real clock: redemptions made now, so their codes have not expired.
NOW = datetime.now(UTC).replace(microsecond=0)
NODE_ID = "gid://shopify/DiscountCodeNode/2001"


class _ShopifyDiscountsOnly:
    """Used only if the Shopify adapter is not registered yet: the same issue_discount."""

    name = "shopify"

    def parse_event(self, shop, topic, payload, headers):
        return []

    def issue_discount(self, shop, redemption, customer):
        from integrations.shopify.discounts import issue_discount

        return issue_discount(shop, redemption, customer)


@pytest.fixture(autouse=True)
def shopify_adapter(monkeypatch):
    if "shopify" not in registry.ADAPTERS:
        monkeypatch.setitem(registry.ADAPTERS, "shopify", _ShopifyDiscountsOnly())


@pytest.fixture
def shop(wsession):
    shop = make_shopify_shop(wsession)
    wsession.commit()
    return shop


def redeem(session, shop, customers=1):
    """Each customer (1000 points) redeems a $5-off reward costing 500."""
    out = [redeem_five_off(session, shop, "739000", "checkout-0", NOW)]
    reward_id = out[0][1].redemption.reward_id
    for n in range(1, customers):
        out.append(redeem_five_off(session, shop, f"73900{n}", f"checkout-{n}", NOW,
                                   reward=session.get(Reward, reward_id)))
    session.commit()
    return out



def test_throttled_create_waits_as_long_as_shopify_says_then_issues(wsession, run_jobs, worker_app, shop, api):
    [(customer, result)] = redeem(wsession, shop)
    api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": None}))
    api.answer("LojalDiscountCreate", throttled(requested=500, available=100, restore=100))
    dispatch(result.intents)
    run_jobs()

    [wait] = scheduled_jobs(worker_app, "rewards")
    assert wait.kwargs == {"throttle_waits": 1}
    assert_delay(worker_app, "rewards", wait, 4.0)  # (500 - 100) / 100
    assert wait.rate_limit_key == f"platform-api:{shop.id}"
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "pending" and balance == 500

    api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": None}))
    api.answer("LojalDiscountCreate", ok({"discountCodeBasicCreate": {"codeDiscountNode": {"id": NODE_ID},
                                                                      "userErrors": []}}))
    release_scheduled(worker_app, "rewards")
    run_jobs()
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "issued" and redemption.platform_discount_id == NODE_ID and balance == 500


def test_retry_after_a_lost_answer_finds_the_code_instead_of_creating_another(wsession, run_jobs, worker_app, shop,
                                                                              api):
    [(customer, result)] = redeem(wsession, shop)
    api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": None}))
    api.answer("LojalDiscountCreate", httpx.ReadTimeout("the answer never came"))  # Shopify did create it
    dispatch(result.intents)
    run_jobs()
    [retry] = scheduled_jobs(worker_app, "rewards")
    assert retry.get_status() == "scheduled"  # RQ's back-off: no hint from Shopify this time

    api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": {"id": NODE_ID}}))
    release_scheduled(worker_app, "rewards")
    run_jobs()
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "issued" and redemption.platform_discount_id == NODE_ID
    assert api.operations().count("LojalDiscountCreate") == 1


def test_shopify_refusing_the_code_gives_the_points_back_with_its_reason(wsession, run_jobs, shop, api):
    [(customer, result)] = redeem(wsession, shop)
    api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": None}))
    api.answer("LojalDiscountCreate", user_errors("discountCodeBasicCreate", (["basicCodeDiscount", "context"],
                                                                              "INVALID", "Customer does not exist")))
    dispatch(result.intents)
    run_jobs()
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "failed" and "Customer does not exist" in redemption.failure_reason
    assert balance == 1000
    assert wsession.query(LedgerEntry).filter_by(shop_id=shop.id, kind="redeem_reversal").count() == 1
    assert find_balance_drift(wsession, shop.id) == []


def test_an_uninstalled_shop_without_a_token_gives_the_points_back(wsession, run_jobs, shop, api):
    [(customer, result)] = redeem(wsession, shop)
    shop.access_token_enc = None
    wsession.commit()
    dispatch(result.intents)
    run_jobs()
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "failed" and "no access token" in redemption.failure_reason and balance == 1000
    assert api.calls == []


def test_at_most_two_discount_jobs_per_shop_are_queued_at_once(wsession, run_jobs, worker_app, shop, api):
    redeemed = redeem(wsession, shop, customers=3)
    for n, (_, result) in enumerate(redeemed):
        api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": None}))
        api.answer("LojalDiscountCreate", ok({"discountCodeBasicCreate": {
            "codeDiscountNode": {"id": f"{NODE_ID}{n}"}, "userErrors": []}}))
        dispatch(result.intents)
    connection = redis_connection.client(worker_app)
    statuses = [Job.fetch(f"issue-discount-{shop.id}-{r.redemption.id}", connection=connection,
                          serializer=queue("rewards", worker_app).serializer).get_status() for _, r in redeemed]
    assert statuses == ["queued", "queued", "rate_limited"]
    run_jobs()  # each finished job lets the next one through
    wsession.expire_all()
    assert {wsession.get(Redemption, r.redemption.id).status for _, r in redeemed} == {"issued"}
