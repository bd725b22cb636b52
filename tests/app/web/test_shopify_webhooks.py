"""POST /shopify/webhooks: signed bodies in, one inbox row per event, points exactly once."""
from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from decimal import Decimal

import redis.exceptions
from sqlalchemy import func, select

from app.crypto import token_cipher
from app.inbox import store_inbound_event
from app.models import Customer, LedgerEntry, Order, Shop, WebhookEvent
from app.web import shopify_webhooks
from jobs.inbox import process_webhook_event
from tests.app.web.shopify_helpers import OLD_SECRET, deliver, shopify_shop, sign
from tests.integrations.shopify.samples import sample


def _rows(session, shop) -> list[WebhookEvent]:
    session.expire_all()
    return session.scalars(select(WebhookEvent).where(WebhookEvent.shop_id == shop.id).order_by(WebhookEvent.id)).all()


def _customer(session, shop, platform_id="7390000000001") -> Customer:
    session.expire_all()
    return session.scalars(select(Customer).where(Customer.shop_id == shop.id,
                                                  Customer.platform_customer_id == platform_id)).one()


def _entries(session, shop) -> list[LedgerEntry]:
    return session.scalars(select(LedgerEntry).where(LedgerEntry.shop_id == shop.id).order_by(LedgerEntry.id)).all()


# --- verification --------------------------------------------------------------------------

def test_signed_webhook_is_stored_then_earns_points(wsession, shopify_client, run_jobs):
    shop = shopify_shop(wsession)
    response = deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"), event_id="evt-1")
    assert response.status_code == 200 and response.json == {"status": "stored"}
    run_jobs()
    [row] = _rows(wsession, shop)
    assert (row.platform, row.topic, row.event_key, row.status) == ("shopify", "orders/paid", "orders/paid:evt-1", "processed")
    assert row.triggered_at == datetime(2026, 7, 14, 14, 2, 15, tzinfo=UTC)
    assert row.headers["x-shopify-topic"] == "orders/paid" and "x-shopify-hmac-sha256" not in row.headers
    assert _customer(wsession, shop).points_balance == 129  # floor(129.99 shop-money subtotal x 1)


def test_the_previous_secret_is_accepted_during_rotation(wsession, shopify_client):
    shop = shopify_shop(wsession)
    assert deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"), secret=OLD_SECRET).status_code == 200
    assert len(_rows(wsession, shop)) == 1


def test_forged_or_missing_hmac_is_401_and_stores_nothing(wsession, shopify_client):
    shop = shopify_shop(wsession)
    body = json.dumps(sample("order_paid")).encode()
    forged = [
        {"secret": "not-the-secret"},
        {"secret": None},
        {"secret": "hush", "body": body, "X_Shopify_Hmac_Sha256": "bm9wZQ=="},
        {"X_Shopify_Hmac_Sha256": "héllo"},  # non-ASCII: must be refused, not crash the comparison
    ]
    for attempt in forged:
        response = deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"), **attempt)
        assert response.status_code == 401, attempt
        assert response.json["error"]["code"] == "invalid_hmac"
    # A body changed after signing: the signature covers the exact bytes.
    tampered = deliver(shopify_client, shop.domain, "orders/paid", {}, body=body + b" ", X_Shopify_Hmac_Sha256=sign(body))
    assert tampered.status_code == 401
    assert _rows(wsession, shop) == []


def test_unknown_shop_gets_200_and_nothing_is_stored(wsession, shopify_client):
    before = wsession.scalar(select(func.count()).select_from(WebhookEvent))
    for topic, payload in (("orders/paid", sample("order_paid")), ("shop/redact", sample("shop_redact"))):
        response = deliver(shopify_client, "long-gone.myshopify.com", topic, payload)
        assert response.status_code == 200 and response.json == {"status": "ignored"}
    assert wsession.scalar(select(func.count()).select_from(WebhookEvent)) == before


