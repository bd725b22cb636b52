"""Review finding: an order placed before the store was connected earns live points when any save
of it reaches us as a webhook, though the backfill and the reconciliation read the very same
state as history (integrations.sync.is_history: placed before the install), which earns only with
`backfill_points`.

WooCommerce has no "paid" event: every order.updated carries the whole order, so a completed
order from before the connect (one beyond the backfill's 12 months, or one the backfill has not
reached) becomes OrderPaid on its next save, e.g. a partial refund given today."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.app.web.test_woocommerce_webhooks import _balance
from tests.app.web.woocommerce_helpers import deliver, woo_shop
from tests.integrations.woocommerce.samples import order

CONNECTED = datetime(2026, 1, 1, tzinfo=UTC)
OLD = "2024-06-01T10:00:00"  # placed (and completed) 19 months before the connect


@pytest.fixture
def wc(worker_app):
    return worker_app.test_client()


def _old_order(**fields):
    return order("completed", date_created_gmt=OLD, date_created=OLD, date_paid_gmt=OLD, **fields)


def test_a_partial_refund_of_an_order_from_before_the_connect_gives_no_points(wsession, wc, run_jobs):
    shop = woo_shop(wsession)  # backfill_points off: history earns nothing
    shop.installed_at = CONNECTED
    wsession.commit()
    # The merchant refunds a quarter of a 2024 order in March 2026: WooCommerce sends order.updated.
    deliver(wc, shop, "order.updated", _old_order(modified="2026-03-01T10:00:00", refunds=[(801, "-26.00")]))
    run_jobs()
    assert _balance(wsession, shop) == 0  # a refund never gives points; the sale itself is history

