"""The webhook routes' fast path: the one-statement inbox insert (shop looked up in the same
statement, committed before the answer) and the pipelined RQ enqueue (the same job as RQ's own)."""
from __future__ import annotations

import json

import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import create_engine, delete, func, select

from app.extensions import redis_connection
from app.inbox import dispose_inbox_engine, inbox_engine, store_delivery
from app.models import Shop, WebhookEvent
from jobs.queues import _job_options, enqueue, queue
from tests.app.web import woocommerce_helpers
from app import create_app
from app.extensions import db
from tests.app.web.shopify_helpers import OLD_SECRET, SECRET, deliver, shopify_shop, sign
from tests.conftest import _DATABASE_URL, test_config
from tests.integrations.shopify.samples import sample


def _count(session, **where) -> int:
    session.expire_all()
    query = select(func.count()).select_from(WebhookEvent)
    for column, value in where.items():
        query = query.where(getattr(WebhookEvent, column) == value)
    return session.scalar(query)


@pytest.fixture(scope="module")
def queued_client(app):
    """Deliveries only stored and queued, as in production: also without REDIS_URL, where the
    default app would apply them inside the request (on fakeredis) before answering."""
    flask_app = create_app(test_config(SHOPIFY_API_KEY="key", SHOPIFY_API_SECRET=SECRET,
                                       SHOPIFY_OLD_API_SECRET=OLD_SECRET, RUN_JOBS_IN_PROCESS=False))
    yield flask_app.test_client()
    with flask_app.app_context():
        db.engine.dispose()
    dispose_inbox_engine(flask_app)


def test_a_stored_delivery_is_committed_before_the_answer(wsession, queued_client):
    shopify_client = queued_client
    shop = shopify_shop(wsession)
    response = deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid"), event_id="durable-1")
    assert response.json == {"status": "stored"}
    engine = create_engine(_DATABASE_URL)  # a connection of its own: sees only what is committed
    try:
        with engine.connect() as conn:
            row = conn.execute(select(WebhookEvent.payload, WebhookEvent.status, WebhookEvent.attempts,
                                      WebhookEvent.received_at).where(WebhookEvent.shop_id == shop.id)).one()
    finally:
        engine.dispose()
    assert row.payload == sample("order_paid") and (row.status, row.attempts) == ("received", 0)
    assert row.received_at is not None


def test_the_shop_is_looked_up_afresh_for_each_delivery_purge_and_reinstall(wsession, queued_client):
    shopify_client = queued_client
    shop = shopify_shop(wsession)
    domain, first_id = shop.domain, shop.id
    assert deliver(shopify_client, domain, "orders/paid", sample("order_paid"), event_id="a").json["status"] == "stored"
    # shop/redact purged it: the next delivery finds no shop, as if it had never been installed.
    wsession.execute(delete(Shop).where(Shop.id == first_id))
    wsession.commit()
    purged = deliver(shopify_client, domain, "orders/paid", sample("order_paid"), event_id="b")
    assert purged.json == {"status": "ignored"}
    # Installed again: a new shop row under the same domain gets the next delivery, with its new id.
    again = shopify_shop(wsession)
    again.domain = domain
    wsession.commit()
    assert deliver(shopify_client, domain, "orders/paid", sample("order_paid"), event_id="c").json["status"] == "stored"
    assert _count(wsession, shop_id=again.id) == 1 and _count(wsession, shop_id=first_id) == 0


def test_the_same_domain_on_another_platform_is_not_this_shop(wsession, shopify_client):
    shop = shopify_shop(wsession)
    shop.platform = "woocommerce"  # only a Shopify shop may receive Shopify webhooks
    wsession.commit()
    assert deliver(shopify_client, shop.domain, "orders/paid", sample("order_paid")).json == {"status": "ignored"}
    assert _count(wsession, shop_id=shop.id) == 0


