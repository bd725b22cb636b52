"""A real `lojal worker` process is SIGKILLed while the award job is inside its transaction:
nothing of that transaction survives, and the re-run (the inbox sweeper, then any worker)
credits the order exactly once."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, func, select, text, update

from app.models import LedgerEntry, WebhookEvent
from jobs.inbox import sweep_inbox
from tests.app.web.shopify_helpers import deliver, shopify_shop
from tests.conftest import _DATABASE_URL
from tests.factories import make_customer
from tests.faults.conftest import kill_with_children, worker_process
from tests.faults.ledger_checks import assert_each_order_earned_once
from tests.integrations.shopify.samples import sample

ORDERS = 4
SAMPLE_CUSTOMER = "7390000000001"  # the customer in the order_paid sample
BLOCKED_JOB = """
    SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'
"""


def _wait_for(condition, what: str, attempts: int = 600):
    """Poll every 50 ms (a worker process needs a few seconds to start); fail naming what never happened."""
    for _ in range(attempts):
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen")


def test_worker_killed_inside_the_award_transaction_credits_once_on_the_rerun(fault_app, fsession, own_redis, drain):
    shop = shopify_shop(fsession)
    customer = make_customer(fsession, shop, platform_customer_id=SAMPLE_CUSTOMER, email="ana.silva@example.com")
    fsession.commit()
    client = fault_app.test_client()
    for n in range(ORDERS):
        response = deliver(client, shop.domain, "orders/paid", sample("order_paid", id=5840000200000 + n),
                           event_id=f"kill-{n}")
        assert response.json == {"status": "stored"}  # stored and enqueued on our Redis

    # Hold the customer's row lock: the worker's first job blocks on it inside its transaction.
    engine = create_engine(_DATABASE_URL, isolation_level="AUTOCOMMIT")
    blocker, watcher = engine.connect(), engine.connect()  # pg_stat_activity is frozen inside a transaction
    blocker.execute(text("BEGIN"))
    blocker.execute(text("SELECT id FROM customers WHERE id = :id FOR UPDATE"), {"id": customer.id})
    worker = worker_process(own_redis.url, "webhooks")
    stuck_pid = None
    try:
        stuck_pid = _wait_for(lambda: watcher.execute(text(BLOCKED_JOB)).scalar(), "a job blocking on the customer")
        kill_with_children(worker.pid)  # the worker and its work horse, mid-transaction
        worker.wait()
    finally:
        if worker.poll() is None:
            kill_with_children(worker.pid)
        blocker.execute(text("ROLLBACK"))  # the orphaned backend wakes, finds its client gone and rolls back
        if stuck_pid is not None:
            _wait_for(lambda: not watcher.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"),
                                                  {"pid": stuck_pid}).scalar(), "the dead worker's backend ending")
        blocker.close()
        watcher.close()
        engine.dispose()

    fsession.expire_all()
    earned = fsession.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.shop_id == shop.id))
    assert earned == 0  # the killed transaction left nothing behind

    fsession.execute(update(WebhookEvent).where(WebhookEvent.shop_id == shop.id)
                     .values(received_at=datetime.now(UTC) - timedelta(minutes=5)))
    fsession.commit()
    with fault_app.app_context():
        # The dead worker's started job; the ones it never reached still wait in the queue, unswept.
        assert sweep_inbox() >= 1  # (in a full run, other tests' old rows are swept too)
    drain()  # the sweeper's job and the ones the dead worker never reached: run once each
    assert_each_order_earned_once(fsession, shop.id, ORDERS)