def test_bad_headers_are_400(wsession, shopify_client):
    shop = shopify_shop(wsession)
    for bad in ({"X_Shopify_Shop_Domain": "x.myshopify.com.evil.com"}, {"X_Shopify_Topic": None},
                {"X_Shopify_Event_Id": None, "X_Shopify_Webhook_Id": None}):
        assert deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"), **bad).status_code == 400
    assert deliver(shopify_client, shop.domain, "orders/paid", {}, body=b"not json").status_code == 400
    assert _rows(wsession, shop) == []


def test_a_triggered_at_header_outside_datetimes_range_is_stored_without_it_not_a_500(wsession, shopify_client, run_jobs):
    # Valid ISO-8601 that parses, but converting it to UTC leaves year 1..9999: informational, so dropped.
    shop = shopify_shop(wsession)
    for n, stamp in enumerate(("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")):
        response = deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"), triggered_at=stamp,
                           event_id=f"evt-{n}")
        assert response.status_code == 200 and response.json == {"status": "stored"}
    run_jobs()
    assert [(r.triggered_at, r.status) for r in _rows(wsession, shop)] == [(None, "processed")] * 2
    assert _customer(wsession, shop).points_balance == 129  # the payload's own times stand in


def test_a_signed_order_with_a_garbled_field_is_ignored_with_the_reason_not_retried(wsession, shopify_client, run_jobs):
    # Before: parsed, then failed in the database on every retry and was left "received".
    shop = shopify_shop(wsession)
    deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid", currency={"code": "USD"}))
    deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid", id="9" * 300))
    deliver(shopify_client, shop.domain, "orders/paid",
            sample("order_paid", total_price_set={"shop_money": {"amount": "1" + "0" * 20}}))
    run_jobs()
    assert [(r.status, r.attempts) for r in _rows(wsession, shop)] == [("ignored", 1)] * 3
    assert all("malformed" in r.last_error for r in _rows(wsession, shop))
    assert _entries(wsession, shop) == []


def test_webhook_id_is_the_dedupe_key_when_there_is_no_event_id(wsession, shopify_client):
    shop = shopify_shop(wsession)
    for _ in range(2):
        deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"), X_Shopify_Event_Id=None,
                X_Shopify_Webhook_Id="wh-7")
    assert [r.event_key for r in _rows(wsession, shop)] == ["orders/paid:wh-7"]


def test_one_event_id_on_two_topics_is_two_deliveries_not_a_duplicate(wsession, shopify_client, run_jobs):
    # The dedupe key is topic + event id: were the refund taken for a re-delivery of the sale,
    # its points would never come back.
    shop = shopify_shop(wsession)
    sale = deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"), event_id="evt-shared")
    refund = deliver(shopify_client, shop.domain, "refunds/create", sample("refund"), event_id="evt-shared")
    assert (sale.json["status"], refund.json["status"]) == ("stored", "stored")
    run_jobs()
    assert [(e.kind, e.points) for e in _entries(wsession, shop)] == [("earn", 129), ("reverse", -27)]


# --- exactly once --------------------------------------------------------------------------

def test_the_same_event_delivered_twice_is_stored_and_applied_once(wsession, shopify_client, run_jobs):
    shop = shopify_shop(wsession)
    first = deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"), event_id="evt-dup")
    again = deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"), event_id="evt-dup")
    assert (first.json["status"], again.json["status"]) == ("stored", "duplicate")
    run_jobs()
    assert len(_rows(wsession, shop)) == 1
    assert [(e.kind, e.points) for e in _entries(wsession, shop)] == [("earn", 129)]


def test_the_same_event_delivered_concurrently_is_applied_once(wsession, webhook_app, run_jobs):
    shop = shopify_shop(wsession)
    domain, payload, statuses = shop.domain, sample("order_paid"), []
    start = threading.Barrier(8)

    def post() -> None:
        client = webhook_app.test_client()
        start.wait()
        statuses.append(deliver(client, domain, "orders/paid", payload, event_id="evt-burst").json["status"])

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run_jobs()
    assert sorted(statuses) == ["duplicate"] * 7 + ["stored"]
    assert [(e.kind, e.points) for e in _entries(wsession, shop)] == [("earn", 129)]
    assert _customer(wsession, shop).points_balance == 129


