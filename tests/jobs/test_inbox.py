"""The inbox job: a stored webhook row becomes points exactly once, whatever is replayed."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import text, update

from app.extensions import redis_connection
from app.inbox import store_inbound_event
from app.models import Customer, WebhookEvent
from jobs.inbox import enqueue_processing, sweep_inbox
from jobs.queues import queue
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


def _stale(session, event_id):
    session.execute(update(WebhookEvent).where(WebhookEvent.id == event_id)
                    .values(received_at=datetime.now(UTC) - timedelta(minutes=5)))
    session.commit()


def _fail_transiently(monkeypatch):
    """Every apply fails as a serialization failure would: raised by PostgreSQL itself (SQLSTATE
    40001), an error that may pass on the next attempt."""
    def apply_event(session, shop_id, event):
        session.execute(text("DO $$ BEGIN RAISE EXCEPTION 'could not serialize access' "
                             "USING ERRCODE = 'serialization_failure'; END $$"))
    monkeypatch.setattr("jobs.inbox.apply_event", apply_event)


def _queued_ids(worker_app):
    return queue("webhooks", worker_app).get_job_ids()


@pytest.mark.parametrize("topic, payload, reason", [
    # The demo adapter does not bound amounts or text as the platforms' parsers do, so these
    # reach the database and fail there, the same way on every attempt. (A NUL in text never
    # gets this far: the inbox's JSONB refuses it when the delivery is stored.)
    ("orders/cancelled", PAID | {"id": 9004, "subtotal": "1e20", "cancelled_at": "2026-03-02T10:00:00+00:00"},
     "NumericValueOutOfRange"),
    ("orders/paid", PAID | {"id": 9005, "subtotal": "3000000000", "total": "3000000000"}, "NumericValueOutOfRange"),
    ("orders/paid", PAID | {"id": 9002, "currency": "DOLLARS"}, "StringDataRightTruncation"),
])
def test_data_the_database_refuses_is_ignored_at_once_with_a_reason_free_of_shopper_data(
        wsession, run_jobs, worker_app, caplog, topic, payload, reason):
    # Retried JOB_RETRIES times (a traceback each) and then left "received"; and SQLAlchemy
    # quotes a failed statement's parameters (here the order's email) in the exception text.
    shop = make_shop(wsession)
    event_id = _store(wsession, shop, key=f"evt-data-{payload['id']}", topic=topic, payload=payload)
    enqueue_processing(event_id)
    run_jobs()
    wsession.expire_all()
    row = wsession.get(WebhookEvent, event_id)
    assert (row.status, row.attempts) == ("ignored", 1) and row.processed_at is not None
    assert reason in row.last_error and "[SQL" not in row.last_error
    assert "ana@example.com" not in row.last_error and "ana@example.com" not in caplog.text
    webhooks = queue("webhooks", worker_app)
    assert f"webhook-event-{event_id}" not in webhooks.scheduled_job_registry.get_job_ids()
    assert f"webhook-event-{event_id}" not in webhooks.failed_job_registry.get_job_ids()
    assert wsession.query(Customer).filter_by(shop_id=shop.id).count() == 0  # rolled back


def test_sweeper_leaves_a_failing_row_to_its_jobs_back_off(wsession, run_jobs, worker_app, monkeypatch):
    _fail_transiently(monkeypatch)
    shop = make_shop(wsession)
    event_id = _store(wsession, shop, key="evt-poison")
    enqueue_processing(event_id)
    run_jobs()  # fails once; RQ schedules the retry after its back-off
    job_id = f"webhook-event-{event_id}"
    job = Job.fetch(job_id, connection=redis_connection.client(worker_app), serializer=JSONSerializer)
    assert job.get_status() == "scheduled"
    wsession.expire_all()
    assert wsession.get(WebhookEvent, event_id).last_error.startswith("OperationalError")  # kept for inspection
    _stale(wsession, event_id)
    sweep_inbox()
    assert job_id not in _queued_ids(worker_app)


def test_sweeper_does_not_queue_a_row_again_while_its_job_waits_in_the_queue(wsession, run_jobs, worker_app):
    # A backlog older than SWEEP_AFTER (a burst): each sweep pushed every waiting job once more.
    shop = make_shop(wsession)
    event_id = _store(wsession, shop, key="evt-backlog")
    enqueue_processing(event_id)
    _stale(wsession, event_id)
    sweep_inbox()
    sweep_inbox()
    assert _queued_ids(worker_app).count(f"webhook-event-{event_id}") == 1
    run_jobs()
    assert _points(wsession, shop) == 42


def test_sweeper_does_not_rerun_a_row_whose_retries_are_spent(wsession, run_jobs, worker_app, monkeypatch):
    _fail_transiently(monkeypatch)
    shop = make_shop(wsession)
    event_id = _store(wsession, shop, key="evt-poison-2")
    job_id = f"webhook-event-{event_id}"
    connection = redis_connection.client(worker_app)
    enqueue_processing(event_id)
    run_jobs()
    for _ in range(worker_app.config["JOB_RETRIES"]):
        queue("webhooks", worker_app).scheduled_job_registry.requeue(job_id)  # the back-off is over
        run_jobs()
    assert job_id in queue("webhooks", worker_app).failed_job_registry.get_job_ids()
    connection.delete(Job.key_for(job_id))  # the failed job outlived JOB_FAILURE_TTL
    queue("webhooks", worker_app).failed_job_registry.remove(job_id)
    _stale(wsession, event_id)
    sweep_inbox()
    assert job_id not in _queued_ids(worker_app)
    wsession.expire_all()
    assert wsession.get(WebhookEvent, event_id).attempts == worker_app.config["JOB_RETRIES"] + 1


def test_a_row_whose_worker_keeps_dying_on_it_is_swept_at_most_job_retries_times(wsession, worker_app):
    # A payload that kills the worker running it (out of memory, say) leaves its job `started`
    # and the row untouched: re-enqueued by every sweep with a fresh retry budget, it would take
    # a worker down every minute for ever. Each such sweep counts as an attempt.
    shop = make_shop(wsession)
    event_id = _store(wsession, shop, key="evt-worker-killer")
    job_id = f"webhook-event-{event_id}"
    connection = redis_connection.client(worker_app)
    swept = 0
    for _ in range(worker_app.config["JOB_RETRIES"] + 2):
        enqueue_processing(event_id)
        connection.lrem(queue("webhooks", worker_app).key, 0, job_id)  # a worker took it ...
        Job.fetch(job_id, connection=connection, serializer=JSONSerializer).set_status("started")  # ... and died
        _stale(wsession, event_id)
        sweep_inbox()
        swept += job_id in _queued_ids(worker_app)
    assert swept == worker_app.config["JOB_RETRIES"]
    wsession.expire_all()
    row = wsession.get(WebhookEvent, event_id)
    assert row.attempts == worker_app.config["JOB_RETRIES"] + 1 and "started" in row.last_error


def test_the_sweeper_leaves_a_started_job_whose_row_is_held_to_it(wsession, worker_app):
    # Locked: a live worker is processing it (or its dead connection's lock is not yet released).
    # The sweeper neither waits for that lock nor pushes a copy that would only find it busy.
    from sqlalchemy import create_engine, text

    from tests.conftest import _DATABASE_URL

    shop = make_shop(wsession)
    event_id = _store(wsession, shop, key="evt-held")
    job_id = f"webhook-event-{event_id}"
    connection = redis_connection.client(worker_app)
    enqueue_processing(event_id)
    connection.lrem(queue("webhooks", worker_app).key, 0, job_id)
    Job.fetch(job_id, connection=connection, serializer=JSONSerializer).set_status("started")
    _stale(wsession, event_id)
    engine = create_engine(_DATABASE_URL)
    try:
        with engine.begin() as holder:
            holder.execute(text("SELECT id FROM webhook_events WHERE id = :id FOR UPDATE"), {"id": event_id})
            sweep_inbox()
    finally:
        engine.dispose()
    assert job_id not in _queued_ids(worker_app)
    wsession.expire_all()
    assert wsession.get(WebhookEvent, event_id).attempts == 0
