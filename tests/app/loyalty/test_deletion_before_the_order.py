"""WooCommerce's order.deleted (only the id, no time) reaching us before the order itself."""
from __future__ import annotations

from app.loyalty.apply import apply_event
from app.models import Customer, LedgerEntry, Order
from integrations.woocommerce.parsers import parse_event
from tests.factories import make_shop
from tests.integrations.woocommerce.samples import order


def _apply(session, shop, topic, payload, headers=None):
    for event in parse_event(shop, topic, payload, headers or {}):
        apply_event(session, shop.id, event)
    session.flush()


def test_an_order_deleted_before_we_saw_it_does_not_earn_when_its_older_delivery_arrives_late(session):
    # The order is placed and paid (modified 10:00:05), then deleted in the store; the deletion's
    # delivery (received 11:00) is processed before the order's own order.updated, which comes
    # late (a retried job, a queued delivery). apply_order_cancelled keeps a cancelled row
    # "so a late paid does not earn" -- but the late payload's OrderRestored now undoes it: the
    # placeholder has neither a cancellation time nor a platform_updated_at to compare with.
    shop = make_shop(session, platform="woocommerce", woocommerce_earn_status="processing")
    _apply(session, shop, "order.deleted", {"id": 727}, {"X-Lojal-Received-At": "2026-03-01T11:00:00+00:00"})
    _apply(session, shop, "order.updated", order("processing", modified="2026-03-01T10:00:05"))
    row = session.query(Order).filter_by(shop_id=shop.id, platform_order_id="727").populate_existing().one()
    assert row.status == "cancelled"
    earned = session.query(LedgerEntry).filter_by(shop_id=shop.id, kind="earn").count()
    assert earned == 0
    customer = session.query(Customer).filter_by(shop_id=shop.id).one_or_none()
    assert customer is None or customer.points_balance == 0
