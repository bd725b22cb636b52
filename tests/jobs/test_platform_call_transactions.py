"""The discount jobs hold no transaction while the platform answers: a migration's ALTER TABLE
could run meanwhile. What others commit during the call (a staff cancellation) is respected when
the answer is recorded, in a transaction of its own."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import responses
import respx
from sqlalchemy.orm import Session

from app.extensions import db
from app.models import Shop
from app.loyalty.redemption_cancel import complete_cancellation, request_cancellation
from integrations.shopify.tokens import store_access_token
from jobs.dispatch import dispatch
from tests.db_locks import tables_free_for_a_migration
from tests.factories import redeem_five_off, redemption_and_balance
from tests.integrations.shopify.admin_api import FakeAdminApi, make_shopify_shop, ok
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop

# The jobs read the real clock: redemptions made now, so their codes have not expired.
NOW = datetime.now(UTC).replace(microsecond=0)
NODE_ID = "gid://shopify/DiscountCodeNode/2001"
TABLES = ("redemptions", "customers", "shops")


@pytest.fixture
def shop(wsession):
    shop = make_shopify_shop(wsession)
    wsession.commit()
    return shop


def redeem(session, shop):
    customer, result = redeem_five_off(session, shop, "739000", "checkout-0", NOW)
    session.commit()
    return customer, result



def meanwhile(action):
    """Run `action(session)` on a connection of its own and commit it, as another request would."""
    with Session(bind=db.engine) as other, other.begin():
        action(other)


def usage_zero() -> httpx.Response:
    return ok({"codeDiscountNodeByCode": {"id": NODE_ID, "codeDiscount": {"__typename": "DiscountCodeBasic",
                                                                          "asyncUsageCount": 0}}})


def deleted() -> httpx.Response:
    return ok({"discountCodeDelete": {"deletedCodeDiscountId": NODE_ID, "userErrors": []}})


def created() -> httpx.Response:
    return ok({"discountCodeBasicCreate": {"codeDiscountNode": {"id": NODE_ID}, "userErrors": []}})


def test_issuing_a_shopify_code_holds_no_transaction_while_shopify_answers(wsession, run_jobs, shop, api):
    customer, result = redeem(wsession, shop)
    free = []

    def create_meanwhile():
        free.append(tables_free_for_a_migration(*TABLES))
        return created()

    api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": None}))
    api.answer("LojalDiscountCreate", create_meanwhile)
    dispatch(result.intents)
    run_jobs()
    assert free == [True]
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "issued" and redemption.platform_discount_id == NODE_ID and balance == 500


def test_revoking_a_shopify_code_holds_no_transaction_while_shopify_answers(wsession, run_jobs, shop, api):
    customer, result = redeem(wsession, shop)
    api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": None}))
    api.answer("LojalDiscountCreate", created())
    dispatch(result.intents)
    run_jobs()
    free = []

    def delete_meanwhile():
        free.append(tables_free_for_a_migration(*TABLES))
        return deleted()

    api.answer("LojalDiscountUsage", usage_zero())
    api.answer("LojalDiscountDelete", delete_meanwhile)
    asked = request_cancellation(wsession, shop.id, result.redemption.id, "staff:1:ann", "changed their mind", NOW)
    wsession.commit()
    dispatch(asked.intents)
    run_jobs()
    assert free == [True]
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "cancelled" and balance == 1000


def test_a_cancellation_asked_for_while_the_code_is_created_deletes_it_and_sends_no_code(wsession, run_jobs, shop,
                                                                                         api):
    customer, result = redeem(wsession, shop)
    rid = result.redemption.id

    def create_while_staff_cancels():
        asked = []
        meanwhile(lambda s: asked.extend(request_cancellation(s, shop.id, rid, "staff:1:ann", "changed their mind",
                                                              NOW).intents))
        dispatch(asked)
        return created()

    api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": None}))
    api.answer("LojalDiscountCreate", create_while_staff_cancels)
    api.answer("LojalDiscountUsage", usage_zero())
    api.answer("LojalDiscountDelete", deleted())
    dispatch(result.intents)
    run_jobs()
    assert api.operations() == ["LojalDiscountByCode", "LojalDiscountCreate", "LojalDiscountUsage",
                                "LojalDiscountDelete"]
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "cancelled" and redemption.cancel_state == "cancelled" and balance == 1000


def test_a_code_created_after_its_redemption_was_cancelled_is_deleted_not_left_working(wsession, run_jobs, shop,
                                                                                       api):
    # The cancellation ended (no code found, points back) while this attempt was creating one:
    # recording the code would resurrect the redemption, and leaving it would give a free discount.
    customer, result = redeem(wsession, shop)
    rid = result.redemption.id

    def create_while_a_cancellation_completes():
        def cancel(s):
            request_cancellation(s, shop.id, rid, "staff:1:ann", "changed their mind", NOW)
            complete_cancellation(s, shop.id, rid, False, NOW)
        meanwhile(cancel)
        return created()

    api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": None}))
    api.answer("LojalDiscountCreate", create_while_a_cancellation_completes)
    api.answer("LojalDiscountUsage", usage_zero())
    api.answer("LojalDiscountDelete", deleted())
    dispatch(result.intents)
    run_jobs()
    assert api.operations()[-2:] == ["LojalDiscountUsage", "LojalDiscountDelete"]
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "cancelled" and redemption.platform_discount_id is None and balance == 1000


def test_issuing_and_revoking_a_woocommerce_coupon_hold_no_transaction_while_the_store_answers(wsession, run_jobs,
                                                                                               store):
    shop = make_wc_shop(wsession)
    wsession.commit()
    customer, result = redeem(wsession, shop)
    code, coupons, coupon = result.redemption.code.lower(), api_url(shop, "coupons"), api_url(shop, "coupons/719")
    free = []

    def create_meanwhile(request):
        free.append(tables_free_for_a_migration(*TABLES))
        return 201, {}, json.dumps({"id": 719, "code": code})

    def delete_meanwhile(request):
        free.append(tables_free_for_a_migration(*TABLES))
        return 200, {}, json.dumps({"id": 719})

    store.get(coupons, json=[])
    store.add_callback(responses.POST, coupons, callback=create_meanwhile)
    wsession.rollback()  # the test's own reads end here: only the jobs' transactions are probed
    dispatch(result.intents)
    run_jobs()
    store.replace(responses.GET, coupons, json=[{"id": 719, "code": code, "usage_count": 0}])
    store.add_callback(responses.DELETE, coupon, callback=delete_meanwhile)
    asked = request_cancellation(wsession, shop.id, result.redemption.id, "staff:1:ann", "changed their mind", NOW)
    wsession.commit()
    dispatch(asked.intents)
    run_jobs()
    assert free == [True, True]
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "cancelled" and balance == 1000


def test_deleting_an_unwanted_code_after_a_token_refresh_holds_no_transaction_either(wsession, run_jobs, worker_app,
                                                                                      shop, monkeypatch):
    # The create's token refresh expires the job's copy of the shop's token columns; the delete
    # that follows reads them again, before its call, not by a lazy load during it.
    monkeypatch.setitem(worker_app.config, "SHOPIFY_API_KEY", "key")
    monkeypatch.setitem(worker_app.config, "SHOPIFY_API_SECRET", "secret")
    store_access_token(shop, "shpat_old", refresh_token="shprt_old", expires_at=NOW + timedelta(minutes=1), now=NOW)
    customer, result = redeem(wsession, shop)
    shop_id, rid, domain = shop.id, result.redemption.id, shop.domain
    wsession.rollback()  # the test's own reads end here: only the job's transactions are probed
    router = respx.mock(assert_all_called=False)
    api = FakeAdminApi(domain).install(router)
    refreshed = router.post(f"https://{domain}/admin/oauth/access_token").mock(return_value=httpx.Response(
        200, json={"access_token": "shpat_new", "scope": "write_discounts", "expires_in": 3600,
                   "refresh_token": "shprt_new", "refresh_token_expires_in": 7_776_000}))
    free = []

    def create_while_a_cancellation_completes():
        def cancel(s):
            request_cancellation(s, shop_id, rid, "staff:1:ann", "changed their mind", NOW)
            complete_cancellation(s, shop_id, rid, False, NOW)
        meanwhile(cancel)
        return created()

    def usage_meanwhile():
        free.append(tables_free_for_a_migration(*TABLES))
        return usage_zero()

    api.answer("LojalDiscountByCode", ok({"codeDiscountNodeByCode": None}))
    api.answer("LojalDiscountCreate", create_while_a_cancellation_completes)
    api.answer("LojalDiscountUsage", usage_meanwhile)
    api.answer("LojalDiscountDelete", deleted())
    with router:
        dispatch(result.intents)
        run_jobs()
        assert refreshed.call_count == 1 and free == [True]
    assert [c.headers["X-Shopify-Access-Token"] for c in api.calls] == ["shpat_new"] * 4
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "cancelled" and balance == 1000


def _probing(free, answer):
    def callback(request):
        free.append(tables_free_for_a_migration("shops", "webhook_events"))
        return answer
    return callback


@pytest.mark.parametrize("job, status", [("jobs.woocommerce_sync.check_webhooks", "active"),
                                         ("jobs.woocommerce_connect.after_connect", "pending")])
def test_woocommerce_webhook_upkeep_holds_no_transaction_while_the_store_answers(wsession, run_jobs, store, job,
                                                                                 status):
    from jobs.queues import enqueue

    shop = make_wc_shop(wsession, status=status)
    wsession.commit()
    free = []
    store.get(api_url(shop, "orders"), json=[])
    store.add_callback(responses.GET, api_url(shop, "settings/general/woocommerce_currency"),
                       callback=_probing(free, (200, {}, json.dumps({"value": "EUR"}))))
    store.add_callback(responses.GET, api_url(shop, "webhooks"), callback=_probing(free, (200, {}, "[]")))
    store.add_callback(responses.POST, api_url(shop, "webhooks"),
                       callback=_probing(free, (201, {}, json.dumps({"id": 1}))))
    shop_id = shop.id
    wsession.rollback()  # the test's own reads end here: only the jobs' transactions are probed
    enqueue(job, shop_id, queue_name="maintenance")
    run_jobs()
    assert free and all(free)
    wsession.expire_all()
    assert wsession.get(Shop, shop_id).status == "active"


def test_a_woocommerce_reconciliation_holds_no_transaction_while_the_store_answers(wsession, run_jobs, store):
    # Its first slice reads the store's currency, then a page of orders: neither inside a transaction.
    from jobs.queues import enqueue

    shop = make_wc_shop(wsession, currency="USD")
    shop.orders_synced_at = datetime.now(UTC) - timedelta(hours=1)  # a backfill ran: reconciliations follow
    wsession.commit()
    free = []
    store.add_callback(responses.GET, api_url(shop, "settings/general/woocommerce_currency"),
                       callback=_probing(free, (200, {}, json.dumps({"value": "EUR"}))))
    store.add_callback(responses.GET, api_url(shop, "orders"), callback=_probing(free, (200, {}, "[]")))
    shop_id = shop.id
    wsession.rollback()  # the test's own reads end here: only the job's transactions are probed
    enqueue("jobs.woocommerce_sync.reconcile_orders", shop_id, queue_name="maintenance")
    run_jobs()
    assert free and all(free), free
    wsession.expire_all()
    assert wsession.get(Shop, shop_id).currency == "EUR"
