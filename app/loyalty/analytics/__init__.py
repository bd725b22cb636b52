"""Loyalty analytics: the numbers a merchant runs the program by, for a period and per day.

Contract (the admin API and the console call these; keep names and shapes stable):

- `summary(session, shop_id, start: date, end: date, now: datetime) -> dict`: totals for the
  local days [start, end] (both included) in the shop's timezone; snapshot figures (ladder,
  lapsing) are as of `now`.
- `daily_series(session, shop_id, start: date, end: date, now: datetime | None = None) -> list[dict]`:
  one dict per local day, every day present (zeros filled), `date` first (ISO string), then
  SERIES_KEYS.
- `series_csv(rows) -> str`: the series as CSV, header row `date` + SERIES_KEYS in that order.

A period longer than 366 days or ending before it starts raises app.loyalty.errors.Invalid
(code `invalid_period`). Value types: counts and points are int; money is a str with two
decimals in the shop's `currency` ("1234.50"); rates are float fractions in [0, 1] rounded to
4 places; a figure with nothing to divide by is None.

Summary keys (the series carries the ones marked *, per day):
| key | meaning |
|---|---|
| start, end, timezone, currency, days | the period as asked, the shop's zone and currency, its length |
| members | customers with ledger activity before the period's end (points.py says why) |
| new_members* / members* | first ledger entry in the period (that day) / members at the end of the period (that day) |
| active_members* | members who earned, spent or bought in the period (that day), distinct |
| points_issued* | points granted: earn entries (orders, actions, referrals, win-back bonus), pending included |
| points_reversed* | points taken back by refunds and cancellations, including what they drew from an earlier expiry |
| points_redeemed* | points spent on rewards, net of failed/cancelled redemptions given back |
| points_expired* / points_adjusted* | expired for inactivity, less what later refunds drew from it (points.py) / staff adjustments, net (signed) |
| points_outstanding* / points_pending | spendable / held (return window) points at the period's end (that day's end) |
| point_value, point_value_source | money per point: best active fixed-amount reward ("rewards"), or None ("none") |
| liability* | points_outstanding x point_value, money (None without a point value) |
| redemption_rate* | points_redeemed / points_issued |
| member_orders*, member_revenue*, member_aov* | member sales: count, revenue after refunds, average order value |
| member_buyers, member_orders_per_buyer | distinct member buyers; orders / buyers |
| member_repeat_purchase_rate | share of the period's member buyers with 2+ sales by its end (one may be earlier) |
| member_clv | estimated lifetime value: aov x orders_per_buyer x expected_lifespan_periods |
| non_member_* | the same for everyone else: customers with no ledger activity and guest checkouts |
| lapsing_customers | past their win-back lapse threshold as of `now` (lapsing.py) |
| churned_customers* / churn_base / churn_rate | members of the base who lapsed in the period (that day) / ordered before the period, not lapsed at its start / churned ÷ base, in [0, 1] |
| expected_lifespan_days | days / churn_rate, at most 5 years (the CLV's lifespan) |
| ladder | {stage: customers} over LADDER_STAGES, as of now |
| winback_sends*, winback_conversions*, winback_recovered_revenue* | campaigns.py |
| referral_clicks*, referral_conversions*, referral_revenue*, referral_conversion_rate | campaigns.py; rate = conversions / clicks |

Estimated customer lifetime value, per segment: AOV x purchase frequency x expected lifespan,
all measured over the period: frequency = orders per buyer in the period, expected lifespan in
periods = 1 / churn rate of the period (capped at 5 years), the churn rate being the shop's
(guests cannot be followed over time, so the segments share it).

How it stays fast: every figure is an SQL aggregate (FILTER, GROUP BY the local day computed
with `AT TIME ZONE`), about a dozen statements per call, no per-customer Python; see the
README's Analytics section for the indexes and the measurements at 1M customers.
"""
from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.loyalty.analytics import campaigns, lapsing, points, sales
from app.loyalty.analytics.period import Period, money, money_ratio, ratio
from app.loyalty.errors import NotFound
from app.loyalty.program import program_settings
from app.models import Shop

