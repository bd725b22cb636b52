"""What the order-sync tests (test_sync*.py) share: their clock, the shop as a backfill leaves it,
the two pages of history, and readers of what a run left (the fixtures are in conftest.py)."""
from __future__ import annotations

from datetime import UTC, datetime

from app.models import Customer, LedgerEntry, Order, Shop
from tests.integrations.shopify.admin_api import make_shopify_shop, order_node, orders_page, refund_node

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
INSTALLED = datetime(2026, 1, 1, tzinfo=UTC)
SYNCED = datetime(2026, 3, 9, 12, tzinfo=UTC)  # the cursor a day-old backfill left


def sync_shop(session, *, synced_at: datetime | None = None, **settings) -> Shop:
    """A connected Shopify shop installed on INSTALLED; `synced_at` is its sync cursor (None: no
    backfill has run, so a reconciliation waits)."""
    shop = make_shopify_shop(session, **settings)
    shop.installed_at = INSTALLED
    shop.orders_synced_at = synced_at
    session.commit()
    return shop


def history():
    """Two pages: Ana (2 orders), Ben (an order half refunded), Cy (paid then cancelled), a guest,
    and an order never paid."""
    page1 = [
        order_node(5001, customer_id=11, subtotal="100.00", created="2025-06-01T10:00:00Z"),
        order_node(5002, customer_id=12, subtotal="80.00", created="2025-07-01T10:00:00Z", status="PARTIALLY_REFUNDED",
                   refunds=[refund_node(9001, "40.00", created="2025-07-05T10:00:00Z"),
                            refund_node(9002, "10.00", created="2025-07-06T10:00:00Z", status="FAILURE")]),
        order_node(5003, email="guest@example.com", subtotal="50.00", created="2025-08-01T10:00:00Z"),
    ]
    page2 = [
        order_node(5004, customer_id=11, subtotal="120.00", created="2025-09-01T10:00:00Z"),
        order_node(5005, customer_id=13, subtotal="60.00", created="2025-10-01T10:00:00Z",
                   cancelled="2025-10-02T10:00:00Z", status="REFUNDED",
                   refunds=[refund_node(9003, "60.00", created="2025-10-02T10:00:00Z")]),
        order_node(5006, customer_id=14, subtotal="30.00", created="2025-11-01T10:00:00Z", status="PENDING"),
    ]
    return page1, page2


def answer_history(api, **last_page_bucket):
    page1, page2 = history()
    api.answer("LojalOrders", orders_page(page1, next_cursor="cursor-1", count=6),
               orders_page(page2, next_cursor=None, count=6, **last_page_bucket))


def customers(session, shop) -> dict[str, Customer]:
    """The shop's customers by platform id, as committed."""
    session.expire_all()
    return {c.platform_customer_id: c for c in session.query(Customer).filter_by(shop_id=shop.id)}


def orders_by_id(session, shop) -> dict[str, Order]:
    """The shop's orders by platform id, as committed."""
    session.expire_all()
    return {o.platform_order_id: o for o in session.query(Order).filter_by(shop_id=shop.id)}


def ledger(session, shop) -> list[tuple[str, int, int]]:
    return sorted((e.idempotency_key, e.points, e.pending_delta)
                  for e in session.query(LedgerEntry).filter_by(shop_id=shop.id))