def test_json_python_reads_but_postgresql_refuses_is_400_and_stores_nothing(wsession, shopify_client):
    shop = shopify_shop(wsession)
    for body in (b'{"id": 1, "note": "nul \\u0000 inside"}', b'{"id": 1, "total": NaN}'):
        response = deliver(shopify_client, shop.domain, "orders/paid", {}, body=body, X_Shopify_Hmac_Sha256=sign(body))
        assert response.status_code == 400 and response.json["error"]["code"] == "malformed_json", body
    assert _count(wsession, shop_id=shop.id) == 0


def test_a_signed_body_that_is_not_utf8_is_400(wsession, shopify_client):
    shop = shopify_shop(wsession)
    body = b'{"id": "\xff"}'
    response = deliver(shopify_client, shop.domain, "orders/paid", {}, body=body, X_Shopify_Hmac_Sha256=sign(body))
    assert response.status_code == 400 and response.json["error"]["code"] == "malformed_json"
    assert _count(wsession, shop_id=shop.id) == 0


def test_woocommerce_json_postgresql_refuses_is_acknowledged_and_not_stored(wsession, shopify_client):
    shop = woocommerce_helpers.woo_shop(wsession)
    body = json.dumps({"id": 9, "date_modified_gmt": "2026-03-01T00:00:00", "note": "\u0000"}).encode()
    response = woocommerce_helpers.deliver(shopify_client, shop, "order.updated", {}, body=body)
    assert response.status_code == 200 and response.json == {"status": "ignored"}
    assert _count(wsession, shop_id=shop.id) == 0


def test_store_delivery_deduplicates_per_shop_and_platform(wsession, webhook_app):
    shop, other = shopify_shop(wsession), shopify_shop(wsession)
    stored = [store_delivery(webhook_app, platform="shopify", shop_domain=s.domain, topic="orders/paid", event_key="k",
                             body='{"id": 1}', headers={}) for s in (shop, other, shop)]
    assert [d.shop_id for d in stored] == [shop.id, other.id, shop.id]
    assert stored[0].event_id and stored[1].event_id and stored[2].event_id is None
    by_id = store_delivery(webhook_app, platform="shopify", shop_id=shop.id, topic="orders/paid", event_key="k",
                           body='{"id": 1}', headers={})
    assert (by_id.shop_id, by_id.event_id) == (shop.id, None)


def test_the_inbox_pool_is_autocommit_and_disposable(webhook_app):
    engine = inbox_engine(webhook_app)
    assert inbox_engine(webhook_app) is engine  # one per app
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection.autocommit  # each statement commits as it answers
    dispose_inbox_engine(webhook_app)
    assert engine.pool.checkedin() == 0


def test_the_pipelined_enqueue_writes_the_job_rq_itself_writes(worker_app):
    with worker_app.app_context():
        client = redis_connection.client(worker_app)
        ours = enqueue("jobs.inbox.process_webhook_event", 41, queue_name="webhooks", job_id="webhook-event-41")
        q = queue("webhooks")
        theirs = q.enqueue_call("jobs.inbox.process_webhook_event", args=(42,), job_id="webhook-event-42",
                                **_job_options(worker_app, None))
        fields = {}
        for job in (ours, theirs):
            stored = client.hgetall(f"rq:job:{job.id}")
            fields[job.id] = {k: v for k, v in stored.items()
                              if k not in (b"created_at", b"enqueued_at", b"data", b"description")}
        assert fields["webhook-event-41"] == fields["webhook-event-42"]  # status, timeout, TTLs, retries, origin
        fetched = Job.fetch("webhook-event-41", connection=client, serializer=q.serializer)
        assert (fetched.func_name, fetched.args, fetched.get_status()) == ("jobs.inbox.process_webhook_event", [41],
                                                                           "queued")
        assert fetched.retries_left == worker_app.config["JOB_RETRIES"] and fetched.retry_intervals[0] == 10
        assert q.job_ids[-2:] == ["webhook-event-41", "webhook-event-42"]
        assert q.key in {queue.key for queue in Queue.all(connection=client, serializer=q.serializer)}
