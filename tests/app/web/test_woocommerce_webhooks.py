"""POST /woocommerce/webhooks/<shop_uid>: ping, signatures, dedupe on the order's state, and the
order status machine end to end (route -> inbox -> worker -> ledger)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis.exceptions
from sqlalchemy import select

from app.crypto import token_cipher
from app.models import Customer, LedgerEntry, Order, WebhookEvent
from app.web import woocommerce_webhooks
from tests.app.web.woocommerce_helpers import deliver, sign, woo_shop
from tests.factories import make_customer
from tests.integrations.woocommerce.samples import customer as customer_json
from tests.integrations.woocommerce.samples import guest_order, order
from tests.jobs.conftest import run_jobs, worker_app, wsession  # noqa: F401

T1, T2, T3 = "2026-03-01T10:00:05", "2026-03-01T11:00:00", "2026-03-01T12:00:00"


@pytest.fixture
def wc(worker_app):
    return worker_app.test_client()


def _rows(session, shop) -> list[WebhookEvent]:
    session.expire_all()
    return session.scalars(select(WebhookEvent).where(WebhookEvent.shop_id == shop.id).order_by(WebhookEvent.id)).all()


def _balance(session, shop, platform_customer_id="26") -> int:
    session.expire_all()
    found = session.scalars(select(Customer).where(Customer.shop_id == shop.id,
                                                   Customer.platform_customer_id == platform_customer_id)).first()
    return 0 if found is None else found.points_balance


def _earns(session, shop) -> list[str]:
    return session.scalars(select(LedgerEntry.idempotency_key).where(LedgerEntry.shop_id == shop.id,
                                                                     LedgerEntry.kind == "earn")).all()


# --- verification ------------------------------------------------------------------------

def test_the_creation_ping_is_answered_and_stores_nothing(wsession, wc):
    shop = woo_shop(wsession)
    response = wc.post(f"/woocommerce/webhooks/{shop.uid}", data="webhook_id=41",
                       content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert _rows(wsession, shop) == []


def test_a_signed_delivery_is_stored_then_earns(wsession, wc, run_jobs):
    shop = woo_shop(wsession)
    response = deliver(wc, shop, "order.updated", order("completed", modified=T1))
    assert response.status_code == 200 and response.json == {"status": "stored"}
    run_jobs()
    [row] = _rows(wsession, shop)
    assert (row.platform, row.topic, row.status) == ("woocommerce", "order.updated", "processed")
    assert row.event_key == f"727:order.updated:{T1}"
    assert "x-wc-webhook-signature" not in {k.lower() for k in row.headers}
    assert _balance(wsession, shop) == 90  # floor(line totals 54 + 36)


def test_the_secret_is_html_entity_decoded_before_signing(wsession, wc):
    # WooCommerce signs with wp_specialchars_decode(secret): "&amp;" in the secret is "&" in the key.
    shop = woo_shop(wsession, secret="s3cr&amp;t&lt;x")
    assert deliver(wc, shop, "order.updated", order(), secret="s3cr&t<x").status_code == 200
    assert deliver(wc, shop, "order.updated", order(modified=T2), secret="s3cr&amp;t&lt;x").status_code == 401
    assert len(_rows(wsession, shop)) == 1


def test_bad_or_missing_signatures_are_401_and_store_nothing(wsession, wc):
    shop = woo_shop(wsession)
    body = json.dumps(order()).encode()
    for attempt in ({"secret": "not-the-secret"}, {"secret": None}, {"X_WC_Webhook_Signature": "héllo"},
                    {"body": body + b" ", "X_WC_Webhook_Signature": sign(body)}):
        response = deliver(wc, shop, "order.updated", order(), **attempt)
        assert response.status_code == 401, attempt
        assert response.json["error"]["code"] == "invalid_signature"
    # Another store's secret does not sign for this one.
    other = woo_shop(wsession, secret="other-store")
    assert deliver(wc, shop, "order.updated", order(), secret="other-store").status_code == 401
    assert _rows(wsession, shop) == [] and _rows(wsession, other) == []


def test_an_unknown_store_is_404(wsession, wc):
    response = wc.post("/woocommerce/webhooks/0123456789abcdef", data=b"{}", headers={"X-WC-Webhook-Signature": "x"})
    assert response.status_code == 404 and response.json["error"]["code"] == "unknown_shop"


def test_a_disconnected_store_gets_200_and_nothing_is_stored(wsession, wc):
    shop = woo_shop(wsession)
    shop.status = "disconnected"
    wsession.commit()
    assert deliver(wc, shop, "order.updated", order("completed")).status_code == 200
    assert _rows(wsession, shop) == []


def test_redis_down_still_answers_200_with_the_row_kept(wsession, wc, monkeypatch):
    shop = woo_shop(wsession)

    def redis_down(event_id):
        raise redis.exceptions.ConnectionError("down")

    monkeypatch.setattr(woocommerce_webhooks, "enqueue_processing", redis_down)
    assert deliver(wc, shop, "order.updated", order("completed")).status_code == 200
    [row] = _rows(wsession, shop)
    assert row.processed_at is None and row.status == "received"


# --- dedupe and the status machine -------------------------------------------------------

def test_a_redelivery_with_a_new_delivery_id_is_one_row(wsession, wc, run_jobs):
    shop = woo_shop(wsession)
    first = deliver(wc, shop, "order.updated", order("completed", modified=T1), delivery_id="d-1")
    again = deliver(wc, shop, "order.updated", order("completed", modified=T1), delivery_id="d-2")
    assert first.json == {"status": "stored"} and again.json == {"status": "duplicate"}
    run_jobs()
    assert len(_rows(wsession, shop)) == 1 and _balance(wsession, shop) == 90


def test_saved_as_completed_five_times_earns_once(wsession, wc, run_jobs):
    shop = woo_shop(wsession)
    for minute in range(5):
        deliver(wc, shop, "order.updated", order("completed", modified=f"2026-03-01T11:0{minute}:00"))
    run_jobs()
    assert len(_rows(wsession, shop)) == 5
    assert _balance(wsession, shop) == 90 and len(_earns(wsession, shop)) == 1


def test_out_of_order_completed_processing_completed_earns_once(wsession, wc, run_jobs):
    shop = woo_shop(wsession)
    deliver(wc, shop, "order.updated", order("completed", modified=T3))
    deliver(wc, shop, "order.created", order("processing", modified=T1))
    deliver(wc, shop, "order.updated", order("completed", modified=T2))
    run_jobs()
    assert _balance(wsession, shop) == 90 and len(_earns(wsession, shop)) == 1


def test_processing_earns_when_the_shop_says_so(wsession, wc, run_jobs):
    shop = woo_shop(wsession, woocommerce_earn_status="processing")
    deliver(wc, shop, "order.created", order("processing", modified=T1))
    deliver(wc, shop, "order.updated", order("completed", modified=T2))
    run_jobs()
    assert _balance(wsession, shop) == 90 and len(_earns(wsession, shop)) == 1


def test_a_refund_before_completed_reverses_its_share_once_completed(wsession, wc, run_jobs):
    shop = woo_shop(wsession)
    refunds = [(801, "-26.00")]  # a quarter of the 104.00 total
    deliver(wc, shop, "order.updated", order("processing", modified=T1, refunds=refunds))
    run_jobs()
    assert _balance(wsession, shop) == 0
    deliver(wc, shop, "order.updated", order("completed", modified=T2, refunds=refunds))
    run_jobs()
    assert _balance(wsession, shop) == 90 - 23  # 90 x 26/104 = 22.5 -> 23 taken back (half up)


def test_partial_refunds_then_refunded_status_take_back_everything(wsession, wc, run_jobs):
    shop = woo_shop(wsession)
    deliver(wc, shop, "order.updated", order("completed", modified=T1))
    deliver(wc, shop, "order.updated", order("completed", modified=T2, refunds=[(801, "-52.00")]))
    run_jobs()
    assert _balance(wsession, shop) == 45
    deliver(wc, shop, "order.updated", order("refunded", modified=T3, refunds=[(801, "-52.00"), (802, "-52.00")]))
    run_jobs()
    assert _balance(wsession, shop) == 0


def test_a_deleted_refund_gives_its_points_back_on_the_next_save_of_the_order(wsession, wc, run_jobs):
    # Deleting a refund sends no webhook (WooCommerce saves nothing): the order's next state lists
    # its refunds without it.
    shop = woo_shop(wsession)
    deliver(wc, shop, "order.updated", order("completed", modified=T1))
    run_jobs()
    assert _balance(wsession, shop) == 90
    with_refund = order("completed", modified=T2, refunds=[(801, "-52.00")])
    deliver(wc, shop, "order.updated", with_refund)
    run_jobs()
    assert _balance(wsession, shop) == 45
    without = order("completed", modified=T3, customer_note="Deleted the refund")
    for _ in range(2):  # delivered twice: given back once
        deliver(wc, shop, "order.updated", without)
        run_jobs()
        assert _balance(wsession, shop) == 90
    deliver(wc, shop, "order.created", with_refund)  # the older state, late: the refund stays withdrawn
    run_jobs()
    assert _balance(wsession, shop) == 90
    customer = wsession.scalars(select(Customer).where(Customer.shop_id == shop.id)).one()
    entries = wsession.scalars(select(LedgerEntry.points).where(LedgerEntry.customer_id == customer.id)).all()
    assert sum(entries) == customer.points_balance == 90


@pytest.mark.parametrize("status", ["cancelled", "failed", "trash"])
def test_reversing_statuses_take_back_what_was_earned(wsession, wc, run_jobs, status):
    shop = woo_shop(wsession)
    deliver(wc, shop, "order.updated", order("completed", modified=T1))
    deliver(wc, shop, "order.updated", order(status, modified=T2))
    run_jobs()
    assert _balance(wsession, shop) == 0


def test_cancelled_then_restored_earns_again(wsession, wc, run_jobs):
    shop = woo_shop(wsession)
    deliver(wc, shop, "order.updated", order("completed", modified=T1))
    deliver(wc, shop, "order.deleted", {"id": 727})
    run_jobs()
    assert _balance(wsession, shop) == 0
    # order.deleted carries no time: it is dated when we received it, so the restoration the
    # store makes afterwards is dated after it, as it would be in a real store.
    restored_at = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    deliver(wc, shop, "order.restored", order("completed", modified=restored_at))
    run_jobs()
    assert _balance(wsession, shop) == 90
    assert len(_earns(wsession, shop)) == 2


def test_cancelled_back_to_completed_earns_again_but_a_stale_cancellation_does_not_undo_it(wsession, wc, run_jobs):
    shop = woo_shop(wsession)
    deliver(wc, shop, "order.updated", order("completed", modified=T1))
    deliver(wc, shop, "order.updated", order("cancelled", modified=T2))
    deliver(wc, shop, "order.updated", order("completed", modified=T3))
    run_jobs()
    assert _balance(wsession, shop) == 90
    # The T2 cancellation again (another webhook of ours, or reconciliation): older than T3.
    deliver(wc, shop, "order.created", order("cancelled", modified=T2))
    run_jobs()
    assert _balance(wsession, shop) == 90
    wsession.expire_all()
    assert wsession.scalars(select(Order.status).where(Order.shop_id == shop.id)).one() == "paid"


def test_a_guest_order_is_matched_to_an_account_by_billing_email(wsession, wc, run_jobs):
    shop = woo_shop(wsession)
    make_customer(wsession, shop, platform_customer_id="41", email="guest@example.com")
    wsession.commit()
    deliver(wc, shop, "order.updated", guest_order("Guest@Example.com", status="completed", modified=T1))
    run_jobs()
    assert _balance(wsession, shop, "41") == 90


def test_customer_created_makes_an_account(wsession, wc, run_jobs):
    shop = woo_shop(wsession)
    deliver(wc, shop, "customer.created", customer_json())
    run_jobs()
    wsession.expire_all()
    found = wsession.scalars(select(Customer).where(Customer.shop_id == shop.id)).one()
    assert (found.platform_customer_id, found.email) == ("26", "ada@example.com")
    assert found.points_balance == 50  # the default program's signup bonus


def test_a_billing_phone_too_long_to_keep_still_makes_the_account(wsession, wc, run_jobs):
    # WooCommerce's billing phone is free text with no length limit; the column holds 64. The
    # account and its signup bonus must not be lost (retried, then left unapplied) over it.
    shop = woo_shop(wsession)
    payload = customer_json()
    payload["billing"] = {**payload["billing"], "phone": "+44 20 7946 0958 / +44 7700 900123 / +44 7700 900456 / +44 7700 900789 (evenings)"}
    deliver(wc, shop, "customer.created", payload)
    run_jobs()
    wsession.expire_all()
    [row] = _rows(wsession, shop)
    assert (row.status, row.last_error) == ("processed", None)
    found = wsession.scalars(select(Customer).where(Customer.shop_id == shop.id)).one()
    assert (found.platform_customer_id, found.phone, found.points_balance) == ("26", None, 50)


def test_stored_secrets_are_encrypted(wsession):
    shop = woo_shop(wsession)
    assert "w3bh00k" not in shop.webhook_secret_enc
    assert token_cipher.decrypt(shop.webhook_secret_enc) == "w3bh00k-s3cret"


# --- orders in another currency (multi-currency plugins) -------------------------------------

def test_a_foreign_currency_order_earns_converted_and_one_without_a_rate_is_kept_unearned(wsession, wc, run_jobs):
    shop = woo_shop(wsession)  # a USD shop
    woocs = [{"id": 1, "key": "_woocs_order_rate", "value": "0.8"},
             {"id": 2, "key": "_woocs_order_base_currency", "value": "USD"}]
    deliver(wc, shop, "order.updated", order("completed", modified=T1, currency="EUR", meta_data=woocs))
    run_jobs()
    assert _balance(wsession, shop) == 112  # lines EUR 90 at 0.8 EUR per USD = USD 112.50

    deliver(wc, shop, "order.updated", order("completed", modified=T1, currency="EUR", id=728, customer_id=27))
    run_jobs()
    unconverted = _rows(wsession, shop)[-1]
    assert unconverted.status == "ignored" and "no exchange rate" in unconverted.last_error
    assert _balance(wsession, shop, "27") == 0
