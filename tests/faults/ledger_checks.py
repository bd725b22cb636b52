"""What every fault test proves at the end: each order earned exactly once and the cached
balances equal the ledger."""
from __future__ import annotations

from sqlalchemy import func, select

from app.loyalty.ledger import find_balance_drift
from app.models import LedgerEntry, Order


def assert_each_order_earned_once(session, shop_id: int, expected_orders: int) -> None:
    session.expire_all()
    orders = session.scalar(select(func.count()).select_from(Order).where(Order.shop_id == shop_id))
    earns = session.execute(
        select(LedgerEntry.order_id, func.count()).where(LedgerEntry.shop_id == shop_id, LedgerEntry.kind == "earn",
                                                         LedgerEntry.order_id.is_not(None))
        .group_by(LedgerEntry.order_id)).all()
    assert orders == expected_orders, (orders, len(earns))
    assert len(earns) == expected_orders and {count for _, count in earns} == {1}
    assert find_balance_drift(session, shop_id) == []
