"""PostgreSQL connections dropped under the app (failover, restart, an admin's kill): a request
either succeeds on a fresh connection (pool pre-ping) or fails with a clean 503 JSON, and the
next one recovers. Only this test database's own backends are terminated."""
from __future__ import annotations

import threading
import time

from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.orm import Session

from app import create_app
from app.extensions import db
from app.inbox import store_inbound_event
from app.models import WebhookEvent
from tests.app.web.shopify_helpers import deliver, shopify_shop
from tests.conftest import _DATABASE_URL, test_config
from tests.faults.conftest import built_app
from tests.ports import free_port
from tests.integrations.shopify.samples import sample

TERMINATE_OTHERS = """
    SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
"""
WAITING_ON_A_LOCK = """
    SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
"""
UNAVAILABLE = {"code": "database_unavailable", "message": "The database is unavailable; retry shortly."}


def _stored(session, shop_id: int) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.shop_id == shop_id))


def test_connections_dropped_between_requests_are_replaced_by_pre_ping(fault_app, fsession):
    shop = shopify_shop(fsession)
    shop_id, domain = shop.id, shop.domain
    fsession.close()
    client = fault_app.test_client()
    assert deliver(client, domain, "orders/paid", sample("order_paid", id=1), event_id="before").status_code == 200

    with create_engine(_DATABASE_URL, isolation_level="AUTOCOMMIT").connect() as admin:
        assert admin.execute(text(TERMINATE_OTHERS)).scalar() >= 1  # the app's pooled connection among them

    response = deliver(client, domain, "orders/paid", sample("order_paid", id=2), event_id="after")
    assert response.status_code == 200 and response.json == {"status": "stored"}
    assert _stored(fsession, shop_id) == 2


def test_connection_dropped_mid_request_is_a_clean_503_and_the_next_request_recovers(fault_app, fsession):
    shop = shopify_shop(fsession)
    shop_id, domain = shop.id, shop.domain
    fsession.close()
    engine = create_engine(_DATABASE_URL)
    blocker = Session(bind=engine.connect())
    admin = engine.connect().execution_options(isolation_level="AUTOCOMMIT")  # sees pg_stat_activity afresh
    # An uncommitted row with the same event key: the request's insert waits on it, mid-transaction.
    store_inbound_event(blocker, shop_id=shop_id, platform="shopify", topic="orders/paid", event_key="orders/paid:contended",
                        payload={"id": 0})
    responses = []
    request = threading.Thread(target=lambda: responses.append(
        deliver(fault_app.test_client(), domain, "orders/paid", sample("order_paid", id=3), event_id="contended")))
    request.start()
    try:
        for _ in range(400):
            pid = admin.execute(text(WAITING_ON_A_LOCK)).scalar()
            if pid:
                break
            time.sleep(0.025)
        assert pid, "the request never reached its insert"
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        request.join()
    finally:
        blocker.rollback()
        blocker.close()
        admin.close()
        engine.dispose()

    [response] = responses
    assert response.status_code == 503 and response.json == {"error": UNAVAILABLE}
    assert response.headers["Retry-After"] == "1"
    again = deliver(fault_app.test_client(), domain, "orders/paid", sample("order_paid", id=3), event_id="contended")
    assert again.status_code == 200 and again.json == {"status": "stored"}  # Shopify's retry lands
    assert _stored(fsession, shop_id) == 1


def test_database_down_is_a_clean_503(app):
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/lojal_nowhere"  # nothing listens there
    down_app = create_app(test_config(DATABASE_URL=nowhere, SHOPIFY_API_KEY="key", SHOPIFY_API_SECRET="hush"))
    response = deliver(down_app.test_client(), "any.myshopify.com", "orders/paid", sample("order_paid"))
    assert response.status_code == 503 and response.json == {"error": UNAVAILABLE}


