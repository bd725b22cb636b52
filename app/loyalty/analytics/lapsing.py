"""Lapsing customers and churn, by the win-back rule (app.loyalty.winback).

A customer with paid orders *lapses* at `last_order_at + threshold`, the threshold being the
win-back one: max(winback_min_days, winback_gap_multiplier x their median gap between paid,
not cancelled orders) for a repeat customer, winback_one_time_days for a one-time customer.
Unlike the win-back selection, mailing exclusions (consent, cooldown, cap) do not apply here:
those decide whom to email, not who has stopped buying.

- lapsing customers: lapsed as of `now` (and not ordered since);
- churn base: customers who had ordered before the period and had not lapsed at its start;
- churned in the period: the members of the base who lapsed within it (and not ordered since —
  a customer who came back later has a newer last order, so churn of a past period is a lower
  bound). A customer whose first order fell inside the period is not in the base, so not
  churned even if they lapsed before its end: churned <= base, the rate stays in [0, 1];
- churn rate = churned / base.

The per-day series counts the same customers on the local day they lapsed, so it sums to the
period's total; a day's count therefore depends on the period's start (the base), not on the
day alone.

The median gap is the one the win-back selection uses: kept on the customer by the order path
(`customers.median_gap_days`, app.loyalty.customers.record_sale), so both always agree and
neither reads the orders.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.loyalty.analytics.period import Period
from app.loyalty.program import ProgramSettings

_LAPSE = """
WITH lapse AS (
    SELECT c.first_order_at,
           c.last_order_at + make_interval(secs => 86400.0 * CASE
               WHEN c.orders_count >= 2 THEN GREATEST(:min_days, :multiplier * COALESCE(c.median_gap_days, 0))
               ELSE :one_time_days END) AS lapsed_at
    FROM customers c
    WHERE c.shop_id = :shop_id AND c.orders_count >= 1 AND c.last_order_at IS NOT NULL
)
"""

_TOTALS = text(_LAPSE + """
SELECT count(*) FILTER (WHERE lapsed_at < :now) AS lapsing,
       count(*) FILTER (WHERE first_order_at < :start_at AND lapsed_at >= :start_at
                          AND lapsed_at < :end_at AND lapsed_at < :now) AS churned,
       count(*) FILTER (WHERE first_order_at < :start_at AND lapsed_at >= :start_at) AS base
FROM lapse
""")

_BY_DAY = text(_LAPSE + """
SELECT (lapsed_at AT TIME ZONE :tz)::date AS day, count(*) AS churned
FROM lapse
WHERE first_order_at < :start_at AND lapsed_at >= :start_at AND lapsed_at < :end_at AND lapsed_at < :now
GROUP BY 1
""")


@dataclass(frozen=True)
class Churn:
    lapsing: int
    churned: int
    base: int


def _params(settings: ProgramSettings, shop_id: int, period: Period, now: datetime) -> dict:
    return {
        "shop_id": shop_id, "now": now, "start_at": period.start_at, "end_at": period.end_at, "tz": period.timezone,
        "min_days": float(settings.winback_min_days), "multiplier": float(settings.winback_gap_multiplier),
        "one_time_days": float(settings.winback_one_time_days),
    }


def churn(session: Session, shop_id: int, period: Period, now: datetime, settings: ProgramSettings) -> Churn:
    row = session.execute(_TOTALS, _params(settings, shop_id, period, now)).one()
    return Churn(lapsing=int(row.lapsing), churned=int(row.churned), base=int(row.base))


def churned_by_day(session: Session, shop_id: int, period: Period, now: datetime,
                   settings: ProgramSettings) -> dict[date, int]:
    return {d: int(n) for d, n in session.execute(_BY_DAY, _params(settings, shop_id, period, now))}
