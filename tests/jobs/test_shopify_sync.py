"""The backfill / reconciliation jobs: slices, continuations at Shopify's pace, progress, retries."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from rq.job import Job

from app.extensions import redis_connection
from app.models import Customer, LedgerEntry, Order, Shop
from integrations.shopify import sync as shopify_sync_module
from jobs import shopify_sync
from jobs.queues import queue
from tests.integrations.shopify.admin_api import (
    line_item, make_shopify_shop, no_lines, ok, order_node, orders_page, refund_line, refund_node, throttled,
)
from tests.jobs.shopify_jobs import assert_delay, release_scheduled, scheduled_jobs

Q = "maintenance"


@pytest.fixture
def shop(wsession):
    shop = make_shopify_shop(wsession, backfill_points=True)
    shop.installed_at = datetime.now(UTC) - timedelta(days=1)
    wsession.commit()
    return shop


@pytest.fixture
def make_other(wsession):
    def build(**fields):
        other = make_shopify_shop(wsession)
        for key, value in fields.items():
            setattr(other, key, value)
        return other
    return build


def pages():
    return ([order_node(8001, customer_id=51, subtotal="10.00"), order_node(8002, customer_id=52, subtotal="20.00")],
            [order_node(8003, customer_id=51, subtotal="30.00")])


def fetch(app, job_id):
    return Job.fetch(job_id, connection=redis_connection.client(app), serializer=queue(Q, app).serializer)


def balances(session, shop):
    session.expire_all()
    return {c.platform_customer_id: c.points_balance for c in session.query(Customer).filter_by(shop_id=shop.id)}


def test_backfill_pauses_for_the_bucket_then_continues_from_its_cursor(wsession, run_jobs, worker_app, shop, api,
                                                                        monkeypatch):
    first, second = pages()
    # The sync subtracts the time spent applying a page from the wait; stop its clock so the
    # wait is the bucket's alone, however loaded the machine is.
    monkeypatch.setattr(shopify_sync_module, "time", SimpleNamespace(monotonic=lambda: 100.0))
    api.answer("LojalOrders", orders_page(first, next_cursor="cursor-1", count=3, requested=502))
    # The page's last query, its orders' lines, leaves the bucket low.
    api.answer("LojalOrderLines", no_lines(8001, 8002, available=2, restore=100))
    job = shopify_sync.enqueue_backfill(shop.id)
    assert job.rate_limit_key == f"platform-api:{shop.id}"
    run_jobs()

    assert fetch(worker_app, job.id).return_value() == "paused"
    assert fetch(worker_app, job.id).meta == {"done": 2, "total_estimate": 3, "mode": "backfill", "skipped": 0}
    [later] = scheduled_jobs(worker_app, Q)
    assert_delay(worker_app, Q, later, 5.0)  # (502 - 2) / 100
    assert later.kwargs["run"]["cursor"] == "cursor-1" and later.kwargs["run"]["done"] == 2
    assert later.rate_limit_key == f"platform-api:{shop.id}"
    wsession.expire_all()
    assert wsession.get(Shop, shop.id).orders_synced_at is None

    api.answer("LojalOrders", orders_page(second, next_cursor=None, count=3))
    release_scheduled(worker_app, Q)
    run_jobs()
    assert fetch(worker_app, later.id).return_value() == "done"
    assert fetch(worker_app, later.id).meta["done"] == 3
    assert api.variables("LojalOrders")[1]["after"] == "cursor-1"
    assert balances(wsession, shop) == {"51": 40, "52": 20}
    wsession.expire_all()
    assert wsession.get(Shop, shop.id).orders_synced_at is not None


def test_a_throttled_page_is_retried_when_the_bucket_has_room(wsession, run_jobs, worker_app, shop, api):
    first, second = pages()
    api.answer("LojalOrders", orders_page(first, next_cursor="cursor-1"), throttled(requested=502, available=2))
    job = shopify_sync.enqueue_backfill(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).return_value() == "throttled"
    [later] = scheduled_jobs(worker_app, Q)
    assert later.kwargs["throttle_waits"] == 1 and later.kwargs["run"]["cursor"] == "cursor-1"

    api.answer("LojalOrders", orders_page(second, next_cursor=None))
    release_scheduled(worker_app, Q)
    run_jobs()
    assert balances(wsession, shop) == {"51": 40, "52": 20}


def test_a_5xx_goes_to_rqs_retry_and_the_rerun_changes_nothing_twice(wsession, run_jobs, worker_app, shop, api):
    first, _ = pages()
    api.answer("LojalOrders", orders_page(first, next_cursor="cursor-1", count=3, requested=10, available=1990),
               httpx.Response(503))
    job = shopify_sync.enqueue_backfill(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).get_status() == "scheduled"  # RQ's back-off, same slice again
    api.answer("LojalOrders", orders_page(first, next_cursor="cursor-1"), orders_page([], next_cursor=None))
    release_scheduled(worker_app, Q)
    run_jobs()
    assert balances(wsession, shop) == {"51": 10, "52": 20}
    assert wsession.query(LedgerEntry).filter_by(shop_id=shop.id, kind="earn").count() == 2


def test_a_long_history_is_cut_into_slices(wsession, run_jobs, worker_app, shop, api, monkeypatch):
    monkeypatch.setattr(shopify_sync, "PAGES_PER_JOB", 1)
    first, second = pages()
    api.answer("LojalOrders", orders_page(first, next_cursor="cursor-1"), orders_page(second, next_cursor=None))
    shopify_sync.enqueue_backfill(shop.id)
    run_jobs()
    [later] = scheduled_jobs(worker_app, Q)
    assert_delay(worker_app, Q, later, 0)  # no wait: just a new slice
    release_scheduled(worker_app, Q)
    run_jobs()
    assert wsession.query(Order).filter_by(shop_id=shop.id).count() == 3


def test_an_uninstalled_shop_is_not_synced(wsession, run_jobs, worker_app, shop, api):
    shop.status = "uninstalled"
    wsession.commit()
    job = shopify_sync.enqueue_backfill(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).return_value() == "skipped" and api.calls == []


def test_reconcile_all_enqueues_one_job_per_active_synced_shopify_shop(wsession, worker_app, shop, make_other):
    shop.orders_synced_at = datetime.now(UTC) - timedelta(hours=1)
    never_synced = make_other()
    gone = make_other(orders_synced_at=datetime.now(UTC), status="uninstalled")
    wsession.commit()
    shopify_sync.reconcile_all_shops()
    enqueued = {job.args[0] for job in queue(Q, worker_app).get_jobs()
                if job.func_name == "jobs.shopify_sync.reconcile_orders"}
    assert shop.id in enqueued and never_synced.id not in enqueued and gone.id not in enqueued
    queue(Q, worker_app).empty()  # other tests' shops: not this test's business


def test_reconcile_job_catches_up_a_missed_order(wsession, run_jobs, worker_app, shop, api):
    shop.orders_synced_at = datetime.now(UTC) - timedelta(hours=1)
    wsession.commit()
    placed = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    api.answer("LojalOrders", orders_page([order_node(8101, customer_id=61, subtotal="25.00", created=placed)],
                                          next_cursor=None))
    job = shopify_sync.enqueue_reconcile(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).return_value() == "done"
    assert balances(wsession, shop) == {"61": 25}


def test_a_reconciliation_paused_between_refund_lines_queries_resumes_without_reading_them_again(
        wsession, run_jobs, worker_app, shop, api, monkeypatch):
    shop.orders_synced_at = datetime.now(UTC) - timedelta(hours=1)
    wsession.commit()
    monkeypatch.setattr(shopify_sync_module, "time", SimpleNamespace(monotonic=lambda: 100.0))
    placed = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # A 100.00 shirt and a 50.00 gift card (100 points); five 10.00 refunds of the gift card.
    refunds = [refund_node(9800 + n, "10.00", created=placed) for n in range(5)]
    page = [order_node(8201, customer_id=62, subtotal="150.00", created=placed, refunds=refunds)]
    api.lines[8201] = [line_item("100.00"), line_item("50.00", gift_card=True)]
    for n in range(5):
        api.refund_lines[9800 + n] = [refund_line("10.00", gift_card=True)]
    api.answer("LojalOrders", orders_page(page, next_cursor=None, requested=352))
    # The first four refunds' lines leave the bucket too low for the fifth's.
    api.answer("LojalRefundLines", ok({"nodes": [{"id": r["id"], "refundLineItems": {
        "pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": [refund_line("10.00", gift_card=True)]}}
        for r in refunds[:4]]}, requested=500, available=10, restore=100))
    job = shopify_sync.enqueue_reconcile(shop.id)
    run_jobs()

    assert fetch(worker_app, job.id).return_value() == "paused"
    [later] = scheduled_jobs(worker_app, Q)
    assert later.kwargs["run"]["refunded_gift_cards"] == {r["id"]: "10.00" for r in refunds[:4]}
    assert later.kwargs["run"]["gift_cards"] == {"gid://shopify/Order/8201": "50.00"}

    api.answer("LojalOrders", orders_page(page, next_cursor=None))
    release_scheduled(worker_app, Q)
    run_jobs()
    assert fetch(worker_app, later.id).return_value() == "done"
    assert [call["ids"] for call in api.variables("LojalRefundLines")] == [
        [r["id"] for r in refunds[:4]], [refunds[4]["id"]]]
    assert api.variables("LojalOrderLines") == [{"ids": ["gid://shopify/Order/8201"], "first": 20, "after": None}]
    assert balances(wsession, shop) == {"62": 100}  # only the gift card was refunded


def test_revoked_access_stops_the_sync_without_retries(wsession, run_jobs, worker_app, shop, api):
    api.answer("LojalOrders", httpx.Response(401, text=""))
    job = shopify_sync.enqueue_backfill(shop.id)
    run_jobs()
    assert fetch(worker_app, job.id).return_value() == "failed"
    assert scheduled_jobs(worker_app, Q) == []


def test_after_revoked_access_later_jobs_stop_calling_shopify_until_the_merchant_returns(wsession, run_jobs,
                                                                                         worker_app, shop, api):
    api.answer("LojalOrders", httpx.Response(401, text=""))
    shopify_sync.enqueue_backfill(shop.id)
    run_jobs()
    again = shopify_sync.enqueue_backfill(shop.id)  # e.g. the next scheduled reconciliation
    run_jobs()
    assert fetch(worker_app, again.id).return_value() == "failed"
    assert api.operations() == ["LojalOrders"]  # the refused token was used once, then dropped
    wsession.expire_all()
    assert wsession.get(Shop, shop.id).status == "active" and wsession.get(Shop, shop.id).access_token_enc is None