def test_a_workers_job_on_a_dropped_connection_runs_again_on_a_fresh_one(fault_app, fsession):
    """Workers skip pre-ping (app.extensions.use_worker_engine): the job that finds its pooled
    connection dead is re-run at once by jobs.context.app_job and credits the order once."""
    from app.extensions import use_worker_engine
    from jobs.inbox import process_webhook_event
    from tests.faults.ledger_checks import assert_each_order_earned_once

    shop_id = shopify_shop(fsession).id
    ids = [store_inbound_event(fsession, shop_id=shop_id, platform="shopify", topic="orders/paid",
                               event_key=f"drop-{n}", payload=sample("order_paid", id=5840000300000 + n))
           for n in range(2)]
    fsession.commit()
    fsession.close()
    with built_app(REDIS_URL=fault_app.config["REDIS_URL"], RUN_JOBS_IN_PROCESS=False) as worker_app:
        use_worker_engine(worker_app)
        with worker_app.app_context():
            assert db.engine.pool._pre_ping is False
            assert process_webhook_event(ids[0]) == "applied"  # leaves its connection in the pool
            with create_engine(_DATABASE_URL, isolation_level="AUTOCOMMIT").connect() as admin:
                assert admin.execute(text(TERMINATE_OTHERS)).scalar() >= 1
            assert process_webhook_event(ids[1]) == "applied"
    assert_each_order_earned_once(fsession, shop_id, 2)


# --- GET /widget/v1/me: its own pool without pre-ping (widgets.reads) --------------------------

def _widget_shopper(fsession):
    from tests.widgets.helpers import shopper, token, widget_shop

    shop, secret = widget_shop(fsession)
    kari = shopper(fsession, shop, points=420)
    headers = {"Authorization": f"Bearer {token(shop, secret, kari)}"}
    fsession.close()
    return headers


def test_me_on_a_dropped_connection_is_read_again_on_a_fresh_one(fault_app, fsession):
    from widgets.reads import widget_reads

    headers = _widget_shopper(fsession)
    client = fault_app.test_client()
    assert client.get("/widget/v1/me", headers=headers).json["points_balance"] == 420
    reads = widget_reads(fault_app)
    assert reads.engine.pool._pre_ping is False and reads.engine.pool.checkedin() >= 1  # kept for the next /me

    with create_engine(_DATABASE_URL, isolation_level="AUTOCOMMIT").connect() as admin:
        assert admin.execute(text(TERMINATE_OTHERS)).scalar() >= 1  # the widget pool's connection among them

    retired = reads.engine
    response = client.get("/widget/v1/me", headers=headers)
    assert response.status_code == 200 and response.json["points_balance"] == 420
    assert reads.engine is retired  # dispose() swaps the pool, not the engine
    assert client.get("/widget/v1/me", headers=headers).status_code == 200


def test_me_with_the_database_down_is_a_clean_503(fault_app, fsession):
    headers = _widget_shopper(fsession)
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/lojal_nowhere"
    down_app = create_app(test_config(DATABASE_URL=nowhere))
    response = down_app.test_client().get("/widget/v1/me", headers=headers)
    assert response.status_code == 503 and response.json == {"error": UNAVAILABLE}
    assert response.headers["Retry-After"] == "1"


def test_me_whose_retry_finds_no_database_is_a_clean_503_and_then_recovers(fault_app, fsession):
    """Its pooled connection dead and no new connection accepted: no third try, a 503; once the
    database takes connections again, the next /me answers."""
    headers = _widget_shopper(fsession)
    client = fault_app.test_client()
    assert client.get("/widget/v1/me", headers=headers).status_code == 200  # leaves a pooled connection
    database = make_url(_DATABASE_URL).database
    # From another database: PostgreSQL refuses to close the one the session is connected to.
    admin_engine = create_engine(make_url(_DATABASE_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as admin:
        admin.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))  # even for superusers
        try:
            assert admin.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                      "WHERE datname = :name"), {"name": database}).scalar() >= 1
            response = client.get("/widget/v1/me", headers=headers)
        finally:
            admin.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
    admin_engine.dispose()
    assert response.status_code == 503 and response.json == {"error": UNAVAILABLE}
    assert response.headers["Retry-After"] == "1"
    assert client.get("/widget/v1/me", headers=headers).json["points_balance"] == 420


def test_the_widget_read_pool_starts_empty_in_a_forked_process(fault_app, fsession):
    """gunicorn forks its workers from a preloaded app: a connection opened before the fork is
    never shared with the child (the pid the pool was made in is checked on every read)."""
    from widgets.reads import widget_reads

    headers = _widget_shopper(fsession)
    client = fault_app.test_client()
    assert client.get("/widget/v1/me", headers=headers).status_code == 200
    reads = widget_reads(fault_app)
    parents_pool = reads.engine.pool
    assert parents_pool.checkedin() == 1
    reads.pid = -1  # as seen from a child: not the pid the pool was made in
    assert client.get("/widget/v1/me", headers=headers).json["points_balance"] == 420
    assert reads.engine.pool is not parents_pool and parents_pool.checkedin() == 1  # left alone, not closed
    parents_pool.dispose()