MAX_LIFESPAN_DAYS = 5 * 365
WORK_MEM = "64MB"

SERIES_KEYS = (
    "new_members", "members", "active_members",
    *points.POINT_FLOWS, "points_outstanding", "liability", "redemption_rate",
    "member_orders", "member_revenue", "member_aov", "non_member_orders", "non_member_revenue", "non_member_aov",
    "churned_customers",
    "winback_sends", "winback_conversions", "winback_recovered_revenue",
    "referral_clicks", "referral_conversions", "referral_revenue",
)


def _shop_period(session: Session, shop_id: int, start: date, end: date) -> tuple[Shop, Period]:
    shop = session.get(Shop, shop_id)
    if shop is None:
        raise NotFound("no such shop")
    period = Period(start, end, shop.timezone)
    # For the rest of this (read-only) transaction: JIT compilation costs these few-second
    # aggregates more than it saves, and per-buyer hash aggregates at 1M customers spill to
    # disk far less with more than the 4 MB default.
    session.execute(text("SET LOCAL jit = off"))
    session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    return shop, period


def _liability(points_outstanding: int, value: Decimal | None) -> str | None:
    return None if value is None else money(points_outstanding * value)


def _lifespan_periods(churn: lapsing.Churn, period: Period) -> Decimal | None:
    """Expected lifespan in periods: 1 / churn rate, at most MAX_LIFESPAN_DAYS; None without a churn base."""
    if not churn.base:
        return None
    longest = Decimal(MAX_LIFESPAN_DAYS) / period.days
    return min(longest, Decimal(churn.base) / churn.churned) if churn.churned else longest


def _segment(prefix: str, stats: dict, lifespan_periods: Decimal | None) -> dict:
    aov = Decimal(stats["revenue"] or 0) / stats["orders"] if stats["orders"] else None
    per_buyer = stats["orders"] / stats["buyers"] if stats["buyers"] else None
    clv = None
    if stats["buyers"] and lifespan_periods is not None:
        # AOV x orders per buyer x lifespan = revenue per buyer x lifespan, kept exact in Decimal.
        clv = money(Decimal(stats["revenue"] or 0) / stats["buyers"] * lifespan_periods)
    return {
        f"{prefix}_orders": stats["orders"], f"{prefix}_buyers": stats["buyers"],
        f"{prefix}_revenue": money(stats["revenue"]), f"{prefix}_aov": None if aov is None else money(aov),
        f"{prefix}_orders_per_buyer": None if per_buyer is None else round(per_buyer, 4),
        f"{prefix}_repeat_purchase_rate": ratio(stats["repeat_buyers"], stats["buyers"]),
        f"{prefix}_clv": clv,
    }


def summary(session: Session, shop_id: int, start: date, end: date, now: datetime) -> dict:
    """Totals for the shop's local days [start, end]; see the module docstring for every key."""
    shop, period = _shop_period(session, shop_id, start, end)
    settings = program_settings(shop)
    before, joined = points.joins_by_day(session, shop_id, period)
    flows = points.point_flows(session, shop_id, period)
    ladder, balance_now, pending_now = points.customer_snapshot(session, shop_id)
    outstanding = balance_now - flows.balance_after
    value = points.point_value(session, shop_id)
    churn = lapsing.churn(session, shop_id, period, now, settings)
    lifespan_periods = _lifespan_periods(churn, period)
    segments = sales.sales_by_segment(session, shop_id, period)
    by_day = campaigns.campaigns_by_day(session, shop_id, period).values()
    totals = {k: sum((d.get(k) or 0 for d in by_day), 0) for k in campaigns.CAMPAIGN_COUNTS + campaigns.CAMPAIGN_MONEY}
    return {
        "start": period.start.isoformat(), "end": period.end.isoformat(), "timezone": period.timezone,
        "currency": shop.currency, "days": period.days,
        "members": before + sum(joined.values()), "new_members": sum(joined.values()),
        "active_members": sales.active_members(session, shop_id, period, by_day=False),
        **flows.totals,
        "points_outstanding": outstanding, "points_pending": pending_now - flows.pending_after,
        "point_value": None if value is None else format(value.normalize(), "f"),
        "point_value_source": "none" if value is None else "rewards",
        "liability": _liability(outstanding, value),
        "redemption_rate": ratio(flows.totals["points_redeemed"], flows.totals["points_issued"]),
        **_segment("member", segments["member"], lifespan_periods),
        **_segment("non_member", segments["non_member"], lifespan_periods),
        "lapsing_customers": churn.lapsing, "churned_customers": churn.churned, "churn_base": churn.base,
        "churn_rate": ratio(churn.churned, churn.base),
        "expected_lifespan_days": None if lifespan_periods is None else round(float(lifespan_periods * period.days), 1),
        "ladder": ladder,
        **{k: int(totals[k]) for k in campaigns.CAMPAIGN_COUNTS},
        **{k: money(totals[k]) for k in campaigns.CAMPAIGN_MONEY},
        "referral_conversion_rate": ratio(totals["referral_conversions"], totals["referral_clicks"]),
    }