def test_one_order_in_several_events_processed_concurrently_earns_once(wsession, webhook_app):
    """Distinct events about one order (e.g. a re-sent webhook with a new id), applied by parallel workers."""
    shop = shopify_shop(wsession)
    for n in range(4):  # stored directly: in-process job mode would apply them one by one in the request
        store_inbound_event(wsession, shop_id=shop.id, platform="shopify", topic="orders/paid", event_key=f"evt-{n}",
                            payload=sample("order_paid"))
    wsession.commit()
    ids = [row.id for row in _rows(wsession, shop)]
    wsession.rollback()
    start = threading.Barrier(len(ids))

    def process(event_id: int) -> None:
        with webhook_app.app_context():
            start.wait()
            process_webhook_event(event_id)

    threads = [threading.Thread(target=process, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [(e.kind, e.points) for e in _entries(wsession, shop)] == [("earn", 129)]
    assert {r.status for r in _rows(wsession, shop)} == {"processed"}


def test_redis_down_still_answers_200_and_the_row_waits_for_the_sweeper(wsession, shopify_client, monkeypatch):
    shop = shopify_shop(wsession)

    def redis_down(event_id):
        raise redis.exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(shopify_webhooks, "enqueue_processing", redis_down)
    response = deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"))
    assert response.status_code == 200
    [row] = _rows(wsession, shop)
    assert row.status == "received" and row.processed_at is None


# --- order of arrival ----------------------------------------------------------------------

def test_refund_before_its_order_is_applied_once_the_order_arrives(wsession, shopify_client, run_jobs):
    shop = shopify_shop(wsession)
    deliver(shopify_client, shop.domain, "refunds/create", sample("refund"))
    run_jobs()
    assert wsession.scalar(select(func.count()).select_from(Order).where(Order.shop_id == shop.id)) == 0
    deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"))
    run_jobs()
    # Earned 129 on 129.99; refunded 30.00 of 144.99 paid -> round(129 x 30 / 144.99) = 27 back.
    assert [(e.kind, e.points) for e in _entries(wsession, shop)] == [("earn", 129), ("reverse", -27)]
    assert _customer(wsession, shop).points_balance == 102
    assert {r.status for r in _rows(wsession, shop)} == {"processed"}


def test_a_stale_payload_does_not_roll_state_back(wsession, shopify_client, run_jobs):
    shop = shopify_shop(wsession)
    deliver(shopify_client, shop.domain, "customers/update", sample("customer_update"))
    older = sample("customer_update", email="ana.silva@example.com", first_name="Ana",
                   updated_at="2026-06-01T00:00:00Z", email_marketing_consent={"state": "unsubscribed"})
    deliver(shopify_client, shop.domain, "customers/update", older)
    run_jobs()
    customer = _customer(wsession, shop)
    assert (customer.email, customer.first_name, customer.accepts_marketing) == (
        "ana.m.silva@example.com", "Ana Maria", True)

    # A guest order's amounts: an older payload arriving late does not overwrite the newer one.
    deliver(shopify_client, shop.domain, "orders/paid", sample("order_guest"))
    stale = sample("order_guest", updated_at="2026-07-15T08:00:00Z", fulfillment_status="fulfilled",
                   subtotal_price_set=None, subtotal_price="10.00")
    deliver(shopify_client, shop.domain, "orders/fulfilled", stale)
    run_jobs()
    wsession.expire_all()
    order = wsession.scalars(select(Order).where(Order.shop_id == shop.id)).one()
    assert order.subtotal == Decimal("40.00") and order.customer_id is None


def test_guest_order_is_credited_when_the_account_appears(wsession, shopify_client, run_jobs):
    shop = shopify_shop(wsession)
    deliver(shopify_client, shop.domain, "orders/paid", sample("order_guest"))
    account = sample("customer_create", id=7390000000009, email="guest.buyer@example.com",
                     created_at="2026-07-16T10:00:00Z", updated_at="2026-07-16T10:00:00Z")
    deliver(shopify_client, shop.domain, "customers/create", account)
    run_jobs()
    # 50 for the new account + 40 for the guest order it claimed.
    assert _customer(wsession, shop, "7390000000009").points_balance == 90


def test_test_orders_earn_only_when_the_shop_says_so(wsession, shopify_client, run_jobs):
    strict, lenient = shopify_shop(wsession), shopify_shop(wsession, include_test_orders=True)
    for shop in (strict, lenient):
        deliver(shopify_client, shop.domain, "orders/paid", sample("order_test"))
    run_jobs()
    assert _customer(wsession, strict, "7390000000003").points_balance == 0
    assert _customer(wsession, lenient, "7390000000003").points_balance == 25


def test_orders_create_is_the_sale_when_the_shop_chose_it(wsession, shopify_client, run_jobs):
    shop = shopify_shop(wsession, shopify_order_topic="orders/create")
    deliver(shopify_client, shop.domain, "orders/create", sample("order_paid"))
    deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"))
    run_jobs()
    assert [(e.kind, e.points) for e in _entries(wsession, shop)] == [("earn", 129)]


def test_referral_code_from_the_cart_attribute_rewards_the_friend(wsession, shopify_client, run_jobs):
    shop = shopify_shop(wsession)
    advocate = sample("customer_create", id=7390000000077, email="advocate@example.com")
    deliver(shopify_client, shop.domain, "customers/create", advocate)
    run_jobs()
    code = _customer(wsession, shop, "7390000000077").referral_code
    order = sample("order_paid", note_attributes=[{"name": "lojal_ref", "value": code}])
    deliver(shopify_client, shop.domain, "orders/paid", order)
    run_jobs()
    assert _customer(wsession, shop).points_balance == 129 + 250  # order + referred-friend welcome
    assert _customer(wsession, shop, "7390000000077").points_balance == 50 + 500  # signup + advocate


# --- uninstall ---------------------------------------------------------------------------

def test_a_signed_order_body_replayed_as_app_uninstalled_keeps_the_shop_installed(wsession, shopify_client, run_jobs):
    shop = shopify_shop(wsession)
    shop.access_token_enc = token_cipher.encrypt("shpat_secret")
    wsession.commit()
    deliver(shopify_client, shop.domain, "app/uninstalled", sample("order_paid"))
    run_jobs()
    wsession.expire_all()
    shop = wsession.get(Shop, shop.id)
    assert shop.status == "active" and shop.access_token_enc is not None


def test_uninstall_drops_the_tokens_and_keeps_the_data(wsession, shopify_client, run_jobs):
    shop = shopify_shop(wsession)
    shop.access_token_enc = token_cipher.encrypt("shpat_secret")
    shop.refresh_token_enc = token_cipher.encrypt("shprt_secret")
    wsession.commit()
    deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"))
    deliver(shopify_client, shop.domain, "app/uninstalled", sample("app_uninstalled", myshopify_domain=shop.domain))
    run_jobs()
    wsession.expire_all()
    shop = wsession.get(Shop, shop.id)
    assert shop.status == "uninstalled" and shop.uninstalled_at == datetime(2026, 7, 14, 14, 2, 15, tzinfo=UTC)
    assert (shop.access_token_enc, shop.refresh_token_enc, shop.token_expires_at) == (None, None, None)
    assert _customer(wsession, shop).points_balance == 129  # the data stays until shop/redact
    # Compliance webhooks keep arriving after uninstall and are still stored.
    assert deliver(shopify_client, shop.domain, "customers/data_request",
                   sample("customers_data_request", shop_domain=shop.domain)).json["status"] == "stored"
