"""Analytics snapshots: each shop's standard periods computed ahead, read in one row.

At 1M customers a live summary + daily series takes 15-40 s (README "Analytics"), too slow
for a page load. An hourly job (jobs.analytics) calls `refresh_snapshots`, which computes the
periods the console offers (the last 7/30/90/365 local days ending today) and upserts them;
readers call `report`, which serves a snapshot younger than MAX_AGE and computes live
otherwise (any other period, a new shop, a stopped scheduler).

A snapshot holds exactly what `summary` and `daily_series` return (already JSON-safe: ISO
dates, money as strings); JSONB forgets key order, so the series rows are put back in order.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.loyalty.analytics import SERIES_KEYS, daily_series, lapsing, summary
from app.loyalty.analytics.period import Period
from app.loyalty.calendar import local
from app.loyalty.errors import NotFound
from app.loyalty.program import program_settings
from app.models import AnalyticsSnapshot, Shop, for_shop

PERIOD_DAYS = (7, 30, 90, 365)  # the console's period selector
# Twice the refresh interval, so one late or failed hourly run still leaves a snapshot in use.
MAX_AGE = timedelta(hours=2)
ROW_KEYS = ("date", *SERIES_KEYS)


class Report(NamedTuple):
    summary: dict | None
    series: list[dict] | None
    computed_at: datetime  # when the figures were computed: `now` when computed live


def standard_periods(today: date) -> list[tuple[date, date]]:
    """(first day, last day) of each PERIOD_DAYS period ending `today`."""
    return [(today - timedelta(days=days - 1), today) for days in PERIOD_DAYS]


def refresh_snapshots(session: Session, shop_id: int, now: datetime) -> int:
    """Compute and upsert the shop's standard periods ending today (its timezone); drop the ones
    that ended before. Returns the number of periods written."""
    shop = session.get(Shop, shop_id)
    if shop is None:
        raise NotFound("no such shop")
    today = local(now, shop.timezone).date()
    periods = standard_periods(today)
    # A day's row does not depend on the period around it (all end today, so the same `now`),
    # except `churned_customers`, which counts the period's churn base (customers active at its
    # start, lapsing.py): the shorter periods' series are the longest one's tail with that column
    # recomputed for their own start, one series and one churn statement per shorter period
    # instead of four series (the tests compare each with daily_series). `now` bounds churn, as
    # in the summary: someone lapsing later today has not churned yet.
    first = min(start for start, _ in periods)
    longest = daily_series(session, shop_id, first, today, now)
    settings = program_settings(shop)
    for start, end in periods:
        series = longest[-((end - start).days + 1):]
        if start != first:
            churned = lapsing.churned_by_day(session, shop_id, Period(start, end, shop.timezone), now, settings)
            series = [{**row, "churned_customers": churned.get(date.fromisoformat(row["date"]), 0)} for row in series]
        values = {
            "shop_id": shop_id, "period_start": start, "period_end": end, "computed_at": now,
            "summary": summary(session, shop_id, start, end, now),
            "series": series,
        }
        upsert = insert(AnalyticsSnapshot).values(values)
        session.execute(upsert.on_conflict_do_update(
            constraint="uq_analytics_snapshots_shop_period",
            set_={k: upsert.excluded[k] for k in ("computed_at", "summary", "series")},
        ))
    session.execute(delete(AnalyticsSnapshot).where(AnalyticsSnapshot.shop_id == shop_id,
                                                    AnalyticsSnapshot.period_end < today))
    return len(periods)


def cached_report(session: Session, shop_id: int, start: date, end: date, now: datetime,
                  max_age: timedelta = MAX_AGE) -> Report | None:
    """The snapshot of exactly [start, end] computed within `max_age` before `now` in the shop's
    present timezone and currency, else None."""
    # Only one made under the shop's present zone and currency: days are cut at its local
    # midnight and money summed in its currency, so an older one answers another question.
    snapshot = session.scalars(
        for_shop(AnalyticsSnapshot, shop_id).join(Shop, Shop.id == AnalyticsSnapshot.shop_id).where(
            AnalyticsSnapshot.period_start == start, AnalyticsSnapshot.period_end == end,
            AnalyticsSnapshot.computed_at > now - max_age,
            AnalyticsSnapshot.summary["timezone"].astext == Shop.timezone,
            AnalyticsSnapshot.summary["currency"].astext == Shop.currency)
    ).one_or_none()
    if snapshot is None:
        return None
    rows = [{key: row[key] for key in ROW_KEYS} for row in snapshot.series]
    return Report(snapshot.summary, rows, snapshot.computed_at)


def report(session: Session, shop_id: int, start: date, end: date, now: datetime, *,
           with_summary: bool = True, with_series: bool = True, max_age: timedelta = MAX_AGE) -> Report:
    """A fresh snapshot if there is one, else the parts asked for computed live (as of `now`)."""
    cached = cached_report(session, shop_id, start, end, now, max_age)
    if cached is not None:
        return cached
    return Report(summary(session, shop_id, start, end, now) if with_summary else None,
                  daily_series(session, shop_id, start, end, now) if with_series else None, now)
