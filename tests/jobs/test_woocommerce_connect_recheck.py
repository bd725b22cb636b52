"""The scheduled re-check of WooCommerce stores left `pending` (their first authenticated call kept
failing): with back-off, connected once the store answers, given up after a week. On a real RQ
worker, the store stubbed at the `requests` boundary."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq.utils import import_attribute
from sqlalchemy import select

from app.models import AuditLog, Shop
from jobs import woocommerce_connect
from jobs.queues import queue
from jobs.schedule import SCHEDULE
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop

# The real clock: stores other tests leave pending were connected moments ago, which no re-check touches.
NOW = datetime.now(UTC).replace(microsecond=0)


def pending_shop(session, *, pending_for: timedelta, status: str = "pending", platform: str = "woocommerce") -> Shop:
    shop = make_wc_shop(session)
    shop.platform, shop.status, shop.installed_at = platform, status, NOW - pending_for
    session.commit()
    return shop


def recheck(at: datetime) -> int:
    return woocommerce_connect.recheck_pending_stores(now=at.isoformat())


def queued_for(app, shop: Shop) -> list[str]:
    return [job.func_name for job in queue("maintenance", app).get_jobs() if list(job.args[:1]) == [shop.id]]


def status_of(session, shop: Shop) -> str:
    session.expire_all()
    return session.get(Shop, shop.id).status


def calls_to(store, shop: Shop) -> int:
    return sum(1 for call in store.calls if call.request.url.startswith(shop.domain))


def answering_store(store, shop: Shop) -> None:
    store.get(api_url(shop, "orders"), json=[])
    store.get(api_url(shop, "settings/general/woocommerce_currency"), json={"value": "EUR"})
    store.get(api_url(shop, "webhooks"), json=[])
    store.post(api_url(shop, "webhooks"), json={"id": 1})


def test_the_recheck_is_on_the_schedule():
    [entry] = [e for e in SCHEDULE if e.func == "jobs.woocommerce_connect.recheck_pending_stores"]
    assert entry.queue == "maintenance" and entry.cron is not None
    assert import_attribute(entry.func) is woocommerce_connect.recheck_pending_stores


def test_a_pending_store_that_answers_now_is_connected_and_set_up(wsession, worker_app, run_jobs, store):
    shop = pending_shop(wsession, pending_for=timedelta(hours=3))
    answering_store(store, shop)

    recheck(NOW)
    assert queued_for(worker_app, shop) == ["jobs.woocommerce_connect.recheck_pending_store"]
    run_jobs()  # the re-check, then the normal after_connect, then its backfill

    assert status_of(wsession, shop) == "active"
    assert wsession.get(Shop, shop.id).currency == "EUR"
    posted = [c for c in store.calls if c.request.method == "POST" and c.request.url.startswith(shop.domain)]
    assert len(posted) == 6  # our webhooks created
    assert wsession.get(Shop, shop.id).orders_synced_at is not None  # the backfill ran


def test_a_store_still_down_stays_pending_and_is_not_rechecked_before_its_time(wsession, worker_app, run_jobs,
                                                                                store):
    shop = pending_shop(wsession, pending_for=timedelta(hours=2))
    store.get(api_url(shop, "orders"), status=503)

    recheck(NOW)
    run_jobs()
    assert status_of(wsession, shop) == "pending" and calls_to(store, shop) == 1
    assert len(queue("maintenance", worker_app).failed_job_registry) == 0  # a still-down store is no failed job

    for later in (timedelta(minutes=1), timedelta(minutes=30)):  # a duplicated run, the half hour
        recheck(NOW + later)
        assert queued_for(worker_app, shop) == []
    recheck(NOW + timedelta(hours=1))  # hourly in its first day
    assert queued_for(worker_app, shop) == ["jobs.woocommerce_connect.recheck_pending_store"]
    run_jobs()
    assert status_of(wsession, shop) == "pending" and calls_to(store, shop) == 2


def test_after_a_day_pending_the_store_is_rechecked_every_six_hours(wsession, worker_app, run_jobs, store):
    shop = pending_shop(wsession, pending_for=timedelta(days=2))
    store.get(api_url(shop, "orders"), status=503)
    recheck(NOW)
    run_jobs()
    recheck(NOW + timedelta(hours=3))
    assert queued_for(worker_app, shop) == []
    recheck(NOW + timedelta(hours=6))
    assert queued_for(worker_app, shop) == ["jobs.woocommerce_connect.recheck_pending_store"]


def test_a_store_pending_less_than_an_hour_is_left_to_its_own_connect_job(wsession, worker_app, store):
    # after_connect's own retries (10 s ... 30 min) are still running for it.
    shop = pending_shop(wsession, pending_for=timedelta(minutes=20))
    recheck(NOW)
    assert queued_for(worker_app, shop) == [] and calls_to(store, shop) == 0


def test_a_store_pending_for_a_week_is_given_up_and_marked_disconnected(wsession, worker_app, store):
    shop = pending_shop(wsession, pending_for=timedelta(days=7, minutes=5))
    recheck(NOW)
    assert status_of(wsession, shop) == "disconnected"
    assert queued_for(worker_app, shop) == [] and calls_to(store, shop) == 0
    [audit] = wsession.scalars(select(AuditLog).where(AuditLog.shop_id == shop.id)).all()
    assert audit.action == "shop.disconnected" and "7 days" in audit.details["reason"]


def test_keys_the_store_refuses_on_a_recheck_leave_it_disconnected(wsession, worker_app, run_jobs, store):
    shop = pending_shop(wsession, pending_for=timedelta(hours=2))
    store.get(api_url(shop, "orders"), status=401, json={"code": "woocommerce_rest_cannot_view"})
    recheck(NOW)
    run_jobs()
    assert status_of(wsession, shop) == "disconnected"


@pytest.mark.parametrize("status,platform", [("active", "woocommerce"), ("disconnected", "woocommerce"),
                                             ("uninstalled", "woocommerce"), ("pending", "shopify")])
def test_a_store_that_is_not_a_pending_woocommerce_store_is_never_touched(wsession, worker_app, run_jobs, store,
                                                                           status, platform):
    shop = pending_shop(wsession, pending_for=timedelta(days=30), status=status, platform=platform)
    recheck(NOW)
    assert queued_for(worker_app, shop) == []
    # A re-check queued while the store was pending, run after it was connected another way.
    assert woocommerce_connect.recheck_pending_store(shop.id) == "skipped"
    run_jobs()
    assert status_of(wsession, shop) == status and calls_to(store, shop) == 0
    assert wsession.scalars(select(AuditLog).where(AuditLog.shop_id == shop.id)).all() == []
