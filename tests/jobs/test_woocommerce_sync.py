"""WooCommerce sync and upkeep jobs on a real RQ worker: progress, slices, Retry-After, a revoked key."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import responses
from responses import matchers
from rq.job import Job

from app.extensions import redis_connection
from app.models import AuditLog, Customer, LedgerEntry, Shop
from jobs import woocommerce_sync
from jobs.queues import queue
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop, wc_order
from tests.jobs.shopify_jobs import assert_delay, release_scheduled, scheduled_jobs

Q = "maintenance"


@pytest.fixture
def shop(wsession):
    shop = make_wc_shop(wsession, backfill_points=True)
    shop.installed_at = datetime.now(UTC) - timedelta(days=1)
    wsession.commit()
    return shop


def orders_page(store, shop, orders, *, number, total=None, **extra):
    headers = {"X-WP-Total": str(total)} if total is not None else {}
    store.get(api_url(shop, "orders"), json=orders, headers=headers,
              match=[matchers.query_param_matcher({"page": str(number)}, strict_match=False)], **extra)


def fetch(app, job_id):
    return Job.fetch(job_id, connection=redis_connection.client(app), serializer=queue(Q, app).serializer)


def balances(session, shop):
    session.expire_all()
    return {c.platform_customer_id: c.points_balance for c in session.query(Customer).filter_by(shop_id=shop.id)}


def status_of(session, shop):
    session.expire_all()
    return session.get(Shop, shop.id).status


def test_backfill_reports_progress_and_continues_in_slices(wsession, run_jobs, worker_app, shop, store, monkeypatch):
    monkeypatch.setattr(woocommerce_sync, "PAGES_PER_JOB", 1)
    monkeypatch.setattr(woocommerce_sync.sync, "PAGE_SIZE", 2)
    orders_page(store, shop, [wc_order(601, customer_id=21, total="10.00"), wc_order(602, customer_id=22, total="20.00")],
                number=1, total=3)
    orders_page(store, shop, [wc_order(603, customer_id=21, total="30.00")], number=2, total=3)

    job = woocommerce_sync.enqueue_backfill(shop.id)
    assert job.rate_limit_key == f"platform-api:{shop.id}"
    run_jobs()
    assert fetch(worker_app, job.id).return_value() == "paused"
    assert fetch(worker_app, job.id).meta == {"done": 2, "total_estimate": 3, "mode": "backfill", "skipped": 0}
    [later] = scheduled_jobs(worker_app, Q)
    assert later.kwargs["run"]["page"] == 2 and later.rate_limit_key == f"platform-api:{shop.id}"

    release_scheduled(worker_app, Q)
    run_jobs()
    assert fetch(worker_app, later.id).return_value() == "done"
    assert fetch(worker_app, later.id).meta["done"] == 3
    assert balances(wsession, shop) == {"21": 40, "22": 20}
    wsession.expire_all()
    assert wsession.get(Shop, shop.id).orders_synced_at is not None


def test_429_reschedules_the_slice_when_the_store_says(wsession, run_jobs, worker_app, shop, store):
    store.get(api_url(shop, "orders"), status=429, headers={"Retry-After": "30"})
    job = woocommerce_sync.enqueue_backfill(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).return_value() == "throttled"
    [later] = scheduled_jobs(worker_app, Q)
    assert later.kwargs["throttle_waits"] == 1 and later.kwargs["run"]["page"] == 1
    assert_delay(worker_app, Q, later, 30.0)


def test_a_5xx_goes_to_rqs_retry_and_the_rerun_credits_once(wsession, run_jobs, worker_app, shop, store, monkeypatch):
    monkeypatch.setattr(woocommerce_sync.sync, "PAGE_SIZE", 1)
    orders_page(store, shop, [wc_order(611, customer_id=23, total="10.00")], number=1)
    orders_page(store, shop, [], number=2, status=503)
    job = woocommerce_sync.enqueue_backfill(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).get_status() == "scheduled"  # RQ's back-off: same slice again
    store.replace(responses.GET, api_url(shop, "orders"), json=[])
    orders_page(store, shop, [wc_order(611, customer_id=23, total="10.00")], number=1)
    release_scheduled(worker_app, Q)
    run_jobs()
    assert balances(wsession, shop) == {"23": 10}
    assert wsession.query(LedgerEntry).filter_by(shop_id=shop.id, kind="earn").count() == 1


def test_a_revoked_key_mid_sync_marks_the_store_disconnected_and_stops(wsession, run_jobs, worker_app, shop, store,
                                                                       monkeypatch):
    monkeypatch.setattr(woocommerce_sync.sync, "PAGE_SIZE", 1)
    orders_page(store, shop, [wc_order(621, customer_id=24, total="10.00")], number=1, total=5)
    orders_page(store, shop, [], number=2, status=401)
    job = woocommerce_sync.enqueue_backfill(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).return_value() == "disconnected"
    assert scheduled_jobs(worker_app, Q) == []  # no retry, no continuation
    assert status_of(wsession, shop) == "disconnected"
    assert balances(wsession, shop) == {"24": 10}  # what was applied stays
    assert wsession.query(AuditLog).filter_by(shop_id=shop.id, action="shop.disconnected").count() == 1

    later = woocommerce_sync.enqueue_reconcile(shop.id)  # every job now leaves the store alone
    calls = len(store.calls)
    run_jobs()
    assert fetch(worker_app, later.id).return_value() == "skipped" and len(store.calls) == calls


def test_reconcile_job_credits_a_missed_order_once(wsession, run_jobs, worker_app, shop, store):
    shop.orders_synced_at = datetime.now(UTC) - timedelta(hours=1)
    wsession.commit()
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    orders_page(store, shop, [wc_order(631, customer_id=25, total="25.00", created=created)], number=1)
    for _ in range(2):
        job = woocommerce_sync.enqueue_reconcile(shop.id)
        run_jobs()
        assert fetch(worker_app, job.id).return_value() == "done"
    assert balances(wsession, shop) == {"25": 25}
    assert wsession.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 1


def test_reconcile_first_reads_the_stores_currency_so_its_orders_are_not_taken_as_foreign(
        wsession, run_jobs, worker_app, shop, store):
    # The shop's currency is stale (a store connected before Lojal read it, or the merchant
    # switched the store to NOK): its NOK orders have no exchange rate and would be refused.
    shop.orders_synced_at = datetime.now(UTC) - timedelta(hours=1)
    wsession.commit()
    store.get(api_url(shop, "settings/general/woocommerce_currency"), json={"value": "NOK"})
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    order = {**wc_order(632, customer_id=26, total="300.00", created=created), "currency": "NOK"}
    orders_page(store, shop, [order], number=1)
    job = woocommerce_sync.enqueue_reconcile(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).return_value() == "done"
    wsession.expire_all()
    assert wsession.get(Shop, shop.id).currency == "NOK"
    assert balances(wsession, shop) == {"26": 300}


def test_reconcile_goes_on_with_the_shops_currency_when_the_store_cannot_say(
        wsession, run_jobs, worker_app, shop, store):
    shop.orders_synced_at = datetime.now(UTC) - timedelta(hours=1)
    wsession.commit()
    store.get(api_url(shop, "settings/general/woocommerce_currency"), status=503)
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    orders_page(store, shop, [wc_order(633, customer_id=27, total="40.00", created=created)], number=1)
    job = woocommerce_sync.enqueue_reconcile(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).return_value() == "done"
    wsession.expire_all()
    assert wsession.get(Shop, shop.id).currency == "USD" and balances(wsession, shop) == {"27": 40}


def test_check_webhooks_job_repairs_and_a_401_disconnects(wsession, run_jobs, worker_app, shop, store):
    store.get(api_url(shop, "webhooks"), json=[])
    store.post(api_url(shop, "webhooks"), json={"id": 1}, status=201)
    job = woocommerce_sync.enqueue_check_webhooks(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).return_value() == "repaired"
    assert sum(c.request.method == "POST" for c in store.calls) == 6

    store.replace(responses.GET, api_url(shop, "webhooks"), status=401, json={})
    job = woocommerce_sync.enqueue_check_webhooks(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).return_value() == "disconnected"
    assert status_of(wsession, shop) == "disconnected"


def test_reconcile_all_enqueues_upkeep_for_active_woocommerce_shops(wsession, worker_app, shop):
    shop.orders_synced_at = datetime.now(UTC) - timedelta(hours=1)
    never_synced = make_wc_shop(wsession)
    gone = make_wc_shop(wsession)
    gone.status = "disconnected"
    wsession.commit()
    woocommerce_sync.reconcile_all_shops()
    jobs = [(job.func_name, job.args[0]) for job in queue(Q, worker_app).get_jobs()]
    assert ("jobs.woocommerce_sync.reconcile_orders", shop.id) in jobs
    assert ("jobs.woocommerce_sync.check_webhooks", shop.id) in jobs
    assert ("jobs.woocommerce_sync.check_webhooks", never_synced.id) in jobs
    assert ("jobs.woocommerce_sync.reconcile_orders", never_synced.id) not in jobs
    assert all(shop_id != gone.id for _, shop_id in jobs)
    queue(Q, worker_app).empty()  # other tests' shops: not this test's business
