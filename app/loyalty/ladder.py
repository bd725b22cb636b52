"""The loyalty ladder: where a shopper stands, from their orders and referrals."""
from __future__ import annotations

LADDER_STAGES = ("prospect", "first_time", "returning", "loyal", "ambassador")

# Thresholds, stated once: a loyal customer has 5+ paid orders; an ambassador has
# 2+ paid orders and has brought at least one friend who bought.
LOYAL_ORDERS = 5
AMBASSADOR_ORDERS = 2
AMBASSADOR_REFERRALS = 1


def ladder_stage(orders_count: int, referrals_completed: int) -> str:
    if orders_count >= AMBASSADOR_ORDERS and referrals_completed >= AMBASSADOR_REFERRALS:
        return "ambassador"
    if orders_count >= LOYAL_ORDERS:
        return "loyal"
    if orders_count >= 2:
        return "returning"
    if orders_count == 1:
        return "first_time"
    return "prospect"


def ladder_stage_sql(orders: str = "orders_count", referrals: str = "referrals_completed") -> str:
    """The same rule as a SQL CASE, for set-based analytics."""
    return (
        f"CASE WHEN {orders} >= {AMBASSADOR_ORDERS} AND {referrals} >= {AMBASSADOR_REFERRALS} THEN 'ambassador' "
        f"WHEN {orders} >= {LOYAL_ORDERS} THEN 'loyal' WHEN {orders} >= 2 THEN 'returning' "
        f"WHEN {orders} = 1 THEN 'first_time' ELSE 'prospect' END"
    )
