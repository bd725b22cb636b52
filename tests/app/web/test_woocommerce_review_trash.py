"""Review findings: a trashed order restored before its `order.deleted` delivery reaches us.

WooCommerce delivers webhooks asynchronously by default (Action Scheduler), so a merchant who
trashes an order and clicks "Undo" a few seconds later can have both deliveries reach us after
the restoration. The `order.deleted` body is only `{"id": N}` and is dated by its receipt, which
is then later than the restored order's `date_modified_gmt`."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.app.web.test_woocommerce_webhooks import _balance
from tests.app.web.woocommerce_helpers import deliver, woo_shop
from tests.integrations.woocommerce.samples import order

T1 = "2026-03-01T10:00:05"


@pytest.fixture
def wc(worker_app):
    return worker_app.test_client()


def _ago(seconds: int) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def test_a_late_order_deleted_delivery_does_not_undo_a_restore_that_came_before_it(wsession, wc, run_jobs):
    shop = woo_shop(wsession)
    deliver(wc, shop, "order.updated", order("completed", modified=T1))
    run_jobs()
    assert _balance(wsession, shop) == 90
    # Trashed 60 s ago, restored ("Undo") 30 s ago; the queued deliveries reach us only now.
    deliver(wc, shop, "order.deleted", {"id": 727})
    deliver(wc, shop, "order.restored", order("completed", modified=_ago(30)))
    run_jobs()
    assert _balance(wsession, shop) == 90  # the order is live in the store


def test_an_order_deleted_delivered_after_the_restoration_is_undone_by_the_next_reconciliation(
        wsession, wc, run_jobs, store):
    """The restoration's delivery happens to run first. Deliveries alone cannot tell this late
    order.deleted from a second trash after the restoration (neither carries a time), so it takes the
    points back (never spendable on an order that may be in the trash); the store can tell, and the
    next reconciliation, finding the order live, gives them back."""
    from app.models import Shop
    from integrations.woocommerce import sync
    from tests.integrations.woocommerce.wc_support import api_url

    shop = woo_shop(wsession)
    deliver(wc, shop, "order.updated", order("completed", modified=T1))
    run_jobs()
    restored = order("completed", modified=_ago(30))
    deliver(wc, shop, "order.restored", restored)
    run_jobs()
    deliver(wc, shop, "order.deleted", {"id": 727})
    run_jobs()
    assert _balance(wsession, shop) == 0
    shop = wsession.get(Shop, shop.id)
    shop.orders_synced_at = datetime.now(UTC) - timedelta(minutes=15)
    wsession.commit()
    store.get(api_url(shop, "orders"), json=[restored])
    assert sync.sync_orders(wsession, shop, sync.start_reconcile(shop, datetime.now(UTC))) == "done"
    assert _balance(wsession, shop) == 90  # the order is live in the store


def test_a_restore_delivered_after_a_late_order_deleted_stands_through_the_reconciliation(wsession, wc, run_jobs, store):
    from app.models import Shop
    from integrations.woocommerce import sync
    from tests.integrations.woocommerce.wc_support import api_url

    shop = woo_shop(wsession)
    deliver(wc, shop, "order.updated", order("completed", modified=T1))
    deliver(wc, shop, "order.deleted", {"id": 727})
    restored = order("completed", modified=_ago(30))
    deliver(wc, shop, "order.restored", restored)
    run_jobs()
    # The next reconciliation reads the live order as it is in the store.
    shop = wsession.get(Shop, shop.id)
    shop.orders_synced_at = datetime.now(UTC) - timedelta(minutes=15)
    wsession.commit()
    store.get(api_url(shop, "orders"), json=[restored])
    assert sync.sync_orders(wsession, shop, sync.start_reconcile(shop, datetime.now(UTC))) == "done"
    assert _balance(wsession, shop) == 90


def test_a_state_already_applied_delivered_again_after_an_order_deleted_does_not_restore_the_order(wsession, wc,
                                                                                                  run_jobs):
    shop = woo_shop(wsession)
    deliver(wc, shop, "order.updated", order("completed", modified=T1))
    run_jobs()
    deliver(wc, shop, "order.deleted", {"id": 727})
    deliver(wc, shop, "order.created", order("completed", modified=T1))  # the same state, another topic
    run_jobs()
    assert _balance(wsession, shop) == 0