def daily_series(session: Session, shop_id: int, start: date, end: date, now: datetime | None = None) -> list[dict]:
    """One dict per local day of [start, end], zeros filled: `date` (ISO) then SERIES_KEYS.

    `now` bounds churn (nobody lapses in the future); None means the end of the period.
    """
    shop, period = _shop_period(session, shop_id, start, end)
    settings = program_settings(shop)
    now = now or period.end_at
    members, joined = points.joins_by_day(session, shop_id, period)
    flows = points.point_flows(session, shop_id, period)
    _, balance_now, _ = points.customer_snapshot(session, shop_id)
    value = points.point_value(session, shop_id)
    active = sales.active_members(session, shop_id, period, by_day=True)
    sold = sales.sales_by_day(session, shop_id, period)
    churned = lapsing.churned_by_day(session, shop_id, period, now, settings)
    extra = campaigns.campaigns_by_day(session, shop_id, period)
    # Balance at the end of each day, rolled back from now: later days' deltas are subtracted.
    outstanding, closing = balance_now - flows.balance_after, {}
    for day in reversed(period.dates()):
        closing[day] = outstanding
        outstanding -= flows.by_day.get(day, {}).get("balance_delta", 0)
    rows = []
    for day in period.dates():
        members += joined.get(day, 0)
        flow = flows.by_day.get(day) or dict.fromkeys(points.POINT_FLOWS, 0)
        segment = sold.get(day, {})
        (m_orders, m_revenue), (n_orders, n_revenue) = (segment.get(s, (0, 0)) for s in sales.SEGMENTS)
        camp = extra.get(day, {})
        values = {
            "new_members": joined.get(day, 0), "members": members,
            "active_members": active.get(day, 0), **{k: flow[k] for k in points.POINT_FLOWS},
            "points_outstanding": closing[day], "liability": _liability(closing[day], value),
            "redemption_rate": ratio(flow["points_redeemed"], flow["points_issued"]),
            "member_orders": m_orders, "member_revenue": money(m_revenue), "member_aov": money_ratio(m_revenue, m_orders),
            "non_member_orders": n_orders, "non_member_revenue": money(n_revenue),
            "non_member_aov": money_ratio(n_revenue, n_orders),
            "churned_customers": churned.get(day, 0),
            **{k: int(camp.get(k) or 0) for k in campaigns.CAMPAIGN_COUNTS},
            **{k: money(camp.get(k)) for k in campaigns.CAMPAIGN_MONEY},
        }
        rows.append({"date": day.isoformat(), **{k: values[k] for k in SERIES_KEYS}})
    return rows


def series_csv(rows: list[dict]) -> str:
    """CSV (RFC 4180, \\r\\n line ends): header `date` + SERIES_KEYS, one line per row; None is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("date", *SERIES_KEYS))
    for row in rows:
        writer.writerow(["" if row.get(k) is None else row[k] for k in ("date", *SERIES_KEYS)])
    return out.getvalue()
