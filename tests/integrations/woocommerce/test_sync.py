"""Orders read through REST v3 (backfill and reconciliation) go through the same idempotent path."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import responses
from responses import matchers

from app.models import Customer, LedgerEntry, Order, Shop
from integrations.woocommerce import sync
from integrations.woocommerce.client import StoreDisconnected
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop, wc_order

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop(session):
    shop = make_wc_shop(session, backfill_points=True)
    shop.installed_at = datetime(2026, 1, 1, tzinfo=UTC)
    session.commit()
    return shop


def trash_page(store, shop, orders, *, number=1):
    # Registered before a plain page() stub, which (matching on `page` alone) would answer it too.
    query = matchers.query_param_matcher({"page": str(number), "status": "trash"}, strict_match=False)
    store.get(api_url(shop, "orders"), json=orders, match=[query])


def page(store, shop, orders, *, number, total=None, pages=None):
    headers = {}
    if total is not None:
        headers["X-WP-Total"] = str(total)
    if pages is not None:
        headers["X-WP-TotalPages"] = str(pages)
    query = matchers.query_param_matcher({"page": str(number)}, strict_match=False)
    store.get(api_url(shop, "orders"), json=orders, headers=headers, match=[query])


def balances(session, shop):
    session.expire_all()
    return {c.platform_customer_id: c.points_balance for c in session.query(Customer).filter_by(shop_id=shop.id)}


def test_backfill_asks_for_12_months_oldest_first_and_pages_until_a_short_page(session, shop, store, monkeypatch):
    monkeypatch.setattr(sync, "PAGE_SIZE", 2)
    page(store, shop, [wc_order(501, customer_id=7, total="10.00"), wc_order(502, customer_id=8, total="20.00")],
         number=1, total=3)
    page(store, shop, [wc_order(503, customer_id=7, total="30.00")], number=2, total=3)
    progress = []

    run = sync.start_backfill(NOW)
    status = sync.sync_orders(session, shop, run, on_progress=lambda r: progress.append((r.done, r.total_estimate)))

    assert status == "done"
    assert dict(store.calls[0].request.params) == {
        "after": "2025-03-10T12:00:00", "before": "2026-03-10T12:00:00", "dates_are_gmt": "true", "per_page": "2",
        "page": "1",
        "orderby": "date", "order": "asc"}
    assert progress == [(2, 3), (3, 3)]
    assert balances(session, shop) == {"7": 40, "8": 20}
    assert session.get(Shop, shop.id).orders_synced_at == NOW


def test_paging_stops_at_x_wp_totalpages(session, shop, store, monkeypatch):
    monkeypatch.setattr(sync, "PAGE_SIZE", 1)
    page(store, shop, [wc_order(511, customer_id=7)], number=1, total=1, pages=1)
    assert sync.sync_orders(session, shop, sync.start_backfill(NOW)) == "done"
    assert len(store.calls) == 1


def test_max_pages_pauses_with_the_next_page_to_read(session, shop, store, monkeypatch):
    monkeypatch.setattr(sync, "PAGE_SIZE", 1)
    page(store, shop, [wc_order(521, customer_id=7)], number=1, total=2)
    run = sync.start_backfill(NOW)
    assert sync.sync_orders(session, shop, run, max_pages=1) == "paused"
    assert (run.page, run.done) == (2, 1)
    assert session.get(Shop, shop.id).orders_synced_at is None
    assert sync.SyncRun.from_json(run.to_json()) == run


def test_backfilled_orders_earn_only_with_backfill_points(session, store):
    shop = make_wc_shop(session)  # backfill_points off (default)
    session.commit()
    page(store, shop, [wc_order(531, customer_id=9, total="50.00")], number=1)
    sync.sync_orders(session, shop, sync.start_backfill(NOW))
    assert balances(session, shop) == {"9": 0}
    assert session.query(Order).filter_by(shop_id=shop.id, platform_order_id="531").count() == 1


def test_reconcile_credits_an_order_whose_webhook_never_came_once(session, shop, store):
    shop.orders_synced_at = NOW - timedelta(hours=1)
    session.commit()
    missed = wc_order(541, customer_id=12, total="25.00", created="2026-03-10T11:30:00")
    page(store, shop, [missed], number=1, total=1)

    for _ in range(2):  # the next reconciliation reads it again (overlap): nothing changes
        run = sync.start_reconcile(session.get(Shop, shop.id), NOW)
        assert sync.sync_orders(session, shop, run) == "done"

    assert dict(store.calls[0].request.params)["modified_after"] == "2026-03-10T10:50:00"  # 10 min overlap
    assert balances(session, shop) == {"12": 25}
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id, kind="earn").count() == 1


def test_reconcile_applies_a_missed_refund_in_proportion(session, shop, store):
    shop.orders_synced_at = NOW - timedelta(hours=1)
    session.commit()
    page(store, shop, [wc_order(551, customer_id=13, total="40.00", created="2026-03-10T11:00:00")], number=1)
    sync.sync_orders(session, shop, sync.start_reconcile(shop, NOW))
    refunded = wc_order(551, customer_id=13, total="40.00", created="2026-03-10T11:00:00",
                        modified="2026-03-10T11:40:00", refunds=[{"id": 77, "reason": "", "total": "-10.00"}])
    store.replace(responses.GET, api_url(shop, "orders"), json=[refunded])
    sync.sync_orders(session, shop, sync.start_reconcile(shop, NOW))
    assert balances(session, shop) == {"13": 30}


def test_reconcile_gives_back_a_deleted_refund_though_the_order_kept_its_modification_time(session, shop, store):
    # WooCommerce deletes a refund without saving the order: same date_modified, refund gone.
    shop.orders_synced_at = NOW - timedelta(hours=1)
    session.commit()
    kwargs = {"customer_id": 13, "total": "40.00", "created": "2026-03-10T11:00:00", "modified": "2026-03-10T11:40:00"}
    page(store, shop, [wc_order(551, refunds=[{"id": 77, "reason": "", "total": "-10.00"}], **kwargs)], number=1)
    sync.sync_orders(session, shop, sync.start_reconcile(shop, NOW))
    assert balances(session, shop) == {"13": 30}
    store.replace(responses.GET, api_url(shop, "orders"), json=[wc_order(551, **kwargs)])
    for _ in range(2):
        sync.sync_orders(session, shop, sync.start_reconcile(shop, NOW))
        assert balances(session, shop) == {"13": 40}


def test_reconcile_waits_for_a_first_backfill(session, shop):
    assert sync.start_reconcile(shop, NOW) is None


def test_a_revoked_key_mid_run_keeps_what_was_applied_and_raises(session, shop, store, monkeypatch):
    monkeypatch.setattr(sync, "PAGE_SIZE", 1)
    page(store, shop, [wc_order(561, customer_id=14, total="15.00")], number=1, total=2)
    store.get(api_url(shop, "orders"), status=401, json={"code": "woocommerce_rest_cannot_view"},
              match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)])
    run = sync.start_backfill(NOW)
    with pytest.raises(StoreDisconnected):
        sync.sync_orders(session, shop, run)
    assert (run.page, run.done) == (2, 1)
    assert balances(session, shop) == {"14": 15}
    assert session.get(Shop, shop.id).orders_synced_at is None


@pytest.mark.parametrize(("status", "earn_status", "earned"), [
    ("completed", "completed", 25), ("processing", "completed", 0), ("processing", "processing", 25),
    ("pending", "processing", 0), ("on-hold", "processing", 0), ("cancelled", "processing", 0),
    ("failed", "processing", 0)])
def test_order_statuses_go_through_the_webhook_status_machine(session, store, status, earn_status, earned):
    shop = make_wc_shop(session, backfill_points=True, woocommerce_earn_status=earn_status)
    session.commit()
    page(store, shop, [wc_order(570, customer_id=15, status=status)], number=1)
    sync.sync_orders(session, shop, sync.start_backfill(NOW))
    assert balances(session, shop).get("15", 0) == earned


def test_backfilled_order_events_are_history_and_reconciled_ones_live(session, shop):
    order = wc_order(575, customer_id=16)
    [paid] = [e for e in sync.order_events(shop, order, historical=True) if type(e).__name__ == "OrderPaid"]
    assert paid.historical is True
    [paid] = [e for e in sync.order_events(shop, order, historical=False) if type(e).__name__ == "OrderPaid"]
    assert paid.historical is False


def test_a_guest_order_is_kept_by_email(session, shop, store):
    page(store, shop, [wc_order(580, customer_id=0, email="guest@example.com")], number=1)
    sync.sync_orders(session, shop, sync.start_backfill(NOW))
    session.expire_all()
    order = session.query(Order).filter_by(shop_id=shop.id, platform_order_id="580").one()
    assert order.email_normalized == "guest@example.com"


def test_a_backfill_credits_an_order_placed_after_the_connect_that_no_webhook_applied(session, store):
    # Orders placed since the store was connected are live sales even when a backfill reads them
    # first (WooCommerce never retries a lost delivery): history is only what came before.
    shop = make_wc_shop(session)  # backfill_points off (default)
    shop.installed_at = datetime(2026, 1, 1, tzinfo=UTC)
    session.commit()
    page(store, shop, [wc_order(561, customer_id=9, total="50.00", created="2025-12-01T10:00:00"),
                       wc_order(562, customer_id=9, total="30.00", created="2026-03-09T10:00:00")], number=1)
    sync.sync_orders(session, shop, sync.start_backfill(NOW))
    assert balances(session, shop) == {"9": 30}


def test_a_completed_order_earns_when_the_shop_awards_on_fulfilment(session, store):
    # WooCommerce's "completed" is the fulfilment: with award_on = fulfilled an order must earn there
    # (it never earned at all), and "processing" still earns nothing.
    shop = make_wc_shop(session, award_on="fulfilled", woocommerce_earn_status="processing")
    shop.installed_at = datetime(2026, 1, 1, tzinfo=UTC)
    shop.orders_synced_at = NOW - timedelta(hours=1)
    session.commit()
    page(store, shop, [wc_order(571, customer_id=9, total="50.00", created="2026-03-10T11:00:00"),
                       wc_order(572, customer_id=9, total="30.00", created="2026-03-10T11:10:00",
                                status="processing")], number=1)
    sync.sync_orders(session, shop, sync.start_reconcile(shop, NOW))
    assert balances(session, shop) == {"9": 50}


def test_a_malformed_order_is_skipped_and_logged_so_it_does_not_block_the_orders_after_it(session, shop, store,
                                                                                          caplog):
    # Retrying the page would fail on the same order for ever, and every later order would
    # never be synced.
    shop.orders_synced_at = NOW - timedelta(hours=1)
    session.commit()
    broken = wc_order(600, customer_id=12, total="25.00", created="2026-03-10T11:00:00")
    broken["total"] = "twenty-five"
    after = wc_order(601, customer_id=13, total="40.00", created="2026-03-10T11:30:00")
    trash_page(store, shop, [])
    page(store, shop, [broken, after], number=1, total=2)

    run = sync.start_reconcile(session.get(Shop, shop.id), NOW)
    with caplog.at_level("WARNING"):
        assert sync.sync_orders(session, shop, run) == "done"

    assert balances(session, shop) == {"13": 40}
    assert (run.done, run.skipped) == (1, 1)
    skipped = [r for r in caplog.records if r.getMessage() == "order sync skipped a malformed order"]
    assert len(skipped) == 1 and skipped[0].platform_order_id == "600" and skipped[0].shop_id == shop.id
    assert sync.SyncRun.from_json({k: v for k, v in run.to_json().items() if k != "skipped"}).skipped == 0


def test_reconcile_reads_the_trash_so_a_trashed_order_whose_delivery_was_lost_gives_its_points_back(
        session, shop, store):
    shop.orders_synced_at = NOW - timedelta(hours=1)
    session.commit()
    sold = wc_order(610, customer_id=14, total="30.00", created="2026-03-10T10:00:00")
    trash_page(store, shop, [])
    page(store, shop, [sold], number=1, total=1)
    assert sync.sync_orders(session, shop, sync.start_reconcile(session.get(Shop, shop.id), NOW)) == "done"
    assert balances(session, shop) == {"14": 30}

    store.reset()
    trashed = {**sold, "status": "trash", "date_modified_gmt": "2026-03-10T12:30:00"}
    trash_page(store, shop, [trashed])
    page(store, shop, [], number=1, total=0)  # `any` leaves it out
    later = NOW + timedelta(hours=1)
    run = sync.start_reconcile(session.get(Shop, shop.id), later)
    assert sync.sync_orders(session, shop, run) == "done"

    assert balances(session, shop) == {"14": 0}
    assert [dict(c.request.params).get("status") for c in store.calls] == [None, "trash"]
    assert run.trash and sync.SyncRun.from_json(run.to_json()) == run
