"""The inbox job: a stored webhook row becomes points exactly once, whatever is replayed."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.inbox import store_inbound_event
from app.models import Customer, WebhookEvent
from jobs.inbox import enqueue_processing, sweep_inbox
from tests.factories import make_shop

PAID = {"id": 9001, "subtotal": "42.50", "total": "50.00", "currency": "USD", "paid_at": "2026-03-01T10:00:00+00:00",
        "customer": {"id": 77, "email": "ana@example.com", "first_name": "Ana"}}


def _store(session, shop, key="evt-1", topic="orders/paid", payload=PAID):
    event_id = store_inbound_event(session, shop_id=shop.id, platform="demo", topic=topic, event_key=key, payload=payload)
    session.commit()
    return event_id


def _points(session, shop):
    session.expire_all()
    return session.query(Customer).filter_by(shop_id=shop.id, platform_customer_id="77").one().points_balance


def test_stored_event_is_processed_by_a_worker(wsession, run_jobs):
    shop = make_shop(wsession)
    event_id = _store(wsession, shop)
    enqueue_processing(event_id)
    run_jobs()
    assert _points(wsession, shop) == 42
    row = wsession.get(WebhookEvent, event_id)
    assert row.status == "processed" and row.processed_at is not None and row.attempts == 1


def test_duplicate_delivery_is_stored_once(wsession):
    shop = make_shop(wsession)
    assert _store(wsession, shop, key="same") is not None
    assert _store(wsession, shop, key="same") is None
    assert wsession.query(WebhookEvent).filter_by(shop_id=shop.id).count() == 1


def test_reprocessing_a_processed_event_changes_nothing(wsession, run_jobs):
    shop = make_shop(wsession)
    event_id = _store(wsession, shop)
    enqueue_processing(event_id)
    run_jobs()
    enqueue_processing(event_id)
    run_jobs()
    assert _points(wsession, shop) == 42


def test_same_order_in_two_deliveries_earns_once(wsession, run_jobs):
    shop = make_shop(wsession)
    for key in ("delivery-a", "delivery-b"):  # a platform that re-sends with a new key
        enqueue_processing(_store(wsession, shop, key=key))
    run_jobs()
    assert _points(wsession, shop) == 42


def test_unknown_topic_is_kept_as_ignored_and_not_retried(wsession, run_jobs):
    shop = make_shop(wsession)
    event_id = _store(wsession, shop, topic="products/update", payload={"id": 1})
    enqueue_processing(event_id)
    run_jobs()
    wsession.expire_all()
    row = wsession.get(WebhookEvent, event_id)
    assert row.status == "ignored" and "products/update" in row.last_error


def test_malformed_payload_is_ignored_with_the_reason(wsession, run_jobs):
    shop = make_shop(wsession)
    event_id = _store(wsession, shop, payload={"id": 5, "subtotal": "lots"})
    enqueue_processing(event_id)
    run_jobs()
    wsession.expire_all()
    assert wsession.get(WebhookEvent, event_id).status == "ignored"


def test_sweeper_enqueues_rows_left_unprocessed(wsession, run_jobs):
    shop = make_shop(wsession)
    event_id = _store(wsession, shop)  # stored, but its enqueue "was lost" (Redis down)
    wsession.execute(update(WebhookEvent).where(WebhookEvent.id == event_id)
                     .values(received_at=datetime.now(UTC) - timedelta(minutes=5)))
    wsession.commit()
    assert sweep_inbox() >= 1
    run_jobs()
    assert _points(wsession, shop) == 42


def test_sweeper_leaves_fresh_rows_to_their_own_job(wsession, run_jobs):
    shop = make_shop(wsession)
    event_id = _store(wsession, shop)
    sweep_inbox()  # other tests' stale rows may be swept; this fresh one must not be
    run_jobs()
    wsession.expire_all()
    row = wsession.get(WebhookEvent, event_id)
    assert row.status == "received" and row.processed_at is None and row.attempts == 0
